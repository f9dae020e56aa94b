"""The reasoning branch: a transformer over 200 ms windows with one query token per window
(:class:`ReasoningEncoder`), or a Whisper-style front-end over the same windows
(:class:`WhisperReasoningEncoder`).

Each window holds ``S − 1`` feature tokens (stacked log-mel frames) and one learned query token.
A token attends to every token of its own window (free within a window) and of the previous
``context_windows`` windows (causal across windows), with an ALiBi distance bias, so the output of a
window is final the moment the window closes and streaming needs only a bounded key/value cache.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

KVCache = list[tuple[torch.Tensor, torch.Tensor]]  # per layer: K, V [B, H, W', S, dh]


class WindowAttentionLayer(nn.Module):
    def __init__(self, dim: int, heads: int, context_windows: int, tokens_per_window: int) -> None:
        super().__init__()
        self.heads, self.dh = heads, dim // heads
        self.context_windows = context_windows
        self.s = tokens_per_window
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, 4 * dim)
        self.fc2 = nn.Linear(4 * dim, dim)
        self.register_buffer("slopes", torch.tensor([2.0 ** (-8.0 * (i + 1) / heads) for i in range(heads)]),
                             persistent=False)
        self._masks: dict[tuple, torch.Tensor] = {}

    def _mask(self, n_before: int, n: int, nk: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        """Additive attention bias ``[H, n·S, nk·S]`` for query windows ``n_before..n_before+n−1`` of a key
        range of ``nk`` windows: ALiBi distance inside the context, −inf outside. Cached per shape (an
        offline encode repeats the same few shapes block after block)."""
        key = (n_before, n, nk, dtype, device)
        mask = self._masks.get(key)
        if mask is None:
            s = self.s
            qpos = torch.arange(n_before * s, (n_before + n) * s, device=device)
            kpos = torch.arange(nk * s, device=device)
            lag = qpos[:, None] // s - kpos[None, :] // s
            valid = (lag >= 0) & (lag <= self.context_windows)
            dist = (qpos[:, None] - kpos[None, :]).abs().to(dtype)
            mask = (-self.slopes.to(dtype)[:, None, None] * dist[None]).masked_fill(~valid[None], float("-inf"))
            if len(self._masks) >= 32:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_before: int) -> torch.Tensor:
        """q ``[B,H,N,S,dh]`` (windows ``n_before..n_before+N−1`` of the key range);
        k, v ``[B,H,n_before+N,S,dh]`` → ``[B,H,N,S,dh]``."""
        b, h, n, s, dh = q.shape
        nk = k.shape[2]
        mask = self._mask(n_before, n, nk, q.dtype, q.device)
        out = F.scaled_dot_product_attention(q.reshape(b, h, n * s, dh), k.reshape(b, h, nk * s, dh),
                                             v.reshape(b, h, nk * s, dh), attn_mask=mask[None])
        return out.reshape(b, h, n, s, dh)

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None, block: int = 16
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``x [B, N, S, D]`` (N new windows) → ``([B, N, S, D], new cache)``."""
        b, n, s, d = x.shape
        h, dh = self.heads, self.dh
        qkv = self.qkv(self.norm1(x)).reshape(b, n, s, 3, h, dh).permute(3, 0, 4, 1, 2, 5)
        q, k, v = qkv[0], qkv[1], qkv[2]  # [B, H, N, S, dh]
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)
            v = torch.cat([cache[1], v], dim=2)
        n_cached = k.shape[2] - n
        outs = []
        for a in range(0, n, block):
            e = min(n, a + block)
            lo = max(0, n_cached + a - self.context_windows)
            outs.append(self._attend(q[:, :, a:e], k[:, :, lo:n_cached + e], v[:, :, lo:n_cached + e],
                                     n_cached + a - lo))
        att = torch.cat(outs, dim=2) if outs else q
        att = att.permute(0, 2, 3, 1, 4).reshape(b, n, s, d)
        x = x + self.out(att)
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        keep = self.context_windows
        new_cache = (k[:, :, max(0, k.shape[2] - keep):], v[:, :, max(0, v.shape[2] - keep):])
        return x, new_cache


