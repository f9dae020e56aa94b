"""How long speech for a text should last: length conditioning for the speech generation tasks.

A speech item's length is otherwise whatever the model's end frame decides, and a small model ignores
the text. :class:`DurationModel` predicts seconds from the text's syllable count (seconds = offset +
seconds-per-syllable × syllables, one line per language), fitted on the training clips of the pipeline's
data (:func:`fit`) and stored in ``pipeline.json`` under ``"duration"``. The speech tasks then refuse the
end frame before ``(1 - tolerance) ×`` and force it at ``(1 + tolerance) ×`` the prediction, scaled by
the pace a style caption asks for (:func:`pace_factor`); a caller can also give the duration itself.

    python -m uniaudio_lm.duration data/lm/tokens/train.jsonl        # prints the fitted "duration" JSON
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

#: Frames of the reasoning / reconstruction streams per second are the codec's; seconds come from the
#: reconstruction frames of a code file at this rate unless the rows say otherwise.
_VOWELS = re.compile(r"[aeiou]+y?|y(?![aeiou])")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_WORD = re.compile(r"[A-Za-z']+|\d+")

#: Caption words for a pace and its speed relative to normal speech (the espeak rate bins of the data:
#: slow 120-130, normal 155-190, fast 220-260 words per minute).
PACE_WORDS: dict[str, tuple[str, ...]] = {
    "slow": ("slow", "slowly", "unhurried", "unhurriedly", "leisurely"),
    "fast": ("fast", "quickly", "rapid", "rapidly", "hurried"),
}
PACE_SPEED = {"slow": 125 / 172.5, "fast": 240 / 172.5}


class DurationError(ValueError):
    """A duration model that cannot be built or used."""


def syllables(text: str) -> int:
    """A syllable count: one per Chinese character, vowel groups per Latin word (at least one; a silent
    final ``e`` does not count), two per digit."""
    n = len(_CJK.findall(text))
    for w in _WORD.findall(text):
        if w.isdigit():
            n += 2 * len(w)
            continue
        w = w.lower().strip("'")
        groups = len(_VOWELS.findall(w))
        if w.endswith("e") and not w.endswith(("le", "ee")) and groups > 1:
            groups -= 1
        n += max(1, groups)
    return max(1, n)


def pace_factor(caption: str | None) -> float:
    """Duration multiplier a style caption asks for: longer for a slow pace, shorter for a fast one."""
    if not caption:
        return 1.0
    words = set(re.findall(r"[a-z]+", caption.lower()))
    for pace, ws in PACE_WORDS.items():
        if words & set(ws):
            return 1.0 / PACE_SPEED[pace]
    return 1.0


@dataclass(frozen=True)
class DurationModel:
    """language → (offset seconds, seconds per syllable); ``tolerance`` is the allowed relative miss."""

    lines: Mapping[str, tuple[float, float]]
    tolerance: float = 0.15

    def seconds(self, text: str, language: str = "en", caption: str | None = None) -> float | None:
        """Predicted seconds of speech, or ``None`` for a language the model has no line for."""
        lang = _lang(language)
        if lang == "en" and _CJK.search(text) and "cmn" in self.lines:
            lang = "cmn"  # Chinese characters in a call that did not name the language
        line = self.lines.get(lang)
        if line is None:
            return None
        return max(0.5, (line[0] + line[1] * syllables(text)) * pace_factor(caption))

    def window(self, seconds: float) -> tuple[float, float]:
        """(shortest, longest) seconds allowed around a predicted duration."""
        return seconds * (1 - self.tolerance), seconds * (1 + self.tolerance)

    def to_dict(self) -> dict[str, Any]:
        return {"lines": {k: [round(a, 4), round(b, 5)] for k, (a, b) in self.lines.items()},
                "tolerance": self.tolerance}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DurationModel":
        try:
            lines = {str(k): (float(v[0]), float(v[1])) for k, v in d["lines"].items()}
            return cls(lines, float(d.get("tolerance", 0.15)))
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
            raise DurationError(f"a duration model is {{'lines': {{language: [offset, per_syllable]}}, "
                                f"'tolerance': t}}: {e}") from None


def _lang(language: str | None) -> str:
    return {"zh": "cmn", "cmn": "cmn", "yue": "yue"}.get((language or "en").lower(), "en")


def fit(samples: Iterable[tuple[str, str, float]], min_rows: int = 20, tolerance: float = 0.15) -> DurationModel:
    """Least-squares line per language over ``(text, language, seconds)`` samples."""
    by: dict[str, list[tuple[int, float]]] = {}
    for text, lang, sec in samples:
        by.setdefault(_lang(lang), []).append((syllables(text), float(sec)))
    lines = {}
    for lang, xs in sorted(by.items()):
        if len(xs) < min_rows:
            continue
        n = len(xs)
        mx, my = sum(x for x, _ in xs) / n, sum(y for _, y in xs) / n
        vx = sum((x - mx) ** 2 for x, _ in xs)
        slope = sum((x - mx) * (y - my) for x, y in xs) / vx if vx > 0 else my / max(mx, 1)
        lines[lang] = (my - slope * mx, slope)
    if not lines:
        raise DurationError(f"no language has {min_rows} speech clips with text to fit a duration model")
    return DurationModel(lines, tolerance)


def manifest_samples(path: str | Path, recon_rate: float = 12.5) -> list[tuple[str, str, float]]:
    """``(text, language, seconds)`` of the plain-paced speech rows (``tts`` / ``asr``) of a tokenised
    manifest; seconds from the reconstruction frames of each code file."""
    from safetensors import safe_open

    p = Path(path)
    out = []
    for ln in p.read_text(encoding="utf-8").splitlines():
        if not ln.strip():
            continue
        r = json.loads(ln)
        if r.get("task") not in ("tts", "asr") or not isinstance(r.get("text"), str) or "codes" not in r:
            continue
        with safe_open(str(p.parent / r["codes"]), "pt") as f:
            frames = f.get_slice("recon").get_shape()[-1]
        out.append((r["text"], r.get("language", "en"), frames / recon_rate))
    return out


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m uniaudio_lm.duration TOKENS/train.jsonl", file=sys.stderr)
        return 2
    model = fit(manifest_samples(args[0]))
    print(json.dumps(model.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
