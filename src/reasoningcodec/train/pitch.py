"""F0 labels for training the harmonic decoder: a batched YIN tracker (de Cheveigné & Kawahara, 2002).

Labels only: at inference the decoder predicts F0 from its own features. Frame ``t`` of a signal is the
analysis window that ends at sample ``(t+1)·hop`` — the span of the iSTFT head's frame ``t``, whose source
samples the label drives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def yin(wav: torch.Tensor, sample_rate: int, hop: int, f0_min: float = 50.0, f0_max: float = 800.0,
        threshold: float = 0.15, voiced_max: float = 0.35, silence_db: float = -50.0
        ) -> tuple[torch.Tensor, torch.Tensor]:
    """``wav [B, T]`` → ``(f0 Hz [B, T // hop], voiced [B, T // hop] bool)``.

    The cumulative-mean-normalised difference of a window of ``sample_rate / f0_min`` samples is searched
    over lags ``sample_rate / f0_max … sample_rate / f0_min``: the first dip below ``threshold`` (else the
    global minimum), refined by a parabola. A frame is voiced when that minimum is below ``voiced_max``
    and the frame is louder than ``silence_db`` (dBFS, RMS). Unvoiced frames get F0 0."""
    b, t = wav.shape
    n = t // hop
    tau_max = int(sample_rate / f0_min)
    tau_min = max(2, int(sample_rate / f0_max))
    w = tau_max  # integration window
    span = w + tau_max
    x = F.pad(wav.float(), (span - hop, 0))  # frame t ends at sample (t+1)·hop
    frames = x.unfold(1, span, hop)[:, :n]  # [B, N, span]
    d = _difference(frames, w, tau_max)  # [B, N, tau_max + 1]
    cum = torch.cumsum(d[..., 1:], dim=-1)
    lags = torch.arange(1, tau_max + 1, device=wav.device, dtype=d.dtype)
    cmnd = torch.cat([torch.ones_like(d[..., :1]), d[..., 1:] * lags / cum.clamp(min=1e-12)], dim=-1)
    search = cmnd[..., tau_min:tau_max]
    below = search < threshold
    # first local dip below the threshold: the first lag below it, then walk down to its minimum
    first = torch.where(below.any(-1), below.float().argmax(-1), search.argmin(-1))
    tau = _descend(search, first) + tau_min
    best = cmnd.gather(-1, tau[..., None])[..., 0]
    frac = _parabola(cmnd, tau)
    f0 = sample_rate / (tau.to(d.dtype) + frac)
    rms = frames[..., -w:].pow(2).mean(-1).sqrt()
    voiced = (best < voiced_max) & (20 * torch.log10(rms + 1e-9) > silence_db)
    return torch.where(voiced, f0, torch.zeros_like(f0)), voiced


def _difference(frames: torch.Tensor, w: int, tau_max: int) -> torch.Tensor:
    """YIN difference ``d(τ) = Σ_{j<w} (x_j − x_{j+τ})²`` for τ = 0..tau_max, by FFT ``[B, N, tau_max + 1]``."""
    size = 1 << (frames.shape[-1] + w - 1).bit_length()
    head = frames[..., :w]
    spec = torch.fft.rfft(frames, size) * torch.fft.rfft(head, size).conj()
    corr = torch.fft.irfft(spec, size)[..., : tau_max + 1]  # Σ_{j<w} x_j x_{j+τ}
    sq = frames.pow(2)
    csum = F.pad(torch.cumsum(sq, -1), (1, 0))
    energy_lag = csum[..., w: w + tau_max + 1] - csum[..., : tau_max + 1]  # Σ_j x_{j+τ}²
    energy0 = csum[..., w: w + 1]
    return (energy0 + energy_lag - 2 * corr).clamp(min=0.0)


def _descend(v: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """From ``idx``, step right while the next value is lower (a few steps suffice at these lags)."""
    last = v.shape[-1] - 1
    for _ in range(64):
        nxt = (idx + 1).clamp(max=last)
        down = v.gather(-1, nxt[..., None])[..., 0] < v.gather(-1, idx[..., None])[..., 0]
        if not bool(down.any()):
            break
        idx = torch.where(down, nxt, idx)
    return idx


def _parabola(v: torch.Tensor, tau: torch.Tensor) -> torch.Tensor:
    """Sub-sample offset of the minimum at ``tau`` from a parabola through its neighbours."""
    last = v.shape[-1] - 1
    a = v.gather(-1, (tau - 1).clamp(min=0)[..., None])[..., 0]
    c = v.gather(-1, tau[..., None])[..., 0]
    e = v.gather(-1, (tau + 1).clamp(max=last)[..., None])[..., 0]
    den = a - 2 * c + e
    return torch.where(den.abs() > 1e-9, 0.5 * (a - e) / den, torch.zeros_like(den)).clamp(-0.5, 0.5)
