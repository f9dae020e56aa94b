"""Causal log-mel analysis and the iSTFT synthesis used by the decoder.

Analysis frame ``i`` covers samples ``[(i+1)·hop − n_fft, (i+1)·hop)``: it is complete as soon as
sample ``(i+1)·hop − 1`` has arrived. Synthesis frame ``t`` is overlap-added over the same span.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def mel_filterbank(n_fft: int, sample_rate: int, n_mels: int, f_min: float, f_max: float) -> torch.Tensor:
    """Slaney-style triangular mel filters, ``[n_fft // 2 + 1, n_mels]``, area-normalised."""

    def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
        f = torch.as_tensor(f, dtype=torch.float64)
        lin = f / (200.0 / 3)
        log = 15.0 + torch.log(torch.clamp(f, min=1e-9) / 1000.0) / (math.log(6.4) / 27.0)
        return torch.where(f >= 1000.0, log, lin)

    def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
        lin = m * (200.0 / 3)
        log = 1000.0 * torch.exp((m - 15.0) * (math.log(6.4) / 27.0))
        return torch.where(m >= 15.0, log, lin)

    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    m = torch.linspace(hz_to_mel(torch.tensor(f_min)).item(), hz_to_mel(torch.tensor(f_max)).item(), n_mels + 2,
                       dtype=torch.float64)
    hz = mel_to_hz(m)
    lower, center, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    up = (freqs[None] - lower) / (center - lower)
    down = (upper - freqs[None]) / (upper - center)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    fb = fb * (2.0 / (upper - lower))
    return fb.T.float().contiguous()


class CausalLogMel(nn.Module):
    """Waveform ``[B, T]`` (T a multiple of hop) → log-mel frames ``[B, T / hop, n_mels]``.

    State: the last ``n_fft − hop`` samples ``[B, n_fft − hop]``.
    """

    def __init__(self, sample_rate: int, n_fft: int, hop: int, n_mels: int, f_max: float) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft, periodic=True), persistent=False)
        self.register_buffer("fb", mel_filterbank(n_fft, sample_rate, n_mels, 0.0, f_max), persistent=False)

    def forward(self, wav: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = wav.shape
        keep = self.n_fft - self.hop
        if state is None:
            state = wav.new_zeros(b, keep)
        full = torch.cat([state, wav], dim=1)
        new_state = full[:, full.shape[1] - keep:]
        if t == 0:
            return wav.new_zeros(b, 0, self.fb.shape[1]), new_state
        frames = full.unfold(1, self.n_fft, self.hop)  # [B, F, n_fft]
        spec = torch.fft.rfft(frames * self.window.to(wav.dtype), dim=-1).abs()
        return self.compress(spec), new_state

    def compress(self, spec: torch.Tensor) -> torch.Tensor:
        """Magnitude spectrum ``[B, F, n_fft / 2 + 1]`` → log-mel ``[B, F, n_mels]``."""
        return torch.log(torch.clamp(spec @ self.fb.to(spec.dtype), min=1e-5))


class WhisperLogMel(CausalLogMel):
    """Whisper-style log-mel on the codec's causal frame grid: ``[B, T]`` → ``[B, T / hop, n_mels]``.

    25 ms Hann window, power spectrum, ``n_mels`` Slaney mel bands over 0–8 kHz, ``log10``, then
    Whisper's ``(x + 4) / 4`` scaling. The power is scaled as if the window had Whisper's 400 samples,
    so at 24 kHz (600-sample window, 40 Hz bins like Whisper's 400 at 16 kHz) the bands match Whisper's.
    Whisper floors each input at its own maximum − 8, which needs the whole signal; this floors at a
    fixed ``log10`` value instead (−6: within 1 dB of the per-clip floor for speech peaking near −6 dBFS).
    Frame ``i`` covers samples ``[(i+1)·hop − win, (i+1)·hop)``; state: the last ``win − hop`` samples.
    """

    def __init__(self, sample_rate: int, hop: int, n_mels: int = 80, floor: float = -6.0) -> None:
        win = int(round(0.025 * sample_rate))
        super().__init__(sample_rate, win, hop, n_mels, min(8000.0, sample_rate / 2))
        self.floor, self.scale = floor, (400.0 / win) ** 2

    def compress(self, spec: torch.Tensor) -> torch.Tensor:
        power = spec.pow(2) * self.scale
        mel = torch.log10(torch.clamp(power @ self.fb.to(spec.dtype), min=1e-10)).clamp(min=self.floor)
        return (mel + 4.0) / 4.0


class ISTFTHead(nn.Module):
    """Features ``[B, N, D]`` → waveform by inverse STFT with causal frame placement.

    Each feature step yields ``frames_per_step`` STFT frames (F = N · frames_per_step).

    Frame ``t`` covers samples ``[(t+1)·hop − n_fft, (t+1)·hop)``. The output for samples below
    ``(F − overlap_frames)·hop`` is final; the rest is returned as the overlap state and completed by
    later frames (or flushed as is at the end of the signal). Windows are normalised by the constant
    sum of squared Hann windows (the COLA constant), not a per-sample envelope, so flushing is exact.
    """

    def __init__(self, dim: int, n_fft: int, hop: int, frames_per_step: int = 1) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.n_bins = n_fft // 2 + 1
        self.per = frames_per_step
        self.proj = nn.Linear(dim, 2 * self.n_bins * frames_per_step)
        window = torch.hann_window(n_fft, periodic=True)
        self.register_buffer("window", window, persistent=False)
        self.cola = float((window**2).sum() / hop)

    @property
    def overlap(self) -> int:
        """Samples of a frame that extend into the future of the frame's end boundary's past."""
        return self.n_fft - self.hop

    def frames(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """Windowed time-domain frames ``[B, F, n_fft]``; ``extra [B, F, n_bins]`` (complex), scaled by the
        predicted magnitude, is added to the predicted spectrum (e.g. a shaped harmonic source: it can add
        partials only where the head already puts energy, so it cannot fill silence)."""
        b, n, _ = x.shape
        mag, ph = self.proj(x).float().reshape(b, n * self.per, 2 * self.n_bins).chunk(2, dim=-1)
        mag = torch.exp(torch.clamp(mag, max=6.0))
        spec = torch.polar(mag, ph)
        if extra is not None:
            spec = spec + mag * extra
        return torch.fft.irfft(spec, n=self.n_fft, dim=-1) * self.window / self.cola

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None, extra: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns ``(final samples [B, F·hop], overlap state [B, n_fft − hop])``.

        The first ``n_fft − hop`` output samples of a signal lie before time 0; the caller drops them
        (``state is None`` marks the start and they are dropped here).
        """
        keep = self.overlap
        frames = self.frames(x, extra)
        b, f, _ = frames.shape
        start = state is None
        if state is None:
            state = frames.new_zeros(b, keep)
        total = f * self.hop + keep
        out = torch.nn.functional.fold(
            frames.transpose(1, 2), output_size=(1, total), kernel_size=(1, self.n_fft), stride=(1, self.hop)
        ).reshape(b, total)
        out = torch.cat([out[:, :keep] + state, out[:, keep:]], dim=1)
        final, new_state = out[:, : f * self.hop], out[:, f * self.hop:]
        if start:
            final = final[:, keep:]  # samples before time 0
        return final, new_state
