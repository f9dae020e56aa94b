"""A small byte-level text decoder that reads the quantised reasoning features (training only).

It is the scaled-down form of the paper's text-alignment objective: the reasoning tokens must carry
enough to write the clip's analysis text (domain, language, speaker, transcript...).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

BOS, EOS, PAD = 256, 257, 258
VOCAB = 259


def encode_texts(texts: list[str], max_len: int) -> torch.Tensor:
    """UTF-8 bytes with BOS/EOS, padded with PAD → LongTensor ``[B, L]`` (L ≤ max_len + 2)."""
    rows = [[BOS] + list(t.encode("utf-8")[:max_len]) + [EOS] for t in texts]
    n = max(len(r) for r in rows)
    return torch.tensor([r + [PAD] * (n - len(r)) for r in rows], dtype=torch.long)


class TextHead(nn.Module):
    def __init__(self, memory_dim: int, dim: int = 256, layers: int = 2, heads: int = 4, max_len: int = 512) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.pos = nn.Parameter(torch.randn(max_len, dim) * 0.02)
        self.mem = nn.Linear(memory_dim, dim)
        self.mem_pos = nn.Parameter(torch.randn(256, dim) * 0.02)
        layer = nn.TransformerDecoderLayer(dim, heads, 4 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, layers)
        self.out = nn.Linear(dim, VOCAB)

    def forward(self, memory: torch.Tensor, memory_mask: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced loss. ``memory [B, N, Dm]``, ``memory_mask [B, N]`` (True = valid), ``tokens [B, L]``."""
        inp, tgt = tokens[:, :-1], tokens[:, 1:]
        n = memory.shape[1]
        mem = self.mem(memory) + self.mem_pos[torch.arange(n, device=memory.device) % self.mem_pos.shape[0]]
        x = self.embed(inp) + self.pos[: inp.shape[1]]
        causal = torch.triu(torch.full((inp.shape[1], inp.shape[1]), float("-inf"), device=x.device), 1)
        h = self.decoder(x, mem, tgt_mask=causal, memory_key_padding_mask=~memory_mask,
                         tgt_key_padding_mask=inp == PAD)
        logits = self.out(h)
        return F.cross_entropy(logits.reshape(-1, VOCAB), tgt.reshape(-1), ignore_index=PAD)
