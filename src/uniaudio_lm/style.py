"""Speaking-style conditioning for the speech generation tasks: rate, pitch and gender as numbers.

A small model reads a style caption ("A fast, high-pitched female voice") as text and, trained on a few
thousand captioned clips, does not follow it. With ``style_conditioning`` (:class:`UniAudioConfig`) the
model also receives the style as six numbers (:data:`FEATURES`) through a small map
(:class:`StyleInput`) added to every frame of the speech it writes, so each generated frame sees the
rate and pitch it must produce:

* in training, from the numbers every espeak-ng speech row records (``style``: ``rate_wpm``,
  ``pitch``, ``gender``; :func:`from_row`), each left out at random (:data:`DROP`) so the model also
  learns to write speech with any of them unspecified;
* in use, from the caption's words (:func:`from_caption`: :data:`RATE_WORDS`, :data:`PITCH_WORDS`,
  :data:`GENDER_WORDS`); words outside these lists are not understood and leave that part unspecified.

Rate is espeak-ng's words per minute (slow 125, normal 172.5, fast 240), pitch espeak-ng's 0-99 pitch
setting (low 26, medium 50, high 74); both are relative to the voice, so "high" means high for that
voice.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import nn

#: the feature vector: (rate, pitch) standardised, whether each is given, and two gender flags
FEATURES = ("rate", "pitch", "rate_given", "pitch_given", "male", "female")
#: espeak-ng words per minute and pitch setting that the caption words stand for
RATE_VALUES = {"slow": 125.0, "normal": 172.5, "fast": 240.0}
PITCH_VALUES = {"low": 26.0, "medium": 50.0, "high": 74.0}
RATE_WORDS: dict[str, tuple[str, ...]] = {
    "slow": ("slow", "slowly", "unhurried", "unhurriedly", "leisurely"),
    "normal": ("steady", "moderately paced", "even-paced", "normal pace", "steady pace"),
    "fast": ("fast", "quickly", "rapid", "rapidly", "hurried", "quick"),
}
PITCH_WORDS: dict[str, tuple[str, ...]] = {
    "low": ("low-pitched", "deep", "low pitch", "low voice"),
    "medium": ("mid-pitched", "medium-pitched", "medium pitch"),
    "high": ("high-pitched", "bright, high", "high pitch", "high voice"),
}
GENDER_WORDS: dict[str, tuple[str, ...]] = {
    "male": ("male", "man", "man's", "men"),
    "female": ("female", "woman", "woman's", "women"),
}
#: probability that training leaves the rate, the pitch or the gender of a row unspecified
DROP = 0.25


@dataclass(frozen=True)
class Style:
    """A requested speaking style; ``None`` leaves that part to the model."""

    rate_wpm: float | None = None
    pitch: float | None = None
    gender: str | None = None

    def __post_init__(self) -> None:
        if self.gender not in (None, "male", "female"):
            raise ValueError(f"gender is 'male', 'female' or None, got {self.gender!r}")
        for name in ("rate_wpm", "pitch"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v == v and abs(v) != float("inf")):
                raise ValueError(f"{name} must be a finite number or None, got {v!r}")

    @property
    def empty(self) -> bool:
        return self.rate_wpm is None and self.pitch is None and self.gender is None

    def features(self) -> tuple[float, ...]:
        """The :data:`FEATURES` vector (all zeros for an empty style)."""
        rate = 0.0 if self.rate_wpm is None else max(-3.0, min(3.0, (self.rate_wpm - 172.5) / 50.0))
        pitch = 0.0 if self.pitch is None else max(-3.0, min(3.0, (self.pitch - 50.0) / 25.0))
        return (rate, pitch, float(self.rate_wpm is not None), float(self.pitch is not None),
                float(self.gender == "male"), float(self.gender == "female"))

    def dropped(self, rng: random.Random, p: float = DROP) -> "Style":
        """Each part left out with probability ``p`` (training)."""
        return Style(None if rng.random() < p else self.rate_wpm, None if rng.random() < p else self.pitch,
                     None if rng.random() < p else self.gender)


def _has(text: str, phrase: str) -> bool:
    return re.search(r"(?<![\w'-])" + re.escape(phrase) + r"(?![\w'-])", text) is not None


def _find(text: str, table: Mapping[str, tuple[str, ...]]) -> str | None:
    hits = [k for k, words in table.items() if any(_has(text, w) for w in words)]
    return hits[0] if len(hits) == 1 else None          # none, or contradictory words: unspecified


def from_caption(caption: str | None) -> Style:
    """The style a caption asks for, from its rate, pitch and gender words (case-insensitive)."""
    if not caption:
        return Style()
    t = caption.lower()
    rate, pitch, gender = _find(t, RATE_WORDS), _find(t, PITCH_WORDS), _find(t, GENDER_WORDS)
    return Style(None if rate is None else RATE_VALUES[rate], None if pitch is None else PITCH_VALUES[pitch], gender)


def from_row(row: Mapping[str, Any]) -> Style | None:
    """The recorded style of a manifest row (``style``: ``rate_wpm``, ``pitch``, ``gender``), or ``None``."""
    st = row.get("style")
    if not isinstance(st, Mapping):
        return None
    num = lambda k: float(st[k]) if isinstance(st.get(k), (int, float)) else None  # noqa: E731
    gender = st.get("gender") if st.get("gender") in ("male", "female") else None
    s = Style(num("rate_wpm"), num("pitch"), gender)
    return None if s.empty else s


class StyleInput(nn.Module):
    """:data:`FEATURES` → a ``dim`` vector added to the inputs of generated speech frames. No biases, so
    an empty style (all zeros) adds nothing; the output layer starts at zero."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.inp = nn.Linear(len(FEATURES), hidden, bias=False)
        self.out = nn.Linear(hidden, dim, bias=False)

    def reset_parameters(self) -> None:
        nn.init.normal_(self.inp.weight, std=0.5)
        nn.init.zeros_(self.out.weight)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.out(torch.nn.functional.silu(self.inp(features)))
