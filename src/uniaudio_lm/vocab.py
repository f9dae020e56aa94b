"""Per-codebook audio vocabulary of the language model, derived from a codec configuration.

An audio position in an auditory sentence is one *frame* of ``K = max(Kr, Kq)`` ids, one per codebook.
Every codebook shares the same id layout (``V = Nr + Nq + 8`` ids)::

    [0, Nr)                 reasoning codes                 (Nr = reasoning_codebook_size)
    [Nr, Nr + Nq)           reconstruction codes + Nr       (Nq = recon_codebook_size)
    Nr + Nq                 codebook pad: fills codebooks k >= Kr of a reasoning frame (k >= Kq of a
                            reconstruction frame) when the two streams have different codebook counts
    Nr + Nq + 1 ...         special frames (every codebook holds the same id):
                            begin/end reasoning, begin/end reconstruction, audio pad,
                            begin/end voice prompt

Nothing is hard-coded: another :class:`reasoningcodec.CodecConfig` gives another, consistent vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import torch

from reasoningcodec import CodecConfig


class Special(IntEnum):
    """Special frame kinds, in id order after the codebook pad."""

    BEGIN_REASONING = 0
    END_REASONING = 1
    BEGIN_RECON = 2
    END_RECON = 3
    AUDIO_PAD = 4
    BEGIN_VOICE = 5
    END_VOICE = 6


@dataclass(frozen=True)
class AudioVocab:
    """Audio id layout for one codec configuration.

    Attributes:
        num_reasoning_codebooks: ``Kr``.
        reasoning_codebook_size: ``Nr``.
        num_recon_codebooks: ``Kq``.
        recon_codebook_size: ``Nq``.
    """

    num_reasoning_codebooks: int
    reasoning_codebook_size: int
    num_recon_codebooks: int
    recon_codebook_size: int

    @classmethod
    def from_codec_config(cls, config: CodecConfig) -> "AudioVocab":
        return cls(config.num_reasoning_codebooks, config.reasoning_codebook_size,
                   config.num_recon_codebooks, config.recon_codebook_size)

    def __post_init__(self) -> None:
        for name in ("num_reasoning_codebooks", "reasoning_codebook_size", "num_recon_codebooks",
                     "recon_codebook_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"AudioVocab.{name} must be >= 1, got {getattr(self, name)}")

    # ------------------------------------------------------------------ layout
    @property
    def num_codebooks(self) -> int:
        """``K = max(Kr, Kq)``: ids per audio frame."""
        return max(self.num_reasoning_codebooks, self.num_recon_codebooks)

    @property
    def recon_offset(self) -> int:
        """``Nr``: added to reconstruction codes."""
        return self.reasoning_codebook_size

    @property
    def codebook_pad(self) -> int:
        return self.reasoning_codebook_size + self.recon_codebook_size

    def special(self, kind: Special) -> int:
        """Id of a special frame kind."""
        return self.codebook_pad + 1 + int(kind)

    @property
    def size(self) -> int:
        """``V``: ids per codebook."""
        return self.codebook_pad + 1 + len(Special)

    @property
    def begin_reasoning(self) -> int:
        return self.special(Special.BEGIN_REASONING)

    @property
    def end_reasoning(self) -> int:
        return self.special(Special.END_REASONING)

    @property
    def begin_recon(self) -> int:
        return self.special(Special.BEGIN_RECON)

    @property
    def end_recon(self) -> int:
        return self.special(Special.END_RECON)

    @property
    def audio_pad(self) -> int:
        return self.special(Special.AUDIO_PAD)

    @property
    def begin_voice(self) -> int:
        return self.special(Special.BEGIN_VOICE)

    @property
    def end_voice(self) -> int:
        return self.special(Special.END_VOICE)

    def is_special_id(self, i: int) -> bool:
        return self.codebook_pad < i < self.size

    # ------------------------------------------------------------------ frames
    def special_frame(self, kind: Special | int) -> torch.Tensor:
        """A special frame ``[K]`` (``kind`` is a :class:`Special` or a special id)."""
        i = self.special(kind) if isinstance(kind, Special) else int(kind)
        if not self.is_special_id(i):
            raise ValueError(f"{i} is not a special frame id of this vocabulary")
        return torch.full((self.num_codebooks,), i, dtype=torch.long)

    def reasoning_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """Reasoning codes ``[Kr', T]`` (``Kr' <= Kr``) → frames ``[T, K]`` (missing codebooks padded)."""
        return self._frames(codes, self.num_reasoning_codebooks, self.reasoning_codebook_size, 0, "reasoning")

    def recon_frames(self, codes: torch.Tensor) -> torch.Tensor:
        """Reconstruction codes ``[Kq', T]`` (``Kq' <= Kq``) → frames ``[T, K]`` (offset by ``Nr``)."""
        return self._frames(codes, self.num_recon_codebooks, self.recon_codebook_size, self.recon_offset, "recon")

    def _frames(self, codes: torch.Tensor, k_max: int, n: int, offset: int, name: str) -> torch.Tensor:
        if codes.dim() != 2:
            raise ValueError(f"{name} codes must be [K, T], got shape {tuple(codes.shape)}")
        k, t = codes.shape
        if not 1 <= k <= k_max:
            raise ValueError(f"{name} codes have {k} codebooks; this vocabulary allows 1..{k_max}")
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= n):
            raise ValueError(f"{name} codes must lie in 0..{n - 1}")
        out = torch.full((t, self.num_codebooks), self.codebook_pad, dtype=torch.long)
        out[:, :k] = codes.t().long() + offset
        return out

    def frames_to_reasoning(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[T, K]`` → reasoning codes ``[Kr', T]`` (trailing all-pad codebooks dropped)."""
        return self._codes(frames, 0, self.reasoning_codebook_size, self.num_reasoning_codebooks, "reasoning")

    def frames_to_recon(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames ``[T, K]`` → reconstruction codes ``[Kq', T]`` (offset removed, all-pad codebooks dropped)."""
        return self._codes(frames, self.recon_offset, self.recon_codebook_size, self.num_recon_codebooks, "recon")

    def _codes(self, frames: torch.Tensor, offset: int, n: int, k_max: int, name: str) -> torch.Tensor:
        if frames.dim() != 2 or frames.shape[1] != self.num_codebooks:
            raise ValueError(f"frames must be [T, {self.num_codebooks}], got {tuple(frames.shape)}")
        if frames.shape[0] == 0:
            return torch.zeros(k_max, 0, dtype=torch.long)
        real = (frames != self.codebook_pad).all(0)
        k = int(real.long().cumprod(0).sum())
        codes = frames[:, :k].t() - offset
        if k == 0 or bool(real[k:].any()) or int(codes.min()) < 0 or int(codes.max()) >= n:
            raise ValueError(f"frames do not hold {name} codes")
        return codes.contiguous()

    # ------------------------------------------------------------------ masks for generation
    def allowed_mask(self, phase: str) -> torch.Tensor:
        """Bool mask ``[K, V]`` of ids that may be sampled in a generation phase.

        ``phase`` is ``"reasoning"`` (reasoning codes or end-of-reasoning on codebook 0),
        ``"recon"`` (reconstruction codes or end-of-reconstruction) or ``"voice"`` (reconstruction
        codes or end-of-voice-prompt). Codebooks beyond the stream's count may only hold the codebook
        pad; special ids are only allowed on codebook 0 (the rest of a special frame is forced).
        """
        k_all, v = self.num_codebooks, self.size
        m = torch.zeros(k_all, v, dtype=torch.bool)
        if phase == "reasoning":
            k, lo, hi, end = self.num_reasoning_codebooks, 0, self.reasoning_codebook_size, self.end_reasoning
        elif phase in ("recon", "voice"):
            k, lo, hi = self.num_recon_codebooks, self.recon_offset, self.codebook_pad
            end = self.end_recon if phase == "recon" else self.end_voice
        else:
            raise ValueError(f"unknown phase {phase!r}")
        m[:k, lo:hi] = True
        m[k:, self.codebook_pad] = True
        m[0, end] = True
        return m
