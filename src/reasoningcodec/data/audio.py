"""Audio helpers for the corpus builder: decode, resample, segment, clean, write.

Everything works on float32 mono numpy arrays at :data:`TARGET_SR` once decoded.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import soundfile as sf
import soxr

TARGET_SR = 24_000
MIN_CLIP_S = 1.0
MAX_CLIP_S = 12.0
SEGMENT_S = 10.0
SILENCE_DBFS = -50.0
"""A segment whose loudest 50 ms frame is below this level counts as silence."""


def decode(path: Path | str) -> Tuple[np.ndarray, int]:
    """Decode an audio file to a float32 mono array and its sample rate.

    Uses libsndfile (WAV/FLAC/Ogg Vorbis/Opus); raw ``.g722`` telephone prompts are
    decoded with the ``ffmpeg`` command at 16 kHz.
    """
    path = Path(path)
    if path.suffix.lower() == ".g722":
        return _decode_ffmpeg(path, fmt="g722", sr=16_000)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError):
        return _decode_ffmpeg(path, fmt=None, sr=None)
    return to_mono(data), int(sr)


def _decode_ffmpeg(path: Path, fmt: Optional[str], sr: Optional[int]) -> Tuple[np.ndarray, int]:
    """Decode with the ffmpeg command line tool to mono float32 (48 kHz unless ``sr``)."""
    out_sr = sr or 48_000
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    if fmt:
        cmd += ["-f", fmt]
    cmd += ["-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(out_sr), "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(raw, dtype="<f4").astype(np.float32), out_sr


def to_mono(data: np.ndarray) -> np.ndarray:
    """Average channels of a ``(frames, channels)`` or 1-D array to float32 mono."""
    if data.ndim == 2:
        data = data.mean(axis=1)
    return np.ascontiguousarray(data, dtype=np.float32)


def resample(x: np.ndarray, sr: int, target_sr: int = TARGET_SR) -> np.ndarray:
    """Resample mono float32 audio to ``target_sr`` with soxr (high quality)."""
    if sr == target_sr or x.size == 0:
        return x.astype(np.float32, copy=False)
    return soxr.resample(x, sr, target_sr, quality="HQ").astype(np.float32)


def frame_dbfs(x: np.ndarray, sr: int = TARGET_SR, frame_s: float = 0.05) -> np.ndarray:
    """RMS level in dBFS of consecutive non-overlapping frames."""
    n = max(1, int(sr * frame_s))
    k = max(1, x.size // n)
    frames = x[: k * n].reshape(k, n) if x.size >= n else x.reshape(1, -1)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    return 20.0 * np.log10(rms)


def is_silent(x: np.ndarray, sr: int = TARGET_SR, threshold_dbfs: float = SILENCE_DBFS) -> bool:
    """True when no 50 ms frame of ``x`` reaches ``threshold_dbfs``."""
    if x.size == 0:
        return True
    return bool(frame_dbfs(x, sr).max() < threshold_dbfs)


def trim_silence(x: np.ndarray, sr: int = TARGET_SR, threshold_dbfs: float = -45.0,
                 keep_s: float = 0.1) -> np.ndarray:
    """Cut leading/trailing silence, keeping ``keep_s`` seconds of margin."""
    frame = int(sr * 0.02)
    if x.size < 2 * frame:
        return x
    db = frame_dbfs(x, sr, 0.02)
    loud = np.nonzero(db >= threshold_dbfs)[0]
    if loud.size == 0:
        return x
    start = max(0, loud[0] * frame - int(keep_s * sr))
    end = min(x.size, (loud[-1] + 1) * frame + int(keep_s * sr))
    return x[start:end]


def segment(x: np.ndarray, sr: int = TARGET_SR, seg_s: float = SEGMENT_S,
            max_s: float = MAX_CLIP_S, min_s: float = MIN_CLIP_S) -> List[np.ndarray]:
    """Split audio into clips of ``min_s``..``max_s`` seconds.

    Audio no longer than ``max_s`` is one clip; shorter than ``min_s`` it is padded
    symmetrically with silence to ``min_s``. Longer audio is cut into ``seg_s``
    pieces; a remainder under ``min_s`` is appended to the previous piece.
    """
    n = x.size
    if n <= int(max_s * sr):
        return [pad_to(x, int(round(min_s * sr)))]
    step = int(seg_s * sr)
    bounds = list(range(0, n, step))
    pieces = [x[b:b + step] for b in bounds]
    if len(pieces) > 1 and pieces[-1].size < int(min_s * sr):
        pieces[-2] = np.concatenate([pieces[-2], pieces[-1]])
        pieces.pop()
    return [pad_to(p, int(round(min_s * sr))) for p in pieces]


def pad_to(x: np.ndarray, n: int) -> np.ndarray:
    """Zero-pad ``x`` symmetrically to at least ``n`` samples."""
    if x.size >= n:
        return x
    extra = n - x.size
    left = extra // 2
    return np.pad(x, (left, extra - left)).astype(np.float32)


def gentle_normalise(x: np.ndarray, clip_level: float = 0.999, target: float = 0.95) -> np.ndarray:
    """Scale down to peak ``target`` only when the peak reaches ``clip_level``."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak >= clip_level:
        x = x * (target / peak)
    return x.astype(np.float32, copy=False)


def write_flac(path: Path, x: np.ndarray, sr: int = TARGET_SR) -> None:
    """Write 16-bit mono FLAC atomically (temporary file then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.flac")
    sf.write(str(tmp), np.clip(x, -1.0, 1.0), sr, format="FLAC", subtype="PCM_16")
    os.replace(tmp, path)


def prepare_clips(x: np.ndarray, sr: int, trim: bool = True,
                  seg_s: float = SEGMENT_S) -> List[np.ndarray]:
    """Full pipeline: resample to 24 kHz, trim, segment, drop silent, normalise."""
    y = resample(x, sr)
    if trim:
        y = trim_silence(y)
    out = []
    for piece in segment(y, seg_s=seg_s):
        if is_silent(piece):
            continue
        out.append(gentle_normalise(piece))
    return out
