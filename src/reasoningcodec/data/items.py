"""Shared types and small helpers for corpus sources.

A *source* is a function ``(BuildConfig) -> Iterable[Item]``. Each :class:`Item` is
one source recording (a file, or a render callback for synthetic audio); the
builder turns it into one or more clips.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import numpy as np

MANIFEST_COLUMNS = (
    "path", "source", "category", "split", "duration_s", "language", "speaker",
    "transcript", "phonemes", "analysis_text", "license",
)
CATEGORIES = ("speech", "music", "sound")
VAL_FRACTION = 0.02
GCOMPRIS_URL = "https://github.com/gcompris/GCompris-voices"
DEFAULT_GCOMPRIS_DIR = Path("data/gcompris-voices")
"""Default ``--gcompris-dir``: a checkout of :data:`GCOMPRIS_URL`, relative to the working directory."""

RenderFn = Callable[[], Tuple[np.ndarray, int, Dict[str, str]]]
"""Returns ``(mono float32 audio, sample rate, extra manifest fields)``."""


@dataclass
class BuildConfig:
    """Options shared by all sources."""

    out_dir: Path
    seed: int = 0
    max_hours_per_source: Optional[float] = None
    max_clips_per_source: Optional[int] = None
    espeak_clips: int = 2000
    midi_renders: int = 300
    fsdd_dir: Optional[Path] = None
    gcompris_dir: Path = DEFAULT_GCOMPRIS_DIR
    extra: Dict[str, str] = field(default_factory=dict)


@dataclass
class Item:
    """One input recording and everything known about it."""

    source: str
    item_id: str
    category: str
    group: str
    license: str
    language: str = ""
    speaker: str = ""
    transcript: str = ""
    phonemes: str = ""
    analysis_text: str = ""
    path: Optional[Path] = None
    render: Optional[RenderFn] = None
    trim: bool = True
    seg_s: float = 10.0


def clean_field(value: object) -> str:
    """Make a value safe for an unquoted TSV cell: no tabs, newlines or quotes issues."""
    s = str(value) if value is not None else ""
    s = s.replace("\t", " ").replace("\r", " ").replace("\n", " ")
    return re.sub(r" {2,}", " ", s).strip()


def safe_id(text: str) -> str:
    """Turn arbitrary text into a file-name-safe id."""
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return s or hashlib.sha1(text.encode()).hexdigest()[:12]


def split_for(source: str, group: str, val_fraction: float = VAL_FRACTION) -> str:
    """Deterministic train/val assignment of a source-file group (seed independent)."""
    h = int(hashlib.sha1(f"{source}|{group}".encode("utf-8")).hexdigest()[:8], 16)
    return "val" if (h % 10_000) < int(val_fraction * 10_000) else "train"


def sentence(text: str) -> str:
    """Normalise a caption fragment: strip, ensure it ends with a full stop."""
    t = clean_field(text).rstrip(" .")
    return t + "." if t else ""


def caption(domain: str, **parts: str) -> str:
    """Build ``analysis_text`` like ``domain: speech. language: English. content: ...``."""
    out = [f"domain: {domain}."]
    for key, val in parts.items():
        val = clean_field(val)
        if val:
            val = val.rstrip(".")
            end = "" if val[-1:] in "!?。！？…" else "."
            out.append(f"{key.replace('_', ' ')}: {val}{end}")
    return " ".join(out)


LANG_NAMES: Dict[str, str] = {
    "en": "English", "be": "Belarusian", "bg": "Bulgarian", "ca": "Catalan", "da": "Danish",
    "el": "Greek", "es": "Spanish", "fr": "French", "lt": "Lithuanian", "ml": "Malayalam",
    "nl": "Dutch", "ro": "Romanian", "ru": "Russian", "pt": "Portuguese", "de": "German",
    "it": "Italian", "cs": "Czech", "fi": "Finnish", "ga": "Irish", "gl": "Galician",
    "nds": "Low German", "nn": "Norwegian Nynorsk", "sl": "Slovenian", "sr": "Serbian",
    "sv": "Swedish", "uk": "Ukrainian", "wa": "Walloon", "cmn": "Mandarin Chinese",
    "yue": "Cantonese", "ja": "Japanese", "pl": "Polish", "hi": "Hindi", "tr": "Turkish",
    "vi": "Vietnamese", "ko": "Korean", "ar": "Arabic", "id": "Indonesian", "sw": "Swahili",
    "af": "Afrikaans", "ast": "Asturian", "br": "Breton", "eo": "Esperanto", "eu": "Basque",
    "gd": "Scottish Gaelic", "he": "Hebrew", "hu": "Hungarian", "kn": "Kannada", "mr": "Marathi",
    "nb": "Norwegian Bokmål", "pa": "Punjabi", "sk": "Slovak", "so": "Somali", "th": "Thai",
    "ur": "Urdu", "zh": "Chinese",
}


def lang_name(code: str) -> str:
    """English name of a language code such as ``pt_BR`` or ``sr@latin``."""
    base = re.split(r"[_@-]", code)[0]
    name = LANG_NAMES.get(base, code)
    if "_" in code:
        name += f" ({code.split('_', 1)[1].split('@')[0]})"
    return name
