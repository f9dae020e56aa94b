"""Harmonic source prior for the iSTFT decoder (neural source-filter / DDSP family).

The decoder predicts, for every STFT frame (``hop_length`` samples), a fundamental frequency and a
voicing decision from its own features (:class:`F0Head`), so the token layout and the bitstream stay as
they are. A band-limited harmonic comb at that F0 (:class:`HarmonicSource`) is rendered sample by
sample with a phase that runs on across frames, analysed with the iSTFT head's own framing and window,
and added to the head's spectrum through a per-bin complex gain that the decoder predicts
(``ReasoningCodec.harm_gain``, zero-initialised: a model grown by this part decodes exactly like the
model it grew from until trained). The comb gives the head what it lacks — partials whose phases are
coherent from frame to frame — and the gain shapes them (the filter).

Exactness: the phase is an integer accumulator (``2**32`` units per cycle) advanced by an integer
increment per sample, so the source of a signal decoded piece by piece equals that of one decode, and
each batch item's source depends on that item alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

PHASE_UNITS = 2**32
"""Integer phase units per cycle."""


@dataclass
class SourceState:
    """What the source carries between pieces of a signal: the phase at the next sample ``[B]`` (int64),
    the last ``n_fft − hop`` source samples ``[B, n_fft − hop]`` (the head's frames reach back) and the
    global index of the next frame (phase resets fall on multiples of ``reset_frames``)."""

    phase: torch.Tensor
    history: torch.Tensor
    frame: int = 0


def quantize_f0(f0: torch.Tensor, steps_per_octave: int = 12_000) -> torch.Tensor:
    """F0 on a grid of 0.1 cent (``f0 ≤ 0`` stays 0): F0s that differ by float rounding alone (a batch
    decoded whole or in pieces) then render the same source, except in the rare case of a grid edge."""
    grid = torch.exp2(torch.round(torch.log2(f0.clamp(min=1e-3)) * steps_per_octave) / steps_per_octave)
    return torch.where(f0 > 0, grid, torch.zeros_like(f0))


class F0Head(nn.Module):
    """Decoder features ``[B, N, D]`` → per STFT frame F0 in Hz ``[B, N·per]`` and voicing logits ``[B, N·per]``.

    F0 lies in ``[f0_min, f0_max]`` on a log scale (a sigmoid of the first output)."""

    def __init__(self, dim: int, per: int, f0_min: float, f0_max: float) -> None:
        super().__init__()
        self.per, self.f0_min, self.f0_max = per, f0_min, f0_max
        self.proj = nn.Linear(dim, 2 * per)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        a, v = self.proj(x).float().reshape(b, n * self.per, 2).unbind(-1)
        return self.log2_f0(a).exp2(), v

    def log2_f0(self, a: torch.Tensor) -> torch.Tensor:
        """The head's first output → log2 F0 (for losses in octaves)."""
        lo, hi = math.log2(self.f0_min), math.log2(self.f0_max)
        return lo + (hi - lo) * torch.sigmoid(a)

    def log2_f0_and_voicing(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training view: ``(log2 F0 [B, F], voicing logits [B, F])``."""
        b, n, _ = x.shape
        a, v = self.proj(x).float().reshape(b, n * self.per, 2).unbind(-1)
        return self.log2_f0(a), v


class HarmonicSource(nn.Module):
    """F0 per STFT frame → harmonic comb samples → their spectra at the iSTFT head's framing.

    Frame ``t`` of the head covers samples ``[(t+1)·hop − n_fft, (t+1)·hop)``; the source samples of
    ``[t·hop, (t+1)·hop)`` are rendered at frame ``t``'s F0. The comb holds every harmonic of F0 below
    ``max_hz``, each with amplitude ``amplitude`` (a fixed scale; the decoder's gain sets the level).

    Bounded memory: at every global frame index that is a multiple of ``reset_frames`` the source
    restarts (phase 0, no earlier samples in the frames that follow), so the source from any frame on is
    fixed by the F0 of the frames since the latest restart. A decode that starts mid-signal (seeking)
    therefore matches a whole decode once it has run through one restart."""

    def __init__(self, sample_rate: int, n_fft: int, hop: int, max_hz: float, reset_frames: int = 512,
                 amplitude: float = 0.02) -> None:
        super().__init__()
        self.sample_rate, self.n_fft, self.hop = sample_rate, n_fft, hop
        self.max_hz, self.reset_frames, self.amplitude = max_hz, reset_frames, amplitude
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)

    def initial_state(self, batch: int, device: torch.device, frame: int = 0) -> SourceState:
        """The state at the start of a signal (``frame=0``) or of a decode that starts at global ``frame``."""
        return SourceState(torch.zeros(batch, dtype=torch.long, device=device),
                           torch.zeros(batch, self.n_fft - self.hop, device=device), frame)

    def _restarts(self, frame0: int, f: int, device: torch.device) -> torch.Tensor:
        """For each of ``f`` frames from global ``frame0``: the piece index of the latest restart at or
        before it (−1: none in this piece) ``[F]``."""
        pos = torch.arange(f, device=device)
        reset = (frame0 + pos) % self.reset_frames == 0
        return torch.cummax(torch.where(reset, pos, torch.full_like(pos, -1)), dim=0).values

    def samples(self, f0: torch.Tensor, phase: torch.Tensor, frame0: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """``f0 [B, F]`` Hz (≤ 0: unvoiced), ``phase [B]`` at global frame ``frame0`` →
        ``(samples [B, F·hop] float32, phase after the last frame [B])``."""
        b, f = f0.shape
        if f == 0:
            return f0.new_zeros(b, 0), phase
        f0 = quantize_f0(f0.detach().double().clamp(min=0.0))
        inc = torch.round(f0 * (PHASE_UNITS / self.sample_rate)).long()  # phase units per sample [B, F]
        per_frame = inc * self.hop
        incl = torch.cumsum(per_frame, dim=1)  # exact: integer sums do not depend on the order
        excl = incl - per_frame
        last = self._restarts(frame0, f, f0.device)
        base = torch.where(last >= 0, excl[:, last.clamp(min=0)], -phase[:, None])
        starts = (excl - base) % PHASE_UNITS
        n = torch.arange(self.hop, device=f0.device)
        units = (starts[..., None] + inc[..., None] * n) % PHASE_UNITS  # [B, F, hop]
        theta = units.double() * (2 * math.pi / PHASE_UNITS)
        k = torch.where(f0 > 0, torch.floor(self.max_hz / f0.clamp(min=1.0)), torch.zeros_like(f0))[..., None]
        half = torch.sin(0.5 * theta)
        near = half.abs() < 1e-6
        # Σ_{m=1..K} cos(mθ) = (sin((K + ½)θ) − sin(θ/2)) / (2 sin(θ/2)); → K where sin(θ/2) → 0
        comb = torch.where(near, k.expand_as(theta),
                           (torch.sin((k + 0.5) * theta) - half) / (2 * torch.where(near, torch.ones_like(half), half)))
        nxt = (incl[:, -1] - base[:, -1]) % PHASE_UNITS
        return (self.amplitude * comb).reshape(b, f * self.hop).float(), nxt

    def forward(self, f0: torch.Tensor, state: SourceState | None = None) -> tuple[torch.Tensor, SourceState]:
        """``f0 [B, F]`` → ``(spectra [B, F, n_fft//2 + 1] complex64, state)``: each head frame's Hann-windowed
        source samples, transformed (``irfft`` of it and the head's synthesis window give the source back)."""
        b, f = f0.shape
        st = state or self.initial_state(b, f0.device)
        src, phase = self.samples(f0, st.phase, st.frame)
        keep = self.n_fft - self.hop
        full = torch.cat([st.history.to(src.dtype), src], dim=1)  # piece sample i is at full[keep + i]
        frames = full.unfold(1, self.n_fft, self.hop)  # [B, F, n_fft]
        history = full[:, full.shape[1] - keep:]
        if f:
            last = self._restarts(st.frame, f, f0.device)
            if bool((last >= 0).any()):
                # frames after a restart see no sample from before it
                since = torch.arange(f, device=f0.device) - last
                cut = torch.where(last >= 0, keep - since * self.hop, torch.full_like(since, -1))
                frames = frames * (torch.arange(self.n_fft, device=f0.device)[None] >= cut[:, None])
                if int(last[-1]) >= 0:  # and neither does any later frame
                    first = int(last[-1]) * self.hop + keep - (full.shape[1] - keep)  # restart, in history
                    history = history * (torch.arange(keep, device=f0.device) >= first)
        spec = torch.fft.rfft(frames * self.window, dim=-1)
        return spec, SourceState(phase, history, st.frame + f)
