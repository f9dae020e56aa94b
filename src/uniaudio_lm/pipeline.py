"""Pipeline: the language model, its text tokenizer and the codec, loaded together (the decoding helpers
that the task functions of :mod:`uniaudio_lm.api` share are in :mod:`uniaudio_lm.inference`).

A pipeline folder (default ``uniaudio_lm/pretrained/default/``) holds::

    config.json, model.safetensors    UniAudioLM.save_pretrained
    pipeline.json                     {"codec_model_id": ..., "tokenizer": "default" | "tokenizer.json",
                                       "recon_codebooks": n, "format": 1}
    task_status.json                  each task's measured status (uniaudio_lm.status; optional)

``codec_model_id`` names the codec whose tokens the model was trained on; :func:`load` refuses another
codec. Write a folder with :meth:`Pipeline.save_pretrained` or :func:`install` (from a training run).
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from reasoningcodec import AudioError, NoWeightsInstalledError, ReasoningCodec, WeightsError
from reasoningcodec import audio as audio_io
from reasoningcodec.atomic import temp_dir_next_to

from .config import UniAudioConfig
from .generate import decode_audio
from .model import UniAudioLM
from .status import StatusTable, TaskStatus, read as read_status
from .sentence import AudioItem
from .tokenizer import TextTokenizer, default_tokenizer

if TYPE_CHECKING:
    from .duration import DurationModel

DEFAULT_DIR = Path(__file__).parent / "pretrained" / "default"
PIPELINE_NAME = "pipeline.json"
FORMAT = 1

#: An audio input: a path, ``(array, sample_rate)``, or a 1-D float array / tensor at the codec rate.
AudioInput = Any
Audio = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Pipeline:
    """Everything a task function needs.

    Attributes:
        model: the language model (put in eval mode on ``device``).
        tokenizer: its text tokenizer.
        codec: the :class:`reasoningcodec.ReasoningCodec` whose tokens the model reads and writes.
        device: where the model and codec run.
        recon_codebooks: reconstruction codebooks per frame the model uses (default: all the model has).
        directory: the pipeline folder it was loaded from (``None``: built in memory); its
            ``task_status.json`` says which tasks work (:meth:`task_status`).
    """

    model: UniAudioLM
    tokenizer: TextTokenizer
    codec: ReasoningCodec
    device: torch.device | str = "cpu"
    recon_codebooks: int | None = None
    directory: Path | None = None
    _status: StatusTable | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.device = torch.device(self.device)
        m, c = self.model.config, self.codec.config
        # the model may read a prefix of the residual stages (the coarse part of each token)
        if m.reasoning_codebook_size != c.reasoning_codebook_size or \
                not 1 <= m.num_reasoning_codebooks <= c.num_reasoning_codebooks:
            raise WeightsError(f"the language model reads {m.num_reasoning_codebooks}x{m.reasoning_codebook_size} "
                               f"reasoning codes, the codec {c.model_id!r} writes {c.num_reasoning_codebooks}x"
                               f"{c.reasoning_codebook_size}")
        if m.recon_codebook_size != c.recon_codebook_size:
            raise WeightsError(f"the language model reads reconstruction codebooks of {m.recon_codebook_size} "
                               f"codes, the codec {c.model_id!r} has {c.recon_codebook_size}")
        n = self.recon_codebooks or min(m.num_recon_codebooks, c.num_recon_codebooks)
        if not 1 <= n <= min(m.num_recon_codebooks, c.num_recon_codebooks):
            raise WeightsError(f"recon_codebooks={n}, but the model has {m.num_recon_codebooks} and the codec "
                               f"{c.num_recon_codebooks} reconstruction codebooks")
        if m.text_vocab_size < self.tokenizer.vocab_size:
            raise WeightsError(f"the tokenizer has {self.tokenizer.vocab_size} ids, the model's text vocabulary "
                               f"only {m.text_vocab_size}")
        self.recon_codebooks = n
        self.model = self.model.to(self.device).eval()
        self.codec = self.codec.to(self.device).eval()

    def task_status(self, task: str) -> TaskStatus:
        """The measured status of ``task`` (``works`` / ``experimental``) for these weights."""
        if self._status is None:
            self._status = read_status(self.directory)
        return self._status.get(task)

    @property
    def sample_rate(self) -> int:
        """Rate of every audio output (the codec's, 24 kHz)."""
        return int(self.codec.sample_rate)

    # ------------------------------------------------------------------ audio ⇄ codes
    def read_audio(self, audio: AudioInput) -> tuple[np.ndarray, int]:
        """An audio input → ``(mono float32 [T], sample_rate)`` (channels averaged)."""
        if isinstance(audio, (str, os.PathLike)):
            data, sr = audio_io.load(audio)
        elif isinstance(audio, tuple):
            if len(audio) != 2:
                raise AudioError(f"an audio tuple is (array, sample_rate), got {len(audio)} items")
            data, sr = audio
            sr = audio_io.check_sample_rate(sr)
        else:
            data, sr = audio, self.sample_rate
        if isinstance(data, torch.Tensor):
            data = data.detach().cpu().numpy()
        if not isinstance(data, np.ndarray):
            raise AudioError(f"expected a path, (array, sample_rate) or a 1-D array, got {type(data).__name__}")
        if data.dtype.kind in "iu":
            data = data.astype(np.float32) / float(np.iinfo(data.dtype).max + 1)
        elif data.dtype.kind != "f":
            raise AudioError(f"audio array must be numeric, got dtype {data.dtype}")
        if data.ndim == 2:
            if data.shape[0] > 16:
                raise AudioError(f"audio of shape {tuple(data.shape)} looks like [T, C]; pass [C, T] (channels first) "
                                 "or a 1-D array")
            data = data.mean(axis=0)  # [C, T] → mono
        if data.ndim != 1:
            raise AudioError(f"audio must be a 1-D array [T] or [C, T], got shape {tuple(data.shape)}")
        data = np.ascontiguousarray(data, dtype=np.float32)
        audio_io.check_finite(data)
        return data, int(sr)

    def encode(self, audio: AudioInput) -> Audio:
        """An audio input → ``(reasoning [Kr, Tr], recon [Kq, Tq])`` LongTensors on the CPU."""
        data, sr = self.read_audio(audio)
        codes = self.codec.encode(torch.from_numpy(data)[None], sample_rate=sr, n_q=self.recon_codebooks)
        return codes.reasoning[0, : self.model.config.num_reasoning_codebooks].cpu(), codes.recon[0].cpu()

    def decode(self, item: AudioItem | None) -> np.ndarray:
        """A generated audio item → float32 waveform ``[T]`` at :attr:`sample_rate` (empty if it has no
        reconstruction frames)."""
        if item is None or item.recon is None or item.recon.shape[-1] == 0:
            return np.zeros(0, dtype=np.float32)
        return decode_audio(self.codec, [item])[0, 0].numpy().astype(np.float32)

    @property
    def duration_model(self) -> "DurationModel | None":
        """The fitted speech-duration model of ``pipeline.json`` (``"duration"``), or ``None``."""
        if not hasattr(self, "_duration"):
            from .duration import DurationModel

            d = read_meta(self.directory).get("duration") if self.directory is not None else None
            self._duration = DurationModel.from_dict(d) if d else None
        return self._duration

    @property
    def style_scale(self) -> float | None:
        """The default guidance on a requested speaking style (``pipeline.json``'s ``"style_scale"``, chosen
        when the weights were installed), or ``None``."""
        if not hasattr(self, "_style_scale"):
            v = read_meta(self.directory).get("style_scale") if self.directory is not None else None
            self._style_scale = check_style_scale(v) if v is not None else None
        return self._style_scale

    def frames_for(self, seconds: float) -> int:
        """Reconstruction frames covering ``seconds``."""
        if not seconds > 0 or not math.isfinite(seconds):
            raise ValueError(f"max_seconds must be a positive number, got {seconds}")
        return max(1, math.ceil(seconds * self.codec.recon_frame_rate))

    # ------------------------------------------------------------------ weights
    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """Write a pipeline folder (see the module docstring); the folder is replaced atomically."""
        d = Path(directory)
        with temp_dir_next_to(d) as tmp:
            self.model.save_pretrained(tmp)
            tok = "default"
            if self.tokenizer is not default_tokenizer():
                self.tokenizer.save(tmp / "tokenizer.json")
                tok = "tokenizer.json"
            _write_meta(tmp, self.codec.config.model_id, tok, int(self.recon_codebooks or 0))
            _replace_dir(tmp, d)


def check_style_scale(v: Any) -> float:
    """A style guidance scale: a finite number >= 1 (1: no guidance)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 1:
        raise ValueError(f"style_scale must be a number >= 1 (1: no guidance), got {v!r}")
    return float(v)


def _write_meta(d: Path, codec_model_id: str, tokenizer: str, recon_codebooks: int,
                duration: dict[str, Any] | None = None, style_scale: float | None = None) -> None:
    meta: dict[str, Any] = {"format": FORMAT, "codec_model_id": codec_model_id, "tokenizer": tokenizer,
                            "recon_codebooks": recon_codebooks}
    if duration is not None:
        meta["duration"] = duration
    if style_scale is not None:
        meta["style_scale"] = style_scale
    (d / PIPELINE_NAME).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")


def _replace_dir(tmp: Path, d: Path) -> None:
    old = d.with_name(f".{d.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if d.exists():
        d.rename(old)
    tmp.rename(d)
    if old.exists():
        shutil.rmtree(old)


def _no_weights_message() -> str:
    return (f"no trained uniaudio_lm weights are installed yet (expected {DEFAULT_DIR / 'model.safetensors'}); "
            "train a model with `python -m uniaudio_lm.train recipe.json` (stages 1-4), install it with "
            "`uniaudio install <out_dir>/model`, or pass a pipeline folder: uniaudio_lm.load(path) / --model DIR")


def read_meta(directory: str | os.PathLike) -> dict[str, Any]:
    """``pipeline.json`` of a pipeline folder, checked."""
    d = Path(directory)
    p = d / PIPELINE_NAME
    if not p.is_file():
        raise WeightsError(f"{p} is missing: a pipeline folder needs it next to model.safetensors "
                           "(write one with `uniaudio install`)")
    try:
        meta = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{p} is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("codec_model_id"), str):
        raise WeightsError(f"{p} must be a JSON object with a string 'codec_model_id'")
    if meta.get("format", FORMAT) != FORMAT:
        raise WeightsError(f"{p} has format {meta.get('format')!r}; this version reads format {FORMAT}")
    return meta


def load(path: str | os.PathLike | None = None, device: str | torch.device = "cpu",
         codec: ReasoningCodec | None = None) -> Pipeline:
    """Load a pipeline folder (default: the one installed in the package).

    ``codec`` (default: :func:`reasoningcodec.load`, the installed default codec) must be the codec the
    model was trained with (``pipeline.json``'s ``codec_model_id``).
    """
    from safetensors import SafetensorError

    d = Path(path) if path is not None else DEFAULT_DIR
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for, but no CUDA device is available")
    if path is not None and not d.is_dir():
        raise WeightsError(f"pipeline folder not found: {d}")
    if not (d / "model.safetensors").is_file():
        if path is None:
            raise NoWeightsInstalledError(_no_weights_message())
        raise WeightsError(f"{d} has no model.safetensors (a pipeline folder holds config.json, model.safetensors "
                           "and pipeline.json)")
    meta = read_meta(d)
    if codec is None:
        import reasoningcodec

        codec = reasoningcodec.load(dev)
    if codec.config.model_id != meta["codec_model_id"]:
        raise WeightsError(f"the language model in {d} was trained on tokens of codec {meta['codec_model_id']!r}, "
                           f"but the codec in use is {codec.config.model_id!r}; install the matching codec or "
                           "retrain the language model on this codec's tokens")
    tok_name = meta.get("tokenizer", "default")
    try:
        tok = default_tokenizer() if tok_name == "default" else TextTokenizer.load(d / tok_name)
    except FileNotFoundError as e:
        raise WeightsError(str(e)) from None
    try:
        config = UniAudioConfig.from_json(d / "config.json")
        model = UniAudioLM.from_pretrained(d, map_location=dev)
    except FileNotFoundError:
        raise WeightsError(f"{d / 'config.json'} is missing") from None
    except (SafetensorError, RuntimeError, ValueError, OSError, TypeError, KeyError) as e:
        msg = str(e).strip().splitlines()
        raise WeightsError(f"cannot load the language model in {d}: {msg[0] if msg else type(e).__name__}") from None
    if config.text_vocab_size < tok.vocab_size:
        raise WeightsError(f"{d}: the model's text vocabulary ({config.text_vocab_size}) is smaller than the "
                           f"tokenizer ({tok.vocab_size})")
    return Pipeline(model, tok, codec, dev, meta.get("recon_codebooks") or None, d)


def install(model_dir: str | os.PathLike, dest: str | os.PathLike | None = None,
            codec_model_id: str | None = None, recon_codebooks: int | None = None,
            duration_from: str | os.PathLike | None = None, style_scale: float | None = None) -> Path:
    """Make a pipeline folder from ``UniAudioLM.save_pretrained`` output (e.g. ``<train out_dir>/model``).

    ``codec_model_id`` defaults to the installed default codec's; the model's vocabulary is checked
    against that codec's configuration when it is installed. ``duration_from`` (a tokenised training
    manifest) fits the speech-duration model (:mod:`uniaudio_lm.duration`) stored in ``pipeline.json``;
    without it, the one of the folder being replaced is kept; so is its ``style_scale`` (the default
    guidance on a requested speaking style, :attr:`Pipeline.style_scale`) unless one is given. Returns the
    folder (default: the package's).
    """
    from .duration import fit, manifest_samples

    from reasoningcodec import CodecConfig
    from reasoningcodec.hub import DEFAULT_DIR as CODEC_DIR

    if style_scale is not None:
        style_scale = check_style_scale(style_scale)
    src = Path(model_dir)
    for name in ("config.json", "model.safetensors"):
        if not (src / name).is_file():
            raise WeightsError(f"{src / name} is missing (expected the output of UniAudioLM.save_pretrained, "
                               "e.g. <train out_dir>/model)")
    config = UniAudioConfig.from_json(src / "config.json")
    if codec_model_id is None:
        if not (CODEC_DIR / "config.json").is_file():
            raise NoWeightsInstalledError("no default codec is installed; pass codec_model_id / --codec-model-id")
        cc = CodecConfig.from_json(CODEC_DIR / "config.json")
        if (config.reasoning_codebook_size, config.recon_codebook_size) != (cc.reasoning_codebook_size,
                                                                           cc.recon_codebook_size) or \
                config.num_reasoning_codebooks > cc.num_reasoning_codebooks or \
                config.num_recon_codebooks > cc.num_recon_codebooks:
            raise WeightsError(f"the model in {src} does not read the tokens of the installed codec {cc.model_id!r} "
                               "(codebook counts or sizes differ); pass the codec it was trained with")
        codec_model_id = cc.model_id
    d = Path(dest) if dest is not None else DEFAULT_DIR
    d.parent.mkdir(parents=True, exist_ok=True)
    with temp_dir_next_to(d) as tmp:
        shutil.copyfile(src / "config.json", tmp / "config.json")
        # weights are stored in float16 (half the size; loading casts back to the model's dtype)
        from safetensors.torch import load_file, save_file

        tensors = load_file(str(src / "model.safetensors"))
        save_file({k: v.half() if v.is_floating_point() else v for k, v in tensors.items()},
                  str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok = "default"
        if (src / "tokenizer.json").is_file():
            shutil.copyfile(src / "tokenizer.json", tmp / "tokenizer.json")
            tok = "tokenizer.json"
        old_meta = d / PIPELINE_NAME
        old = json.loads(old_meta.read_text(encoding="utf-8")) if old_meta.is_file() else {}
        duration = fit(manifest_samples(duration_from)).to_dict() if duration_from is not None else old.get("duration")
        if style_scale is None:
            style_scale = old.get("style_scale")
        _write_meta(tmp, codec_model_id, tok, int(recon_codebooks or config.num_recon_codebooks), duration,
                    style_scale)
        for f in tmp.iterdir():              # readable by every user, like an installed package
            f.chmod(0o644)
        tmp.chmod(0o755)
        _replace_dir(tmp, d)
    return d
