"""Transformer building blocks: RMSNorm, RoPE, grouped-query attention with a KV cache, SwiGLU.

Parameter names follow Hugging Face Llama / Qwen2 (``self_attn.q_proj``, ``mlp.gate_proj``,
``input_layernorm`` ...) so that a text-LLM checkpoint maps onto the backbone one to one
(:mod:`uniaudio_lm.hf`). RoPE uses the same "rotate half" layout as those checkpoints.

:class:`WhisperBlock` is the other block design (``block_style: "whisper"``): LayerNorm, full multi-head
attention with biases and no rotary embedding (positions are a learned table added to the inputs), and
a GELU MLP, as in Whisper's text decoder (:mod:`uniaudio_lm.whisper_init`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

# cuDNN attention builds a new execution plan for every new sequence shape, which makes bf16 training
# on varying lengths and step-by-step decoding on Hopper ~20x slower; the memory-efficient kernel
# takes arbitrary masks and has no such cost.
_CUDA_SDPA = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.MATH]


class RMSNorm(nn.Module):
    """``x / rms(x) * weight`` over the last dimension (computed in float32)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        h = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(dtype)


def rope_inv_freq(head_dim: int, theta: float, scaling: dict[str, Any] | None = None) -> torch.Tensor:
    """Inverse frequencies ``[head_dim / 2]`` (float64), with optional Llama-3 ``rope_scaling``."""
    inv = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)
    if not scaling or scaling.get("rope_type", scaling.get("type")) in (None, "default"):
        return inv
    kind = scaling.get("rope_type", scaling.get("type"))
    if kind == "linear":
        return inv / float(scaling["factor"])
    if kind != "llama3":
        raise ValueError(f"unsupported rope_scaling type {kind!r} (default, linear and llama3 are supported)")
    factor, lo, hi = float(scaling["factor"]), float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
    old = float(scaling["original_max_position_embeddings"])
    wavelen = 2 * math.pi / inv
    out = torch.where(wavelen > old / lo, inv / factor, inv)
    smooth = (old / wavelen - lo) / (hi - lo)
    mid = (1 - smooth) * out / factor + smooth * out
    medium = (wavelen >= old / hi) & (wavelen <= old / lo)
    return torch.where(medium, mid, out)


