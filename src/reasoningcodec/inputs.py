"""Validation and conversion of user audio input for :meth:`ReasoningCodec.encode`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from . import audio as audio_io
from .errors import AudioError


def prepare_audio(wav: Any, model_rate: int, device: torch.device, sample_rate: int | None = None,
                  lengths: Any = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate and convert input to ``([B, T] float on the model device, lengths [B])``.

    Accepts a path, a numpy array or a tensor of shape ``[T]``, ``[B, T]`` or ``[B, C, T]``
    (channels are averaged: the model is mono), or a list of clips (arrays or tensors ``[T]`` or
    ``[C, T]``) of any lengths, which become a zero-padded batch with their ``lengths``.
    ``sample_rate`` resamples to the model rate. Integer PCM is scaled to [-1, 1) (unsigned centred, as
    WAV's 8-bit: ``(x − 128) / 128``). A ``[T, C]`` array (≤ 8 columns, ≥ 1000 rows) is refused, float
    audio peaking above 1000 too; above 1.0 it warns (see :mod:`reasoningcodec.audio`).
    """
    if isinstance(wav, (list, tuple)):
        if lengths is not None:
            raise AudioError("lengths cannot be given with a list of clips: each clip's length is its own")
        wav, lengths = _pad_clips(wav)
    if isinstance(wav, (str, bytes)) or hasattr(wav, "__fspath__"):
        if isinstance(wav, bytes):
            raise AudioError("expected a path, array or tensor, got bytes (use reasoningcodec.decompress)")
        data, sr = audio_io.load(wav)
        if sample_rate is not None and int(sample_rate) != sr:
            raise AudioError(f"sample_rate={sample_rate} given but {wav} is at {sr} Hz")
        wav, sample_rate = data[None], sr
    wav = as_float_tensor(wav, "", "a path, numpy array or torch tensor")
    audio_io.check_layout(tuple(wav.shape), "[B, T] (items, samples)", "pass x.T to encode each channel as an "
                          "item, x.T[None] ([1, C, T]) to mix the channels, or the file path")
    audio_io.check_layout(tuple(wav.shape[1:]), "[B, C, T]", "pass x.transpose(1, 2) (numpy: x.transpose(0, 2, 1))")
    if wav.dim() == 1:
        wav = wav[None]
    elif wav.dim() == 3:
        if wav.shape[1] == 0:
            raise AudioError("audio has 0 channels")
        wav = wav.mean(dim=1)
    elif wav.dim() != 2:
        raise AudioError(f"audio must have shape [T], [B, T] or [B, C, T]; got {wav.dim()}-D shape "
                         f"{tuple(wav.shape)}")
    if wav.shape[0] == 0 or wav.shape[1] == 0:
        raise AudioError(f"audio is empty (shape {tuple(wav.shape)})")
    wav = wav.float()
    if lengths is None:
        lens = torch.full((wav.shape[0],), wav.shape[1], dtype=torch.long)
    else:
        lens = torch.as_tensor(lengths, dtype=torch.long).reshape(-1).cpu()
        if lens.numel() != wav.shape[0]:
            raise AudioError(f"lengths has {lens.numel()} entries for a batch of {wav.shape[0]}")
        if bool((lens < 1).any()) or bool((lens > wav.shape[1]).any()):
            raise AudioError(f"lengths must be in 1..{wav.shape[1]}, got {lens.tolist()}")
    mask = torch.arange(wav.shape[1])[None] < lens[:, None]
    wav = torch.where(mask.to(wav.device), wav, torch.zeros((), device=wav.device))
    audio_io.check_finite(wav)
    audio_io.check_peak(float(wav.abs().max()))
    if sample_rate is not None:
        sr = audio_io.check_sample_rate(sample_rate)
        if sr != model_rate:
            res = audio_io.resample(wav.detach().cpu().numpy(), sr, model_rate)
            lens = torch.tensor([audio_io.resampled_length(int(n), sr, model_rate) for n in lens.tolist()])
            lens = torch.clamp(lens, min=1, max=res.shape[-1])
            wav = torch.from_numpy(res)
            mask = torch.arange(wav.shape[1])[None] < lens[:, None]
            wav = torch.where(mask, wav, torch.zeros(()))
    return wav.to(device), lens


_TORCH_PCM = {torch.uint8: (128.0, 128.0), torch.int16: (0.0, 32768.0), torch.int32: (0.0, 2147483648.0)}


def as_float_tensor(x: Any, prefix: str = "", expected: str = "a numpy array or torch tensor") -> torch.Tensor:
    """A numeric array or tensor → float tensor, integer PCM scaled to [-1, 1): signed ``x / 2^(bits−1)``,
    unsigned centred first, ``(x − 2^(bits−1)) / 2^(bits−1)`` (8-bit WAV's convention: 128 is silence).
    ``prefix`` starts each error message, ``expected`` names what was accepted."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind not in "fiu":
            raise AudioError(f"{prefix}audio array must be numeric, got dtype {x.dtype}")
        if x.dtype.kind in "iu":
            half = float(np.iinfo(x.dtype).max // 2 + 1) if x.dtype.kind == "u" else float(np.iinfo(x.dtype).max + 1)
            x = (x.astype(np.float64) - (half if x.dtype.kind == "u" else 0.0)) / half
        x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not isinstance(x, torch.Tensor):
        raise AudioError(f"{prefix}expected {expected}, got {type(x).__name__}")
    if not (x.is_floating_point() or x.dtype in _TORCH_PCM):
        raise AudioError(f"{prefix}audio tensor must be floating point, uint8, int16 or int32, got {x.dtype}")
    if not x.is_floating_point():
        offset, scale = _TORCH_PCM[x.dtype]
        x = (x.double() - offset).div(scale).float()
    return x


def _pad_clips(clips: list | tuple) -> tuple[torch.Tensor, list[int]]:
    """A list of mono ``[T]`` or multi-channel ``[C, T]`` clips → ``([B, T_max], lengths)``."""
    if not clips:
        raise AudioError("the list of clips is empty")
    mono = []
    for i, c in enumerate(clips):
        c = as_float_tensor(c, f"clip {i}: ", "a numpy array or torch tensor")
        audio_io.check_layout(tuple(c.shape), f"[C, T] for clip {i}", "pass it transposed (x.T) or the file path")
        if c.dim() == 2:
            if c.shape[0] == 0:
                raise AudioError(f"clip {i} has 0 channels")
            c = c.float().mean(dim=0)
        elif c.dim() != 1:
            raise AudioError(f"clip {i} must have shape [T] or [C, T]; got shape {tuple(c.shape)}")
        if c.shape[0] == 0:
            raise AudioError(f"clip {i} is empty")
        mono.append(c.float().cpu())
    lengths = [int(c.shape[0]) for c in mono]
    out = torch.zeros(len(mono), max(lengths))
    for i, c in enumerate(mono):
        out[i, : lengths[i]] = c
    return out, lengths
