"""Speech rows for the flagship tasks from a tokenised espeak build: every ``asr`` clip also as a ``tts``
row (the same clip and text, the other direction), plus the ``instruct_tts`` rows.

    python scripts/speech_manifest.py data/lm_big/tokens/train.jsonl data/lm_big/tokens/speech.jsonl
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

TTS_LANGUAGES = ("en", "cmn", "yue")  # the rows keep their own language code


def main(src: str, dst: str) -> int:
    rows = [json.loads(x) for x in Path(src).read_text(encoding="utf-8").splitlines() if x.strip()]
    out = []
    for r in rows:
        if r["task"] in ("asr", "instruct_tts", "tts"):
            out.append(r)
        if r["task"] == "asr" and r.get("language") in TTS_LANGUAGES:
            out.append({**r, "task": "tts"})
    Path(dst).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in out), encoding="utf-8")
    print(dict(Counter(r["task"] for r in out)))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
