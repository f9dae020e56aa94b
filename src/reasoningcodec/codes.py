"""The token container returned by :meth:`ReasoningCodec.encode`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch


@dataclass
class Codes:
    """Reasoning and reconstruction tokens for a batch of B items.

    Attributes:
        reasoning: LongTensor ``[B, Kr, Tr]``, 5 Hz reasoning tokens.
        recon: LongTensor ``[B, Kq, Tq]``, 12.5 Hz reconstruction tokens (``Kq`` may be fewer than the
            model's codebooks: the first ``Kq`` residual stages are kept).
        lengths: LongTensor ``[B]``, the original length of each item in samples at the model rate.
            Frames past an item's length are padding.
    """

    reasoning: torch.Tensor
    recon: torch.Tensor
    lengths: torch.Tensor

    def __iter__(self) -> Iterator[torch.Tensor]:
        # ``reasoning, recon = codes``
        yield self.reasoning
        yield self.recon

    @property
    def batch_size(self) -> int:
        """``B``, the number of items."""
        return int(self.recon.shape[0])

    def to(self, device: torch.device | str) -> "Codes":
        """The same codes with every tensor on ``device``."""
        return Codes(self.reasoning.to(device), self.recon.to(device), self.lengths.to(device))

    def cpu(self) -> "Codes":
        """The same codes on the CPU (``to("cpu")``)."""
        return self.to("cpu")

    def with_recon_codebooks(self, n: int) -> "Codes":
        """Keep only the first ``n`` reconstruction codebooks (a lower bitrate)."""
        if not 1 <= n <= self.recon.shape[1]:
            raise ValueError(f"n must be in 1..{self.recon.shape[1]}, got {n}")
        return Codes(self.reasoning, self.recon[:, :n].contiguous(), self.lengths)

    def item(self, i: int, reasoning_frames: int | None = None, recon_frames: int | None = None) -> "Codes":
        """Item ``i`` as a batch of one, optionally trimmed to the given frame counts."""
        r = self.reasoning[i : i + 1]
        q = self.recon[i : i + 1]
        if reasoning_frames is not None:
            r = r[..., :reasoning_frames]
        if recon_frames is not None:
            q = q[..., :recon_frames]
        return Codes(r, q, self.lengths[i : i + 1])

    @staticmethod
    def cat(parts: "list[Codes]", lengths: torch.Tensor) -> "Codes":
        """Concatenate consecutive pieces of the same streams along time."""
        return Codes(
            torch.cat([p.reasoning for p in parts], dim=-1),
            torch.cat([p.recon for p in parts], dim=-1),
            lengths,
        )
