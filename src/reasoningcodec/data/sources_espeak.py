"""Synthetic multilingual speech from espeak-ng with randomised voice, rate and pitch.

Sentences come from ``sentences/<lang>.txt`` (shipped with the package). Mandarin is
fed to espeak-ng as tone-numbered pinyin (voice ``cmn-latn-pinyin``, via the
``pypinyin`` package) because Debian's espeak-ng 1.51 reads Chinese characters with
English digit names; the transcript keeps the characters.
"""

from __future__ import annotations

import importlib.util
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np
import soundfile as sf

from .items import BuildConfig, Item, caption, clean_field, lang_name

SENTENCE_DIR = Path(__file__).with_name("sentences")


@dataclass(frozen=True)
class Lang:
    """One synthesis language: sentence file, espeak voice, sampling weight."""

    code: str
    voice: str
    weight: float


LANGS: Tuple[Lang, ...] = (
    Lang("en", "en-us", 0.22), Lang("en", "en-gb", 0.10),
    Lang("cmn", "cmn-latn-pinyin", 0.20), Lang("yue", "yue", 0.15),
    Lang("de", "de", 0.055), Lang("fr", "fr-fr", 0.055), Lang("es", "es", 0.055),
    Lang("it", "it", 0.05), Lang("pt", "pt-br", 0.05), Lang("ru", "ru", 0.05),
    Lang("pl", "pl", 0.04),
)

# espeak-ng variant -> gender ("" = unstated). Silly/robotic novelty variants left out.
VARIANTS: Dict[str, str] = {
    "m1": "male", "m2": "male", "m3": "male", "m4": "male", "m5": "male", "m6": "male",
    "m7": "male", "m8": "male", "f1": "female", "f2": "female", "f3": "female",
    "f4": "female", "f5": "female", "croak": "male", "whisper": "male", "whisperf": "female",
    "klatt": "male", "klatt2": "male", "klatt3": "male", "klatt4": "male", "Annie": "female",
    "Alicia": "female", "Andrea": "female", "belinda": "female", "linda": "female",
    "steph": "female", "anika": "female", "grandma": "female", "aunty": "female",
    "adam": "male", "Alex": "male", "benjamin": "male", "caleb": "male", "david": "male",
    "edward": "male", "john": "male", "Lee": "male", "max": "male", "Michael": "male",
    "norbert": "male", "paul": "male", "quincy": "male", "rob": "male", "robert": "male",
    "travis": "male", "victor": "male", "grandpa": "male", "zac": "male", "shelby": "male",
}


def load_sentences(code: str) -> List[str]:
    """Non-empty, non-comment lines of ``sentences/<code>.txt``."""
    f = SENTENCE_DIR / f"{code}.txt"
    if not f.exists():
        return []
    lines = (ln.strip() for ln in f.read_text(encoding="utf-8").splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


_CJK_PUNCT = str.maketrans({"，": ",", "。": ".", "？": "?", "！": "!", "、": ",", "：": ":", "；": ";"})


def to_pinyin(text: str) -> str:
    """Chinese characters -> tone-numbered pinyin with ASCII punctuation."""
    from pypinyin import Style, lazy_pinyin  # optional dependency, needed for Mandarin only

    syl = lazy_pinyin(text.translate(_CJK_PUNCT), style=Style.TONE3, neutral_tone_with_five=True)
    out = " ".join(syl)
    for p in ",.?!:;":
        out = out.replace(f" {p}", p)
    return out


def rate_word(rate: int) -> str:
    """Describe an espeak rate in words per minute."""
    return "slow rate" if rate < 145 else ("fast rate" if rate > 205 else "normal rate")


def pitch_word(pitch: int) -> str:
    """Describe an espeak pitch (0-99)."""
    return "low pitch" if pitch < 35 else ("high pitch" if pitch > 65 else "medium pitch")


def synth(text: str, voice: str, rate: int, pitch: int) -> Tuple[np.ndarray, int]:
    """Run espeak-ng to a temporary WAV and load it."""
    with tempfile.TemporaryDirectory() as td:
        wav = Path(td) / "s.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch),
                        "-w", str(wav), text], check=True, capture_output=True)
        x, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    return x.mean(axis=1), int(sr)


def phonemes(text: str, voice: str) -> str:
    """IPA phonemes from ``espeak-ng -q --ipa`` (without the variant)."""
    r = subprocess.run(["espeak-ng", "-v", voice.split("+")[0], "-q", "--ipa", text],
                       check=True, capture_output=True, text=True)
    return clean_field(r.stdout)


def espeak(cfg: BuildConfig) -> Iterator[Item]:
    """``cfg.espeak_clips`` synthetic utterances (deterministic given ``cfg.seed``)."""
    if shutil.which("espeak-ng") is None:
        print("[espeak] espeak-ng not found: apt-get install espeak-ng", file=sys.stderr)
        return
    langs = [lg for lg in LANGS if load_sentences(lg.code)]
    if any(lg.code == "cmn" for lg in langs):
        if importlib.util.find_spec("pypinyin") is None:
            print("[espeak] pypinyin missing: Mandarin skipped (pip install pypinyin)", file=sys.stderr)
            langs = [lg for lg in langs if lg.code != "cmn"]
    sentences = {lg.code: load_sentences(lg.code) for lg in langs}
    rng = random.Random(f"espeak|{cfg.seed}")
    weights = [lg.weight for lg in langs]
    variants = sorted(VARIANTS)
    for i in range(cfg.espeak_clips):
        lg = rng.choices(langs, weights)[0]
        si = rng.randrange(len(sentences[lg.code]))
        text = sentences[lg.code][si]
        variant = rng.choice(variants)
        rate = int(rng.triangular(110, 260, 170))
        pitch = int(rng.triangular(10, 90, 50))
        voice = f"{lg.voice}+{variant}"
        spoken = to_pinyin(text) if lg.code == "cmn" else text
        gender = VARIANTS[variant]
        desc = ", ".join(x for x in (f"espeak-ng voice {voice}", gender, rate_word(rate),
                                     pitch_word(pitch)) if x)

        def render(spoken: str = spoken, voice: str = voice, rate: int = rate,
                   pitch: int = pitch) -> Tuple[np.ndarray, int, Dict[str, str]]:
            x, sr = synth(spoken, voice, rate, pitch)
            return x, sr, {"phonemes": phonemes(spoken, voice)}

        yield Item(
            source="espeak", item_id=f"{i:05d}_{lg.code}_{variant}", category="speech",
            group=f"{lg.code}/{si}", license="synthetic (espeak-ng GPL-3+; own sentences, Apache-2.0)",
            language=lg.code, speaker=f"espeak_{lg.voice}+{variant}", transcript=text,
            analysis_text=caption("speech", language=lang_name(lg.code) + " (synthetic)",
                                  speaker=desc, content=text),
            render=render,
        )
