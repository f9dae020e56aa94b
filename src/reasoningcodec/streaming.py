"""Streaming encode and decode for B concurrent streams.

``StreamEncoder.push`` takes any number of new samples per stream and returns the frames they
complete; ``finish`` pads the last partial frames exactly as :meth:`ReasoningCodec.encode` does, so
the concatenated pieces equal the offline codes. ``StreamDecoder`` turns pieces of codes into audio
whose concatenation equals :meth:`ReasoningCodec.decode`.

The per-stream state types (:class:`EncoderState`, :class:`DecoderState`) live here, with the code that
carries them. This module does not import the model: it codes against :class:`StreamingCodec`, the few
members of :class:`~reasoningcodec.model.ReasoningCodec` a stream uses, so ``model`` → ``streaming`` is
the only arrow between them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Protocol

import torch
import torch.nn.functional as F

from .codes import Codes
from .config import CodecConfig
from .errors import AudioError
from .harmonic import SourceState
from .inputs import as_float_tensor


@dataclass
class EncoderState:
    """Everything the encoder carries between pieces of a signal (one per batch of streams)."""

    mel: torch.Tensor | None = None
    whisper_mel: torch.Tensor | None = None  # state of the whisper front-end's own log-mel
    reasoning_frames: torch.Tensor | None = None  # base frames of the open window [B, <stride, n_mels]
    reasoning_cache: list | None = None
    last_reasoning: torch.Tensor | None = None  # quantised feature of the latest window [B, Dr]
    windows_done: int = 0
    enc: list | None = None
    enc_frames: torch.Tensor | None = None  # stem outputs of the open recon frame [B, <stride, C]
    latent: list | None = None
    recon_done: int = 0


@dataclass
class DecoderState:
    """Everything the decoder carries between pieces of a code stream."""

    latent: list | None = None
    dec: list | None = None
    head: torch.Tensor | None = None
    # reasoning-conditioned decoders only (``config.decoder_reasoning``)
    recon_done: int = 0  # reconstruction frames decoded so far (global index of the next one)
    windows: torch.Tensor | None = None  # quantised reasoning windows still needed [B, n, Dr] ...
    win_start: int = 0  # ... starting at this global window index
    conditioned: bool | None = None  # whether this stream came with reasoning codes (fixed by its first piece)
    # harmonic-source decoders only (``config.harmonic_source``)
    start_frame: int = 0  # global reconstruction frame index where this state's decode starts (seeking)
    source: SourceState | None = None
    features: torch.Tensor | None = None  # training: the head's input features of the latest piece [B, N, D]


class StreamingCodec(Protocol):
    """What a stream needs of a codec (:class:`~reasoningcodec.model.ReasoningCodec` is one)."""

    config: CodecConfig

    @property
    def device(self) -> torch.device: ...

    @property
    def num_reasoning_codebooks(self) -> int: ...

    @property
    def num_recon_codebooks(self) -> int: ...

    def num_frames(self, num_samples: int) -> tuple[int, int]: ...

    def padded_length(self, num_samples: int) -> int: ...

    def inference_encoder(self) -> "StreamingCodec": ...

    def encode_frames(self, wav: torch.Tensor, state: EncoderState | None = None, n_q: int | None = None
                      ) -> tuple[Any, EncoderState]: ...

    def decode_frames(self, recon_codes: torch.Tensor, state: DecoderState | None = None,
                      reasoning_codes: torch.Tensor | None = None) -> tuple[torch.Tensor, DecoderState]: ...

    def flush(self, state: DecoderState) -> torch.Tensor: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...


class StreamEncoder:
    """Incremental encoder. All streams advance together: each push gives every stream ``n`` samples."""

    def __init__(self, codec: StreamingCodec, batch_size: int = 1, n_q: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.codec = codec
        self.batch_size = batch_size
        self.n_q = n_q
        self._enc = codec.inference_encoder()
        self._dtype = next(self._enc.parameters()).dtype
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next push starts a new signal."""
        self._state: EncoderState | None = None
        self._pending = torch.zeros(self.batch_size, 0, dtype=self._dtype, device=self.codec.device)
        self._consumed = 0  # samples given to the encoder (a multiple of hop)
        self._total = 0  # samples pushed
        self._r_emitted = 0
        self._q_emitted = 0
        self._finished = False

    @property
    def samples_pushed(self) -> int:
        """Samples per stream pushed since the start (or the last :meth:`reset`)."""
        return self._total

    def _as_batch(self, chunk: Any) -> torch.Tensor:
        chunk = as_float_tensor(chunk, "", "a tensor or array chunk")  # integer PCM scaled as encode does
        if chunk.dim() == 1:
            chunk = chunk[None]
        if chunk.dim() == 3:
            chunk = chunk.mean(dim=1)
        if chunk.dim() != 2 or chunk.shape[0] != self.batch_size:
            raise AudioError(f"chunk must have shape [{self.batch_size}, n] (or [n] for one stream), "
                             f"got {tuple(chunk.shape)}")
        if chunk.numel() and not bool(torch.isfinite(chunk).all()):
            raise AudioError("chunk contains NaN or infinite samples")
        return chunk.to(device=self.codec.device, dtype=self._dtype)

    def _run(self, x: torch.Tensor) -> Codes:
        with torch.autocast(x.device.type, enabled=False):  # as ReasoningCodec.encode (see model.no_autocast)
            out, self._state = self._enc.encode_frames(x, self._state, self.n_q)
        self._consumed += x.shape[1]
        return self._emit(out.reasoning_codes, out.recon_codes)

    def _emit(self, r: torch.Tensor, q: torch.Tensor, limit: tuple[int, int] | None = None) -> Codes:
        if limit is not None:
            r = r[..., : max(0, limit[0] - self._r_emitted)]
            q = q[..., : max(0, limit[1] - self._q_emitted)]
        self._r_emitted += r.shape[-1]
        self._q_emitted += q.shape[-1]
        lens = torch.full((self.batch_size,), self._total, dtype=torch.long)
        return Codes(r, q, lens)

    @torch.no_grad()
    def push(self, chunk: Any) -> Codes:
        """Add ``chunk`` (``[B, n]``, ``[n]`` when B = 1, or ``[B, C, n]``) and return completed frames."""
        if self._finished:
            raise RuntimeError("stream already finished; call reset() to start a new one")
        x = self._as_batch(chunk)
        self._total += x.shape[1]
        buf = torch.cat([self._pending, x], dim=1)
        hop = self.codec.config.stem_hop
        n = buf.shape[1] // hop * hop
        self._pending = buf[:, n:]
        if n == 0:  # no new complete backbone step: nothing to run
            return self._emit(self._empty(self.codec.num_reasoning_codebooks),
                              self._empty(self.n_q or self.codec.num_recon_codebooks))
        return self._run(buf[:, :n])

    def _empty(self, k: int) -> torch.Tensor:
        return torch.zeros(self.batch_size, k, 0, dtype=torch.long, device=self.codec.device)

    @torch.no_grad()
    def finish(self) -> Codes:
        """Flush: zero-pad to the offline frame counts and return the last frames."""
        if self._finished:
            raise RuntimeError("stream already finished; call reset() to start a new one")
        self._finished = True
        total = self.codec.padded_length(self._total) if self._total else 0
        pad = total - self._consumed - self._pending.shape[1]
        x = F.pad(self._pending, (0, pad))
        self._pending = x[:, :0]
        with torch.autocast(x.device.type, enabled=False):  # as ReasoningCodec.encode (see model.no_autocast)
            out, self._state = self._enc.encode_frames(x, self._state, self.n_q)
        self._consumed += x.shape[1]
        return self._emit(out.reasoning_codes, out.recon_codes, self.codec.num_frames(self._total))


