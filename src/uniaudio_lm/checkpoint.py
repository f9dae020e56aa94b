"""Resumable training checkpoints: safetensors + JSON only (no pickle).

A checkpoint directory holds::

    config.json             UniAudioConfig
    model.safetensors       weights (tied tensors stored once; aliases listed in trainer.json)
    optimizer.safetensors   every tensor of the optimizer state, keyed ``state/<param>/<name>``
    optimizer.json          param_groups and non-tensor state values
    trainer.json            step, stage, token count, the training configuration, tensor aliases

Writes go to ``<dir>.tmp`` and are renamed into place, so an interrupted save never leaves a broken
``<dir>``. The functions work on plain state dicts, so DDP (module state) and FSDP (full state dicts
gathered with ``torch.distributed.checkpoint.state_dict``) share them.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .config import UniAudioConfig


@dataclass
class Checkpoint:
    """A loaded checkpoint."""

    config: UniAudioConfig
    model_state: dict[str, torch.Tensor]
    optim_state: dict[str, Any]
    trainer_state: dict[str, Any]


def _dedup(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    out: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    seen: dict[tuple[int, int, tuple[int, ...]], str] = {}
    for k, t in state.items():
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape))
        if key in seen:
            aliases[k] = seen[key]
        else:
            seen[key] = k
            out[k] = t.detach().contiguous().cpu()
    return out, aliases


def save_checkpoint(directory: str | Path, config: UniAudioConfig, model_state: dict[str, torch.Tensor],
                    optim_state: dict[str, Any], trainer_state: dict[str, Any]) -> Path:
    """Write a checkpoint atomically; returns its directory."""
    d = Path(directory)
    tmp = d.with_name(d.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    config.to_json(tmp / "config.json")
    weights, aliases = _dedup(model_state)
    save_file(weights, str(tmp / "model.safetensors"))
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in optim_state.get("state", {}).items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"state/{pid}/{name}"] = v.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(pid), {})[name] = v
    save_file(tensors, str(tmp / "optimizer.safetensors"))
    meta = {"param_groups": optim_state.get("param_groups", []), "scalars": scalars,
            "int_keys": all(isinstance(k, int) for k in optim_state.get("state", {}))}
    (tmp / "optimizer.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    (tmp / "trainer.json").write_text(json.dumps({**trainer_state, "aliases": aliases}, indent=1), encoding="utf-8")
    old = d.with_name(d.name + ".old")
    if d.exists():
        if old.exists():
            shutil.rmtree(old)
        d.rename(old)
    tmp.rename(d)
    if old.exists():
        shutil.rmtree(old)
    return d


def load_checkpoint(directory: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`."""
    d = Path(directory)
    trainer = json.loads((d / "trainer.json").read_text(encoding="utf-8"))
    aliases = trainer.pop("aliases", {})
    model_state = load_file(str(d / "model.safetensors"), device=str(map_location))
    for k, src in aliases.items():
        model_state[k] = model_state[src]
    meta = json.loads((d / "optimizer.json").read_text(encoding="utf-8"))
    conv = (lambda k: int(k)) if meta.get("int_keys", True) else (lambda k: k)
    state: dict[Any, dict[str, Any]] = {}
    for key, t in load_file(str(d / "optimizer.safetensors"), device=str(map_location)).items():
        _, pid, name = key.split("/", 2)
        state.setdefault(conv(pid), {})[name] = t
    for pid, vals in meta.get("scalars", {}).items():
        state.setdefault(conv(pid), {}).update(vals)
    groups = meta["param_groups"]
    for g in groups:
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
    return Checkpoint(UniAudioConfig.from_json(d / "config.json"), model_state,
                      {"state": state, "param_groups": groups}, trainer)


def check_matches(have_state: dict[str, torch.Tensor], saved: dict[str, torch.Tensor], where: Path) -> None:
    """A ``ValueError`` naming the difference when the checkpoint in ``where`` (its model state ``saved``)
    is not of the model whose state is ``have_state`` (a recipe's ``model`` or ``init_from`` changed since
    the run started)."""
    have = {k: tuple(v.shape) for k, v in have_state.items()}
    got = {k: tuple(v.shape) for k, v in saved.items()}
    extra, missing = sorted(set(got) - set(have)), sorted(set(have) - set(got))
    shapes = sorted(k for k in set(have) & set(got) if have[k] != got[k])
    if extra or missing or shapes:
        parts = [f"{what}: {', '.join(ks[:4])}{' ...' if len(ks) > 4 else ''}" for what, ks in
                 (("only in the checkpoint", extra), ("only in the recipe's model", missing),
                  ("different shapes", shapes)) if ks]
        raise ValueError(f"{where} holds a run of a different model than this recipe builds ({'; '.join(parts)}); "
                         "use a new out_dir, or the recipe the run started with")
