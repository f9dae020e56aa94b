"""Codec adapters for the reconstruction benchmark: one small interface for every codec.

An adapter takes mono float audio ``[T]`` at its own ``sample_rate`` (the benchmark resamples with soxr
HQ first), ``encode`` returns an :class:`Encoded` holding the bytes or codes it produced and their size
in bits, and ``decode`` returns mono float audio ``[T']`` at ``output_rate``. The real bitrate is always
measured from what was produced: file size × 8 for the command-line codecs and ours, and
``number of codes × ceil(log2(codebook size))`` (fixed-length packing) for the transformers models.

Named like this (not ``codecs.py``) so that running ``python benchmarks/reconstruction.py`` does not
shadow the standard library's ``codecs`` module.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

CLASSICAL = ["opus6", "opus12", "codec2_3200", "codec2_1300", "mp3_8"]
NEURAL = ["encodec_1.5", "encodec_3", "encodec_6", "mimi_8", "xcodec_1", "xcodec_2", "xcodec_4"]
GROUPS = {"classical": CLASSICAL, "neural": NEURAL, "encodec": NEURAL[:3], "mimi": ["mimi_8"],
          "xcodec": NEURAL[4:], "all": ["ours", *CLASSICAL, *NEURAL]}
HF_IDS = {"encodec": "facebook/encodec_24khz", "mimi": "kyutai/mimi", "xcodec": "hf-audio/xcodec-hubert-librispeech"}
NO_WEIGHTS = "weights not available here"


@dataclass
class Encoded:
    """What an encoder produced: ``payload`` (bytes, or codes plus side info), its size, the input length."""

    payload: Any
    bits: int
    num_samples: int


@dataclass(frozen=True)
class Unavailable:
    """A requested codec that cannot run here; the benchmark prints ``reason`` in its row."""

    label: str
    reason: str


class Codec(ABC):
    """The adapter interface. ``label`` (``name@setting``) names a table row."""

    name: str
    setting: str
    sample_rate: int
    nominal_kbps: float | None = None

    @property
    def output_rate(self) -> int:
        return self.sample_rate

    @property
    def label(self) -> str:
        return f"{self.name}@{self.setting}"

    @abstractmethod
    def encode(self, audio: np.ndarray) -> Encoded:
        """Mono float ``[T]`` at ``sample_rate`` → :class:`Encoded`."""

    @abstractmethod
    def decode(self, encoded: Encoded) -> np.ndarray:
        """:class:`Encoded` → mono float32 ``[T']`` at ``output_rate``."""

    def real_kbps(self, encoded: Encoded) -> float:
        """Bits produced over the input's duration, in kbit/s."""
        return encoded.bits / (encoded.num_samples / self.sample_rate) / 1000.0


# ---------------------------------------------------------------------------------------------- CLI
def _run(cmd: list[str]) -> None:
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()[-300:]}")


def _pcm16(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, -1.0, 32767 / 32768) * 32768).astype("<i2")


class CommandLineCodec(Codec):
    """A codec run as Debian command-line tools in a temporary folder; bits = encoded file size × 8."""

    tools: tuple[str, ...] = ()
    apt = ""
    suffix = ".bit"

    def __init__(self) -> None:
        missing = [t for t in self.tools if shutil.which(t) is None]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} not installed (apt-get install {self.apt})")

    @abstractmethod
    def _encode(self, pcm: np.ndarray, d: Path, out: Path) -> None: ...

    @abstractmethod
    def _decode(self, src: Path, d: Path) -> np.ndarray: ...

    def encode(self, audio: np.ndarray) -> Encoded:
        with tempfile.TemporaryDirectory() as td:
            out = Path(td) / f"enc{self.suffix}"
            self._encode(_pcm16(audio), Path(td), out)
            data = out.read_bytes()
        return Encoded(data, 8 * len(data), len(audio))

    def decode(self, encoded: Encoded) -> np.ndarray:
        with tempfile.TemporaryDirectory() as td:
            src = Path(td) / f"enc{self.suffix}"
            src.write_bytes(encoded.payload)
            return self._decode(src, Path(td)).astype(np.float32)


