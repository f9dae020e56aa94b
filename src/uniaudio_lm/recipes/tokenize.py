"""Encode every recipe clip with the codec and write uniaudio_lm manifests (``OUT_DIR/tokens/<split>.jsonl``).

Code files: ``OUT_DIR/tokens/codes/<recipe>/<split>/<name>.safetensors`` with ``reasoning [Kr, Tr]`` and
``recon [Kq, Tq]`` (int16 when every codebook has at most 32768 entries, else int32). Clips whose code file
exists are not encoded again (resumable); ``tokens/info.json`` records the codec, and a rerun with a
different codec or ``--recon-codebooks`` is refused unless ``force`` (which clears the old codes).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from .build import read_rows
from .common import AUDIO_FIELDS, audio_refs

def code_path(audio_rel: str) -> str:
    """``audio/<recipe>/<split>/x.flac`` -> ``codes/<recipe>/<split>/x.safetensors`` (relative to tokens/)."""
    p = Path(audio_rel)
    parts = p.parts[1:] if p.parts and p.parts[0] == "audio" else p.parts
    return (Path("codes", *parts).with_suffix(".safetensors")).as_posix()


def manifest_row(row: Dict[str, Any]) -> Dict[str, Any]:
    """A metadata row with audio paths replaced by code paths (``audio`` -> ``codes``)."""
    out: Dict[str, Any] = {}
    for k, v in row.items():
        if k == "audio":
            out["codes"] = code_path(v)
        elif k in ("voice", "source"):
            out[k] = code_path(v)
        elif k == "demos":
            out[k] = [{("codes" if dk == "audio" else dk): (code_path(dv) if dk in AUDIO_FIELDS else dv)
                       for dk, dv in d.items()} for d in v]
        else:
            out[k] = v
    return out


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def load_codec(model: Optional[str]) -> Any:
    import reasoningcodec

    return reasoningcodec.ReasoningCodec.from_pretrained(model) if model else reasoningcodec.load()


def tokenize(out_dir: Path, model: Optional[str] = None, recon_codebooks: Optional[int] = None,
             force: bool = False, log: Callable[[str], None] = print, codec: Any = None) -> Dict[str, Any]:
    """Encode all clips referenced by ``OUT_DIR/{train,test}/*.jsonl``; returns the info dict."""
    import soundfile as sf
    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    rows_by_split = {s: read_rows(out_dir, s) for s in ("train", "test")}
    if not any(rows_by_split.values()):
        raise FileNotFoundError(f"no recipe metadata in {out_dir}/train or {out_dir}/test: run 'build' first")
    codec = codec if codec is not None else load_codec(model)
    cfg = codec.config
    kq = cfg.num_recon_codebooks if recon_codebooks is None else int(recon_codebooks)
    if not 1 <= kq <= cfg.num_recon_codebooks:
        raise ValueError(f"--recon-codebooks must be in 1..{cfg.num_recon_codebooks}, got {kq}")
    tok = out_dir / "tokens"
    info_path = tok / "info.json"
    info: Dict[str, Any] = {"model_id": cfg.model_id, "model": str(model) if model else "reasoningcodec.load()",
                            "recon_codebooks": kq, "num_reasoning_codebooks": cfg.num_reasoning_codebooks,
                            "reasoning_codebook_size": cfg.reasoning_codebook_size,
                            "recon_codebook_size": cfg.recon_codebook_size, "sample_rate": cfg.sample_rate,
                            "reasoning_hz": cfg.sample_rate / cfg.reasoning_hop,
                            "recon_hz": cfg.sample_rate / cfg.recon_hop, "complete": False}
    if info_path.exists():
        old = json.loads(info_path.read_text(encoding="utf-8"))
        same = all(old.get(k) == info[k] for k in ("model_id", "recon_codebooks", "num_reasoning_codebooks",
                                                    "reasoning_codebook_size", "recon_codebook_size"))
        if not same:
            if not force:
                raise ValueError(f"{tok} holds codes of {old.get('model_id')!r} with {old.get('recon_codebooks')} "
                                 f"reconstruction codebooks; now {cfg.model_id!r} with {kq}: pass --force to "
                                 "re-encode everything (or use another OUT_DIR)")
            shutil.rmtree(tok / "codes", ignore_errors=True)
    dtype = torch.int16 if max(cfg.reasoning_codebook_size, cfg.recon_codebook_size) <= 32768 else torch.int32
    info["dtype"] = str(dtype).replace("torch.", "")
    _atomic_write(info_path, json.dumps(info, indent=2) + "\n")

    refs = sorted({a for rows in rows_by_split.values() for r in rows for a in audio_refs(r)})
    todo = [a for a in refs if not (tok / code_path(a)).exists()]
    log(f"[tokenize] {len(refs)} clips, {len(refs) - len(todo)} already encoded, {len(todo)} to encode "
        f"with {cfg.model_id} ({kq} recon codebooks)")
    t0 = time.monotonic()
    for i, a in enumerate(todo):
        x, sr = sf.read(str(out_dir / a), dtype="float32", always_2d=True)
        wav = torch.from_numpy(x.mean(axis=1)).unsqueeze(0)
        codes = codec.encode(wav, sample_rate=sr, n_q=kq)
        tensors = {"reasoning": codes.reasoning[0].to(dtype).contiguous(),
                   "recon": codes.recon[0, :kq].to(dtype).contiguous()}
        dst = tok / code_path(a)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + f".tmp{os.getpid()}")
        save_file(tensors, str(tmp), metadata={"model_id": cfg.model_id, "audio": a})
        os.replace(tmp, dst)
        if (i + 1) % 200 == 0 or i + 1 == len(todo):
            log(f"[tokenize] {i + 1}/{len(todo)} encoded ({time.monotonic() - t0:.0f} s)")
    counts: Dict[str, Dict[str, int]] = {}
    for split, rows in rows_by_split.items():
        lines = [json.dumps(manifest_row(r), ensure_ascii=False) for r in rows]
        _atomic_write(tok / f"{split}.jsonl", "\n".join(lines) + ("\n" if lines else ""))
        c: Dict[str, int] = {}
        for r in rows:
            c[r["task"]] = c.get(r["task"], 0) + 1
        counts[split] = dict(sorted(c.items()))
    info.update(complete=True, clips=len(refs), rows=counts, encode_seconds=round(time.monotonic() - t0, 1))
    _atomic_write(info_path, json.dumps(info, indent=2) + "\n")
    log(f"[tokenize] wrote {tok}/train.jsonl ({len(rows_by_split['train'])} rows) and "
        f"{tok}/test.jsonl ({len(rows_by_split['test'])} rows)")
    return info
