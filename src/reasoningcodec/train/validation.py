"""Validation: a fixed batch of held-out crops and the codec's log-mel L1 on it (``val_mel``)."""

from __future__ import annotations

import random

import numpy as np
import torch

from ..model import ReasoningCodec
from .dataset import Clip, ClipStore
from .losses import MultiResolutionMelLoss


def val_batch(clips: list[Clip], store: ClipStore, seg: int, n: int, seed: int) -> torch.Tensor | None:
    """``[n, seg]``: the first ``seg`` samples of ``n`` clips picked by ``seed``, zero-padded, peak 0.5;
    None without clips."""
    if not clips:
        return None
    r = random.Random(seed)
    pick = sorted(clips, key=lambda c: str(c.path))
    r.shuffle(pick)
    xs = []
    for c in pick[:n]:
        x = store.get(c)[:seg]
        x = np.pad(x, (0, seg - len(x)))
        xs.append(x / (np.abs(x).max() + 1e-6) * 0.5)
    return torch.from_numpy(np.stack(xs).astype(np.float32))


@torch.no_grad()
def validate(codec: ReasoningCodec, mel_loss: MultiResolutionMelLoss, batch: torch.Tensor) -> float:
    """Log-mel L1 of ``batch [B, T]`` coded and decoded by ``codec`` (all codebooks; leaves it in eval mode)."""
    codec.eval()
    batch = batch.to(codec.device)
    out, _ = codec.encode_frames(batch, None)
    y, st = codec.decode_latent(out.recon, None, out.recon_cond)
    y = torch.cat([y, codec.flush(st)], dim=1)
    return float(mel_loss(y, batch))
