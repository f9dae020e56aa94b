"""Audio-only and reasoning <-> reconstruction rows over clips the other recipes already wrote."""

from __future__ import annotations

import json
from typing import Dict, List

import soundfile as sf

from .common import Context, RecipeError

Rows = Dict[str, List[dict]]
PRETRAIN_TASKS = ("continue", "reason_to_recon", "recon_to_reason")


def pretrain(ctx: Context) -> Rows:
    """``continue`` (clips of at least 2 s), ``reason_to_recon`` and ``recon_to_reason`` over a random subset
    of the target/input clips of the recipes built before it in OUT_DIR (same split)."""
    out: Rows = {}
    for split in ("train", "test"):
        clips: Dict[str, str] = {}
        for f in sorted((ctx.out_dir / split).glob("*.jsonl")):
            if f.stem == ctx.recipe:
                continue
            for line in f.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    clips.setdefault(r["audio"], r["recipe"])
        if not clips:
            raise RecipeError(f"no {split} clips in {ctx.out_dir}: build other recipes before 'pretrain'")
        rng = ctx.rng(split)
        paths = sorted(clips)
        long = [p for p in paths if sf.info(str(ctx.out_dir / p)).duration >= 2.0] or paths
        rows = out.setdefault(split, [])
        for task in PRETRAIN_TASKS:
            pool = long if task == "continue" else paths
            n = min(len(pool), ctx.count(80 if split == "train" else 40))
            for p in rng.sample(pool, n):
                rows.append({"task": task, "recipe": ctx.recipe, "audio": p, "from_recipe": clips[p]})
    return out
