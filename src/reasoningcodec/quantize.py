"""Quantisers: the interface the codec and the training code use (:class:`BaseQuantizer`, as Moshi's),
and residual vector quantisation with factorised, L2-normalised codebooks (:class:`ResidualVQ`, as in DAC).

Each stage of the residual VQ projects the residual to a small code space, picks the nearest unit-norm
code by cosine similarity and projects back. Training uses the straight-through estimator with
commitment and codebook losses; ``n_q`` can be lowered at any time to drop the last stages (a lower
bitrate). Another quantiser (e.g. FSQ) is one more subclass of :class:`BaseQuantizer`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    """Result of :meth:`BaseQuantizer.forward`.

    Attributes:
        quantized: ``[B, T, D]`` sum of the selected stages (straight-through in training).
        codes: LongTensor ``[B, K, T]``.
        commit_loss: scalar, encoder-side commitment loss.
        codebook_loss: scalar, codebook-side loss.
        latents: in training, each codebook's input in its code space ``[B, T, d]`` (detached; unit-norm
            for :class:`ResidualVQ`), for code restarts.
    """

    quantized: torch.Tensor
    codes: torch.Tensor
    commit_loss: torch.Tensor
    codebook_loss: torch.Tensor
    latents: list[torch.Tensor] | None = None


class BaseQuantizer(nn.Module, ABC):
    """What the codec and the training code ask of a quantiser of ``[B, T, D]`` features into ``K``
    codebooks of ``N`` codes each.

    Training code (code restarts, replica sync, initialisation) goes through these methods and never
    reaches into a subclass's parameters, so a quantiser without learned codebooks (e.g. FSQ) only
    keeps the defaults of :meth:`codebooks` (none) and :meth:`is_trainable` (False).
    """

    @property
    @abstractmethod
    def num_codebooks(self) -> int:
        """``K``: the codebooks (residual stages) of a full-rate code."""

    @property
    @abstractmethod
    def cardinality(self) -> int:
        """``N``: codes per codebook."""

    @abstractmethod
    def forward(self, x: torch.Tensor, n_q: int | None = None) -> QuantizerOutput:
        """``x [B, T, D]`` → :class:`QuantizerOutput` with the first ``n_q`` (default ``K``) codebooks."""

    @abstractmethod
    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, k, T]`` (the first ``k ≤ K`` codebooks) → ``[B, T, D]``."""

    def codebooks(self) -> list[torch.Tensor]:
        """The learned code vectors of each codebook, ``[N, d]`` each, in codebook order (the parameters
        themselves: a caller may broadcast or copy into them); empty when the codes are not learned."""
        return []

    def is_trainable(self) -> bool:
        """Whether every codebook is learned and receives gradients (not frozen)."""
        books = self.codebooks()
        return bool(books) and all(b.requires_grad for b in books)

    @torch.no_grad()
    def replace_codes(self, codebook: int, idx: torch.Tensor, vectors: torch.Tensor) -> None:
        """Overwrite codes ``idx`` (indices ``[n]`` or a mask ``[N]``) of codebook ``codebook`` with
        ``vectors [n, d]`` in the code space (e.g. a dead-code restart)."""
        raise NotImplementedError(f"{type(self).__name__} has no learned codes to replace")


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


class ResidualVQ(BaseQuantizer):
    """``n_q`` residual stages, each a factorised codebook of ``codebook_size`` unit-norm codes of
    ``codebook_dim`` dimensions between projections from and to ``dim``."""

    def __init__(self, dim: int, n_q: int, codebook_size: int, codebook_dim: int) -> None:
        super().__init__()
        self.n_q = n_q
        self.codebook_size = codebook_size
        self.stages = nn.ModuleList(VQStage(dim, codebook_size, codebook_dim) for _ in range(n_q))

    @property
    def num_codebooks(self) -> int:
        return self.n_q

    @property
    def cardinality(self) -> int:
        return self.codebook_size

    def codebooks(self) -> list[torch.Tensor]:
        """Each stage's raw codebook ``[N, d]`` (normalised to unit length where it is used)."""
        return [stage.codebook for stage in self.stages]

    @torch.no_grad()
    def replace_codes(self, codebook: int, idx: torch.Tensor, vectors: torch.Tensor) -> None:
        cb = self.stages[codebook].codebook
        cb.data[idx] = vectors.to(cb.dtype)

    @torch.no_grad()
    def set_stage(self, stage: int, in_proj: tuple[torch.Tensor, torch.Tensor], codebook: torch.Tensor,
                  out_proj: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Set one stage outright (e.g. fitted by ``train.reasoning_init.fit_residual_vq``): its input
        projection ``(weight [d, D], bias [d])``, codebook ``[N, d]`` and output projection
        ``(weight [D, d], bias [D])``."""
        s = self.stages[stage]
        s.in_proj.weight.copy_(in_proj[0])
        s.in_proj.bias.copy_(in_proj[1])
        s.codebook.copy_(codebook)
        s.out_proj.weight.copy_(out_proj[0])
        s.out_proj.bias.copy_(out_proj[1])

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
