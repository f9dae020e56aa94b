"""Causal building blocks with explicit streaming state.

Every block maps ``x [B, T, C]`` and an optional state to ``(y [B, T, C'], new_state)``. A state of
``None`` means "start of the signal" (zeros on the left), so running a signal in one call or in
pieces with the returned state gives the same output: this is what makes streaming equal offline.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalDepthwiseConv(nn.Module):
    """Depthwise 1-D convolution over time that only looks at the past.

    State: the last ``kernel_size - 1`` inputs ``[B, K-1, C]``.
    """

    def __init__(self, dim: int, kernel_size: int) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.short = 32  # frames: below this, taps are cheaper than a conv1d call
        self.weight = nn.Parameter(torch.randn(dim, 1, kernel_size) / kernel_size**0.5)
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        k = self.kernel_size
        if state is None:
            state = x.new_zeros(b, k - 1, c)
        if t == 0:
            return x, state
        full = torch.cat([state, x], dim=1)  # [B, K-1+T, C]
        new_state = full[:, full.shape[1] - (k - 1):] if k > 1 else full[:, :0]
        if t <= self.short or x.dtype == torch.float64:
            # streaming-sized inputs: explicit taps avoid conv1d's per-call overhead (~1 ms on CPU);
            # float64 (the inference encoder): conv1d has no fast grouped float64 kernel and loops per channel
            w = self.weight[:, 0].to(x.dtype)  # [C, K]
            y = full[:, 0:t] * w[:, 0]
            for i in range(1, k):
                y = y + full[:, i:i + t] * w[:, i]
            return y + self.bias.to(x.dtype), new_state
        y = F.conv1d(full.transpose(1, 2), self.weight.to(x.dtype), self.bias.to(x.dtype), groups=c)
        return y.transpose(1, 2), new_state


class ConvNeXtBlock(nn.Module):
    """Causal ConvNeXt block: depthwise conv → LayerNorm → MLP → layer scale, with a residual."""

    def __init__(self, dim: int, kernel_size: int, mlp_ratio: int = 3, layer_scale: float = 0.1) -> None:
        super().__init__()
        self.dwconv = CausalDepthwiseConv(dim, kernel_size)
        self.norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, dim * mlp_ratio)
        self.fc2 = nn.Linear(dim * mlp_ratio, dim)
        self.scale = nn.Parameter(torch.full((dim,), layer_scale))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        h, state = self.dwconv(x, state)
        h = self.fc2(F.gelu(self.fc1(self.norm(h))))
        return x + self.scale * h, state


class ConvNeXtStack(nn.Module):
    """A list of causal ConvNeXt blocks; the state is a list with one entry per block."""

    def __init__(self, dim: int, n_blocks: int, kernel_size: int, mlp_ratio: int = 3) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(ConvNeXtBlock(dim, kernel_size, mlp_ratio) for _ in range(n_blocks))

    def forward(
        self, x: torch.Tensor, state: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        new_state = []
        for i, blk in enumerate(self.blocks):
            x, s = blk(x, None if state is None else state[i])
            new_state.append(s)
        return x, new_state


class FiLM(nn.Module):
    """Feature-wise affine modulation ``x * (1 + g(c)) + b(c)``; starts as the identity."""

    def __init__(self, cond_dim: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cond_dim, 2 * dim)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        g, b = self.proj(cond).chunk(2, dim=-1)
        return x * (1 + g) + b
