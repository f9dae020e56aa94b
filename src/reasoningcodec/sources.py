"""Audio to compress, as ``[C, n]`` blocks at the model rate: a file read block by block (bounded memory)
or an array, with its peak checked and, when asked, its loudness normalised."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from . import audio as audio_io
from .errors import AudioError
from .inputs import as_float_tensor

BLOCK_SECONDS = 10.0  # audio read, resampled and encoded at a time

# what a warning about input above full scale advises
_OVER_ADVICE = "the codec expects [-1, 1] and will distort it; scale it down or compress with normalize"
_OVER_NORMALIZED = "normalised for coding, it decodes at full scale (peak 1.0), not at its original level"


@dataclass
class Source:
    """Audio to compress: ``[C, n]`` blocks at the model rate, ``total`` samples per channel in all."""

    blocks: Iterator[np.ndarray]
    channels: int
    total: int
    sample_rate: int  # the input's own rate (the header's original_sample_rate)
    gain_db: float | None  # what the header records (None: not normalised)


def file_source(codec: Any, source: Any, normalize: bool, target_db: float, progress: Any = None) -> Source:
    """A path or a seekable file object holding an audio file (read in blocks: bounded memory); with
    ``normalize``, its loudness brought to ``target_db`` (dB RMS). ``progress`` (a tqdm bar) advances by the
    seconds of input read."""
    c = codec.config
    meta = audio_io.info(source)
    sr_in = audio_io.check_sample_rate(meta.samplerate)
    if meta.frames <= 0:
        raise AudioError(f"audio in {audio_io.source_name(source)} is empty (0 samples)")
    channels = int(meta.channels)
    total = audio_io.resampled_length(meta.frames, sr_in, c.sample_rate)  # what encode(path) gives
    gains = _file_gain(source, normalize, target_db)
    gain = 10 ** (gains[0] / 20) if gains else 1.0
    blocks = blocks_from_file(source, sr_in, c.sample_rate, channels, total, gain, progress,
                              check_peaks=gains is None)
    return Source(blocks, channels, total, sr_in, gains[1] if gains else None)


def array_source(codec: Any, source: Any, sample_rate: int | None, normalize: bool, target_db: float) -> Source:
    """An array or tensor ``[T]`` / ``[C, T]`` at ``sample_rate`` (default: the model's; integer PCM scaled
    as :meth:`ReasoningCodec.encode` does); with ``normalize``, its loudness brought to ``target_db``."""
    c = codec.config
    if not isinstance(source, (np.ndarray, torch.Tensor)):
        source = np.asarray(source)
    x = as_float_tensor(source, "", "a path, file object, array or tensor").detach().float().cpu().numpy()
    if x.ndim == 1:
        x = x[None]
    audio_io.check_layout(x.shape, "[C, T] (channels, samples)", "pass it transposed (x.T) or the file path")
    if x.ndim != 2:
        raise AudioError(f"expected audio of shape [T] or [C, T], got {tuple(x.shape)}")
    audio_io.check_finite(x)
    peak = float(np.abs(x).max())
    audio_io.check_peak(peak, "audio", _OVER_NORMALIZED if normalize else _OVER_ADVICE)
    x = x.astype(np.float32)
    sr_in = audio_io.check_sample_rate(sample_rate or c.sample_rate)
    x = audio_io.resample(x, sr_in, c.sample_rate)
    gain_db = None
    if normalize:
        applied, gain_db = _gains(audio_io.loudness_gain_db(x, target_db), peak)
        x = x * 10 ** (applied / 20)
    return Source(_blocks_from_array(x, int(BLOCK_SECONDS * c.sample_rate)), x.shape[0], x.shape[1], sr_in, gain_db)


def blocks_from_file(path: Any, sr_in: int, sr_out: int, channels: int, total: int, gain: float,
                     progress: Any = None, check_peaks: bool = True) -> Iterator[np.ndarray]:
    """File → resampled ``[C, n]`` blocks at the model rate, exactly ``total`` samples in all.

    ``check_peaks``: refuse (or warn about) float samples out of range as they are read (see
    :func:`audio.check_peak`); the warning comes once per file."""
    rs = audio_io.StreamResampler(sr_in, sr_out, channels)
    out, warned = 0, False
    for block in audio_io.iter_blocks(path, int(BLOCK_SECONDS * sr_in)):
        peak = float(np.abs(block).max()) if check_peaks and block.size else 0.0
        if peak > audio_io.MAX_PEAK or (peak > audio_io.FULL_SCALE and not warned):
            audio_io.check_peak(peak, f"audio in {audio_io.source_name(path)}", _OVER_ADVICE)
            warned = True
        if progress is not None:
            progress.update(block.shape[1] / sr_in)
        y = rs(block * gain if gain != 1.0 else block)
        y = y[:, : max(0, total - out)]
        out += y.shape[1]
        if y.shape[1]:
            yield y
    tail = rs(np.zeros((channels, 0), dtype=np.float32), last=True)[:, : max(0, total - out)]
    out += tail.shape[1]
    if tail.shape[1]:
        yield tail
    if out < total:
        yield np.zeros((channels, total - out), dtype=np.float32)


def _blocks_from_array(x: np.ndarray, block: int) -> Iterator[np.ndarray]:
    for i in range(0, x.shape[1], block):
        yield x[:, i:i + block]


def _gains(gain_db: float, peak: float) -> tuple[float, float]:
    """``(gain applied before coding, gain the header records)`` in dB. They differ only for input that
    peaks above full scale: the header's gain is undone on decode, and undoing all of it would bring such
    input back above full scale, where a WAV clips it; the decode stops at full scale instead."""
    over = 20 * math.log10(peak) if peak > audio_io.FULL_SCALE else 0.0
    return gain_db, gain_db + over


def _file_gain(path: Any, normalize: bool, target_db: float) -> tuple[float, float] | None:
    """Loudness normalisation of a file (read once, block by block): see :func:`_gains`; None without
    ``normalize``. Refuses (or warns about) out-of-range float samples first."""
    if not normalize:
        return None
    sq, n, peak = 0.0, 0, 0.0
    for block in audio_io.iter_blocks(path, 1 << 20):
        sq += float(np.square(block, dtype=np.float64).sum())
        n += block.size
        peak = max(peak, float(np.abs(block).max()) if block.size else 0.0)
    audio_io.check_peak(peak, f"audio in {audio_io.source_name(path)}", _OVER_NORMALIZED)
    level = 10 * math.log10(sq / n) if n and sq > 0 else float("-inf")
    if not math.isfinite(level):
        return 0.0, 0.0
    gain = max(-30.0, min(30.0, target_db - level))
    return _gains(min(gain, 20 * math.log10(0.99 / peak)) if peak > 0 else gain, peak)
