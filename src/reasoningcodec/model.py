"""ReasoningCodec: audio ⇄ (5 Hz reasoning tokens, 12.5 Hz reconstruction tokens).

Pipeline (all causal, see DESIGN.md §3.1):

* log-mel base frames at ``sample_rate / hop_length`` (100 Hz);
* reasoning branch: windows of ``reasoning_stride`` frames (200 ms) → window transformer with one
  query token per window (``reasoning_frontend="window"``), or a Whisper-style front-end with its own
  log-mel whose 50 Hz states are averaged per window (``"whisper"``, the shipped model) → residual
  VQ → reasoning codes ``[B, Kr, Tr]``;
* reconstruction branch: causal ConvNeXt at 100 Hz → stack ``recon_stride`` frames (80 ms) → causal
  ConvNeXt → FiLM by the quantised reasoning feature of the latest *completed* window → residual VQ
  → reconstruction codes ``[B, Kq, Tq]``;
* decoder: reconstruction codes → causal ConvNeXt at 12.5 Hz → 100 Hz → causal ConvNeXt → iSTFT.

Frame rule: an item of ``T`` samples has ``ceil(T / reasoning_hop)`` reasoning frames and
``ceil(T / recon_hop)`` reconstruction frames; the last partial frame is zero-padded.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .codes import Codes
from .config import CodecConfig
from .errors import OptionError
from .features import CausalLogMel, ISTFTHead, WhisperLogMel
from .harmonic import F0Head, HarmonicSource
from .hub import check_device, load_pretrained, require_default_weights, save_pretrained
from .inputs import prepare_audio
from .nn import ConvNeXtStack, FiLM
from .quantize import ResidualVQ
from .reasoning import ReasoningEncoder, WhisperReasoningEncoder
from .streaming import DecoderState, EncoderState, StreamDecoder, StreamEncoder


def no_autocast(device: torch.device) -> Any:
    """Inference runs in the model's own dtypes (the float64 encoder picks the same codes for any batch or
    piece size): a caller's ``torch.autocast`` region (e.g. tokenising on the fly inside a bf16 training
    loop) is switched off for encode and decode."""
    return torch.autocast(torch.device(device).type, enabled=False)


def _int_tokens(x: Any, name: str) -> torch.Tensor:
    """An integer token tensor → LongTensor (floats are refused: tokens are indices)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} tokens must be a tensor, got {type(x).__name__}")
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
        raise OptionError(f"{name} tokens must be an integer tensor (token indices), got {x.dtype}")
    return x.long()


@dataclass
class EncoderOutput:
    """Training/analysis view of one encoder pass (complete frames only).

    Attributes:
        reasoning_codes: ``[B, Kr, Nr]``; reasoning: quantised reasoning features ``[B, Nr, Dr]``;
        reasoning_pre: unquantised reasoning features ``[B, Nr, Dr]``;
        recon_codes: ``[B, Kq, Nq]``; recon: quantised latent ``[B, Nq, Dq]``;
        recon_pre: unquantised latent ``[B, Nq, Dq]``; losses: VQ commitment/codebook losses;
        recon_cond: the quantised reasoning window each reconstruction frame is conditioned on ``[B, Nq, Dr]``
        (the null vector before the first window completes).
    """

    reasoning_codes: torch.Tensor
    reasoning: torch.Tensor
    reasoning_pre: torch.Tensor
    recon_codes: torch.Tensor
    recon: torch.Tensor
    recon_pre: torch.Tensor
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    quantizer_outputs: dict[str, Any] = field(default_factory=dict)
    recon_cond: torch.Tensor | None = None