class OpusCodec(CommandLineCodec):
    """Opus (opus-tools) at 48 kHz: ``opusenc --bitrate B --speech --framesize 20 --padding 0`` (VBR).

    ``--speech`` tunes the low-bitrate modes for speech; ``--padding 0`` drops the 512 bytes opusenc
    reserves for tags by default. The Ogg container overhead stays in the measured size.
    """

    name, sample_rate, tools, apt, suffix = "opus", 48_000, ("opusenc", "opusdec"), "opus-tools", ".opus"

    def __init__(self, kbps: float) -> None:
        super().__init__()
        self.kbps = self.nominal_kbps = kbps
        self.setting = f"{kbps:g}kbps"

    def _encode(self, pcm: np.ndarray, d: Path, out: Path) -> None:
        sf.write(d / "in.wav", pcm, self.sample_rate, subtype="PCM_16")
        _run(["opusenc", "--quiet", "--bitrate", f"{self.kbps:g}", "--speech", "--framesize", "20",
              "--padding", "0", str(d / "in.wav"), str(out)])

    def _decode(self, src: Path, d: Path) -> np.ndarray:
        _run(["opusdec", "--quiet", "--rate", str(self.sample_rate), str(src), str(d / "out.wav")])
        return sf.read(d / "out.wav", dtype="float32", always_2d=True)[0].mean(axis=1)


class Codec2Codec(CommandLineCodec):
    """Codec 2 (``c2enc``/``c2dec``) on headerless 8 kHz signed 16-bit raw audio."""

    name, sample_rate, tools, apt = "codec2", 8_000, ("c2enc", "c2dec"), "codec2"

    def __init__(self, mode: int) -> None:
        super().__init__()
        self.mode = str(mode)
        self.setting, self.nominal_kbps = f"{mode}bps", mode / 1000

    def _encode(self, pcm: np.ndarray, d: Path, out: Path) -> None:
        pcm.tofile(d / "in.raw")
        _run(["c2enc", self.mode, str(d / "in.raw"), str(out)])

    def _decode(self, src: Path, d: Path) -> np.ndarray:
        _run(["c2dec", self.mode, str(src), str(d / "out.raw")])
        return np.fromfile(d / "out.raw", dtype="<i2").astype(np.float32) / 32768


class Mp3Codec(CommandLineCodec):
    """MP3 (LAME) at 8 kHz mono, constant bitrate: ``lame -b B --cbr -m m``; decoded with ``lame --decode``."""

    name, sample_rate, tools, apt, suffix = "mp3", 8_000, ("lame",), "lame", ".mp3"

    def __init__(self, kbps: int) -> None:
        super().__init__()
        self.kbps = self.nominal_kbps = kbps
        self.setting = f"{kbps}kbps"

    def _encode(self, pcm: np.ndarray, d: Path, out: Path) -> None:
        sf.write(d / "in.wav", pcm, self.sample_rate, subtype="PCM_16")
        _run(["lame", "--quiet", "-b", str(self.kbps), "--cbr", "-m", "m", str(d / "in.wav"), str(out)])

    def _decode(self, src: Path, d: Path) -> np.ndarray:
        _run(["lame", "--quiet", "--decode", str(src), str(d / "out.wav")])
        return sf.read(d / "out.wav", dtype="float32", always_2d=True)[0].mean(axis=1)


class IdentityCodec(Codec):
    """Reference anchor: 16-bit PCM at 48 kHz (bits = 16 per sample); scores near each metric's maximum."""

    name, setting, sample_rate = "identity", "pcm16", 48_000

    def encode(self, audio: np.ndarray) -> Encoded:
        pcm = _pcm16(np.asarray(audio, np.float64))
        return Encoded(pcm.tobytes(), 16 * len(pcm), len(pcm))

    def decode(self, encoded: Encoded) -> np.ndarray:
        return np.frombuffer(encoded.payload, dtype="<i2").astype(np.float32) / 32768


