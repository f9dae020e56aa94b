"""Checkpoints out of a run: fp16 shards for size-limited transfers (and their merge), the git-sized
resumable checkpoint, and the package's default model."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from . import checkpoint as ckpt


def export_shards(run_dir: Path, dest: Path, max_mb: float = 15.0, only: tuple[str, ...] = (),
                  skip: tuple[str, ...] = ()) -> None:
    """fp16 module weights of ``run_dir/last`` split into safetensors shards of at most ``max_mb`` MB each
    (for transfers with a per-file size limit); ``state.json`` beside them. ``only``: keep the tensors
    whose names start with one of these prefixes (e.g. ``("codec_ema.", "disc.")``); ``skip``: drop those
    whose name *after* the module prefix starts with one of these (e.g. the frozen parts, which
    :func:`merge_shards` takes from its ``base``)."""
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    state = load_file(str(run_dir / "last" / "modules.safetensors"))
    if only:
        state = {k: v for k, v in state.items() if k.startswith(only)}
    if skip:
        state = {k: v for k, v in state.items() if not k.split(".", 1)[-1].startswith(skip)}
    if not state:
        raise ValueError(f"no tensors of {run_dir / 'last'} left to export (only={only}, skip={skip})")
    shard: dict[str, torch.Tensor] = {}
    size, n = 0, 0
    for k in sorted(state):
        v = state[k].half() if state[k].is_floating_point() else state[k]
        if shard and size + v.numel() * v.element_size() > max_mb * 1e6:
            save_file(shard, str(dest / f"modules-{n}.safetensors"))
            shard, size, n = {}, 0, n + 1
        shard[k] = v.contiguous()
        size += v.numel() * v.element_size()
    save_file(shard, str(dest / f"modules-{n}.safetensors"))
    st = json.loads((run_dir / "last" / "state.json").read_text())
    ckpt.save_json(dest / "state.json", {k: st[k] for k in ("step", "audio_seconds", "train_seconds")})


def merge_shards(src: Path, dest: Path, base: Path | None = None) -> None:
    """Inverse of :func:`export_shards`: one ``modules.safetensors`` + ``state.json`` (an ``init_from``
    folder). ``base``: a ``modules.safetensors`` whose tensors fill in what the shards lack (e.g. the
    frozen parts left out of a GPU burst's transfer). A weight average in the shards (``codec_ema.*``)
    becomes the codec, as in :func:`export_resumable`."""
    from safetensors.torch import load_file, save_file

    shards = sorted(src.glob("modules-*.safetensors"))
    if not shards:
        raise FileNotFoundError(f"no modules-*.safetensors in {src}")
    got: dict[str, torch.Tensor] = {}
    for f in shards:
        got.update(load_file(str(f)))
    got = ckpt.fold_ema(got)
    state = load_file(str(base)) if base is not None else {}
    state = {k: v for k, v in state.items() if not k.startswith("codec_ema.")}
    if base is not None:
        unknown = sorted(k for k in set(got) - set(state) if k.startswith("codec."))
        if unknown:
            raise ValueError(f"{len(unknown)} codec tensors of {src} are not in {base}, e.g. {unknown[0]}")
    state.update(got)
    dest.mkdir(parents=True, exist_ok=True)
    save_file(state, str(dest / "modules.safetensors"))
    (dest / "state.json").write_text((src / "state.json").read_text())


def export_resumable(run_dir: Path, dest: Path, codec_from: Path | None = None) -> None:
    """Write the git-sized resumable checkpoint: fp16 weights of every module, no optimizer state.

    A run with ``ema_decay`` stores its weight average (``codec_ema.*``) as the codec: that is the model
    validated and shipped, so the checkpoint gives the shipped model's tokens, and git holds one copy of
    the codec instead of two. A run resumed from it starts its average afresh from those weights.

    ``codec_from``: a shipped model folder (e.g. the package default). When its fp16 weights are exactly
    the checkpoint's codec, the codec is left out and ``state.json`` names the model (``codec_from``), so
    the weights are stored once; :func:`~.checkpoint.module_file` merges them back when training starts
    from the checkpoint. Otherwise the codec is written as usual."""
    from safetensors.torch import load_file, save_file

    dest.mkdir(parents=True, exist_ok=True)
    state = ckpt.fold_ema(load_file(str(run_dir / "last" / "modules.safetensors")))
    state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    ref_id = shipped_codec_id(state, codec_from) if codec_from is not None else None
    if ref_id is not None:
        state = {k: v for k, v in state.items() if not k.startswith("codec.")}
    save_file(state, str(dest / "modules.safetensors"))
    st = json.loads((run_dir / "last" / "state.json").read_text())
    out = {k: st[k] for k in ("step", "audio_seconds", "train_seconds", "config")}
    if ref_id is not None:
        out["codec_from"] = ref_id
    ckpt.save_json(dest / "state.json", out)
    print(f"exported {run_dir / 'last'} (step {st['step']}) to {dest}"
          + (f", its codec by reference to {ref_id}" if ref_id else ""))


def shipped_codec_id(state: dict[str, torch.Tensor], model_dir: Path) -> str | None:
    """The model id of ``model_dir`` when its weights are exactly the ``codec.*`` tensors of ``state``
    (fp16), else None."""
    from safetensors.torch import load_file

    shipped = load_file(str(model_dir / "model.safetensors"))
    codec = {k[len("codec."):]: v for k, v in state.items() if k.startswith("codec.")}
    if codec.keys() != shipped.keys() or not all(torch.equal(codec[k], shipped[k].to(codec[k].dtype))
                                                 for k in codec):
        return None
    return json.loads((model_dir / "config.json").read_text())["model_id"]


def export_default(codec_dir: Path, dest: Path, model_id: str, corpus: Path | None = None,
                   minutes: float = 20.0) -> None:
    """Ship a trained codec as the package default: fp16 safetensors + config (+ entropy tables)."""
    from ..model import ReasoningCodec
    from ..tables import build_tables

    codec = ReasoningCodec.from_pretrained(codec_dir)
    codec.config.model_id = model_id
    dest.mkdir(parents=True, exist_ok=True)
    codec.save_pretrained(dest, dtype=torch.float16)
    if corpus is not None:
        build_tables(dest, corpus, minutes)
