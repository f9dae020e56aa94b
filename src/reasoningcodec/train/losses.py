"""Reconstruction and adversarial losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..features import mel_filterbank


class MultiResolutionMelLoss(nn.Module):
    """L1 distance of log-mel spectrograms at several STFT resolutions (mean over resolutions)."""

    def __init__(self, sample_rate: int,
                 resolutions: tuple[tuple[int, int, int], ...] = ((512, 128, 64), (1024, 256, 100), (2048, 512, 128))
                 ) -> None:
        super().__init__()
        self.resolutions = resolutions
        for i, (n_fft, _, n_mels) in enumerate(resolutions):
            self.register_buffer(f"fb{i}", mel_filterbank(n_fft, sample_rate, n_mels, 0.0, sample_rate / 2),
                                 persistent=False)
            self.register_buffer(f"win{i}", torch.hann_window(n_fft), persistent=False)

    def log_mel(self, x: torch.Tensor, i: int) -> torch.Tensor:
        n_fft, hop, _ = self.resolutions[i]
        spec = torch.stft(x, n_fft, hop, window=getattr(self, f"win{i}"), return_complex=True).abs()
        return torch.log(torch.clamp(spec.transpose(1, 2) @ getattr(self, f"fb{i}"), min=1e-5))

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``y_hat, y [B, T]`` → scalar."""
        loss = y.new_zeros(())
        for i in range(len(self.resolutions)):
            loss = loss + F.l1_loss(self.log_mel(y_hat, i), self.log_mel(y, i))
        return loss / len(self.resolutions)


class MultiResolutionSTFTLoss(nn.Module):
    """L1 distance of log-magnitude linear-frequency spectrograms at several STFT resolutions, over the
    bins up to ``max_hz`` (mean over resolutions).

    The mel losses above pool the harmonics of a voice together above about 1.5 kHz; a 2048-point
    spectrum (11.7 Hz bins at 24 kHz) keeps them apart, so this term asks the decoder for the harmonic
    fine structure directly.
    """

    def __init__(self, sample_rate: int, resolutions: tuple[tuple[int, int], ...] = ((1024, 256), (2048, 512)),
                 max_hz: float = 8000.0) -> None:
        super().__init__()
        self.resolutions = resolutions
        self.bins = [min(n_fft // 2 + 1, int(max_hz / sample_rate * n_fft) + 1) for n_fft, _ in resolutions]
        for i, (n_fft, _) in enumerate(resolutions):
            self.register_buffer(f"win{i}", torch.hann_window(n_fft), persistent=False)

    def log_mag(self, x: torch.Tensor, i: int) -> torch.Tensor:
        n_fft, hop = self.resolutions[i]
        spec = torch.stft(x, n_fft, hop, window=getattr(self, f"win{i}"), return_complex=True)[:, : self.bins[i]]
        return torch.log(torch.clamp(spec.abs(), min=1e-5))

    def forward(self, y_hat: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``y_hat, y [B, T]`` → scalar."""
        loss = y.new_zeros(())
        for i in range(len(self.resolutions)):
            loss = loss + F.l1_loss(self.log_mag(y_hat, i), self.log_mag(y, i))
        return loss / len(self.resolutions)


def discriminator_loss(real: list[torch.Tensor], fake: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN loss for the discriminator."""
    loss = real[0].new_zeros(())
    for r, f in zip(real, fake):
        loss = loss + torch.mean((1 - r) ** 2) + torch.mean(f**2)
    return loss / len(real)


def generator_loss(fake: list[torch.Tensor]) -> torch.Tensor:
    loss = fake[0].new_zeros(())
    for f in fake:
        loss = loss + torch.mean((1 - f) ** 2)
    return loss / len(fake)


def feature_matching_loss(real_feats: list[list[torch.Tensor]], fake_feats: list[list[torch.Tensor]]) -> torch.Tensor:
    loss = real_feats[0][0].new_zeros(())
    n = 0
    for rs, fs in zip(real_feats, fake_feats):
        for r, f in zip(rs, fs):
            loss = loss + F.l1_loss(f, r.detach()) / (r.detach().abs().mean() + 1e-5)
            n += 1
    return loss / max(n, 1)
