"""Local (depth) transformer: predicts the ``K`` codebooks of the next audio frame one by one.

Input sequence for one frame (length ``K``)::

    position 0        in_proj(h_t)            → logits of codebook 0
    position k >= 1   embed_{k-1}(c_{k-1})    → logits of codebook k

where ``h_t`` is the global hidden state at the position before the frame. No delay pattern: all ``K``
codebooks of a frame are predicted before the global model moves on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import UniAudioConfig
from .layers import Block, KVCache, RMSNorm, Rotary, attention_mask


@dataclass
class DepthState:
    """Incremental state while sampling one frame for ``N`` items."""

    cache: KVCache
    step: int = 0


class DepthTransformer(nn.Module):
    """``forward(h [N, D], codes [N, K]) -> logits [N, K, V]`` (teacher forcing), plus
    :meth:`start` / :meth:`step` for sampling codebook by codebook with a KV cache."""

    def __init__(self, cfg: UniAudioConfig) -> None:
        super().__init__()
        self.K, self.V = cfg.num_codebooks, cfg.audio_vocab_size
        hd = cfg.depth_dim // cfg.depth_heads
        self.n_kv_heads, self.head_dim = cfg.depth_kv_heads, hd
        self.in_proj = nn.Linear(cfg.dim, cfg.depth_dim, bias=False)
        self.code_embed = nn.Embedding(max(self.K - 1, 1) * self.V, cfg.depth_dim)
        self.layers = nn.ModuleList(
            Block(cfg.depth_dim, cfg.depth_heads, cfg.depth_kv_heads, hd, cfg.depth_ffn_dim, cfg.norm_eps)
            for _ in range(cfg.depth_layers))
        self.norm = RMSNorm(cfg.depth_dim, cfg.norm_eps)
        self.heads = nn.Parameter(torch.zeros(self.K, self.V, cfg.depth_dim))
        self.rotary = Rotary(hd, 10000.0)

    def _embed_codes(self, codes: torch.Tensor, first_k: int) -> torch.Tensor:
        """``codes [N, J]`` of codebooks ``first_k .. first_k+J-1`` → ``[N, J, Dd]``."""
        off = torch.arange(first_k, first_k + codes.shape[1], device=codes.device) * self.V
        return self.code_embed(codes + off)

    def _run(self, x: torch.Tensor, q_start: int, cache: KVCache | None) -> torch.Tensor:
        n, t, _ = x.shape
        pos = torch.arange(q_start, q_start + t, device=x.device).expand(n, t)
        cos, sin = self.rotary(pos, x.dtype)
        if cache is None:
            mask = attention_mask(torch.ones(1, t, dtype=torch.bool, device=x.device), 0, t)
        else:
            cache.valid[:, q_start : q_start + t] = True
            mask = attention_mask(cache.valid[:, : q_start + t], q_start, t)
        for i, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, i)
        if cache is not None:
            cache.length = q_start + t
        return self.norm(x)

    def forward(self, h: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits ``[N, K, V]`` from global states ``h [N, D]`` and target frames ``codes [N, K]``."""
        x = self.in_proj(h)[:, None]
        if self.K > 1:
            x = torch.cat([x, self._embed_codes(codes[:, : self.K - 1], 0)], dim=1)
        y = self._run(x, 0, None)
        return torch.einsum("nkd,kvd->nkv", y, self.heads)

    def start(self, h: torch.Tensor) -> tuple[DepthState, torch.Tensor]:
        """Begin a frame: ``h [N, D]`` → state and codebook-0 logits ``[N, V]``."""
        cache = KVCache.empty(len(self.layers), h.shape[0], self.n_kv_heads, self.head_dim, self.K,
                              h.device, h.dtype)
        y = self._run(self.in_proj(h)[:, None], 0, cache)
        return DepthState(cache, 0), y[:, 0] @ self.heads[0].t()

    def step(self, state: DepthState, code: torch.Tensor) -> torch.Tensor:
        """Feed the chosen id ``code [N]`` of codebook ``state.step`` → logits ``[N, V]`` of the next codebook."""
        k = state.step
        if k + 1 >= self.K:
            raise ValueError("all codebooks of this frame are already chosen")
        y = self._run(self._embed_codes(code[:, None], k), k + 1, state.cache)
        state.step = k + 1
        return y[:, 0] @ self.heads[k + 1].t()
