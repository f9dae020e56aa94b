"""Codec configuration as data: a dataclass that round-trips through JSON."""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .configio import check_fields, config_error, read_object
from .errors import WeightsError

#: How errors name this config.
_WHAT = "codec config"


@dataclass
class CodecConfig:
    """Every size of the codec. Frame rates follow from ``sample_rate`` and the hop sizes.

    The audio is analysed in base frames of ``hop_length`` samples (100 Hz at 24 kHz). A reconstruction
    frame stacks ``recon_stride`` base frames (12.5 Hz); a reasoning window holds ``reasoning_stride``
    base frames (5 Hz), seen by the reasoning transformer as ``reasoning_stride / reasoning_substride``
    feature tokens plus one query token.
    """

    sample_rate: int = 24000
    hop_length: int = 240
    n_fft: int = 960
    n_mels: int = 100
    f_max: float = 12000.0

    # reconstruction branch (the encoder and decoder backbones run at hop_length * stem_stride)
    recon_stride: int = 8
    stem_stride: int = 2
    enc_dim: int = 256
    enc_blocks: int = 4
    enc_kernel: int = 7
    latent_dim: int = 384
    latent_blocks: int = 2
    latent_kernel: int = 3
    num_recon_codebooks: int = 8
    recon_codebook_size: int = 1024
    recon_codebook_dim: int = 8

    # reasoning branch
    reasoning_stride: int = 20
    reasoning_substride: int = 4
    reasoning_dim: int = 256
    reasoning_layers: int = 4
    reasoning_heads: int = 4
    reasoning_context_windows: int = 16
    num_reasoning_codebooks: int = 8
    reasoning_codebook_size: int = 4096
    reasoning_codebook_dim: int = 8
    # "window": the window transformer over the codec's log-mel; "whisper": a Whisper-style front-end
    # (its own 80-band log-mel, two convolutions to 50 Hz, ``whisper_layers`` transformer layers of
    # ``whisper_dim``), window-causal, whose states are averaged per window and projected to
    # ``reasoning_dim``; it can start from Whisper tiny.en's first layers (see reasoning.py)
    reasoning_frontend: str = "window"
    whisper_mels: int = 80
    whisper_dim: int = 384
    whisper_heads: int = 6
    whisper_layers: int = 2

    # decoder
    # True: the decoder also reads the reasoning tokens: each reconstruction frame's quantised latent is
    # FiLM-modulated by the latest reasoning window completed at the frame's end (the rule the encoder
    # uses), so the 5 Hz tokens' bits serve reconstruction too; codes without reasoning decode with the
    # null window (lower quality). False: the decoder reads the reconstruction codes only
    decoder_reasoning: bool = False
    dec_latent_blocks: int = 2
    dec_dim: int = 256
    dec_blocks: int = 6
    dec_kernel: int = 7
    mlp_ratio: int = 3
    # True: a harmonic source prior (``reasoningcodec.harmonic``): the decoder predicts F0 and voicing per
    # STFT frame, renders a harmonic comb below ``harmonic_max_hz`` and adds its spectrum to the iSTFT head's
    # through a predicted per-bin complex gain (zero-initialised). Tokens and bitstream are unchanged; the
    # comb restarts every ``harmonic_reset_frames`` base frames so that seeking stays exact
    harmonic_source: bool = False
    harmonic_max_hz: float = 8000.0
    harmonic_reset_frames: int = 512
    f0_min: float = 50.0
    f0_max: float = 800.0

    # inference: the encoder runs in float64 so that streaming, batched and offline encodes pick the
    # same codes (float32 rounding differs with tensor shapes and can flip a nearest-code decision)
    encoder_dtype: str = "float64"

    model_id: str = "reasoningcodec-untrained"

    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------------------------------------
    def validate(self) -> None:
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise WeightsError(f"invalid codec config: {msg}")

        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.type in ("int",) and not (isinstance(v, int) and not isinstance(v, bool)):
                raise WeightsError(f"invalid codec config: {f.name} must be an int, got {v!r}")
        need(self.sample_rate >= 8000, f"sample_rate must be >= 8000, got {self.sample_rate}")
        need(self.hop_length > 0 and self.n_fft >= self.hop_length, "need 0 < hop_length <= n_fft")
        need(self.n_fft % self.hop_length == 0, "n_fft must be a multiple of hop_length")
        need(self.recon_stride > 0 and self.reasoning_stride > 0, "strides must be positive")
        need(self.reasoning_stride % self.reasoning_substride == 0,
             "reasoning_stride must be a multiple of reasoning_substride")
        need(self.recon_stride % self.stem_stride == 0, "recon_stride must be a multiple of stem_stride")
        need(self.reasoning_stride % self.stem_stride == 0, "reasoning_stride must be a multiple of stem_stride")
        need(self.reasoning_dim % self.reasoning_heads == 0, "reasoning_dim must divide by heads")
        need(self.num_recon_codebooks >= 1 and self.num_reasoning_codebooks >= 1, "need >= 1 codebook")
        need(self.recon_codebook_size >= 2 and self.reasoning_codebook_size >= 2, "codebook size >= 2")
        need(self.encoder_dtype in ("float32", "float64"), "encoder_dtype is float32 or float64")
        need(self.f_max <= self.sample_rate / 2, "f_max above Nyquist")
        need(0 < self.f0_min < self.f0_max <= self.sample_rate / 2, "need 0 < f0_min < f0_max <= Nyquist")
        need(0 < self.harmonic_max_hz <= self.sample_rate / 2, "harmonic_max_hz must lie in (0, Nyquist]")
        need(self.harmonic_reset_frames >= 1, "harmonic_reset_frames must be >= 1")
        need(self.reasoning_frontend in ("window", "whisper"), "reasoning_frontend is 'window' or 'whisper'")
        if self.reasoning_frontend == "whisper":
            need(self.hop_length * 100 == self.sample_rate, "the whisper front-end needs 10 ms base frames")
            need(self.reasoning_stride % 2 == 0, "the whisper front-end needs an even reasoning_stride")
            need(self.whisper_dim % self.whisper_heads == 0, "whisper_dim must divide by whisper_heads")
            need(self.whisper_layers >= 1 and self.whisper_mels >= 1, "whisper_layers, whisper_mels >= 1")

    # ----------------------------------------------------------------------------------------------
    @property
    def stem_hop(self) -> int:
        """Samples per backbone step of the encoder stem and the decoder."""
        return self.hop_length * self.stem_stride

    @property
    def recon_hop(self) -> int:
        """Samples per reconstruction frame."""
        return self.hop_length * self.recon_stride

    @property
    def reasoning_hop(self) -> int:
        """Samples per reasoning window."""
        return self.hop_length * self.reasoning_stride

    @property
    def bitrate(self) -> float:
        """Bits per second of the raw (bit-packed) codes with every codebook kept."""
        return self.bitrate_with(self.num_recon_codebooks)

    def bitrate_with(self, recon_codebooks: int) -> float:
        r = self.num_reasoning_codebooks * math.log2(self.reasoning_codebook_size)
        q = recon_codebooks * math.log2(self.recon_codebook_size)
        return r * self.sample_rate / self.reasoning_hop + q * self.sample_rate / self.recon_hop

    # ----------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True)
        if path is not None:
            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str | None = None) -> "CodecConfig":
        """The config of a dict (e.g. a parsed ``config.json``; ``source`` names it in errors).

        Raises:
            ConfigError: ``d`` is not a dict, has unknown fields, or a field of the wrong type.
            WeightsError: the values are invalid together (see :meth:`validate`).
        """
        check_fields(cls, d, _WHAT, source)
        defaults = cls()
        kwargs = {}
        for k, v in d.items():
            default = getattr(defaults, k) if k != "extra" else {}
            if isinstance(default, bool) or isinstance(v, bool):
                ok = isinstance(v, type(default))
            elif isinstance(default, int):
                ok = isinstance(v, int)
            elif isinstance(default, float):
                ok = isinstance(v, (int, float))
                v = float(v) if ok else v
            elif isinstance(default, str):
                ok = isinstance(v, str)
            else:
                ok = isinstance(v, dict)
            if not ok:
                raise config_error(_WHAT, source, f"field {k!r} should be {type(default).__name__}, got {v!r}")
            kwargs[k] = v
        return cls(**kwargs)

    @classmethod
    def from_json(cls, path: str | Path) -> "CodecConfig":
        """The config in the JSON file ``path``.

        Raises:
            ConfigError: see :meth:`from_dict`; also a file that is not JSON or not a JSON object.
            WeightsError: ``path`` does not exist, or the values are invalid together.
        """
        try:
            d, source = read_object(path, _WHAT)
        except FileNotFoundError:
            raise WeightsError(f"config file not found: {path}") from None
        return cls.from_dict(d, source)