# ---------------------------------------------------------------------------------------------- ours
class OursCodec(Codec):
    """reasoningcodec: ``compress`` → ``.rc`` bytes (bits = bytes × 8), ``decompress`` → 24 kHz audio."""

    name = "ours"

    def __init__(self, model: Any, recon_codebooks: int, coding: str = "auto") -> None:
        self.model, self.k, self.coding = model, recon_codebooks, coding
        self.sample_rate = int(model.config.sample_rate)
        self.setting = f"k{recon_codebooks}" + ("" if coding == "auto" else f"-{coding}")
        self.nominal_kbps = model.config.bitrate_with(recon_codebooks) / 1000

    def encode(self, audio: np.ndarray) -> Encoded:
        import reasoningcodec

        data = reasoningcodec.compress(np.asarray(audio, np.float32)[None], self.model, sample_rate=self.sample_rate,
                                       recon_codebooks=self.k, coding=self.coding)
        return Encoded(data, 8 * len(data), len(audio))

    def decode(self, encoded: Encoded) -> np.ndarray:
        import reasoningcodec

        y, _ = reasoningcodec.decompress(encoded.payload, self.model)
        return np.asarray(y, np.float32).mean(axis=0)


def load_ours(model_dir: str | None, random_weights_smoke: bool) -> Any:
    """The trained model (``--model DIR`` or the installed default); random init only for smoke tests."""
    import reasoningcodec

    if random_weights_smoke:
        import torch

        torch.manual_seed(0)
        return reasoningcodec.ReasoningCodec().eval()
    if model_dir:
        return reasoningcodec.ReasoningCodec.from_pretrained(model_dir)
    return reasoningcodec.load()


# ---------------------------------------------------------------------------------------------- neural
class HFCodec(Codec):
    """A ``transformers`` codec model (EnCodec, Mimi or XCodec), mono, run on CPU in float32."""

    def __init__(self, family: str, model: Any, setting: float) -> None:
        self.name, self.model, self.value = family, model, setting
        cfg = model.config
        self.sample_rate = int(cfg.sampling_rate if family != "xcodec" else cfg.sample_rate)
        self.nbits = math.ceil(math.log2(cfg.codebook_size))
        self.setting = f"{int(setting)}q" if family == "mimi" else f"{setting:g}kbps"
        self.nominal_kbps = (setting * self.nbits * float(cfg.frame_rate) / 1000 if family == "mimi" else setting)

    def encode(self, audio: np.ndarray) -> Encoded:
        import torch

        x = torch.from_numpy(np.asarray(audio, np.float32))[None, None]
        with torch.no_grad():
            if self.name == "encodec":
                out = self.model.encode(x, bandwidth=self.value, return_dict=True)
                payload: Any = (out.audio_codes, out.audio_scales, getattr(out, "last_frame_pad_length", None))
                codes = out.audio_codes
            elif self.name == "mimi":
                codes = self.model.encode(x, num_quantizers=int(self.value), return_dict=True).audio_codes
                payload = codes
            else:
                codes = self.model.encode(x, bandwidth=self.value, return_dict=True).audio_codes
                payload = codes
        return Encoded(payload, int(codes.numel()) * self.nbits, len(audio))

    def decode(self, encoded: Encoded) -> np.ndarray:
        import torch

        with torch.no_grad():
            if self.name == "encodec":
                codes, scales, pad = encoded.payload
                kw = {} if pad is None else {"last_frame_pad_length": pad}
                y = self.model.decode(codes, scales, return_dict=True, **kw).audio_values
            else:
                y = self.model.decode(encoded.payload, return_dict=True).audio_values
        return y[0].float().mean(dim=0).numpy()[: encoded.num_samples]


def tiny_config(family: str) -> Any:
    """A small random-initialised config per family, for ``--random-weights-smoke`` and tests only."""
    import transformers as tr

    if family == "encodec":
        return tr.EncodecConfig(hidden_size=16, num_filters=4, upsampling_ratios=[8, 5, 4, 2], codebook_size=1024,
                                num_lstm_layers=1, target_bandwidths=[1.5, 3.0, 6.0])
    if family == "mimi":
        return tr.MimiConfig(hidden_size=16, num_filters=4, upsampling_ratios=[8, 6, 5, 4], codebook_size=2048,
                             codebook_dim=16, vector_quantization_hidden_dimension=16, num_quantizers=8,
                             upsample_groups=16, num_hidden_layers=1, intermediate_size=32, num_attention_heads=2,
                             num_key_value_heads=2, head_dim=8)
    hubert = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                  conv_dim=[8] * 7, num_conv_pos_embedding_groups=4, num_conv_pos_embeddings=16)
    dac = dict(encoder_hidden_size=2, decoder_hidden_size=16, hidden_size=16, codebook_dim=4)
    return tr.XcodecConfig(acoustic_model_config=dac, semantic_model_config=hubert)


