"""Real recorded English speech with its transcript, for the recognition rows (recipe ``real_asr``).

Every other English speech recipe is espeak-ng; a recogniser trained only on it does not hear real voices.
This recipe reads the transcribed English recordings of the codec's corpus sources
(:mod:`reasoningcodec.data.sources_real`, :mod:`reasoningcodec.data.sources_gcompris`): Asterisk voice
prompts (telephone band), Tux Paint stamp descriptions, KTuberling words and GCompris-voices words,
colours and letters. They are installed Debian packages (and the GCompris-voices checkout the codec
corpus uses, ``data/gcompris-voices``); a source that is missing is skipped. Train split only: the
real-speech test is the evaluation set's transcribed clips, from other corpora (``benchmarks/asr_real.py``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, List

from reasoningcodec.data.audio import decode, resample, trim_silence
from reasoningcodec.data.items import BuildConfig

from .common import MAX_S, SR, Context

Rows = Dict[str, List[dict]]


def _english(lang: str) -> bool:
    return lang.lower().replace("_", "-").split("-")[0] == "en"


def real_asr(ctx: Context) -> Rows:
    """Train split only: one ``asr`` row per transcribed English recording (at most 6 s after trimming)."""
    from reasoningcodec.data import sources_gcompris, sources_real

    cfg = BuildConfig(out_dir=ctx.out_dir / "_sources", gcompris_dir=Path(str(ctx.options.get(
        "gcompris_dir", "data/gcompris-voices"))))
    sources = [sources_real.asterisk, sources_real.tuxpaint, sources_real.ktuberling]
    if (cfg.gcompris_dir / "LICENSE").is_file():
        sources.append(sources_gcompris.gcompris)
    rows: List[dict] = []
    for source in sources:
        for item in source(cfg):
            text = " ".join(item.transcript.split())
            if item.category != "speech" or item.path is None or not _english(item.language) \
                    or not re.search(r"[A-Za-z]", text) or re.search(r"[^\x00-\x7f]", text):
                continue
            x, sr = decode(item.path)
            x = trim_silence(resample(x, sr, SR), SR)
            if x.size == 0 or x.size > MAX_S * SR:
                continue
            path = ctx.save(x, "train", f"{item.source}_{len(rows):05d}")
            rows.append({"task": "asr", "recipe": ctx.recipe, "audio": path, "text": text, "language": "en",
                         "speaker": item.speaker, "origin": item.source})
    return {"train": rows, "test": []}