class ReasoningEncoder(nn.Module):
    """Log-mel base frames ``[B, N·stride, n_mels]`` → window features ``[B, N, D]``."""

    def __init__(self, n_mels: int, stride: int, substride: int, dim: int, layers: int, heads: int,
                 context_windows: int) -> None:
        super().__init__()
        self.stride, self.substride = stride, substride
        self.tokens = stride // substride + 1
        self.inp = nn.Linear(n_mels * substride, dim)
        self.query = nn.Parameter(torch.randn(dim) * 0.02)
        self.slot = nn.Parameter(torch.randn(self.tokens, dim) * 0.02)
        self.layers = nn.ModuleList(
            WindowAttentionLayer(dim, heads, context_windows, self.tokens) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)

    def forward(self, mel: torch.Tensor, cache: KVCache | None = None) -> tuple[torch.Tensor, KVCache]:
        b, f, c = mel.shape
        n = f // self.stride
        x = self.inp(mel[:, : n * self.stride].reshape(b, n, self.tokens - 1, self.substride * c))
        q = self.query.to(x.dtype).expand(b, n, 1, -1)
        x = torch.cat([x, q], dim=2) + self.slot.to(x.dtype)
        new_cache: KVCache = []
        for i, layer in enumerate(self.layers):
            x, kv = layer(x, None if cache is None else cache[i])
            new_cache.append(kv)
        return self.norm(x[:, :, -1]), new_cache


class WhisperReasoningEncoder(nn.Module):
    """Whisper-style reasoning front-end: 80-band log-mel frames (100 Hz) → window features ``[B, N, out_dim]``.

    Two convolutions (kernel 3, the second with stride 2) take the frames to 50 Hz states, as in
    Whisper's encoder; both are causal (the first looks 2 frames back, the second reads conv frames
    ``2j − 1 .. 2j + 1``, which all lie inside state ``j``'s window), so a window's output depends only
    on its own and earlier frames. ``layers`` :class:`WindowAttentionLayer` blocks run over the
    ``stride / 2`` states of each window (free inside a window, causal across windows, ALiBi distance
    bias instead of Whisper's absolute positions, which a stream of any length cannot use). The states
    of a window are averaged and projected to ``out_dim``.

    Its weights can start from Whisper tiny.en's convolutions and first layers
    (``reasoningcodec.train.whisper_teacher.init_from_whisper``): the layouts match one to one.
    Cache: ``{"conv1": last 2 input frames, "conv2": last conv-1 frame, "kv": per-layer K/V}``.
    """

    def __init__(self, n_mels: int, stride: int, dim: int, layers: int, heads: int, context_windows: int,
                 out_dim: int) -> None:
        super().__init__()
        self.stride, self.states = stride, stride // 2
        self.n_mels, self.dim = n_mels, dim
        self.conv1 = nn.Conv1d(n_mels, dim, 3)
        self.conv2 = nn.Conv1d(dim, dim, 3, stride=2)
        self.layers = nn.ModuleList(
            WindowAttentionLayer(dim, heads, context_windows, self.states) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, out_dim)

    def forward(self, mel: torch.Tensor, cache: dict | None = None) -> tuple[torch.Tensor, dict]:
        x, new_cache = self.window_states(mel, cache)
        return self.proj(self.norm(x).mean(2)), new_cache

    def hidden_states(self, mel: torch.Tensor) -> torch.Tensor:
        """The 50 Hz states after the last layer, before window pooling ``[B, N · stride / 2, dim]``
        (from the start of a signal; e.g. a feature loss that compares decoded and input audio)."""
        x, _ = self.window_states(mel, None)
        return x.reshape(x.shape[0], -1, self.dim)

    def window_states(self, mel: torch.Tensor, cache: dict | None = None) -> tuple[torch.Tensor, dict]:
        """Log-mel ``[B, F, n_mels]`` → states of the complete windows ``[B, N, stride / 2, dim]`` and the cache."""
        b, f, _ = mel.shape
        n = f // self.stride
        x = mel[:, : n * self.stride].transpose(1, 2)  # [B, M, F]
        c1 = x.new_zeros(b, self.n_mels, 2) if cache is None else cache["conv1"]
        x = torch.cat([c1.to(x.dtype), x], dim=2)
        new_c1 = x[:, :, x.shape[2] - 2:]
        h = F.gelu(self.conv1(x))  # [B, D, F]
        c2 = h.new_zeros(b, self.dim, 1) if cache is None else cache["conv2"]
        h = torch.cat([c2.to(h.dtype), h], dim=2)
        new_c2 = h[:, :, h.shape[2] - 1:]
        h = F.gelu(self.conv2(h))  # [B, D, F / 2]
        x = h.transpose(1, 2).reshape(b, n, self.states, self.dim)
        kv = []
        for i, layer in enumerate(self.layers):
            x, c = layer(x, None if cache is None else cache["kv"][i])
            kv.append(c)
        return x, {"conv1": new_c1, "conv2": new_c2, "kv": kv}
