"""Language-model configuration as data (dataclass ⇄ JSON) with the ``tiny`` / ``small`` / ``paper`` presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasoningcodec import CodecConfig
from reasoningcodec.configio import build, read_object

from .vocab import AudioVocab

PRESETS = ("tiny", "small", "paper")
#: Block designs of the global stack: ``llama`` (RMSNorm, grouped-query attention with RoPE, SwiGLU) or
#: ``whisper`` (LayerNorm, full multi-head attention with biases, learned positions, GELU MLP: the design
#: of Whisper's text decoder, which :mod:`uniaudio_lm.whisper_init` loads into the backbone).
BLOCK_STYLES = ("llama", "whisper")

#: How errors name this config.
_WHAT = "UniAudioConfig"


@dataclass
class UniAudioConfig:
    """Every size of :class:`uniaudio_lm.UniAudioLM`.

    The audio vocabulary is derived from the four codec fields (see :class:`AudioVocab`); the text
    vocabulary size is the tokenizer's. The global stack is ``n_understanding_layers`` audio-understanding
    expert layers → ``n_backbone_layers`` backbone layers → ``n_generation_layers`` audio-generation
    expert layers; the local ``depth_*`` transformer predicts the codebooks of one frame.
    """

    # vocabularies
    text_vocab_size: int = 4096
    num_reasoning_codebooks: int = 8
    reasoning_codebook_size: int = 4096
    num_recon_codebooks: int = 8
    recon_codebook_size: int = 1024

    # global transformer
    dim: int = 512
    n_heads: int = 8
    n_kv_heads: int = 4
    head_dim: int | None = None
    ffn_dim: int = 1408
    n_understanding_layers: int = 2
    n_backbone_layers: int = 8
    n_generation_layers: int = 2
    rope_theta: float = 500000.0
    rope_scaling: dict[str, Any] | None = None
    norm_eps: float = 1e-5
    attn_bias: bool = False
    tie_text_embeddings: bool = False
    max_seq_len: int = 4096
    #: block design of the global stack (:data:`BLOCK_STYLES`); ``whisper`` needs ``n_kv_heads == n_heads``
    #: and adds a learned position table of ``max_seq_len`` rows
    block_style: str = "llama"

    # local (depth) transformer
    depth_dim: int = 256
    depth_layers: int = 2
    depth_heads: int = 4
    depth_kv_heads: int = 4
    depth_ffn_dim: int = 704

    # training
    audio_loss_weight: float = 1.0
    init_std: float = 0.02
    #: weight of the auxiliary CTC loss on speech-recognition rows (0: off). With it on, the model
    #: gains one blank logit (``ctc_blank``) and the audio positions of every audio item followed by a
    #: target ``<transcription>`` are trained to spell that transcription (CTC over the text head's
    #: tokens plus the blank), which teaches them to carry the words the text head must then say.
    ctc_weight: float = 0.0
    #: with ``codec_codebook_dim > 0`` the model also reads each audio code through the codec's own
    #: codebook vector (``codec_codebook_dim`` wide, frozen, copied from the codec by
    #: :meth:`UniAudioLM.set_codec_vectors`): a frame's vectors, one per codebook, concatenated and mapped
    #: by a learned linear layer (zero at the start) are added to its learned code embeddings, so codes
    #: the codec puts close together start out close for the model too.
    codec_codebook_dim: int = 0
    #: with ``codec_codebook_dim``: read real codes *only* through the codec vectors (the learned code
    #: embeddings then serve the special frames alone), plus one learned offset for code frames.
    #: :meth:`UniAudioLM.fit_codec_projection` starts the maps as the least-squares fit of the learned
    #: embeddings, so a model trained without this option keeps most of its input function.
    codec_vectors_only: bool = False
    #: with ``codec_codebook_dim``: every position after the start of an audio clip also reads a summary
    #: of the clip so far (the mean and spread over its frames of their codec vectors, per stream), mapped
    #: by a learned linear layer that starts at zero. Text after a clip keeps that clip's summary until
    #: the next clip starts, so a label reads the clip it names and a query clip can be compared with the
    #: labelled ones by one attention step (few-shot classification).
    audio_summary: bool = False
    #: with ``audio_summary``: every position also attends to the text after earlier clips, weighted by
    #: the cosine of the clip summaries (:class:`uniaudio_lm.codec_inputs.ClipAttention`), and adds the
    #: token embeddings it reads through a learned map that starts at zero.
    clip_attention: bool = False
    #: with ``audio_summary``: a small transformer (``audio_encoder_layers`` layers, ``audio_encoder_dim``
    #: wide) reads each clip's frames through their codec vectors, causally and only within the clip, with
    #: both streams on one time axis (:class:`uniaudio_lm.audio_encoder.AudioEncoder`); its output is added
    #: to the frames' inputs through a learned map that starts at zero. ``audio_encoder_ctc_weight`` trains
    #: it to spell the transcription of speech-recognition rows (CTC over characters).
    audio_encoder_layers: int = 0
    audio_encoder_dim: int = 192
    audio_encoder_ctc_weight: float = 0.0
    #: speaking-style conditioning (:mod:`uniaudio_lm.style`): the requested rate, pitch and gender, as
    #: six numbers through a small map (zero at the start), are added to every frame of generated speech
    style_conditioning: bool = False

    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.head_dim is None:
            self.head_dim = self.dim // self.n_heads
        for name in ("dim", "n_heads", "n_kv_heads", "ffn_dim", "n_backbone_layers", "depth_dim", "depth_layers",
                     "text_vocab_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"UniAudioConfig.{name} must be >= 1")
        if self.ctc_weight < 0 or self.codec_codebook_dim < 0:
            raise ValueError("UniAudioConfig.ctc_weight and codec_codebook_dim must be >= 0")
        if self.codec_vectors_only and not self.codec_codebook_dim:
            raise ValueError("UniAudioConfig.codec_vectors_only needs codec_codebook_dim > 0")
        if self.audio_summary and not self.codec_codebook_dim:
            raise ValueError("UniAudioConfig.audio_summary needs codec_codebook_dim > 0")
        if self.clip_attention and not self.audio_summary:
            raise ValueError("UniAudioConfig.clip_attention needs audio_summary")
        if self.audio_encoder_layers < 0 or self.audio_encoder_ctc_weight < 0:
            raise ValueError("UniAudioConfig.audio_encoder_layers and audio_encoder_ctc_weight must be >= 0")
        if self.audio_encoder_layers and not self.audio_summary:
            raise ValueError("UniAudioConfig.audio_encoder_layers needs audio_summary")
        if self.audio_encoder_layers and (self.audio_encoder_dim < 8 or self.audio_encoder_dim % 8):
            raise ValueError("UniAudioConfig.audio_encoder_dim must be a positive multiple of 8")
        if self.block_style not in BLOCK_STYLES:
            raise ValueError(f"UniAudioConfig.block_style must be one of {BLOCK_STYLES}, not {self.block_style!r}")
        if self.block_style == "whisper" and self.n_kv_heads != self.n_heads:
            raise ValueError("UniAudioConfig.block_style 'whisper' uses full multi-head attention: "
                             "n_kv_heads must equal n_heads")
        if self.n_heads % self.n_kv_heads or self.depth_heads % self.depth_kv_heads:
            raise ValueError("n_heads must be a multiple of n_kv_heads (and depth_heads of depth_kv_heads)")
        if self.depth_dim % self.depth_heads or (self.head_dim or 0) % 2 or (self.depth_dim // self.depth_heads) % 2:
            raise ValueError("head dimensions must be even and depth_dim divisible by depth_heads")
        AudioVocab(self.num_reasoning_codebooks, self.reasoning_codebook_size, self.num_recon_codebooks,
                   self.recon_codebook_size)

    # ------------------------------------------------------------------ derived
    @property
    def audio_vocab(self) -> AudioVocab:
        return AudioVocab(self.num_reasoning_codebooks, self.reasoning_codebook_size, self.num_recon_codebooks,
                          self.recon_codebook_size)

    @property
    def num_codebooks(self) -> int:
        return self.audio_vocab.num_codebooks

    @property
    def audio_vocab_size(self) -> int:
        return self.audio_vocab.size

    @property
    def n_layers(self) -> int:
        return self.n_understanding_layers + self.n_backbone_layers + self.n_generation_layers

    # ------------------------------------------------------------------ presets
    @classmethod
    def preset(cls, name: str, codec: CodecConfig | None = None, text_vocab_size: int | None = None,
               **overrides: Any) -> "UniAudioConfig":
        """``tiny`` (tests), ``small`` (tens of millions of parameters, CPU-trainable) or ``paper``
        (Llama-3.2-3B-like global stack; configuration only). The codec fields come from ``codec``
        (default: the default :class:`CodecConfig`, or for ``paper`` the paper's 8×4096 / 8×8192)."""
        if name == "tiny":
            p: dict[str, Any] = dict(dim=64, n_heads=4, n_kv_heads=2, ffn_dim=128, n_understanding_layers=1,
                                     n_backbone_layers=2, n_generation_layers=1, depth_dim=64, depth_layers=1,
                                     depth_heads=4, depth_kv_heads=2, depth_ffn_dim=128, max_seq_len=1024)
        elif name == "small":
            p = dict(dim=384, n_heads=6, n_kv_heads=2, ffn_dim=1024, n_understanding_layers=2, n_backbone_layers=8,
                     n_generation_layers=2, depth_dim=256, depth_layers=2, depth_heads=4, depth_kv_heads=2,
                     depth_ffn_dim=704, max_seq_len=2048)
        elif name == "paper":
            # Llama-3.2-3B: 28 layers, 3072 wide, 24 heads / 8 KV heads, 8192 FFN, tied 128256-token embeddings
            p = dict(text_vocab_size=128256, dim=3072, n_heads=24, n_kv_heads=8, ffn_dim=8192,
                     n_understanding_layers=3, n_backbone_layers=28, n_generation_layers=2, rope_theta=500000.0,
                     rope_scaling={"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                                   "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                     tie_text_embeddings=True, max_seq_len=8192, depth_dim=1024, depth_layers=4, depth_heads=16,
                     depth_kv_heads=8, depth_ffn_dim=2816)
            if codec is None:
                p.update(num_reasoning_codebooks=8, reasoning_codebook_size=4096, num_recon_codebooks=8,
                         recon_codebook_size=8192)
        else:
            raise ValueError(f"unknown preset {name!r}; expected one of {PRESETS}")
        if codec is not None or name != "paper":
            c = codec or CodecConfig()
            p.update(num_reasoning_codebooks=c.num_reasoning_codebooks, reasoning_codebook_size=c.reasoning_codebook_size,
                     num_recon_codebooks=c.num_recon_codebooks, recon_codebook_size=c.recon_codebook_size)
        if text_vocab_size is not None:
            p["text_vocab_size"] = text_vocab_size
        p.update(overrides)
        return cls(**p)

    # ------------------------------------------------------------------ JSON
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> "UniAudioConfig":
        """The config of a dict (``source`` names it in errors); :class:`~reasoningcodec.ConfigError` for
        a non-dict or unknown fields, ``ValueError`` for invalid sizes."""
        return build(cls, d, _WHAT, source)

    @classmethod
    def from_json(cls, path_or_text: str | Path) -> "UniAudioConfig":
        """The config in a JSON file, or in JSON text (a string starting with ``{``); raises as
        :meth:`from_dict`, and :class:`~reasoningcodec.ConfigError` for text that is not JSON or not an object."""
        return cls.from_dict(*read_object(path_or_text, _WHAT, text_ok=True))
