"""Full-reference audio quality metrics for the reconstruction benchmark.

Every metric compares a *reference* ``ref`` with a *degraded* signal ``deg``: mono float arrays ``[T]``
in [-1, 1]. Each returns a :class:`Score`: a float value, or NaN with a reason when the metric cannot
apply (signal too short, no speech found, package missing).

Resampling rules (all resampling is soxr, quality ``"HQ"``, via :func:`resample`):

1. :func:`evaluate` first resamples ``deg`` to the reference's own rate, then estimates and removes the
   codec delay there (:func:`align`, integer lag within ±100 ms: the waveform cross-correlation peak
   when the codec keeps the phase, else the best alignment of 16 band envelopes at 1 ms resolution),
   and trims both signals to their common overlap.
2. Each metric then resamples both aligned signals to its own fixed rate:

   ========================  =========  ================================================
   metric                    rate (Hz)  notes
   ========================  =========  ================================================
   PESQ wide-band (P.862.2)  16 000     ``pesq`` package, mode ``"wb"``
   PESQ narrow-band (P.862)   8 000     ``pesq`` package, mode ``"nb"``
   STOI                      10 000     ``pystoi``; we resample to its native 10 kHz ourselves
   ViSQOL speech mode        16 000     ``visqol-python``; lattice mapper when available
   ViSQOL audio mode         48 000     ``visqol-python``
   log-mel distance          24 000     defined in :func:`mel_distance`
   SI-SDR                    24 000     defined in :func:`si_sdr`
   ========================  =========  ================================================

PESQ and STOI are speech measures; on music or environmental sound they are only indicative.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np

PESQ_WB_RATE = 16_000
PESQ_NB_RATE = 8_000
STOI_RATE = 10_000
VISQOL_SPEECH_RATE = 16_000
VISQOL_AUDIO_RATE = 48_000
MEL_RATE = 24_000
SI_SDR_RATE = 24_000
MAX_LAG_S = 0.1
WAVEFORM_TRUST = 0.5  # normalised waveform correlation above which the waveform peak is the delay

VisqolMode = Literal["speech", "audio"]
METRICS = ("pesq_wb", "pesq_nb", "stoi", "visqol", "mel_distance", "si_sdr")


@dataclass(frozen=True)
class Score:
    """One metric value; ``value`` is NaN when the metric could not apply, and ``reason`` says why."""

    value: float
    reason: str = ""

    def __float__(self) -> float:
        return self.value

    @property
    def ok(self) -> bool:
        return not math.isnan(self.value)


def _nan(reason: str) -> Score:
    return Score(float("nan"), reason)


@dataclass(frozen=True)
class Alignment:
    """Aligned, equal-length signals ``ref`` and ``deg`` ``[T]`` and the lag that was removed.

    ``lag > 0`` means the degraded signal was late by ``lag`` samples (``deg[n + lag] ≈ ref[n]``).
    """

    ref: np.ndarray
    deg: np.ndarray
    lag: int


@dataclass
class Evaluation:
    """All scores for one (reference, degraded) pair, plus the delay that was removed."""

    lag_samples: int
    lag_ms: float
    scores: dict[str, Score] = field(default_factory=dict)


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample mono ``[T]`` float audio with soxr (``quality="HQ"``); float64 out."""
    x = np.asarray(x, dtype=np.float64)
    if sr_in == sr_out:
        return x
    import soxr

    return np.asarray(soxr.resample(x, sr_in, sr_out, quality="HQ"), dtype=np.float64)


def to_mono(x: np.ndarray) -> np.ndarray:
    """``[T]`` or ``[C, T]`` → ``[T]``: channels are averaged (stereo is mixed down, not picked)."""
    x = np.asarray(x, dtype=np.float64)
    return x if x.ndim == 1 else x.mean(axis=0)


