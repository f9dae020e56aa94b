"""Residual vector quantisation with factorised, L2-normalised codebooks (as in DAC).

Each stage projects the residual to a small code space, picks the nearest unit-norm code by cosine
similarity and projects back. Training uses the straight-through estimator with commitment and
codebook losses; ``n_q`` can be lowered at any time to drop the last stages (a lower bitrate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    """Result of :meth:`ResidualVQ.forward`.

    Attributes:
        quantized: ``[B, T, D]`` sum of the selected stages (straight-through in training).
        codes: LongTensor ``[B, K, T]``.
        commit_loss: scalar, encoder-side commitment loss.
        codebook_loss: scalar, codebook-side loss.
        latents: in training, each stage's unit-norm input ``[B, T, d]`` (detached), for code restarts.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commit_loss: torch.Tensor
    codebook_loss: torch.Tensor
    latents: list[torch.Tensor] | None = None


class VQStage(nn.Module):
    def __init__(self, dim: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.in_proj = nn.Linear(dim, codebook_dim)
        self.out_proj = nn.Linear(codebook_dim, dim)
        self.codebook = nn.Parameter(torch.randn(codebook_size, codebook_dim))

    def normalized_codebook(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, T, D]`` → ``(codes [B, T], z_e [B, T, d])``."""
        z = self.in_proj(x)
        zn = F.normalize(z, dim=-1)
        cb = self.normalized_codebook().to(z.dtype)
        # nearest by cosine similarity == nearest by euclidean distance of unit vectors
        sim = zn @ cb.T
        return sim.argmax(dim=-1), z

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, T]`` → ``[B, T, D]``."""
        return self.out_proj(F.embedding(codes, self.normalized_codebook()))


class ResidualVQ(nn.Module):
    def __init__(self, dim: int, n_q: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.n_q = n_q
        self.codebook_size = codebook_size
        self.stages = nn.ModuleList(VQStage(dim, codebook_size, codebook_dim) for _ in range(n_q))

    def forward(self, x: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
        """``x [B, T, D]`` → quantised ``[B, T, D]`` and codes ``[B, n_q, T]``. Under autocast the
        quantiser still runs in float32: nearest-code search in bfloat16 would pick wrong codes."""
        if torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self.forward(x.float(), n_q)
        n_q = self.n_q if n_q is None else n_q
        residual = x
        quantized = torch.zeros_like(x)
        codes = []
        commit = x.new_zeros(())
        cb_loss = x.new_zeros(())
        latents: list[torch.Tensor] = []
        for stage in self.stages[:n_q]:
            idx, z_e = stage.encode(residual)
            codes.append(idx)
            if self.training:
                z_q = F.embedding(idx, stage.normalized_codebook())
                zn = F.normalize(z_e, dim=-1)
                latents.append(zn.detach())
                commit = commit + F.mse_loss(zn, z_q.detach())
                cb_loss = cb_loss + F.mse_loss(z_q, zn.detach())
                z_q = zn + (z_q - zn).detach()
                out = stage.out_proj(z_q)
            else:
                out = stage.decode(idx)
            quantized = quantized + out
            residual = residual - out.detach() if self.training else residual - out
        codes_t = torch.stack(codes, dim=1) if codes else x.new_zeros(x.shape[0], 0, x.shape[1], dtype=torch.long)
        return QuantizerOutput(quantized, codes_t, commit, cb_loss, latents if self.training else None)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, K, T]`` (K ≤ n_q, first stages) → ``[B, T, D]``."""
        k = codes.shape[1]
        if k > self.n_q:
            raise ValueError(f"got {k} codebooks, the quantizer has {self.n_q}")
        out = None
        for i in range(k):
            d = self.stages[i].decode(codes[:, i])
            out = d if out is None else out + d
        assert out is not None
        return out