@lru_cache(maxsize=3)
def load_hf(family: str, weights_dir: str | None, random_weights_smoke: bool) -> Any:
    """Load a ``transformers`` codec offline (``HF_HUB_OFFLINE=1``) from ``weights_dir`` or the HF cache."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers as tr

    cls = {"encodec": tr.EncodecModel, "mimi": tr.MimiModel, "xcodec": tr.XcodecModel}[family]
    if random_weights_smoke:
        import torch

        torch.manual_seed(0)
        return cls(tiny_config(family)).eval()
    repo = HF_IDS[family]
    sources: list[str] = [repo]
    if weights_dir:
        base = Path(weights_dir)
        sources = [str(p) for p in (base / repo, base / repo.split("/")[1], base / repo.replace("/", "--"))
                   if p.is_dir()] or [repo]
    errors = []
    for src in sources:
        try:
            return cls.from_pretrained(src, local_files_only=True).eval()
        except (OSError, ValueError) as e:
            errors.append(f"{src}: {str(e).splitlines()[0][:120]}")
    raise FileNotFoundError("; ".join(errors))


# ---------------------------------------------------------------------------------------------- factory
def expand(names: list[str], ours_codebooks: list[int]) -> list[str]:
    """Group names (``classical``, ``neural``, ``encodec``, ``all`` …) and ``ours`` → concrete codec names."""
    out: list[str] = []
    for n in names:
        for m in GROUPS.get(n, [n]):
            subs = [f"ours_k{k}" for k in ours_codebooks] if m == "ours" else [m]
            out += [s for s in subs if s not in out]
    return out


def make_codecs(names: list[str], *, ours_codebooks: list[int] | None = None, model_dir: str | None = None,
                weights_dir: str | None = None, random_weights_smoke: bool = False,
                coding: str = "auto") -> list[Codec | Unavailable]:
    """Build adapters; a codec that cannot run here becomes an :class:`Unavailable` row with its reason."""
    out: list[Codec | Unavailable] = []
    ours_model: Any = None
    known = {"identity", *CLASSICAL, *NEURAL}
    for n in expand(names, ours_codebooks or [8, 4]):
        family, _, arg = n.partition("_")
        if n not in known and not (family == "ours" and arg.lstrip("k").isdigit()):
            raise ValueError(f"unknown codec {n!r}; known: {', '.join(['ours', *CLASSICAL, *NEURAL, *GROUPS])}")
        try:
            if n == "identity":
                out.append(IdentityCodec())
            elif n.startswith("opus"):
                out.append(OpusCodec(float(n[4:])))
            elif family == "codec2":
                out.append(Codec2Codec(int(arg)))
            elif family == "mp3":
                out.append(Mp3Codec(int(arg)))
            elif family == "ours":
                if ours_model is None:
                    ours_model = load_ours(model_dir, random_weights_smoke)
                out.append(OursCodec(ours_model, int(arg.lstrip("k")), coding))
            else:
                model = load_hf(family, weights_dir, random_weights_smoke)
                out.append(HFCodec(family, model, float(arg)))
        except Exception as e:
            out.append(Unavailable(label_for(n), _reason(family, e)))
    return out


def label_for(name: str) -> str:
    """Concrete codec name → the row label its adapter would have (``opus6`` → ``opus@6kbps``)."""
    family, _, arg = name.partition("_")
    if name.startswith("opus"):
        return f"opus@{name[4:]}kbps"
    unit = {"codec2": "bps", "mimi": "q", "ours": "", "identity": ""}.get(family, "kbps")
    return f"{family}@{arg}{unit}" if arg else name


def _reason(family: str, e: Exception) -> str:
    from reasoningcodec import NoWeightsInstalledError, WeightsError

    if isinstance(e, NoWeightsInstalledError):
        return "no trained weights"
    if isinstance(e, WeightsError):
        return f"no trained weights ({str(e)[:120]})"
    if family in HF_IDS and isinstance(e, ImportError):
        return f"{NO_WEIGHTS} (transformers not installed: pip install transformers)"
    if family in HF_IDS and isinstance(e, (FileNotFoundError, OSError)):
        return f"{NO_WEIGHTS} ({HF_IDS[family]})"
    return f"{type(e).__name__}: {str(e)[:160]}"