class Rotary(nn.Module):
    """Rotary position embedding: ``cos, sin = rotary(positions [B, T])`` → ``[B, T, head_dim]``."""

    def __init__(self, head_dim: int, theta: float, scaling: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.register_buffer("inv_freq", rope_inv_freq(head_dim, theta, scaling).float(), persistent=False)
        self._inv64 = rope_inv_freq(head_dim, theta, scaling)

    def forward(self, pos: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv = self._inv64.to(pos.device) if dtype == torch.float64 else self.inv_freq
        f = pos[..., None].to(inv.dtype) * inv
        emb = torch.cat([f, f], dim=-1)
        return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=-1)
    return torch.cat([-b, a], dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x [B, H, T, Dh]`` rotated by ``cos, sin [B, T, Dh]``."""
    return x * cos[:, None] + _rotate_half(x) * sin[:, None]


@dataclass
class KVCache:
    """Key/value cache of a stack of attention layers, pre-allocated to ``max_len`` positions.

    Attributes:
        k, v: per layer ``[B, H_kv, max_len, Dh]``.
        valid: BoolTensor ``[B, max_len]``: cached positions that may be attended to.
        next_pos: LongTensor ``[B]``: RoPE position of the next valid token of each item.
        length: positions written so far (shared by the batch).
        extra: per-item state of the model's inputs (tuples of ``[B, ...]`` tensors, selected with the batch).
    """

    k: list[torch.Tensor]
    v: list[torch.Tensor]
    valid: torch.Tensor
    next_pos: torch.Tensor
    length: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def empty(cls, n_layers: int, batch: int, n_kv_heads: int, head_dim: int, max_len: int,
              device: torch.device | str, dtype: torch.dtype) -> "KVCache":
        z = [torch.zeros(batch, n_kv_heads, max_len, head_dim, device=device, dtype=dtype) for _ in range(n_layers)]
        return cls(z, [t.clone() for t in z], torch.zeros(batch, max_len, dtype=torch.bool, device=device),
                   torch.zeros(batch, dtype=torch.long, device=device))

    @property
    def max_len(self) -> int:
        return int(self.valid.shape[1])

    def select(self, index: torch.Tensor) -> "KVCache":
        """The cache of a subset / reordering of the batch (``index [B']``)."""
        extra = {k: tuple(t[index] for t in v) if isinstance(v, tuple) else v for k, v in self.extra.items()}
        return KVCache([t[index] for t in self.k], [t[index] for t in self.v], self.valid[index],
                       self.next_pos[index], self.length, extra)


def attention_mask(valid_keys: torch.Tensor, q_start: int, q_len: int) -> torch.Tensor:
    """Causal mask ``[B, 1, q_len, S]`` (True = attend) over keys ``valid_keys [B, S]`` for queries at
    absolute indices ``q_start .. q_start+q_len-1``. A query always sees itself (no empty rows)."""
    s = valid_keys.shape[1]
    qi = torch.arange(q_start, q_start + q_len, device=valid_keys.device)[:, None]
    kj = torch.arange(s, device=valid_keys.device)[None]
    causal = kj <= qi
    return ((causal[None] & valid_keys[:, None]) | (kj == qi)[None])[:, None]


class Attention(nn.Module):
    """Grouped-query self-attention (``n_heads`` query heads sharing ``n_kv_heads`` key/value heads)."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, bias: bool = False,
                 rope: bool = True, out_bias: bool = False) -> None:
        super().__init__()
        if n_heads % n_kv_heads:
            raise ValueError(f"n_heads ({n_heads}) must be a multiple of n_kv_heads ({n_kv_heads})")
        self.n_heads, self.n_kv_heads, self.head_dim, self.rope = n_heads, n_kv_heads, head_dim, rope
        self.q_proj = nn.Linear(dim, n_heads * head_dim, bias=bias)
        self.k_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=bias)
        self.v_proj = nn.Linear(dim, n_kv_heads * head_dim, bias=bias)
        self.o_proj = nn.Linear(n_heads * head_dim, dim, bias=out_bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """``x [B, T, D]``, ``mask [B, 1, T, S]`` (``S = T`` without cache, else the cache length after
        writing) → ``[B, T, D]``. With a cache, keys/values are written at ``cache.length``."""
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        if self.rope:
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            s0 = cache.length
            cache.k[layer][:, :, s0 : s0 + t] = k
            cache.v[layer][:, :, s0 : s0 + t] = v
            k, v = cache.k[layer][:, :, : s0 + t], cache.v[layer][:, :, : s0 + t]
        rep = self.n_heads // self.n_kv_heads
        if rep > 1:
            k = k.repeat_interleave(rep, dim=1)
            v = v.repeat_interleave(rep, dim=1)
        if q.is_cuda:
            with sdpa_kernel(_CUDA_SDPA):
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    """``down(silu(gate(x)) * up(x))``."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(dim, hidden, bias=False)
        self.up_proj = nn.Linear(dim, hidden, bias=False)
        self.down_proj = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    """Pre-norm transformer block (Llama layout)."""

    def __init__(self, dim: int, n_heads: int, n_kv_heads: int, head_dim: int, ffn_dim: int,
                 eps: float = 1e-5, bias: bool = False) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(dim, eps)
        self.self_attn = Attention(dim, n_heads, n_kv_heads, head_dim, bias)
        self.post_attention_layernorm = RMSNorm(dim, eps)
        self.mlp = SwiGLU(dim, ffn_dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """``x [B, T, D]`` → ``[B, T, D]``."""
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class GeluMLP(nn.Module):
    """``down(gelu(up(x)))`` with biases (Whisper's and GPT-2's MLP)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.up_proj = nn.Linear(dim, hidden)
        self.down_proj = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x)))


class WhisperBlock(nn.Module):
    """Pre-norm block of Whisper's text decoder without its cross-attention: LayerNorm → multi-head
    self-attention (biases on queries, values and output; no rotary embedding) → LayerNorm → GELU MLP.
    Same call as :class:`Block` (``cos, sin`` are ignored)."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, ffn_dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(dim, eps=eps)
        self.self_attn = Attention(dim, n_heads, n_heads, head_dim, bias=True, rope=False, out_bias=True)
        self.post_attention_layernorm = nn.LayerNorm(dim, eps=eps)
        self.mlp = GeluMLP(dim, ffn_dim)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor,
                cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        """``x [B, T, D]`` → ``[B, T, D]``."""
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


def positions_from_valid(valid: torch.Tensor, start: torch.Tensor | None = None) -> torch.Tensor:
    """RoPE positions ``[B, T]`` of a chunk: ``start + (number of valid tokens before)``; padding
    positions get the position of the next valid token (they are never attended to)."""
    before = valid.long().cumsum(1) - valid.long()
    return before if start is None else before + start[:, None]
