"""Audio input/output: read, validate, mix, resample, normalise loudness, write.

Reading uses soundfile (wav, flac, ogg/vorbis, opus, mp3 where libsndfile supports it); resampling
uses soxr. Every problem is reported as :class:`AudioError` with a message naming the problem.

Levels: float audio is expected in [-1, 1]. A peak above 1 (full scale) is coded as it is, with an
:class:`AudioWarning` naming the peak; a peak above :data:`MAX_PEAK` (1000) is refused: such input is
integer PCM stored as float (16-bit peaks at 32768) or not audio at all, and coding it would give noise.
Layout: a 2-D array with at most :data:`MAX_CHANNELS` (8) columns and at least :data:`MIN_TRANSPOSED_ROWS`
(1000) rows is taken for ``[T, C]`` (what ``soundfile.read`` returns) where ``[C, T]`` or ``[B, T]`` is
expected, and refused with a message that says how to pass it.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import soundfile as sf
import torch

from .atomic import temp_next_to
from .errors import AudioError, AudioWarning

MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000
FULL_SCALE = 1.0  # float audio is expected in [-FULL_SCALE, FULL_SCALE]; above it: a warning
MAX_PEAK = 1000.0  # above it: refused (integer PCM stored as float, or not audio)
MAX_CHANNELS = 8  # a 2-D array with at most this many columns ...
MIN_TRANSPOSED_ROWS = 1000  # ... and at least this many rows is [T, C], not [C, T] / [B, T]


def check_sample_rate(sr: object) -> int:
    """Validate a sample rate and return it as an int."""
    if isinstance(sr, bool) or not isinstance(sr, (int, np.integer, float)) or not math.isfinite(float(sr)):
        raise AudioError(f"sample rate must be a number, got {sr!r}")
    if float(sr) != int(sr):
        raise AudioError(f"sample rate must be a whole number of Hz, got {sr!r}")
    sr = int(sr)
    if not MIN_SAMPLE_RATE <= sr <= MAX_SAMPLE_RATE:
        raise AudioError(f"sample rate {sr} Hz is outside the supported {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz")
    return sr


def check_finite(x: torch.Tensor | np.ndarray, what: str = "audio") -> None:
    """Raise AudioError if ``x`` is empty or holds NaN/inf."""
    if x.size == 0 if isinstance(x, np.ndarray) else x.numel() == 0:
        raise AudioError(f"{what} is empty (0 samples)")
    ok = np.isfinite(x).all() if isinstance(x, np.ndarray) else bool(torch.isfinite(x).all())
    if not ok:
        raise AudioError(f"{what} contains NaN or infinite samples")


def check_peak(peak: float, what: str = "audio", advice: str = "scale it into [-1, 1] or normalise it") -> None:
    """Refuse a float peak above :data:`MAX_PEAK` (:class:`AudioError`); warn above full scale
    (:class:`AudioWarning`), with ``advice`` on what to do. Both messages name the peak."""
    if peak > MAX_PEAK:
        raise AudioError(f"{what} peaks at {peak:.6g}, but float audio is expected in [-1, 1] (refused above "
                         f"{MAX_PEAK:g}): is it integer PCM stored as float? 16-bit samples divide by 32768")
    if peak > FULL_SCALE:
        warnings.warn(AudioWarning(f"{what} peaks at {peak:.6g}, above full scale (1.0): {advice}"), stacklevel=2)


def check_layout(shape: tuple[int, ...], expected: str, how: str) -> None:
    """Refuse a 2-D ``shape`` that is clearly ``[T, C]`` (at most :data:`MAX_CHANNELS` columns, at least
    :data:`MIN_TRANSPOSED_ROWS` rows) where ``expected`` is what the caller takes; ``how`` says what to pass."""
    if len(shape) == 2 and shape[1] <= MAX_CHANNELS and shape[0] >= MIN_TRANSPOSED_ROWS:
        raise AudioError(f"audio of shape {tuple(shape)} looks like [T, C] (samples, channels: what soundfile.read "
                         f"returns), but {expected} is expected; {how}")


def is_file_object(x: Any) -> bool:
    """Whether ``x`` is a readable, seekable file object (read as an audio file from its start)."""
    return hasattr(x, "read") and hasattr(x, "seek") and not isinstance(x, (str, bytes, os.PathLike))


def source_name(src: Any) -> str:
    """How messages name a path or file object."""
    return str(getattr(src, "name", "<stream>")) if is_file_object(src) else str(Path(src))


def _open(src: Any) -> Any:
    """A path or file object → what ``soundfile`` opens (a file object is rewound to its start)."""
    if is_file_object(src):
        src.seek(0)
        return src
    return str(Path(src))


def info(path: Any) -> sf._SoundFileInfo:
    """File metadata without reading the samples (raises AudioError on unreadable files). ``path`` may
    also be a seekable binary file object holding an audio file."""
    if not is_file_object(path):
        p = Path(path)
        if not p.exists():
            raise AudioError(f"audio file not found: {p}")
        if p.is_dir():
            raise AudioError(f"expected an audio file, got a directory: {p}")
    try:
        return sf.info(_open(path))
    except Exception as e:  # soundfile raises RuntimeError/LibsndfileError/TypeError
        raise AudioError(f"cannot read {source_name(path)} as audio: {_short(e)}") from None


def load(path: str | os.PathLike, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Read ``path`` → ``(float32 array [C, T], sample_rate)``; checks for empty and non-finite data."""
    p = Path(path)
    meta = info(p)
    check_sample_rate(meta.samplerate)
    try:
        data, sr = sf.read(str(p), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(f"cannot decode {p}: {_short(e)}") from None
    data = np.ascontiguousarray(data.T)
    check_finite(data, f"audio in {p}")
    return data, int(sr)


def iter_blocks(path: Any, block_frames: int) -> Iterator[np.ndarray]:
    """Yield ``float32 [C, n]`` blocks of a file (a path or a seekable file object) at its own rate
    (bounded memory for long files)."""
    meta = info(path)
    check_sample_rate(meta.samplerate)
    p = source_name(path)
    try:
        with sf.SoundFile(_open(path)) as f:
            while True:
                block = f.read(block_frames, dtype="float32", always_2d=True)
                if block.shape[0] == 0:
                    break
                block = np.ascontiguousarray(block.T)
                if not np.isfinite(block).all():
                    raise AudioError(f"audio in {p} contains NaN or infinite samples")
                yield block
    except AudioError:
        raise
    except Exception as e:
        raise AudioError(f"cannot decode {p}: {_short(e)}") from None


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample ``[C, T]`` or ``[T]`` float audio (soxr, high quality)."""
    if sr_in == sr_out:
        return x
    import soxr

    y = soxr.resample(np.ascontiguousarray(x.T if x.ndim == 2 else x), sr_in, sr_out, quality="HQ")
    return np.ascontiguousarray(y.T if x.ndim == 2 else y).astype(np.float32, copy=False)


def resampled_length(n: int, sr_in: int, sr_out: int) -> int:
    """Samples that :func:`resample` and :class:`StreamResampler` make of ``n``: ``n * sr_out / sr_in``
    rounded to nearest, halves up (soxr's rule). Every path (arrays, files, ``.rc``, tokens) uses it."""
    return (2 * n * sr_out + sr_in) // (2 * sr_in)


def resampling_context(sr_in: int, sr_out: int) -> int:
    """Input samples on each side of a span beyond which the resampled span no longer depends on the
    signal: 512 samples at the lower of the two rates (soxr's HQ filter reaches about 130 of them; the
    rest is margin), as input samples."""
    return -(-512 * sr_in // min(sr_in, sr_out))


class StreamResampler:
    """Chunked resampling with soxr's streaming state: the concatenated output equals one call."""

    def __init__(self, sr_in: int, sr_out: int, channels: int) -> None:
        import soxr

        self.identity = sr_in == sr_out
        self._rs = None if self.identity else soxr.ResampleStream(sr_in, sr_out, channels, dtype="float32",
                                                                   quality="HQ")

    def __call__(self, block: np.ndarray, last: bool = False) -> np.ndarray:
        """``block [C, n]`` → resampled ``[C, m]``."""
        if self.identity:
            return block
        y = self._rs.resample_chunk(np.ascontiguousarray(block.T), last=last)
        return np.ascontiguousarray(y.T)


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS (−inf for silence)."""
    r = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20 * math.log10(r) if r > 0 else float("-inf")


def loudness_gain_db(x: np.ndarray, target_db: float = -23.0, max_gain_db: float = 30.0) -> float:
    """The gain (dB) that brings ``x`` to ``target_db`` RMS, limited to ±``max_gain_db`` and to no clipping."""
    level = rms_db(x)
    if not math.isfinite(level):
        return 0.0
    gain = max(-max_gain_db, min(max_gain_db, target_db - level))
    peak = float(np.max(np.abs(x)))
    if peak > 0:
        gain = min(gain, 20 * math.log10(0.99 / peak))
    return gain


def save(path: str | os.PathLike, wav: np.ndarray | torch.Tensor, sample_rate: int, subtype: str | None = None) -> None:
    """Write ``[C, T]`` or ``[T]`` audio atomically (temp file in the same folder, then rename).

    The format follows the extension (``.wav``, ``.flac``, ``.ogg``); samples are clipped to [-1, 1].
    """
    if isinstance(wav, torch.Tensor):
        wav = wav.detach().cpu().float().numpy()
    wav = np.asarray(wav, dtype=np.float32)
    if wav.ndim == 1:
        wav = wav[None]
    if wav.ndim != 2:
        raise AudioError(f"expected audio of shape [C, T] to write, got {tuple(wav.shape)}")
    p = Path(path)
    ext = p.suffix.lower().lstrip(".")
    fmt = {"wav": "WAV", "flac": "FLAC", "ogg": "OGG"}.get(ext)
    if fmt is None:
        raise AudioError(f"cannot write audio with extension {p.suffix!r}: use .wav, .flac or .ogg")
    if subtype is None:
        subtype = {"WAV": "PCM_16", "FLAC": "PCM_16", "OGG": "VORBIS"}[fmt]
    data = np.clip(wav, -1.0, 1.0).T
    tmp = temp_next_to(p)  # mode 0666 & ~umask, as a plain open() would make
    try:
        sf.write(str(tmp), data, sample_rate, format=fmt, subtype=subtype)
        os.replace(tmp, p)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _short(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return msg[-1] if msg else type(e).__name__
