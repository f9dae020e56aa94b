"""uniaudio_lm English ASR on the everyday test sentences read in espeak-ng accents no training row uses.

The task benchmark's everyday sentences are unseen, but its espeak-ng voices (``en-us`` and ``en`` with
every variant) are the training rows' voices. This reads the same 115 sentences with the English accents
the uniaudio_lm recipes never use (Scottish, Received Pronunciation, Lancaster, West Midlands,
Caribbean, New York; the codec's own corpus used espeak-ng's en-us and en-gb only),
one accent per sentence in turn, at a normal rate and pitch, and reports CER and WER per decoder with a
bootstrap 95% interval over sentences::

    python benchmarks/asr_voices.py --json benchmarks/results/asr_voices.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from benchmarks.asr_real import run_decoders  # noqa: E402

#: espeak-ng English voices that no uniaudio_lm recipe uses (they use ``en-us`` and ``en``).
HELD_OUT_VOICES = ("en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", type=Path, default=None, help="pipeline folder (default: the installed one)")
    ap.add_argument("--decoders", default="lm,ctc", help="comma list of uniaudio_lm.asr decoders")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    if shutil.which("espeak-ng") is None:
        print("espeak-ng is not installed", file=sys.stderr)
        return 2
    import torch

    import uniaudio_lm as ul
    from reasoningcodec.data.sources_espeak import synth
    from uniaudio_lm.recipes.speech import everyday_sentences

    torch.set_num_threads(a.threads)
    pipe = ul.load(a.model)
    texts = everyday_sentences()
    voices = [HELD_OUT_VOICES[i % len(HELD_OUT_VOICES)] for i in range(len(texts))]
    audio = [synth(t, v, 170, 50) for t, v in zip(texts, voices)]
    out: dict = {"meta": {"sentences": len(texts), "voices": list(HELD_OUT_VOICES), "rate_wpm": 170, "pitch": 50,
                          "date": time.strftime("%Y-%m-%d")}}
    out["decoders"] = run_decoders(pipe, audio, texts, a.decoders, [{"voice": v} for v in voices], "sentences")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