class ReasoningCodec(nn.Module):
    """The codec. Build with a :class:`CodecConfig`; load trained weights with :meth:`from_pretrained`."""

    def __init__(self, config: CodecConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or CodecConfig()
        self.mel = CausalLogMel(c.sample_rate, c.n_fft, c.hop_length, c.n_mels, c.f_max)
        # reasoning branch
        self.whisper_mel: WhisperLogMel | None = None
        self.reasoning_encoder: ReasoningEncoder | WhisperReasoningEncoder
        if c.reasoning_frontend == "whisper":
            self.whisper_mel = WhisperLogMel(c.sample_rate, c.hop_length, c.whisper_mels)
            self.reasoning_encoder = WhisperReasoningEncoder(c.whisper_mels, c.reasoning_stride, c.whisper_dim,
                                                             c.whisper_layers, c.whisper_heads,
                                                             c.reasoning_context_windows, c.reasoning_dim)
        else:
            self.reasoning_encoder = ReasoningEncoder(c.n_mels, c.reasoning_stride, c.reasoning_substride,
                                                      c.reasoning_dim, c.reasoning_layers, c.reasoning_heads,
                                                      c.reasoning_context_windows)
        self.reasoning_vq = ResidualVQ(c.reasoning_dim, c.num_reasoning_codebooks, c.reasoning_codebook_size,
                                       c.reasoning_codebook_dim)
        # reconstruction branch
        self.enc_in = nn.Linear(c.n_mels * c.stem_stride, c.enc_dim)
        self.enc = ConvNeXtStack(c.enc_dim, c.enc_blocks, c.enc_kernel, c.mlp_ratio)
        self.enc_down = nn.Linear(c.enc_dim * (c.recon_stride // c.stem_stride), c.latent_dim)
        self.latent = ConvNeXtStack(c.latent_dim, c.latent_blocks, c.latent_kernel, c.mlp_ratio)
        self.null_reasoning = nn.Parameter(torch.zeros(c.reasoning_dim))
        self.film = FiLM(c.reasoning_dim, c.latent_dim)
        self.enc_norm = nn.LayerNorm(c.latent_dim)
        self.recon_vq = ResidualVQ(c.latent_dim, c.num_recon_codebooks, c.recon_codebook_size,
                                   c.recon_codebook_dim)
        # decoder
        self.dec_latent = ConvNeXtStack(c.latent_dim, c.dec_latent_blocks, c.latent_kernel, c.mlp_ratio)
        self.dec_up = nn.Linear(c.latent_dim, c.dec_dim * (c.recon_stride // c.stem_stride))
        self.dec = ConvNeXtStack(c.dec_dim, c.dec_blocks, c.dec_kernel, c.mlp_ratio)
        self.dec_norm = nn.LayerNorm(c.dec_dim)
        self.head = ISTFTHead(c.dec_dim, c.n_fft, c.hop_length, c.stem_stride)
        self.dec_film = FiLM(c.reasoning_dim, c.latent_dim) if c.decoder_reasoning else None
        self.f0_head: F0Head | None = None
        self.harm_gain: nn.Linear | None = None
        self.source: HarmonicSource | None = None
        if c.harmonic_source:
            self.f0_head = F0Head(c.dec_dim, c.stem_stride, c.f0_min, c.f0_max)
            self.harm_gain = nn.Linear(c.dec_dim, 2 * (c.n_fft // 2 + 1) * c.stem_stride)
            nn.init.zeros_(self.harm_gain.weight)  # grown from a model without it: decodes like that model
            nn.init.zeros_(self.harm_gain.bias)
            self.source = HarmonicSource(c.sample_rate, c.n_fft, c.hop_length, c.harmonic_max_hz,
                                         c.harmonic_reset_frames)
        self._frozen_encoder: tuple[Any, ReasoningCodec] | None = None
        self._hash_cache: tuple[Any, bytes] | None = None
        #: static per-codebook frequency tables for entropy coding (``bitstream.EntropyTables``) or None
        self.entropy_tables: Any = None

    # ------------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> int:
        """Sample rate of the model's audio in Hz (24,000 for the default model)."""
        return self.config.sample_rate

    @property
    def reasoning_frame_rate(self) -> float:
        """Reasoning tokens per second (5.0 for the default model)."""
        return self.config.sample_rate / self.config.reasoning_hop

    @property
    def recon_frame_rate(self) -> float:
        """Reconstruction tokens per second (12.5 for the default model)."""
        return self.config.sample_rate / self.config.recon_hop

    @property
    def num_reasoning_codebooks(self) -> int:
        """``Kr``, the reasoning codebooks per frame."""
        return self.config.num_reasoning_codebooks

    @property
    def num_recon_codebooks(self) -> int:
        """``Kq``, the reconstruction codebooks per frame at the full bitrate."""
        return self.config.num_recon_codebooks

    @property
    def reasoning_codebook_size(self) -> int:
        """Codes per reasoning codebook (4096 for the default model)."""
        return self.config.reasoning_codebook_size

    @property
    def recon_codebook_size(self) -> int:
        """Codes per reconstruction codebook (1024 for the default model)."""
        return self.config.recon_codebook_size

    @property
    def bitrate(self) -> float:
        """Bits per second of the raw codes (all codebooks, bit-packed)."""
        return self.config.bitrate

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency of streaming encode + decode for the reconstruction path, in ms.

        A reconstruction frame is emitted when its ``recon_hop`` samples are in; the decoder then
        finalises audio up to ``n_fft − hop`` samples before that frame's end (the iSTFT overlap).
        """
        c = self.config
        return 1000.0 * (c.recon_hop + c.n_fft - c.hop_length) / c.sample_rate

    @property
    def reasoning_latency_ms(self) -> float:
        """A reasoning token is emitted when its 200 ms window closes."""
        return 1000.0 * self.config.reasoning_hop / self.config.sample_rate

    @property
    def device(self) -> torch.device:
        """The device the model's parameters are on (move it with ``.to(device)``)."""
        return self.null_reasoning.device

    def num_frames(self, num_samples: int) -> tuple[int, int]:
        """``(reasoning frames, reconstruction frames)`` for a signal of ``num_samples``."""
        c = self.config
        return -(-num_samples // c.reasoning_hop), -(-num_samples // c.recon_hop)

    def frame_window(self, j: Any) -> Any:
        """The reasoning window a reconstruction frame ``j`` (int or tensor of global indices) reads: the
        latest one completed at the frame's end (−1: none yet). Encoder FiLM and decoder share this rule."""
        c = self.config
        return (j + 1) * c.recon_hop // c.reasoning_hop - 1

    def padded_length(self, num_samples: int) -> int:
        """Samples the encoder runs over: enough to complete the last frame of both streams."""
        c = self.config
        nr, nq = self.num_frames(num_samples)
        return max(nr * c.reasoning_hop, nq * c.recon_hop)

    # ------------------------------------------------------------------ encoder core
    def encode_frames(self, wav: torch.Tensor, state: EncoderState | None = None, n_q: int | None = None
                      ) -> tuple[EncoderOutput, EncoderState]:
        """Run the encoder over ``wav [B, T]`` (``T`` a multiple of ``config.stem_hop``) from ``state``.

        ``T`` must be a multiple of ``config.stem_hop``. Returns the frames that this piece completes
        and the state to continue from. With
        ``state=None`` this is the start of a signal. Used by :meth:`encode`, the streaming encoder
        and training (with gradients).
        """
        c = self.config
        st = state or EncoderState()
        b = wav.shape[0]
        mel, st.mel = self.mel(wav, st.mel)  # [B, F, M]
        # --- reasoning windows
        rmel = mel
        if self.whisper_mel is not None:
            rmel, st.whisper_mel = self.whisper_mel(wav, st.whisper_mel)
        frames = rmel if st.reasoning_frames is None else torch.cat([st.reasoning_frames, rmel], dim=1)
        n_win = frames.shape[1] // c.reasoning_stride
        used = n_win * c.reasoning_stride
        st.reasoning_frames = frames[:, used:]
        if n_win > 0:
            r_pre, st.reasoning_cache = self.reasoning_encoder(frames[:, :used], st.reasoning_cache)
            rq = self.reasoning_vq(r_pre)
            r_q, r_codes = rq.quantized, rq.codes
        else:
            r_pre = mel.new_zeros(b, 0, c.reasoning_dim)
            r_q = r_pre
            r_codes = torch.zeros(b, c.num_reasoning_codebooks, 0, dtype=torch.long, device=wav.device)
            rq = None
        # --- reconstruction frames (stem at hop_length * stem_stride)
        steps = mel.shape[1] // c.stem_stride
        h, st.enc = self.enc(self.enc_in(mel.reshape(b, steps, c.stem_stride * c.n_mels)), st.enc)
        if st.enc_frames is not None:
            h = torch.cat([st.enc_frames, h], dim=1)
        per = c.recon_stride // c.stem_stride
        n_rec = h.shape[1] // per
        used = n_rec * per
        st.enc_frames = h[:, used:]
        z = self.enc_down(h[:, :used].reshape(b, n_rec, per * c.enc_dim))
        z, st.latent = self.latent(z, st.latent)
        # FiLM by the latest reasoning window completed at each recon frame's end
        null = self.null_reasoning.to(z.dtype).expand(b, 1, -1)
        prev = null if st.last_reasoning is None else st.last_reasoning[:, None]
        table = torch.cat([null, prev, r_q], dim=1)  # global window w ↦ index w − (windows_done − 1) + 1
        j = torch.arange(st.recon_done, st.recon_done + n_rec, device=wav.device)
        k = self.frame_window(j)
        idx = torch.where(k < 0, torch.zeros_like(k), k - (st.windows_done - 1) + 1)
        cond = table[:, idx]
        if n_rec > 0:
            z = self.enc_norm(self.film(z, cond))
            qq = self.recon_vq(z, n_q)
            q_q, q_codes = qq.quantized, qq.codes
        else:
            q_q = z.new_zeros(b, 0, c.latent_dim)
            q_codes = torch.zeros(b, n_q or c.num_recon_codebooks, 0, dtype=torch.long, device=wav.device)
            qq = None
        if n_win > 0:
            st.last_reasoning = r_q[:, -1]
        st.windows_done += n_win
        st.recon_done += n_rec
        losses = {}
        if self.training:
            zero = wav.new_zeros(())
            losses = {
                "reasoning_commit": rq.commit_loss if rq is not None else zero,
                "reasoning_codebook": rq.codebook_loss if rq is not None else zero,
                "recon_commit": qq.commit_loss if qq is not None else zero,
                "recon_codebook": qq.codebook_loss if qq is not None else zero,
            }
        out = EncoderOutput(r_codes, r_q, r_pre, q_codes, q_q, z if n_rec > 0 else q_q, losses,
                            {k: v for k, v in (("reasoning", rq), ("recon", qq)) if v is not None and self.training},
                            cond)
        return out, st

    def reasoning_features(self, wav: torch.Tensor) -> torch.Tensor:
        """Unquantised reasoning features ``[B, N, reasoning_dim]`` of the complete windows of ``wav [B, T]``
        (from the start of a signal; the reasoning branch alone, with gradients: for training heads)."""
        mel = self.whisper_mel(wav)[0] if self.whisper_mel is not None else self.mel(wav)[0]
        return self.reasoning_encoder(mel)[0]

    # ------------------------------------------------------------------ decoder core
    def decode_latent(self, z: torch.Tensor, state: DecoderState | None = None, cond: torch.Tensor | None = None,
                      f0: torch.Tensor | None = None) -> tuple[torch.Tensor, DecoderState]:
        """Quantised latent ``[B, N, Dq]`` → ``(final samples [B, N·recon_hop (− overlap at start)], state)``.

        ``cond [B, N, Dr]``: each frame's reasoning window (reasoning-conditioned decoders; None: the null
        window for every frame). ``f0 [B, N · recon_stride]`` (Hz, 0 = unvoiced): drive a harmonic-source
        decoder's comb with this F0 instead of the one it predicts (training with reference F0, analysis)."""
        c = self.config
        st = state or DecoderState()
        start = st.head is None
        b, n, _ = z.shape
        if self.dec_film is not None:
            if cond is None:
                cond = self.null_reasoning.to(z.dtype).expand(b, n, -1)
            z = self.dec_film(z, cond)
        h, st.latent = self.dec_latent(z, st.latent)
        h = self.dec_up(h).reshape(b, n * (c.recon_stride // c.stem_stride), c.dec_dim)
        h, st.dec = self.dec(h, st.dec)
        feats = self.dec_norm(h)
        y, head_state = self.head(feats, None if start else st.head, self._harmonic(feats, st, f0))
        st.head = head_state
        return y, st

    def _harmonic(self, feats: torch.Tensor, st: DecoderState, f0: torch.Tensor | None = None
                  ) -> torch.Tensor | None:
        """The shaped harmonic source ``[B, F, n_bins]`` (complex, relative to the head's magnitude) for the
        head frames of ``feats [B, N, D]`` (None without a harmonic source). Advances ``st.source``."""
        if self.source is None:
            return None
        c = self.config
        if self.training:
            st.features = feats
        b, n, _ = feats.shape
        if f0 is None:
            f0, voicing = self.f0_head(feats)
            f0 = torch.where(voicing > 0, f0, torch.zeros_like(f0))
        elif f0.shape != (b, n * c.stem_stride):
            raise ValueError(f"f0 must be [B, {n * c.stem_stride}] for these frames, got {tuple(f0.shape)}")
        if st.source is None:
            st.source = self.source.initial_state(b, feats.device, st.start_frame * c.recon_stride)
        spec, st.source = self.source(f0, st.source)
        spec = spec / (spec.abs().mean(-1, keepdim=True) + 1e-3)  # each frame's comb at unit mean magnitude
        g = self.harm_gain(feats).float().reshape(b, n * c.stem_stride, 2, -1)
        return torch.complex(g[:, :, 0], g[:, :, 1]) * spec

    def decode_frames(self, recon_codes: torch.Tensor, state: DecoderState | None = None,
                      reasoning_codes: torch.Tensor | None = None) -> tuple[torch.Tensor, DecoderState]:
        """Reconstruction codes ``[B, K, N]`` → final samples and state (see :meth:`decode_latent`).

        ``reasoning_codes [B, Kr, W]``: the reasoning windows that arrive with these frames (a
        reasoning-conditioned decoder needs, for each frame, the latest window completed at its end:
        push windows with or before the frames they cover, as the encoder emits them). A stream whose
        first piece has no reasoning codes is decoded without them (null window); other decoders ignore
        them."""
        c = self.config
        self._check_codes(recon_codes, c.num_recon_codebooks, c.recon_codebook_size, "recon")
        z = self.recon_vq.decode(recon_codes.to(self.device))  # checked before the move: no device sync
        st = state or DecoderState()
        cond = None
        if self.dec_film is not None:
            cond = self._decoder_conditions(st, reasoning_codes, z.shape[1], z.shape[0])
        if z.shape[1] == 0:  # no frames (e.g. reasoning windows only): nothing to decode yet
            return z.new_zeros(z.shape[0], 0), st
        return self.decode_latent(z, st, cond)

    def _decoder_conditions(self, st: DecoderState, reasoning_codes: torch.Tensor | None, n: int, b: int
                            ) -> torch.Tensor | None:
        """The reasoning window of each of the next ``n`` frames ``[B, n, Dr]`` (None: unconditioned stream)."""
        c = self.config
        if st.conditioned is None:
            st.conditioned = reasoning_codes is not None
        if reasoning_codes is not None and not st.conditioned:
            raise ValueError("this decoder stream started without reasoning codes; it cannot take them later")
        if not st.conditioned:
            st.recon_done += n
            return None
        if reasoning_codes is not None and reasoning_codes.shape[-1]:
            self._check_codes(reasoning_codes, c.num_reasoning_codebooks, c.reasoning_codebook_size, "reasoning")
            r_q = self.reasoning_vq.decode(reasoning_codes.to(self.device))
            st.windows = r_q if st.windows is None else torch.cat([st.windows, r_q], dim=1)
        have = 0 if st.windows is None else st.windows.shape[1]
        j = torch.arange(st.recon_done, st.recon_done + n)
        k = self.frame_window(j)
        if n and int(k[-1]) >= st.win_start + have:
            raise ValueError(f"reconstruction frame {int(j[-1])} needs reasoning window {int(k[-1])}, which has not "
                             f"arrived: push the reasoning codes with (or before) the frames they cover")
        if n and int(k[0]) >= 0 and int(k[0]) < st.win_start:
            raise ValueError(f"reasoning window {int(k[0])} was already dropped: push reconstruction frames "
                             f"in step with the reasoning codes")
        null = self.null_reasoning.to(self.device).expand(b, 1, -1)
        table = null if st.windows is None else torch.cat([null, st.windows.to(null.dtype)], dim=1)
        idx = torch.where(k < 0, torch.zeros_like(k), k - st.win_start + 1).to(self.device)
        st.recon_done += n
        k_next = self.frame_window(st.recon_done)
        drop = min(max(0, k_next - st.win_start), have)
        if drop:
            st.windows = st.windows[:, drop:]
            st.win_start += drop
        return table[:, idx]

    def flush(self, state: DecoderState) -> torch.Tensor:
        """The samples still held in the iSTFT overlap (the end of the signal) ``[B, n_fft − hop]``."""
        assert state.head is not None
        return state.head

    # ------------------------------------------------------------------ public API
    def prepare(self, wav: Any, sample_rate: int | None = None, lengths: Any = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate and convert input to ``([B, T] float on the model device, lengths [B])``
        (see :func:`reasoningcodec.inputs.prepare_audio`)."""
        return prepare_audio(wav, self.sample_rate, self.device, sample_rate, lengths)

    def inference_encoder(self) -> "ReasoningCodec":
        """A frozen copy of the model in ``config.encoder_dtype`` (rebuilt when weights change)."""
        if self.config.encoder_dtype == "float32":
            return self
        key = (self.device, tuple(p._version for p in self.parameters()), tuple(id(p) for p in self.parameters()))
        if self._frozen_encoder is None or self._frozen_encoder[0] != key:
            clone = copy.copy(self)  # shallow: avoid copying the cached clone recursively
            clone.__dict__ = {k: v for k, v in self.__dict__.items() if k not in ("_frozen_encoder", "_hash_cache")}
            clone = copy.deepcopy(clone)
            clone._frozen_encoder = None
            clone._hash_cache = None
            clone = clone.to(torch.float64).eval().requires_grad_(False)
            object.__setattr__(self, "_frozen_encoder", (key, clone))
        return self._frozen_encoder[1]

    @torch.no_grad()
    def encode(self, wav: Any, sample_rate: int | None = None, lengths: Any = None,
               n_q: int | None = None) -> Codes:
        """Audio → :class:`Codes`.

        Args:
            wav: path, array or tensor ``[T]``, ``[B, T]`` or ``[B, C, T]`` at ``sample_rate``; or a
                list of clips ``[T]`` / ``[C, T]`` of any lengths (encoded as one padded batch; see
                :meth:`split` for the per-clip codes).
            sample_rate: rate of ``wav`` (default: the model rate).
            lengths: ``[B]`` valid samples per item for a padded batch.
            n_q: reconstruction codebooks to keep (default all).
        """
        x, lens = self.prepare(wav, sample_rate, lengths)
        enc = self.inference_encoder()
        total = self.padded_length(int(x.shape[1]))
        x = F.pad(x, (0, total - x.shape[1])).to(torch.float64 if enc is not self else torch.float32)
        with no_autocast(x.device):
            out, _ = enc.encode_frames(x, None, n_q)
        return self._trim_codes(out.reasoning_codes, out.recon_codes, lens)

    def _trim_codes(self, r: torch.Tensor, q: torch.Tensor, lens: torch.Tensor) -> Codes:
        c = self.config
        nr = -(-lens // c.reasoning_hop)
        nq = -(-lens // c.recon_hop)
        r = r[..., : int(nr.max())].clone()
        q = q[..., : int(nq.max())].clone()
        r *= (torch.arange(r.shape[-1])[None] < nr[:, None]).to(r.device)[:, None]
        q *= (torch.arange(q.shape[-1])[None] < nq[:, None]).to(q.device)[:, None]
        return Codes(r, q, lens.clone())

    def split(self, codes: Codes) -> list[Codes]:
        """A batch of :class:`Codes` → one per item, each cut to the frames of its own length (what
        encoding the item alone gives)."""
        if not isinstance(codes, Codes):
            raise TypeError(f"split expects a Codes object, got {type(codes).__name__}")
        out = []
        for i, n in enumerate(codes.lengths.cpu().tolist()):
            nr, nq = self.num_frames(int(n))
            out.append(codes.item(i, nr, nq))
        return out

    @torch.no_grad()
    def decode(self, codes: Codes | torch.Tensor, *, reasoning: torch.Tensor | None = None) -> torch.Tensor:
        """:class:`Codes` → waveform ``[B, 1, T]`` trimmed to ``max(codes.lengths)`` (items past their
        own length are zero). A reasoning-conditioned decoder reads ``codes.reasoning`` too; codes with
        no reasoning frames decode with the null window (lower quality).

        ``codes`` may also be a raw reconstruction tensor ``[B, Kq, Tq]`` of integer tokens, as a language
        model outputs them, with the reasoning tokens ``[B, Kr, Tr]`` (optional) as ``reasoning=``; every
        item is then ``Tq × recon_hop`` samples long (no lengths to trim to)."""
        codes = self._as_codes(codes, reasoning)
        q = codes.recon
        with no_autocast(self.device):
            y, st = self.decode_frames(q, None, codes.reasoning if codes.reasoning.shape[-1] else None)
        if st.head is not None:  # else: no frames at all, nothing held back
            y = torch.cat([y, self.flush(st)], dim=1)
        lens = codes.lengths.cpu()
        t = int(lens.max()) if lens.numel() else y.shape[1]
        if t > y.shape[1]:
            raise ValueError(f"codes.lengths ({t}) exceed what {q.shape[-1]} frames cover ({y.shape[1]})")
        y = y[:, :t]
        mask = (torch.arange(t)[None] < lens[:, None]).to(y.device)
        return (y * mask)[:, None]

    def _as_codes(self, codes: Any, reasoning: Any) -> Codes:
        """:class:`Codes`, or raw ``[B, Kq, Tq]`` (+ ``reasoning [B, Kr, Tr]``) integer tokens → :class:`Codes`."""
        if isinstance(codes, Codes):
            if reasoning is not None:
                raise OptionError("reasoning= goes with a raw reconstruction tensor; Codes carry their own "
                                  "reasoning tokens")
            return codes
        if not isinstance(codes, torch.Tensor):
            raise TypeError(f"decode expects Codes or a reconstruction token tensor [B, K, T], "
                            f"got {type(codes).__name__}")
        q = _int_tokens(codes, "recon")
        if q.dim() != 3:
            raise OptionError(f"recon tokens must be [B, K, T], got shape {tuple(q.shape)}")
        if reasoning is None:
            r = q.new_zeros(q.shape[0], self.num_reasoning_codebooks, 0)
        else:
            r = _int_tokens(reasoning, "reasoning")
            if r.dim() != 3 or r.shape[0] != q.shape[0]:
                raise OptionError(f"reasoning tokens must be [B, Kr, Tr] with B = {q.shape[0]} as the recon "
                                  f"tokens, got shape {tuple(r.shape)}")
        lengths = torch.full((q.shape[0],), q.shape[-1] * self.config.recon_hop, dtype=torch.long)
        return Codes(r, q, lengths)

    def _check_codes(self, codes: torch.Tensor, k_max: int, size: int, name: str) -> None:
        if codes.dim() != 3:
            raise ValueError(f"{name} codes must be [B, K, T], got shape {tuple(codes.shape)}")
        if not 1 <= codes.shape[1] <= k_max:
            raise ValueError(f"{name} codes have {codes.shape[1]} codebooks; the model has 1..{k_max}")
        # value range: checked where it is free of a device sync (codes on the CPU, where user codes
        # come from); codes already on an accelerator come from the encoder and are trusted, so that
        # streaming on CUDA does not wait for the device on every frame
        if codes.numel() and codes.device.type == "cpu":
            lo, hi = torch.aminmax(codes)
            if int(lo) < 0 or int(hi) >= size:
                raise ValueError(f"{name} codes must lie in 0..{size - 1}")

    # ------------------------------------------------------------------ streaming
    def stream_encoder(self, batch_size: int = 1, n_q: int | None = None) -> StreamEncoder:
        """A :class:`~reasoningcodec.streaming.StreamEncoder` for ``batch_size`` concurrent streams.

        Push chunks of any length (``[B, n]``); the concatenated :class:`Codes` it returns equal
        :meth:`encode` of the whole signal. ``n_q``: reconstruction codebooks to keep (default all).
        """
        return StreamEncoder(self, batch_size, n_q)

    def stream_decoder(self, batch_size: int = 1) -> StreamDecoder:
        """A :class:`~reasoningcodec.streaming.StreamDecoder` for ``batch_size`` concurrent streams.

        Push :class:`Codes` pieces as the stream encoder emits them; the concatenated audio
        ``[B, 1, T]`` (every push, then ``finish()``) equals :meth:`decode` of the whole codes.
        """
        return StreamDecoder(self, batch_size)

    # ------------------------------------------------------------------ weights
    def weights_hash(self) -> bytes:
        """sha256 over the parameter names, shapes and float32 values (32 bytes)."""
        key = tuple((id(p), p._version) for p in self.parameters())
        if self._hash_cache is not None and self._hash_cache[0] == key:
            return self._hash_cache[1]
        h = hashlib.sha256()
        for name, t in sorted(self.state_dict().items()):
            h.update(name.encode())
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().float().cpu().contiguous().numpy().tobytes())
        object.__setattr__(self, "_hash_cache", (key, h.digest()))
        return self._hash_cache[1]

    def save_pretrained(self, directory: Any, dtype: torch.dtype = torch.float32) -> None:
        """Write ``config.json``, ``model.safetensors`` (weights in ``dtype``) and, if the model has
        entropy tables, ``entropy.safetensors`` into ``directory`` (created if missing; each file written
        atomically). :meth:`from_pretrained` reads it back."""
        save_pretrained(self, directory, dtype)

    @classmethod
    def from_pretrained(cls, name_or_path: Any, device: Any = "cpu") -> "ReasoningCodec":
        """Load a codec from a folder written by :meth:`save_pretrained` or a Hugging Face Hub id
        (``"owner/name"``), in eval mode on ``device``.

        Raises:
            WeightsError: missing, corrupt or mismatching weights or config, or a Hub id that cannot be
                fetched.
            OptionError: ``device`` does not exist on this machine.
        """
        return load_pretrained(cls, name_or_path, device)


def load(device: Any = "cpu") -> ReasoningCodec:
    """The default trained codec shipped inside the package (no network), on ``device``.

    Raises:
        OptionError: ``device`` does not exist here.
        NoWeightsInstalledError: this copy of the package ships no weights.
    """
    check_device(device)
    return ReasoningCodec.from_pretrained(require_default_weights(), device)

