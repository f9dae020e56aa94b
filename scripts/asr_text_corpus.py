"""Write the English sentences of the training speech as the CTC decoder's character-model text.

    python scripts/asr_text_corpus.py data/lm/tokens/train.jsonl data/lm_wn/tokens/train.jsonl \\
        data/lm_big/tokens/speech.jsonl --out src/uniaudio_lm/data/asr_text_en.txt

Takes the ``text`` of English ``asr``/``tts``/``instruct_tts``/``voice_tts`` rows of the given training
manifests (sorted, each once) and leaves out any sentence of the everyday test list
(``uniaudio_lm/data/everyday_en_test.txt``) after normalisation, so the decoder never reads a test sentence.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ("asr", "tts", "instruct_tts", "voice_tts")


def norm(s: str) -> str:
    return " ".join(re.sub(r"[^a-z' ]", " ", s.lower()).split())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("manifests", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    test = {norm(x) for x in (ROOT / "src/uniaudio_lm/data/everyday_en_test.txt").read_text().splitlines() if x.strip()}
    texts = set()
    for m in a.manifests:
        for line in m.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            t = str(r.get("text") or "").strip()
            if r.get("task") in SPEECH and r.get("language", "en") == "en" and t and norm(t) not in test:
                texts.add(" ".join(t.split()))
    a.out.write_text("\n".join(sorted(texts)) + "\n", encoding="utf-8")
    print(f"{len(texts)} sentences → {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
