"""Running summaries of audio clips for :class:`uniaudio_lm.UniAudioLM` (``audio_summary``).

A clip is a run of consecutive audio positions (an ``AudioItem``: its reasoning then its reconstruction
frames, delimiters included). Every position from a clip's first frame on carries the mean and spread
over time of the frame vectors seen so far in that clip; text positions keep the last clip's summary
until the next clip starts. Frames are read causally: position ``t`` summarises frames ``<= t`` only.

Generation feeds a sentence in several calls; the running sums carry over between calls in the KV
cache's ``extra`` (key ``"clip_summary"``), so a summary never depends on how a sentence was split.
"""

from __future__ import annotations

import torch

from .layers import KVCache

_KEY = "clip_summary"
VAR_EPS = 1e-6


@torch.no_grad()
def running_sums(x: torch.Tensor, counts: torch.Tensor, audio: torch.Tensor,
                 cache: KVCache | None = None) -> torch.Tensor:
    """Per-position sums over the current (or last) clip: ``[B, T, 2F + S]`` = (Σx, Σx², frame counts).

    Args:
        x: ``[B, T, F]`` frame features (zero where a position is no frame of that feature's stream).
        counts: ``[B, T, S]`` 1 where a position is a real frame of stream ``s``, else 0.
        audio: bool ``[B, T]``: audio positions (delimiters included); a clip starts where one follows a
            non-audio position.
        cache: carries the sums and whether the last position was audio from earlier calls (updated).
    """
    b, t, _ = x.shape
    stats = torch.cat([x, x * x, counts], -1).double()       # float64: differences of long prefix sums stay exact
    carry = cache.extra.get(_KEY) if cache is not None else None
    if carry is None:
        prev_audio = torch.zeros(b, dtype=torch.bool, device=x.device)
        carried = torch.zeros(b, stats.shape[-1], device=x.device, dtype=stats.dtype)
    else:
        prev_audio, carried = carry
    if t == 0:
        return stats
    prev = torch.cat([prev_audio[:, None], audio[:, :-1]], 1)
    start = audio & ~prev
    total = stats.cumsum(1)
    before = total - stats                                   # sums of the positions before t in this call
    idx = torch.arange(t, device=x.device).expand(b, t)
    last_start = torch.where(start, idx, -1).cummax(1).values
    base = before.gather(1, last_start.clamp(min=0)[..., None].expand_as(before))
    out = torch.where((last_start >= 0)[..., None], total - base, total + carried[:, None])
    if cache is not None:
        cache.extra[_KEY] = (audio[:, -1].clone(), out[:, -1].clone())
    return out


def summary_features(sums: torch.Tensor, split: list[int]) -> torch.Tensor:
    """Mean and standard deviation (of the variance plus :data:`VAR_EPS`) per feature from :func:`running_sums` → ``[B, T, 2F]`` (zero for a stream
    with no frame yet). ``split``: the feature width of each stream, in the order of the count columns."""
    f = sum(split)
    s, q, n = sums[..., :f], sums[..., f : 2 * f], sums[..., 2 * f :]
    n = torch.cat([n[..., i : i + 1].expand(*n.shape[:-1], w) for i, w in enumerate(split)], -1)
    seen = n > 0
    n = n.clamp(min=1)
    mean = s / n
    std = ((q / n - mean * mean).clamp(min=0) + VAR_EPS).sqrt()     # eps: rounding of a zero variance stays small
    return torch.cat([mean, std * seen], -1).float()
