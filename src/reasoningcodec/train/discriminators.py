"""Multi-period (waveform) and multi-resolution (spectrogram) discriminators, kept small for CPU."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm


class PeriodDiscriminator(nn.Module):
    def __init__(self, period: int, ch: int = 32) -> None:
        super().__init__()
        self.period = period
        chans = [1, ch, ch * 2, ch * 4, ch * 4]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3, 1), padding=(2, 0))) for i in range(4)
        )
        self.post = weight_norm(nn.Conv2d(chans[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, t = x.shape
        pad = (-t) % self.period
        x = F.pad(x, (0, pad), mode="reflect")
        # The (k, 1) kernels never mix the period's columns, so each column is its own 1-D signal: fold the
        # columns into the batch and run 1-D convolutions with the same weights. Same numbers as Conv2d on
        # the [B, 1, T/p, p] view, and much cheaper on CPU. Features come back as [B, p, C, T/p].
        h = x.reshape(b, -1, self.period).transpose(1, 2).reshape(b * self.period, 1, -1)
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(_conv1d(conv, h), 0.1)
            feats.append(h.unflatten(0, (b, self.period)))
        return _conv1d(self.post, h).reshape(b, -1), feats


def _conv1d(conv: nn.Conv2d, h: torch.Tensor) -> torch.Tensor:
    """A Conv2d with a (k, 1) kernel applied along the last axis of ``h`` [N, C, T]."""
    return F.conv1d(h, conv.weight.squeeze(-1), conv.bias, conv.stride[0], conv.padding[0])


class ResolutionDiscriminator(nn.Module):
    def __init__(self, n_fft: int, hop: int, ch: int = 32) -> None:
        super().__init__()
        self.n_fft, self.hop = n_fft, hop
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        self.convs = nn.ModuleList([
            weight_norm(nn.Conv2d(1, ch, (7, 5), (2, 2), padding=(3, 2))),
            weight_norm(nn.Conv2d(ch, ch, (5, 3), (2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(ch, ch, (5, 3), (2, 1), padding=(2, 1))),
            weight_norm(nn.Conv2d(ch, ch, 3, padding=1)),
        ])
        self.post = weight_norm(nn.Conv2d(ch, 1, 3, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x, self.n_fft, self.hop, window=self.window, return_complex=True).abs()
        h = torch.log1p(spec)[:, None]  # [B, 1, F, T]
        feats = []
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.1)
            feats.append(h)
        return self.post(h).flatten(1), feats


class Discriminators(nn.Module):
    """All sub-discriminators; ``forward(x [B, T])`` → (scores, features), one entry per sub-discriminator."""

    def __init__(self, periods: tuple[int, ...] = (2, 3, 5, 7, 11),
                 resolutions: tuple[tuple[int, int], ...] = ((512, 128), (1024, 256), (2048, 512)),
                 ch: int = 32) -> None:
        super().__init__()
        self.subs = nn.ModuleList([PeriodDiscriminator(p, ch) for p in periods]
                                  + [ResolutionDiscriminator(n, h, ch) for n, h in resolutions])

    def forward(self, x: torch.Tensor) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
        scores, feats = [], []
        for d in self.subs:
            s, f = d(x)
            scores.append(s)
            feats.append(f)
        return scores, feats
