"""UniAudioLM: one autoregressive model over text tokens and codec frames.

Global stack (each position is one text token or one audio frame)::

    embed: text embedding, or for audio positions the sum of the K per-codebook embeddings
    → audio-understanding expert layers   (audio positions take their output; text positions bypass)
    → backbone layers                     (all positions)  → norm → text head
    → audio-generation expert layers      (read by positions that predict audio) → norm → depth transformer

Position ``t`` predicts position ``t + 1``. The text head is trained where the next position is text or
the first frame of an audio segment (target ``<audio>``: the modality switch); the depth transformer is
trained where the next position is an audio frame. Losses are masked by ``loss_mask``.

Options (:class:`UniAudioConfig`): ``codec_codebook_dim`` also reads each code through the codec's frozen
codebook vector (``codec_vectors_only``: only through it; ``audio_summary``: every position after a clip
also reads the clip's running mean and spread of those vectors; ``clip_attention``: and reads back the
text after earlier clips that sound alike); ``ctc_weight`` adds a CTC loss that makes the
audio positions of speech-recognition rows spell their transcription; ``style_conditioning`` adds the
requested speaking style (:mod:`uniaudio_lm.style`) to every frame of generated speech.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_model, save_model
from torch import nn

from .audio_encoder import AudioEncoder
from .codec_inputs import ClipAttention, CodecVectorInputs
from .config import UniAudioConfig
from .depth import DepthTransformer
from .layers import Block, KVCache, RMSNorm, Rotary, WhisperBlock, attention_mask, positions_from_valid
from .sentence import SentenceBatch
from .style import StyleInput
from .tokenizer import SPECIAL_TOKENS

IGNORE = -100
#: Text ids of the transcription field's tags (special tokens are the tokenizer's first ids, in order).
_TRANSCRIPTION = (SPECIAL_TOKENS.index("<transcription>"), SPECIAL_TOKENS.index("</transcription>"))


@dataclass
class GlobalOutput:
    """Hidden states of the global stack, ``[B, T, D]`` each."""

    text_hidden: torch.Tensor
    audio_hidden: torch.Tensor
    #: the audio encoder's states ``[B, T, E]`` (``audio_encoder_layers``; else ``None``)
    encoder_hidden: torch.Tensor | None = None


@dataclass
class LMOutput:
    """Training losses (scalars) and target counts."""

    loss: torch.Tensor
    text_loss: torch.Tensor
    audio_loss: torch.Tensor
    n_text: int
    n_audio: int
    ctc_loss: torch.Tensor | None = None
    encoder_ctc_loss: torch.Tensor | None = None


class UniAudioLM(CodecVectorInputs, nn.Module):
    """The UniAudio language model (see the module docstring)."""

    def __init__(self, config: UniAudioConfig) -> None:
        super().__init__()
        c = self.config = config
        self.vocab = c.audio_vocab
        self.K, self.Va = c.num_codebooks, c.audio_vocab_size
        hd = int(c.head_dim or c.dim // c.n_heads)

        whisper = c.block_style == "whisper"

        def blocks(n: int) -> nn.ModuleList:
            if whisper:
                return nn.ModuleList(WhisperBlock(c.dim, c.n_heads, hd, c.ffn_dim, c.norm_eps) for _ in range(n))
            return nn.ModuleList(Block(c.dim, c.n_heads, c.n_kv_heads, hd, c.ffn_dim, c.norm_eps, c.attn_bias)
                                 for _ in range(n))

        def norm() -> nn.Module:
            return nn.LayerNorm(c.dim, eps=c.norm_eps) if whisper else RMSNorm(c.dim, c.norm_eps)

        self.text_embed = nn.Embedding(c.text_vocab_size, c.dim)
        self.audio_embed = nn.Embedding(self.K * self.Va, c.dim)
        self.understanding = blocks(c.n_understanding_layers)
        self.backbone = blocks(c.n_backbone_layers)
        self.generation = blocks(c.n_generation_layers)
        self.norm = norm()
        self.gen_norm = norm()
        #: learned positions of the ``whisper`` block design (added to the inputs; ``None`` with RoPE)
        self.pos_embed = nn.Embedding(c.max_seq_len, c.dim) if whisper else None
        self.text_head = nn.Linear(c.dim, c.text_vocab_size, bias=False)
        self.depth = DepthTransformer(c)
        self.ctc_blank = nn.Linear(c.dim, 1) if c.ctc_weight > 0 else None
        self.codec_proj_r = self.codec_proj_q = None
        if c.codec_codebook_dim:
            d = c.codec_codebook_dim
            v = c.audio_vocab
            self.register_buffer("codec_vectors_r", torch.zeros(v.num_reasoning_codebooks, v.reasoning_codebook_size, d))
            self.register_buffer("codec_vectors_q", torch.zeros(v.num_recon_codebooks, v.recon_codebook_size, d))
            self.codec_proj_r = nn.Linear(v.num_reasoning_codebooks * d, c.dim, bias=False)
            self.codec_proj_q = nn.Linear(v.num_recon_codebooks * d, c.dim, bias=False)
        self.summary_proj = None
        if c.audio_summary:
            v = c.audio_vocab
            width = 2 * (v.num_reasoning_codebooks + v.num_recon_codebooks) * c.codec_codebook_dim
            self.summary_proj = nn.Linear(width, c.dim, bias=False)
        self.clip_attn = ClipAttention(c.dim) if c.clip_attention else None
        self.audio_encoder = None
        if c.audio_encoder_layers:
            v = c.audio_vocab
            width = (v.num_reasoning_codebooks + v.num_recon_codebooks) * c.codec_codebook_dim
            self.audio_encoder = AudioEncoder(width, c.audio_encoder_dim, c.audio_encoder_layers, c.dim, c.norm_eps)
        self.style_proj = StyleInput(c.dim) if c.style_conditioning else None
        #: learned offsets of reasoning (row 0) and reconstruction (row 1) code frames
        self.codec_offset = nn.Parameter(torch.zeros(2, c.dim)) if c.codec_vectors_only else None
        self.rotary = Rotary(hd, c.rope_theta, c.rope_scaling)
        self.register_buffer("_audio_offsets", torch.arange(self.K) * self.Va, persistent=False)
        self.reset_parameters()
        if c.tie_text_embeddings:
            self.text_head.weight = self.text_embed.weight

    def reset_parameters(self) -> None:
        std = self.config.init_std
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=std)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
        for b in [*self.understanding, *self.backbone, *self.generation, *self.depth.layers]:
            nn.init.normal_(b.self_attn.o_proj.weight, std=std / (2 * self.config.n_layers) ** 0.5)
            nn.init.normal_(b.mlp.down_proj.weight, std=std / (2 * self.config.n_layers) ** 0.5)
        nn.init.normal_(self.depth.heads, std=std)
        if self.pos_embed is not None:
            nn.init.normal_(self.pos_embed.weight, std=std / 2)
        for proj in (self.codec_proj_r, self.codec_proj_q, self.summary_proj,
                     self.clip_attn.out if self.clip_attn is not None else None):
            if proj is not None:
                nn.init.zeros_(proj.weight)
        if self.audio_encoder is not None:
            self.audio_encoder.reset_parameters(std)
        if self.style_proj is not None:
            self.style_proj.reset_parameters()

    @property
    def layers(self) -> list[Block]:
        """All global layers in order (understanding experts, backbone, generation experts)."""
        return [*self.understanding, *self.backbone, *self.generation]

    def num_parameters(self) -> int:
        return sum(p.numel() for p in {id(p): p for p in self.parameters()}.values())

    # ------------------------------------------------------------------ global stack
    def embed(self, text_ids: torch.Tensor, audio_ids: torch.Tensor, is_audio: torch.Tensor,
              frames: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> torch.Tensor:
        """``text_ids [B, T]``, ``audio_ids [B, T, K]``, ``is_audio [B, T]`` → ``[B, T, D]`` (``frames``:
        ``_frame_vectors(audio_ids)`` when the caller has them already)."""
        a = self.audio_embed(audio_ids + self._audio_offsets)
        if self.codec_offset is not None:          # real codes are read through the codec vectors only
            v = self.vocab
            a = (a * (audio_ids >= v.codebook_pad)[..., None]).sum(-2)
            first = audio_ids[..., 0]
            is_r = first < v.reasoning_codebook_size
            is_q = (first >= v.recon_offset) & (first < v.codebook_pad)
            a = a + is_r[..., None] * self.codec_offset[0] + is_q[..., None] * self.codec_offset[1]
        else:
            a = a.sum(-2)
        if self.codec_proj_r is not None:
            a = a + self._codec_vector_embed(frames or self._frame_vectors(audio_ids))
        return torch.where(is_audio[..., None], a, self.text_embed(text_ids))

    def hidden(self, text_ids: torch.Tensor, audio_ids: torch.Tensor, is_audio: torch.Tensor,
               valid: torch.Tensor, cache: KVCache | None = None, style: torch.Tensor | None = None,
               style_at: torch.Tensor | None = None) -> GlobalOutput:
        """Run the global stack over ``T`` new positions (appended to ``cache`` if given).

        Args:
            text_ids: ``[B, T]``; audio_ids: ``[B, T, K]``; is_audio, valid: bool ``[B, T]``.
            style: ``[B, F]`` style features per row (:mod:`uniaudio_lm.style`), added where ``style_at``
                (bool ``[B, T]``: the generated speech frames); ignored without ``style_conditioning``.
        """
        t = text_ids.shape[1]
        frames = self._frame_vectors(audio_ids) if self.codec_proj_r is not None else None   # looked up once
        x = self.embed(text_ids, audio_ids, is_audio, frames)
        enc = None
        if self.summary_proj is not None:
            x, enc = self._clip_inputs(x, frames, is_audio, valid, cache)
        if self.style_proj is not None and style is not None and style_at is not None:
            x = x + self.style_proj(style.to(x.dtype))[:, None] * style_at[..., None].to(x.dtype)
        if cache is None:
            pos, mask, s0 = positions_from_valid(valid), attention_mask(valid, 0, t), 0
        else:
            s0 = cache.length
            if s0 + t > cache.max_len:
                raise ValueError(f"KV cache full ({cache.max_len} positions)")
            pos = positions_from_valid(valid, cache.next_pos)
            cache.valid[:, s0 : s0 + t] = valid
            mask = attention_mask(cache.valid[:, : s0 + t], s0, t)
        if self.pos_embed is not None:
            if int(pos.max()) >= self.config.max_seq_len:
                raise ValueError(f"sequence longer than the model's {self.config.max_seq_len} learned positions")
            x = x + self.pos_embed(pos)
        cos, sin = self.rotary(pos, x.dtype)
        i = 0
        audio = is_audio[..., None]
        for layer in self.understanding:
            x = torch.where(audio, layer(x, cos, sin, mask, cache, i), x)
            i += 1
        for layer in self.backbone:
            x = layer(x, cos, sin, mask, cache, i)
            i += 1
        text_hidden = self.norm(x)
        for layer in self.generation:
            x = layer(x, cos, sin, mask, cache, i)
            i += 1
        if cache is not None:
            cache.length = s0 + t
            cache.next_pos = cache.next_pos + valid.long().sum(1)
        return GlobalOutput(text_hidden, self.gen_norm(x), enc)

    def new_cache(self, batch: int, max_len: int, device: torch.device | str | None = None,
                  dtype: torch.dtype | None = None) -> KVCache:
        """An empty KV cache for all global layers."""
        p = self.text_embed.weight
        c = self.config
        return KVCache.empty(c.n_layers, batch, c.n_kv_heads, int(c.head_dim or c.dim // c.n_heads), max_len,
                             device or p.device, dtype or p.dtype)

    def text_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Text-head logits ``[..., V_text]`` from ``text_hidden``."""
        return self.text_head(h)

    # ------------------------------------------------------------------ training
    def targets(self, batch: SentenceBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Where the heads are trained: ``(text_sel [B, L-1], text_labels [B, L-1], audio_sel [B, L-1])``."""
        v = self.vocab
        tgt = batch.loss_mask[:, 1:] & batch.valid[:, 1:] & batch.valid[:, :-1]
        nxt_audio = batch.is_audio[:, 1:]
        first = batch.audio_ids[:, 1:, 0]
        prev_end_r = batch.is_audio[:, :-1] & (batch.audio_ids[:, :-1, 0] == v.end_reasoning)
        starts = (first == v.begin_reasoning) | (first == v.begin_voice) | ((first == v.begin_recon) & ~prev_end_r)
        return tgt & (~nxt_audio | starts), batch.text_ids[:, 1:], tgt & nxt_audio

    def audio_labels(self, codes: torch.Tensor) -> torch.Tensor:
        """Target frames ``[N, K]`` → CE labels with forced entries (codebook pads, the rest of a special
        frame) set to ``IGNORE``."""
        v = self.vocab
        special = (codes[:, :1] > v.codebook_pad) & (codes[:, :1] < v.size)
        ignore = codes == v.codebook_pad
        ignore[:, 1:] |= special.expand(-1, codes.shape[1] - 1)
        return codes.masked_fill(ignore, IGNORE)

    def forward(self, batch: SentenceBatch) -> LMOutput:
        """Masked next-token losses of a right-padded :class:`SentenceBatch`.

        ``text_ids`` at audio positions must hold the tokenizer's ``<audio>`` id, which is the text-head
        target before an audio segment (as :func:`uniaudio_lm.sentence.build` produces).
        """
        g = self.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid, style=batch.style,
                        style_at=None if batch.style is None else batch.is_audio & batch.loss_mask)
        text_sel, labels, audio_sel = self.targets(batch)
        zero = g.text_hidden.sum() * 0.0
        if bool(text_sel.any()):
            logits = self.text_logits(g.text_hidden[:, :-1][text_sel])
            text_loss = F.cross_entropy(logits.float(), labels[text_sel])
        else:
            text_loss = zero
        codes = batch.audio_ids[:, 1:][audio_sel]
        lab = self.audio_labels(codes)
        if bool((lab != IGNORE).any()):
            logits = self.depth(g.audio_hidden[:, :-1][audio_sel], codes)
            audio_loss = F.cross_entropy(logits.flatten(0, 1).float(), lab.flatten(), ignore_index=IGNORE)
        else:
            audio_loss = zero + self.depth.heads.sum() * 0.0
        loss = text_loss + self.config.audio_loss_weight * audio_loss
        ctc = None
        if self.ctc_blank is not None:
            spans = self.ctc_spans(batch)
            ctc = self.ctc_loss(g.text_hidden, batch, spans)
            loss = loss + self.config.ctc_weight * ctc
            ctc = ctc.detach() if spans else None      # a batch without recognition rows has no CTC loss
        enc_ctc = None
        if self.audio_encoder is not None and self.config.audio_encoder_ctc_weight > 0:
            enc_ctc = self.encoder_ctc_loss(g.encoder_hidden, batch)
            if enc_ctc is not None:
                loss = loss + self.config.audio_encoder_ctc_weight * enc_ctc
                enc_ctc = enc_ctc.detach()
        return LMOutput(loss, text_loss.detach(), audio_loss.detach(), int(text_sel.sum()), int(audio_sel.sum()), ctc,
                        enc_ctc)

    def encoder_ctc_loss(self, encoder_hidden: torch.Tensor, batch: SentenceBatch) -> torch.Tensor | None:
        """The audio encoder's CTC loss on the batch's English speech-recognition rows (``None``: none)."""
        v, first = self.vocab, batch.audio_ids[..., 0]
        q_ok = (first >= v.recon_offset) & (first < v.recon_offset + v.recon_codebook_size)   # reconstruction frames
        return self.audio_encoder.ctc_loss(encoder_hidden, q_ok & batch.is_audio & batch.valid, self.ctc_spans(batch))

    def encoder_states(self, batch: SentenceBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """The audio encoder alone (the global stack is not run): its states ``[B, T, E]`` (as
        :meth:`hidden` computes them) and where the reconstruction frames are, bool ``[B, T]``."""
        if self.audio_encoder is None:
            raise ValueError("this model has no audio encoder (audio_encoder_layers 0)")
        frames = self._frame_vectors(batch.audio_ids)
        _, clip, counts = self._clip_features(frames, batch.is_audio, batch.valid, None)
        (r, r_ok), (q, q_ok) = frames
        audio = batch.is_audio & batch.valid
        return self.audio_encoder(r, q, r_ok & audio, q_ok & audio, counts, clip), q_ok & audio

    def encoder_forward(self, batch: SentenceBatch) -> LMOutput:
        """Only the audio encoder and its CTC loss (training the encoder alone: the train recipe's
        ``objective: "audio_encoder_ctc"``); the global stack is not run."""
        enc, q_ok = self.encoder_states(batch)
        ctc = self.audio_encoder.ctc_loss(enc, q_ok, self.ctc_spans(batch))
        zero = enc.sum() * 0.0
        loss = ctc if ctc is not None else zero
        return LMOutput(loss, zero.detach(), zero.detach(), 0, 0, None, None if ctc is None else ctc.detach())

    def ctc_spans(self, batch: SentenceBatch) -> list[tuple[int, int, int, torch.Tensor]]:
        """``(row, audio_start, audio_end, transcription_ids)`` for every audio item directly followed by
        a target ``<transcription>`` field (speech recognition rows)."""
        open_id, close_id = _TRANSCRIPTION
        out = []
        hits = (batch.text_ids == open_id) & batch.loss_mask & batch.valid & ~batch.is_audio
        for b, t in hits.nonzero().tolist():
            audio = batch.is_audio[b, :t].tolist()
            if t == 0 or not audio[t - 1]:
                continue
            s = t - 1
            while s > 0 and audio[s - 1]:
                s -= 1
            row = batch.text_ids[b, t + 1:]
            close = (row == close_id).nonzero()
            if len(close) == 0:
                continue
            ids = row[: int(close[0])]
            if 0 < len(ids) <= t - s:
                out.append((b, s, t, ids))
        return out

    def ctc_log_probs(self, text_hidden: torch.Tensor) -> torch.Tensor:
        """CTC log-probabilities ``[..., V_text + 1]`` (the blank last) of hidden states."""
        if self.ctc_blank is None:
            raise ValueError("this model has no CTC head (ctc_weight 0)")
        return torch.cat([self.text_logits(text_hidden), self.ctc_blank(text_hidden)], -1).float().log_softmax(-1)

    @torch.no_grad()
    def ctc_greedy(self, text_hidden: torch.Tensor) -> list[int]:
        """Greedy CTC transcript ``[T, D] → text ids`` of one audio span's hidden states (best token per
        position, repeats merged, blanks dropped)."""
        best = self.ctc_log_probs(text_hidden).argmax(-1).tolist()
        blank = self.config.text_vocab_size
        return [i for k, i in enumerate(best) if i != blank and (k == 0 or best[k - 1] != i)]

    def ctc_loss(self, text_hidden: torch.Tensor, batch: SentenceBatch,
                 spans: list[tuple[int, int, int, torch.Tensor]] | None = None) -> torch.Tensor:
        """Mean CTC loss (per target token) over the batch's speech-recognition spans (zero, with a graph,
        when there are none)."""
        spans = self.ctc_spans(batch) if spans is None else spans
        if not spans:
            return text_hidden.sum() * 0.0 + self.ctc_blank.weight.sum() * 0.0
        lens = [e - s for _, s, e, _ in spans]
        h = torch.zeros(len(spans), max(lens), text_hidden.shape[-1], dtype=text_hidden.dtype,
                        device=text_hidden.device)
        for i, (b, s, e, _) in enumerate(spans):
            h[i, : e - s] = text_hidden[b, s:e]
        logp = self.ctc_log_probs(h).transpose(0, 1)
        ys = torch.cat([ids for *_, ids in spans])
        ylen = torch.tensor([len(ids) for *_, ids in spans])
        return F.ctc_loss(logp, ys, torch.tensor(lens), ylen, blank=self.config.text_vocab_size,
                          reduction="sum", zero_infinity=True) / max(int(ylen.sum()), 1)

    # ------------------------------------------------------------------ weights
    def save_pretrained(self, directory: str | Path) -> None:
        """Write ``config.json`` and ``model.safetensors``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.config.to_json(d / "config.json")
        save_model(self, str(d / "model.safetensors"))

    @classmethod
    def from_pretrained(cls, directory: str | Path, map_location: str | torch.device = "cpu",
                        overrides: dict | None = None) -> "UniAudioLM":
        """Load a model written by :meth:`save_pretrained`. ``overrides`` replaces config fields that add
        modules (``ctc_weight``, ``codec_codebook_dim``, ``audio_summary``, ``clip_attention``,
        ``audio_encoder_layers``, ``style_conditioning``): weights the
        folder lacks for them start fresh (the codec-vector tables empty: fill them with
        :meth:`set_codec_vectors`)."""
        d = Path(directory)
        config = UniAudioConfig.from_json(d / "config.json")
        fresh: tuple[str, ...] = ()
        if overrides:
            before = config
            config = dataclasses.replace(config, **overrides)
            fresh = (*(("ctc_blank.",) if config.ctc_weight > 0 and not before.ctc_weight else ()),
                     *(("codec_vectors_", "codec_proj_") if config.codec_codebook_dim and not before.codec_codebook_dim
                       else ()),
                     *(("codec_offset",) if config.codec_vectors_only and not before.codec_vectors_only else ()),
                     *(("summary_proj.",) if config.audio_summary and not before.audio_summary else ()),
                     *(("clip_attn.",) if config.clip_attention and not before.clip_attention else ()),
                     *(("audio_encoder.",) if config.audio_encoder_layers and not before.audio_encoder_layers
                       else ()),
                     *(("style_proj.",) if config.style_conditioning and not before.style_conditioning else ()))
        model = cls(config)
        missing, unexpected = load_model(model, str(d / "model.safetensors"), strict=False, device=str(map_location))
        bad = [k for k in missing if not k.startswith(fresh or ("\0",))] + \
              [k for k in unexpected if not (k.startswith("ctc_blank.") and config.ctc_weight == 0)]
        if bad:
            raise ValueError(f"{d / 'model.safetensors'} does not match its config: {', '.join(sorted(bad)[:5])}")
        return model.to(map_location)