def _xcorr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Circular cross-correlation ``c[k] = Σ_n b[n + k] · a[n]`` (index ``k % n``), long enough to be linear."""
    n = 1 << int(math.ceil(math.log2(len(a) + len(b) - 1)))
    return np.fft.irfft(np.fft.rfft(b, n) * np.conj(np.fft.rfft(a, n)), n)


def _lags(ref_len: int, deg_len: int, max_lag: int) -> np.ndarray:
    return np.arange(-min(max_lag, ref_len - 1), min(max_lag, deg_len - 1) + 1)


def _band_envelopes(x: np.ndarray, sample_rate: int, hop: int, bands: int = 16) -> np.ndarray:
    """Log energy of ``x`` in ``bands`` log-spaced bands (100 Hz … Nyquist), one frame per ``hop`` samples,
    each band's mean removed: ``[bands, frames]``."""
    win = 1 << int(math.ceil(math.log2(0.016 * sample_rate)))  # ~16-21 ms window
    pad = np.concatenate([np.zeros(win // 2), x, np.zeros(win // 2)])
    frames = np.lib.stride_tricks.sliding_window_view(pad, win)[::hop]  # a view: no copy
    freqs = np.fft.rfftfreq(win, 1.0 / sample_rate)
    edges = np.geomspace(100.0, sample_rate / 2, bands + 1)
    band_of = np.searchsorted(edges, freqs, side="right") - 1  # bin → band (outside 0..bands-1: unused)
    masks = [band_of == b for b in range(bands)]
    window = np.hanning(win)
    env = np.zeros((bands, len(frames)))
    step = max(1, (1 << 22) // win)  # frames per block: bounded memory on long files
    total = 0.0
    for i in range(0, len(frames), step):
        power = np.abs(np.fft.rfft(frames[i:i + step] * window, axis=1)) ** 2  # [block, bins]
        total += float(power.sum())
        for b, m in enumerate(masks):
            env[b, i:i + step] = power[:, m].sum(axis=1)
    floor = 1e-10 * (total / (len(frames) * len(freqs)) + 1e-20)  # relative to the mean power per bin
    env = np.log(env + floor)
    return env - env.mean(axis=1, keepdims=True)


def _envelope_lag(ref: np.ndarray, deg: np.ndarray, max_lag: int, sample_rate: int, hop: int) -> int:
    """Lag (in samples, a multiple of ``hop``) that best aligns the band envelopes."""
    er, ed = _band_envelopes(ref, sample_rate, hop), _band_envelopes(deg, sample_rate, hop)
    corr = sum(_xcorr(a, b) for a, b in zip(er, ed))
    lags = _lags(er.shape[1], ed.shape[1], max(1, int(round(max_lag / hop))))
    return int(lags[int(np.argmax(corr[lags % len(corr)]))]) * hop


def estimate_lag(ref: np.ndarray, deg: np.ndarray, max_lag: int, sample_rate: int | None = None) -> int:
    """The delay of ``deg`` against ``ref`` in ``[-max_lag, max_lag]`` samples (``deg[n + lag] ≈ ref[n]``).

    First the peak of the waveform cross-correlation (whole signals, FFT). A waveform codec keeps the
    phase, and there that peak is the delay to the sample: it is used when the normalised correlation at
    the peak is at least ``WAVEFORM_TRUST``. A codec that resynthesises the waveform (neural decoders,
    vocoders, parametric codecs such as Codec 2) does not keep the phase: its waveform correlation is
    near zero everywhere and its peak is a chance event (tens of ms off, different from clip to clip).
    Then, when ``sample_rate`` is given, the delay comes from the band envelopes instead (log energy in
    16 bands, 1 ms frames), refined to the sample by the waveform peak within ±1 frame.
    Returns 0 for a silent input.
    """
    ref = np.asarray(ref, dtype=np.float64)
    deg = np.asarray(deg, dtype=np.float64)
    if not ref.any() or not deg.any():
        return 0
    corr = _xcorr(ref, deg)
    lags = _lags(len(ref), len(deg), max_lag)
    peak = corr[lags % len(corr)]
    best = int(np.argmax(peak))
    rho = peak[best] / math.sqrt(float(ref @ ref) * float(deg @ deg))
    if sample_rate is None or rho >= WAVEFORM_TRUST:
        return int(lags[best])
    hop = max(1, sample_rate // 1000)  # 1 ms envelope frames
    coarse = _envelope_lag(ref, deg, max_lag, sample_rate, hop)
    near = (lags >= coarse - hop) & (lags <= coarse + hop)
    return int(lags[near][int(np.argmax(peak[near]))]) if near.any() else coarse


def align(ref: np.ndarray, deg: np.ndarray, sample_rate: int, max_lag_s: float = MAX_LAG_S) -> Alignment:
    """Remove the delay between ``ref`` and ``deg`` (both ``[T]`` at ``sample_rate``).

    The lag is found by :func:`estimate_lag` within ±``max_lag_s`` seconds (default ±100 ms): the
    waveform cross-correlation peak for phase-keeping codecs, the band-envelope alignment for codecs
    that resynthesise the waveform; then both signals are trimmed to their common overlap.
    """
    lag = estimate_lag(ref, deg, int(round(max_lag_s * sample_rate)), sample_rate)
    r = np.asarray(ref, dtype=np.float64)
    d = np.asarray(deg, dtype=np.float64)
    if lag >= 0:
        d = d[lag:]
    else:
        r = r[-lag:]
    n = min(len(r), len(d))
    return Alignment(r[:n], d[:n], lag)


def _pesq(ref: np.ndarray, deg: np.ndarray, sample_rate: int, rate: int, mode: str) -> Score:
    try:
        from pesq import BufferTooShortError, NoUtterancesError, pesq
    except ImportError:
        return _nan("pesq is not installed (pip install pesq)")
    r, d = resample(ref, sample_rate, rate), resample(deg, sample_rate, rate)
    if len(r) < rate // 2:
        return _nan(f"too short for PESQ ({len(r) / rate:.2f} s; needs at least 0.5 s)")
    try:
        return Score(float(pesq(rate, r, d, mode)))
    except BufferTooShortError:
        return _nan("too short for PESQ")
    except NoUtterancesError:
        return _nan("PESQ found no speech in the reference")


def pesq_wb(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> Score:
    """PESQ wide-band (ITU-T P.862.2, MOS-LQO 1.04–4.64), both signals resampled to 16 kHz."""
    return _pesq(ref, deg, sample_rate, PESQ_WB_RATE, "wb")


def pesq_nb(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> Score:
    """PESQ narrow-band (ITU-T P.862 + P.862.1 mapping, 1.02–4.55), both resampled to 8 kHz."""
    return _pesq(ref, deg, sample_rate, PESQ_NB_RATE, "nb")


def stoi(ref: np.ndarray, deg: np.ndarray, sample_rate: int, extended: bool = False) -> Score:
    """STOI (Taal et al. 2011; 0–1), both signals resampled to 10 kHz before ``pystoi.stoi``.

    NaN when fewer than 30 non-silent 256-sample frames remain (pystoi would return 1e-5).
    """
    try:
        from pystoi import stoi as _stoi
        from pystoi.utils import remove_silent_frames
    except ImportError:
        return _nan("pystoi is not installed (pip install pystoi)")
    r, d = resample(ref, sample_rate, STOI_RATE), resample(deg, sample_rate, STOI_RATE)
    rr, _ = remove_silent_frames(r, d, 40, 256, 128)
    if len(rr) < 256 + 29 * 128:
        return _nan("too short for STOI (fewer than 30 non-silent frames)")
    return Score(float(_stoi(r, d, STOI_RATE, extended=extended)))


def _have_lattice() -> bool:
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def visqol_status() -> str:
    """How ViSQOL will be computed here, or why it cannot be (one line, for reports)."""
    try:
        import visqol
    except ImportError as e:
        return f"unavailable: visqol-python is not installed ({e})"
    version = getattr(visqol, "__version__", "?")
    mapper = ("lattice mapper (matches the C++ default)" if _have_lattice() else
              "polynomial mapper: ai-edge-litert missing, may over-predict by 1-2 MOS")
    return f"visqol-python {version}; speech mode at 16 kHz with the {mapper}; audio mode at 48 kHz (SVR)"


@lru_cache(maxsize=2)
def _visqol_api(mode: VisqolMode) -> Any:
    from visqol import VisqolApi

    api = VisqolApi()
    if mode == "speech":
        api.create(mode="speech", use_lattice_model=_have_lattice())
    else:
        api.create(mode="audio")
    return api


def visqol(ref: np.ndarray, deg: np.ndarray, sample_rate: int, mode: VisqolMode) -> Score:
    """ViSQOL v3 MOS-LQO (1–5) from ``visqol-python``.

    ``mode="speech"``: both signals resampled to 16 kHz (speech model, VAD on). ``mode="audio"``: both
    resampled to 48 kHz (audio SVR model). The package aligns internally as well.
    """
    try:
        import visqol as _v  # noqa: F401
    except ImportError:
        return _nan("visqol-python is not installed (pip install visqol-python)")
    rate = VISQOL_SPEECH_RATE if mode == "speech" else VISQOL_AUDIO_RATE
    r, d = resample(ref, sample_rate, rate), resample(deg, sample_rate, rate)
    if len(r) < rate // 2:
        return _nan(f"too short for ViSQOL ({len(r) / rate:.2f} s)")
    try:
        return Score(float(_visqol_api(mode).measure_from_arrays(r, d, sample_rate=rate).moslqo))
    except Exception as e:  # the package raises plain ValueError/IndexError on degenerate input
        return _nan(f"ViSQOL failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")


@lru_cache(maxsize=1)
def _mel_fb() -> np.ndarray:
    from reasoningcodec.features import mel_filterbank

    return mel_filterbank(1024, MEL_RATE, 80, 0.0, MEL_RATE / 2).numpy().astype(np.float64)


def log_mel(x: np.ndarray) -> np.ndarray:
    """``[T]`` at 24 kHz → natural-log mel magnitudes ``[frames, 80]`` (see :func:`mel_distance`)."""
    n_fft, hop = 1024, 256
    frames = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None] + hop * np.arange(frames)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft + 1)[:-1], axis=-1))
    return np.log(np.maximum(spec @ _mel_fb(), 1e-5))


def mel_distance(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> Score:
    """Log-mel distance (lower is better), at 24 kHz.

    Both signals are resampled to 24 kHz; a 1024-point Hann STFT with hop 256 (no padding) gives magnitude
    spectra, which 80 Slaney-style area-normalised triangular mel filters over 0–12 kHz
    (:func:`reasoningcodec.features.mel_filterbank`) project to mel bands; ``L = ln(max(mel, 1e-5))``.
    The distance is ``mean |L_ref − L_deg|`` over all frames and bands (L1, in natural-log units).
    """
    r, d = resample(ref, sample_rate, MEL_RATE), resample(deg, sample_rate, MEL_RATE)
    if len(r) < 1024:
        return _nan("too short for the mel distance (under 1024 samples at 24 kHz)")
    return Score(float(np.mean(np.abs(log_mel(r) - log_mel(d)))))


def si_sdr(ref: np.ndarray, deg: np.ndarray, sample_rate: int) -> Score:
    """Scale-invariant SDR in dB (Le Roux et al. 2019), both signals resampled to 24 kHz.

    Both are made zero-mean; ``α = ⟨d, r⟩ / ⟨r, r⟩``; ``SI-SDR = 10 log10(‖α r‖² / ‖d − α r‖²)``.
    """
    r, d = resample(ref, sample_rate, SI_SDR_RATE), resample(deg, sample_rate, SI_SDR_RATE)
    r, d = r - r.mean(), d - d.mean()
    rr = float(np.dot(r, r))
    if rr <= 0:
        return _nan("silent reference")
    target = (float(np.dot(d, r)) / rr) * r
    noise = float(np.sum((d - target) ** 2))
    if noise <= 0:
        return Score(float("inf"))
    return Score(10 * math.log10(max(float(np.sum(target ** 2)), 1e-30) / noise))


def evaluate(ref: np.ndarray, ref_rate: int, deg: np.ndarray, deg_rate: int,
             visqol_mode: VisqolMode | None = "speech", metrics: tuple[str, ...] = METRICS) -> Evaluation:
    """Score ``deg`` (``[T]`` or ``[C, T]`` at ``deg_rate``) against ``ref`` (at ``ref_rate``).

    Channels are averaged to mono; ``deg`` is resampled to ``ref_rate`` and aligned (:func:`align`);
    then each metric in ``metrics`` resamples to its own rate (see the module docstring).
    ``visqol_mode=None`` skips ViSQOL (NaN with a reason).
    """
    r = to_mono(ref)
    d = resample(to_mono(deg), deg_rate, ref_rate)
    a = align(r, d, ref_rate)
    out = Evaluation(a.lag, 1000.0 * a.lag / ref_rate)
    if len(a.ref) == 0:
        out.scores = {m: _nan("no overlap after alignment") for m in metrics}
        return out
    fns = {"pesq_wb": pesq_wb, "pesq_nb": pesq_nb, "stoi": stoi, "mel_distance": mel_distance, "si_sdr": si_sdr}
    for m in metrics:
        if m == "visqol":
            out.scores[m] = (visqol(a.ref, a.deg, ref_rate, visqol_mode) if visqol_mode
                             else _nan("ViSQOL not requested"))
        else:
            out.scores[m] = fns[m](a.ref, a.deg, ref_rate)
    return out
