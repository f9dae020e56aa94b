"""Shared pieces of the LM data recipes: context, sentence split, espeak voices, mixing, clip writing.

Every recipe writes 24 kHz mono 16-bit FLAC clips of 1-6 s under ``OUT_DIR/audio/<recipe>/<split>/``
and returns metadata rows whose audio paths are relative to ``OUT_DIR``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from reasoningcodec.data.audio import TARGET_SR, pad_to, resample, trim_silence, write_flac
from reasoningcodec.data.sources_espeak import VARIANTS, load_sentences, synth, to_pinyin

SR = TARGET_SR
MIN_S = 1.0
MAX_S = 6.0
SPLITS = ("train", "test")
LANG_VOICES: Dict[str, Tuple[str, ...]] = {"en": ("en-us", "en"), "cmn": ("cmn-latn-pinyin",), "yue": ("yue",)}
"""espeak-ng base voices per sentence language (``en`` is British English)."""

EN_TEST_MAX_WORDS = 10
TEST_PERCENT = {"en": 40, "cmn": 20, "yue": 20}
"""Held-out share (per cent, by sentence hash) of the eligible sentences of each language."""


class RecipeError(RuntimeError):
    """A recipe cannot run (missing tool or source); the message says what to install."""


def stable_hash(text: str) -> int:
    """A seed-independent 32-bit hash (sha1) for split decisions."""
    return int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:8], 16)


def n_words(text: str) -> int:
    return len(text.split())


def sentence_split(lang: str, text: str) -> str:
    """``test`` or ``train`` for a shipped sentence (fixed; independent of the seed and of the recipe).

    English test sentences are drawn only from sentences of at most :data:`EN_TEST_MAX_WORDS` words.
    """
    if lang == "en" and n_words(text) > EN_TEST_MAX_WORDS:
        return "train"
    return "test" if stable_hash(f"sentence|{lang}|{text}") % 100 < TEST_PERCENT.get(lang, 20) else "train"


_SENTENCES: Dict[Tuple[str, str], List[str]] = {}


def sentences(lang: str, split: str) -> List[str]:
    """The shipped sentences of ``lang`` on one side of the fixed train/test split."""
    key = (lang, split)
    if key not in _SENTENCES:
        _SENTENCES[key] = [s for s in load_sentences(lang) if sentence_split(lang, s) == split]
    return _SENTENCES[key]


def need_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        raise RecipeError("espeak-ng not found (apt-get install espeak-ng)")


def need_pinyin() -> None:
    if importlib.util.find_spec("pypinyin") is None:
        raise RecipeError("pypinyin missing (pip install pypinyin): needed for Mandarin espeak-ng input")


# ------------------------------------------------------------------------------------ espeak voices
@dataclass(frozen=True)
class Voice:
    """An espeak-ng voice: base voice + variant, rate (wpm) and pitch (0-99)."""

    lang: str
    base: str
    variant: str
    rate: int
    pitch: int

    @property
    def name(self) -> str:
        return f"{self.base}+{self.variant}"

    @property
    def gender(self) -> str:
        return VARIANTS.get(self.variant, "")

    def style(self, **extra: object) -> Dict[str, object]:
        d: Dict[str, object] = {"rate_wpm": self.rate, "pitch": self.pitch, "voice": self.name,
                                "gender": self.gender}
        d.update(extra)
        return d

    def with_(self, **kw: Any) -> "Voice":
        return dataclasses.replace(self, **kw)


PLAIN_VARIANTS = tuple(sorted(v for v in VARIANTS if v not in ("whisper", "whisperf", "croak")))
"""Variants with an ordinary phonation (whisper and croak are kept for captions that say so)."""


def random_voice(rng: random.Random, lang: str, rate: Tuple[int, int] = (120, 260),
                 pitch: Tuple[int, int] = (20, 80), plain: bool = False) -> Voice:
    variants = PLAIN_VARIANTS if plain else tuple(sorted(VARIANTS))
    return Voice(lang, rng.choice(LANG_VOICES[lang]), rng.choice(variants), rng.randint(*rate), rng.randint(*pitch))


def speak(text: str, voice: Voice) -> np.ndarray:
    """Synthesise ``text`` (Mandarin via pinyin) -> 24 kHz float32, silence trimmed, peak 0.7."""
    return speak_raw(to_pinyin(text) if voice.lang == "cmn" else text, voice)


def speak_raw(spoken: str, voice: Voice) -> np.ndarray:
    """Synthesise exactly ``spoken`` (no pinyin conversion) -> 24 kHz float32, silence trimmed, peak 0.7."""
    x, sr = synth(spoken, voice.name, voice.rate, voice.pitch)
    y = trim_silence(resample(x.astype(np.float32), sr))
    if y.size == 0 or float(np.max(np.abs(y))) == 0.0:
        raise RecipeError(f"espeak-ng produced silence for {spoken!r} with voice {voice.name}")
    return peak_norm(y, 0.7)


def speak_fit(rng: random.Random, pool: Sequence[str], voice: Voice, max_s: float = MAX_S,
              tries: int = 12, first: Optional[str] = None, faster: bool = True) -> Tuple[str, np.ndarray]:
    """Speak a sentence from ``pool`` (``first`` if given) that lasts at most ``max_s`` seconds.

    Longer results are retried with other sentences of the pool, then (``faster``) with a faster rate.
    """
    if not pool:
        raise RecipeError(f"no sentences for language {voice.lang!r}")
    text = first if first is not None else rng.choice(pool)
    v = voice
    for i in range(tries):
        x = speak(text, v)
        if x.size <= max_s * SR:
            return text, x
        text = rng.choice(pool)
        if faster and i >= tries // 2:
            v = v.with_(rate=min(300, v.rate + 20))
    raise RecipeError(f"could not fit speech of voice {voice.name} into {max_s} s")


# ------------------------------------------------------------------------------------ signal helpers
def peak_norm(x: np.ndarray, peak: float) -> np.ndarray:
    m = float(np.max(np.abs(x))) if x.size else 0.0
    return (x * (peak / m)).astype(np.float32) if m > 0 else x.astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def fade(x: np.ndarray, ms: float = 10.0) -> np.ndarray:
    n = min(x.size // 2, int(SR * ms / 1000))
    if n <= 0:
        return x
    y = x.copy()
    ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
    y[:n] *= ramp
    y[-n:] *= ramp[::-1]
    return y


def crop(x: np.ndarray, max_s: float, rng: Optional[random.Random] = None) -> np.ndarray:
    """At most ``max_s`` seconds (random start with ``rng``, else from the start), with short fades."""
    n = int(max_s * SR)
    if x.size <= n:
        return x
    s = rng.randrange(0, x.size - n + 1) if rng is not None else 0
    return fade(x[s: s + n])


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Loop (with 20 ms fades) or cut ``x`` to exactly ``n`` samples."""
    if x.size == 0:
        return np.zeros(n, np.float32)
    if x.size >= n:
        return x[:n].astype(np.float32)
    reps = [fade(x, 20.0)] * (n // x.size + 1)
    return np.concatenate(reps)[:n].astype(np.float32)


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``signal + g * noise`` with ``g`` chosen for the requested signal-to-noise ratio (RMS)."""
    noise = fit_length(noise, signal.size)
    g = rms(signal) / (rms(noise) * 10.0 ** (snr_db / 20.0))
    return (signal + g * noise).astype(np.float32)


def coloured_noise(rng: np.random.Generator, n: int, colour: str) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise, ``n`` samples, unit RMS."""
    w = rng.standard_normal(n)
    if colour != "white":
        spec = np.fft.rfft(w)
        f = np.arange(spec.size, dtype=np.float64)
        f[0] = 1.0
        spec /= f ** (0.5 if colour == "pink" else 1.0)
        spec[0] = 0.0
        w = np.fft.irfft(spec, n)
    return (w / (np.std(w) + 1e-12)).astype(np.float32)


def lowpass(x: np.ndarray, cutoff_hz: float) -> np.ndarray:
    """Brick-wall low-pass (FFT) with a short cosine transition band."""
    spec = np.fft.rfft(x)
    f = np.fft.rfftfreq(x.size, 1.0 / SR)
    width = 0.15 * cutoff_hz
    gain = np.clip((cutoff_hz + width - f) / (2 * width), 0.0, 1.0)
    gain = 0.5 - 0.5 * np.cos(np.pi * gain)
    return np.fft.irfft(spec * gain, x.size).astype(np.float32)


def speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch and tempo together), by resampling."""
    if abs(factor - 1.0) < 1e-3:
        return x
    return resample(x, int(round(SR * factor)), SR)


# ------------------------------------------------------------------------------------ context
@dataclass
class Context:
    """Where and how much one recipe builds."""

    out_dir: Path
    recipe: str
    seed: int = 0
    scale: float = 1.0
    options: Dict[str, object] = field(default_factory=dict)
    written: int = 0

    def rng(self, split: str, *salt: object) -> random.Random:
        return random.Random("|".join(str(s) for s in (self.recipe, split, self.seed) + salt))

    def np_rng(self, rng: random.Random) -> np.random.Generator:
        return np.random.default_rng(rng.getrandbits(63))

    def count(self, base: int, minimum: int = 2) -> int:
        """``base`` rows scaled by ``--scale`` (at least ``minimum`` if ``base`` > 0)."""
        return 0 if base <= 0 else max(minimum, int(round(base * self.scale)))

    def save(self, x: np.ndarray, split: str, name: str, max_s: float = MAX_S) -> str:
        """Write a clip (padded to 1 s; must be at most ``max_s``); returns its path relative to OUT_DIR."""
        x = np.asarray(x, dtype=np.float32)
        if not np.all(np.isfinite(x)):
            raise ValueError(f"{self.recipe}/{split}/{name}: non-finite samples")
        x = pad_to(x, int(MIN_S * SR))
        if x.size > int(max_s * SR) + 1:
            raise ValueError(f"{self.recipe}/{split}/{name}: {x.size / SR:.2f} s is longer than {max_s} s")
        peak = float(np.max(np.abs(x)))
        if peak > 0.98:
            x = x * (0.95 / peak)
        rel = Path("audio") / self.recipe / split / f"{name}.flac"
        write_flac(self.out_dir / rel, x, SR)
        self.written += 1
        return rel.as_posix()


class Deck:
    """Draw items in shuffled order, reshuffling when all were used (even coverage of a small pool)."""

    def __init__(self, items: Sequence[Any], rng: random.Random) -> None:
        if not items:
            raise RecipeError("empty pool")
        self.items: List[Any] = list(items)
        self.rng = rng
        self.queue: List[Any] = []

    def draw(self) -> Any:
        if not self.queue:
            self.queue = self.items[:]
            self.rng.shuffle(self.queue)
        return self.queue.pop()


NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen")
TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def number_words(n: int) -> str:
    """English words for 0 <= n < 1000 (``one hundred and five``)."""
    if not 0 <= n < 1000:
        raise ValueError(f"number out of range: {n}")
    if n < 20:
        return NUMBER_WORDS[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else "-" + NUMBER_WORDS[n % 10])
    rest = n % 100
    return f"{NUMBER_WORDS[n // 100]} hundred" + ("" if rest == 0 else " and " + number_words(rest))


AUDIO_FIELDS = ("audio", "voice", "source")  # row fields (and demo fields) that name a clip


def audio_refs(row: Dict[str, Any]) -> List[str]:
    """Every audio path a recipe row refers to: its own clips and those of its demos."""
    refs = [row[k] for k in AUDIO_FIELDS if k in row]
    for d in row.get("demos", []):
        refs += [d[k] for k in AUDIO_FIELDS if k in d]
    return refs
