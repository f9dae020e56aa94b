"""Restart dead VQ codes: codes unused for a while are moved onto recent encoder outputs.

Without this, a residual VQ trained with straight-through gradients can collapse onto a handful of
codes (seen here: every reasoning codebook on a single code). Usage is an EMA of per-step code
counts; every ``every`` steps each code below ``threshold`` × its uniform share is replaced by a
random unit vector drawn from a ring buffer of recent stage inputs (plus a little noise). Works on any
:class:`~reasoningcodec.quantize.BaseQuantizer` with learned codebooks, through its methods.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..quantize import BaseQuantizer, QuantizerOutput


class CodeReviver:
    """Per-codebook code usage and recent inputs of named quantisers; restarts of their dead codes."""

    def __init__(self, decay: float = 0.99, threshold: float = 0.03, buffer: int = 8192, every: int = 50,
                 max_fraction: float = 0.1) -> None:
        self.decay, self.threshold, self.buffer, self.every = decay, threshold, buffer, every
        self.max_fraction = max_fraction
        self.usage: dict[tuple[str, int], torch.Tensor] = {}
        self.recent: dict[tuple[str, int], torch.Tensor] = {}
        self.revived: dict[str, int] = {}

    def observe(self, name: str, vq: BaseQuantizer, out: QuantizerOutput) -> None:
        """Count the codes ``out.codes [B, K, T]`` and keep the inputs ``out.latents`` (``[B, T, d]`` per
        codebook) of one training pass of quantiser ``name``."""
        if not out.latents:
            return
        for i, lat in enumerate(out.latents):
            key = (name, i)
            counts = torch.bincount(out.codes[:, i].reshape(-1), minlength=vq.cardinality).float()
            counts = counts / counts.sum().clamp(min=1)
            u = self.usage.get(key)
            self.usage[key] = counts if u is None else self.decay * u + (1 - self.decay) * counts
            flat = lat.reshape(-1, lat.shape[-1])
            r = self.recent.get(key)
            self.recent[key] = flat if r is None else torch.cat([r, flat])[-self.buffer:]

    @torch.no_grad()
    def maybe_revive(self, step: int, name: str, vq: BaseQuantizer) -> int:
        """On every ``every``-th step: restart the dead codes of quantiser ``name``; returns how many."""
        if step % self.every or step == 0:
            return 0
        total = 0
        for i in range(vq.num_codebooks):
            key = (name, i)
            if key not in self.usage:
                continue
            dead = self.usage[key] < self.threshold / vq.cardinality
            cap = max(1, int(self.max_fraction * vq.cardinality))
            if int(dead.sum()) > cap:  # restart the least used first, a bounded number per event
                idx = torch.argsort(self.usage[key])[:cap]
                dead = torch.zeros_like(dead)
                dead[idx] = True
            n = int(dead.sum())
            pool = self.recent[key]
            if n == 0 or len(pool) == 0:
                continue
            pick = pool[torch.randint(len(pool), (n,), device=pool.device)]
            new = F.normalize(pick + 0.02 * torch.randn_like(pick), dim=-1)
            vq.replace_codes(i, dead, new)
            self.usage[key][dead] = 1.0 / vq.cardinality  # give them time to be picked
            total += n
        self.revived[name] = self.revived.get(name, 0) + total
        return total
