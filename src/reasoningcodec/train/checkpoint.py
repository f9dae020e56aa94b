"""Checkpoints without pickle: module weights and optimizer state as safetensors, the rest as JSON."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _atomic(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_modules(path: Path, modules: dict[str, torch.nn.Module], dtype: torch.dtype = torch.float32) -> None:
    tensors = {}
    for name, m in modules.items():
        for k, v in m.state_dict().items():
            t = v.detach().cpu()
            tensors[f"{name}.{k}"] = (t.to(dtype) if t.is_floating_point() else t).contiguous()
    _atomic(path, lambda p: save_file(tensors, p))


def load_modules(path: Path, modules: dict[str, torch.nn.Module], skip_mismatch: tuple[str, ...] = (),
                 partial: tuple[str, ...] = ()) -> bool:
    """Load module weights; modules named in ``skip_mismatch`` are left as they are when shapes differ;
    modules named in ``partial`` take the tensors whose names and shapes match and keep the rest
    (e.g. a codec whose reasoning front-end changed).

    Returns False if any module was skipped."""
    ok = True
    state = load_file(str(path))
    for name, m in modules.items():
        pre = f"{name}."
        sub = {k[len(pre):]: v for k, v in state.items() if k.startswith(pre)}
        if sub and name in partial:
            ref = m.state_dict()
            fit = {k: v for k, v in sub.items() if k in ref and tuple(v.shape) == tuple(ref[k].shape)}
            if len(fit) < len(ref) or len(fit) < len(sub):
                print(f"checkpoint: {name}: {len(fit)} of {len(ref)} tensors loaded, "
                      f"{len(sub) - len(fit)} in the file do not fit")
            m.load_state_dict({k: v.to(ref[k].dtype) for k, v in fit.items()}, strict=False)
            continue
        if sub:
            ref = m.state_dict()
            if any(k not in ref or tuple(v.shape) != tuple(ref[k].shape) for k, v in sub.items()):
                if name in skip_mismatch:  # e.g. discriminators rebuilt with another width
                    print(f"checkpoint: {name} has other shapes; starting it from scratch")
                    ok = False
                    continue
            m.load_state_dict({k: v.to(ref[k].dtype) if k in ref else v for k, v in sub.items()})
    return ok


def save_optimizer(path: Path, opts: dict[str, torch.optim.Optimizer]) -> None:
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for name, opt in opts.items():
        sd = opt.state_dict()
        meta[name] = sd["param_groups"]
        for idx, st in sd["state"].items():
            for k, v in st.items():
                tensors[f"{name}.{idx}.{k}"] = torch.as_tensor(v).detach().cpu().contiguous()
    _atomic(path, lambda p: save_file(tensors, p, metadata={"param_groups": json.dumps(meta)}))


def load_optimizer(path: Path, opts: dict[str, torch.optim.Optimizer]) -> None:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["param_groups"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    for name, opt in opts.items():
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, v in tensors.items():
            n, idx, k = key.split(".", 2)
            if n == name:
                state.setdefault(int(idx), {})[k] = v
        opt.load_state_dict({"state": state, "param_groups": meta[name]})


def save_json(path: Path, obj: Any) -> None:
    _atomic(path, lambda p: Path(p).write_text(json.dumps(obj, indent=2) + "\n"))


def fold_ema(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A module state with its weight average (``codec_ema.*``) as the codec (``codec.*``), the trained
    copy dropped; unchanged when it holds no average."""
    ema = {f"codec.{k[len('codec_ema.'):]}": v for k, v in state.items() if k.startswith("codec_ema.")}
    if not ema:
        return state
    out = {k: v for k, v in state.items() if not k.startswith(("codec_ema.", "codec."))}
    out.update(ema)
    return out


@contextlib.contextmanager
def module_file(init: Path) -> Iterator[Path]:
    """The complete ``modules.safetensors`` of the resumable checkpoint folder ``init``.

    A checkpoint whose codec is the weights of a shipped default holds only the other modules and names
    that model in its ``state.json`` (``"codec_from": MODEL_ID``, :func:`~.export.export_resumable`), so
    git stores those weights once. Here they are merged back from the installed default, which must be
    that model, into a temporary file; other checkpoints are used as they are."""
    path = init / "modules.safetensors"
    st = json.loads((init / "state.json").read_text()) if (init / "state.json").exists() else {}
    ref = st.get("codec_from")
    if not ref:
        yield path
        return
    from ..hub import DEFAULT_DIR

    cfg = DEFAULT_DIR / "config.json"
    have = json.loads(cfg.read_text()).get("model_id") if cfg.exists() else None
    if have != ref:
        raise ValueError(f"{init} takes its codec weights from the shipped model {ref}, but the installed default "
                         f"is {have}: check out the commit that shipped {ref} (git log -- {DEFAULT_DIR.name})")
    state = load_file(str(path))
    state.update({f"codec.{k}": v for k, v in load_file(str(DEFAULT_DIR / "model.safetensors")).items()})
    with tempfile.TemporaryDirectory() as d:
        merged = Path(d) / "modules.safetensors"
        save_file(state, str(merged))
        yield merged
