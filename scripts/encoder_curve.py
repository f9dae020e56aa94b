"""CER of audio-encoder snapshots (CTC decoding as ``uniaudio_lm.asr(decoder="ctc")``) on fixed clip sets.

Every clip is encoded by the codec once; each snapshot (a ``UniAudioLM.save_pretrained`` folder with an
audio encoder) then transcribes them all. Sets: ``everyday`` (the 115 everyday test sentences of
``benchmarks/lm_tasks.py``), ``grammar`` (100 held-out sentences of the training grammar) and, with
``--eval-dir``, ``real`` (the evaluation set's transcribed English speech: measured, never used to choose)::

    python scripts/encoder_curve.py runs/lm_arms/encoder_real/snapshots/step_* --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "src")]

import torch  # noqa: E402

from benchmarks import asr_real  # noqa: E402
from benchmarks import lm_eval as E  # noqa: E402
from benchmarks import lm_tasks as LT  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("snapshots", nargs="+", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "lm")
    ap.add_argument("--eval-dir", type=Path, default=None)
    ap.add_argument("--lm-text", type=Path, default=None, help="character-model text (default: the shipped one)")
    ap.add_argument("--json", type=Path, required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    import reasoningcodec
    from uniaudio_lm import UniAudioLM, default_tokenizer
    from uniaudio_lm.ctc_decode import CharNgram, ctc_transcript
    from uniaudio_lm.pipeline import Pipeline

    codec = reasoningcodec.load()
    b = LT.Bench(a.data, None, "", 20, 0, 100, 0, 1, test=LT.read_rows(a.data / "test"))
    sets = {"everyday": [(str(a.data / r["audio"]), r["text"]) for r in LT.everyday_rows(b, "asr")],
            "grammar": [(str(a.data / r["audio"]), r["text"]) for r in
                        b.take("asr", 100, lambda r: r.get("language", "en") == "en" and not r.get("everyday"))]}
    if a.eval_dir:
        sets["real"] = [(r["file"], r["transcript"]) for r in asr_real.clips(a.eval_dir)]
    first = Pipeline(UniAudioLM.from_pretrained(a.snapshots[0]), default_tokenizer(), codec, recon_codebooks=4)
    codes = {k: [first.encode(p) for p, _ in v] for k, v in sets.items()}
    lm = CharNgram(a.lm_text.read_text(encoding="utf-8").splitlines()) if a.lm_text else None
    res = json.loads(a.json.read_text()) if a.json.is_file() else {}
    for snap in a.snapshots:
        t0 = time.process_time()
        pipe = Pipeline(UniAudioLM.from_pretrained(snap), default_tokenizer(), codec, recon_codebooks=4)
        out = {}
        for k, v in sets.items():
            hyps = [ctc_transcript(pipe, c, lm) for c in codes[k]]
            out[k] = E.error_rate(((t, h) for (_, t), h in zip(v, hyps)), "char").rate
        res[str(snap) + (f" (lm {a.lm_text.name})" if a.lm_text else "")] = out
        print(snap, {k: round(x, 4) for k, x in out.items()}, f"{time.process_time() - t0:.0f} CPU-s", flush=True)
        a.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