class StreamDecoder:
    """Incremental decoder: ``push(codes)`` → audio ``[B, 1, n]`` finalised so far; ``finish()`` → the rest.

    The output is capped at the largest ``codes.lengths`` seen (the original signal length when the
    codes come from :class:`StreamEncoder` or :meth:`ReasoningCodec.encode`). Push :class:`Codes` (both
    streams, as the encoder emits them); a bare reconstruction tensor starts a stream without reasoning
    codes, which a reasoning-conditioned decoder (``config.decoder_reasoning``) decodes at lower quality.
    """

    def __init__(self, codec: StreamingCodec, batch_size: int = 1) -> None:
        self.codec = codec
        self.batch_size = batch_size
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next push starts a new code stream."""
        self._state: DecoderState | None = None
        self._emitted = 0
        self._limit: int | None = None
        self._finished = False

    @torch.no_grad()
    def push(self, codes: Codes | torch.Tensor) -> torch.Tensor:
        """Decode the next frames and return the audio they finalise, ``[B, 1, n]`` at the model rate.

        Args:
            codes: :class:`Codes` as :class:`StreamEncoder` emits them (reasoning ``[B, Kr, w]`` and
                reconstruction ``[B, Kq, t]`` frames, either may be empty), or a bare reconstruction
                tensor ``[B, Kq, t]``.

        The last ``n_fft − hop`` samples (30 ms for the default model) are held back until the next
        frame or :meth:`finish`; output is capped at the largest ``codes.lengths`` seen.
        """
        if self._finished:
            raise RuntimeError("stream already finished; call reset() to start a new one")
        recon = codes.recon if isinstance(codes, Codes) else codes
        reasoning = codes.reasoning if isinstance(codes, Codes) else None
        if recon.dim() != 3 or recon.shape[0] != self.batch_size:
            raise ValueError(f"codes must be [{self.batch_size}, K, T], got {tuple(recon.shape)}")
        if isinstance(codes, Codes) and codes.lengths.numel():
            self._limit = max(self._limit or 0, int(codes.lengths.max()))
        if recon.shape[-1] == 0 and (reasoning is None or reasoning.shape[-1] == 0):
            return torch.zeros(self.batch_size, 1, 0, device=self.codec.device)
        with torch.autocast(recon.device.type, enabled=False):
            y, self._state = self.codec.decode_frames(recon, self._state, reasoning)
        return self._cap(y)

    def _cap(self, y: torch.Tensor) -> torch.Tensor:
        if self._limit is not None:
            y = y[:, : max(0, self._limit - self._emitted)]
        self._emitted += y.shape[1]
        return y[:, None]

    @torch.no_grad()
    def finish(self) -> torch.Tensor:
        """End the stream: the samples still held back, ``[B, 1, n]`` (capped at the signal length).
        Concatenating every :meth:`push` output and this equals :meth:`ReasoningCodec.decode`."""
        if self._finished:
            raise RuntimeError("stream already finished; call reset() to start a new one")
        self._finished = True
        if self._state is None:
            return torch.zeros(self.batch_size, 1, 0, device=self.codec.device)
        return self._cap(self.codec.flush(self._state))
