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


CTC_CLASSES = 257  # blank (0) + the 256 byte values shifted by one


def encode_transcripts(texts: list[str], max_len: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower-cased UTF-8 bytes of each transcript as CTC targets: ``(concatenated [sum L], lengths [B])``.

    Punctuation is kept only where it is a word character; an empty transcript gives length 0."""
    rows = []
    for t in texts:
        t = " ".join("".join(ch if (ch.isalnum() or ch in " '") else " " for ch in t.lower()).split())
        rows.append([b + 1 for b in t.encode("utf-8")[:max_len]])
    flat = [v for r in rows for v in r]
    return torch.tensor(flat, dtype=torch.long), torch.tensor([len(r) for r in rows], dtype=torch.long)


class TranscriptCTC(nn.Module):
    """Pronunciation target for the reasoning tokens: each quantised 200 ms window alone must spell out
    the bytes spoken in it (CTC over ``slots`` positions per window).

    The head sees one window at a time, so it cannot borrow context from its neighbours: what it
    transcribes has to be in that window's tokens (the aim: text-aligned tokens; see the README for how far
    it has got)."""

    def __init__(self, memory_dim: int, slots: int = 8, hidden: int = 512) -> None:
        super().__init__()
        self.slots = slots
        self.net = nn.Sequential(nn.Linear(memory_dim, hidden), nn.GELU(), nn.Linear(hidden, slots * CTC_CLASSES))

    def forward(self, memory: torch.Tensor, n_windows: torch.Tensor, targets: torch.Tensor,
                target_lens: torch.Tensor) -> torch.Tensor:
        """``memory [B, N, D]``, ``n_windows [B]`` valid windows, targets from :func:`encode_transcripts`."""
        b, n, _ = memory.shape
        logp = self.net(memory).reshape(b, n * self.slots, CTC_CLASSES).float().log_softmax(-1)
        keep = target_lens > 0
        if not bool(keep.any()):
            return memory.sum() * 0.0
        starts = torch.cumsum(target_lens, 0) - target_lens
        tg = torch.cat([targets[s: s + int(ln)] for s, ln, k in zip(starts.tolist(), target_lens.tolist(), keep.tolist()) if k])
        loss = F.ctc_loss(logp[keep].transpose(0, 1), tg.to(memory.device), (n_windows[keep] * self.slots).cpu(),
                          target_lens[keep].cpu(), blank=0, reduction="mean", zero_infinity=True)
        return loss
