"""Codec training throughput on this machine: seconds of audio trained per second of wall clock.

Runs the real trainer (``reasoningcodec.train``) on a recipe for a few minutes in a temporary folder —
same model, losses, discriminators, batch and data loading as the recipe, the run starting from its
``init_from`` checkpoint so the GAN is on — logging every step, and reports the per-step wall time
(data loading included) after the first ``--skip`` steps. ``--nproc 2`` runs it as 2-process DDP
under ``torch.distributed.run`` (gloo), as the CPU recipe is run. Nothing is written outside the
temporary folder except ``--json``.

    python benchmarks/train_speed.py --minutes 3
    python benchmarks/train_speed.py --nproc 2 --json benchmarks/results/train_speed_ddp2.json
    python benchmarks/train_speed.py --nproc 2 --set autocast=bf16   # a recipe field changed for the run

Needs the training corpus (``python -m reasoningcodec.data build data/corpus``) and the recipe's
``init_from`` checkpoint (``checkpoints/codec_v1`` is in the repository). Run it on an otherwise idle
machine: other jobs on the same cores make every step slower.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.run_all import cpu_model  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_overrides(items: list[str]) -> dict:
    """``KEY=VALUE`` pairs → dict; VALUE is read as JSON when it parses (numbers, lists), else a string."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def run(recipe: Path, minutes: float, nproc: int, threads: int, skip: int, overrides: dict | None = None) -> dict:
    cfg = json.loads(recipe.read_text())
    cfg.update(overrides or {})
    with tempfile.TemporaryDirectory(prefix="rc-train-speed-") as tmp:
        cfg.update(out_dir=str(Path(tmp) / "run"), max_minutes=minutes, log_every=1, val_every=10 ** 9,
                   ckpt_minutes=10 ** 6, threads=threads, steps=10 ** 9)
        rpath = Path(tmp) / "recipe.json"
        rpath.write_text(json.dumps(cfg))
        if nproc > 1:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                   "--master_port", str(_free_port()), "-m", "reasoningcodec.train", str(rpath), "--quiet"]
        else:
            cmd = [sys.executable, "-m", "reasoningcodec.train", str(rpath), "--quiet"]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        t0 = time.time()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.time() - t0
        if proc.returncode != 0:
            raise SystemExit(f"training failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
        with open(Path(tmp) / "run" / "log.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("sec_per_step")]
    if len(rows) <= skip + 2:
        raise SystemExit(f"only {len(rows)} steps ran in {minutes} min; raise --minutes")
    sps = np.array([float(r["sec_per_step"]) for r in rows[skip:]])
    audio_per_step = cfg["batch_size"] * cfg["segment_seconds"] * nproc
    return {
        "recipe": str(recipe), "overrides": overrides or {}, "nproc": nproc, "threads_per_process": threads,
        "batch": f"{nproc} x {cfg['batch_size']} x {cfg['segment_seconds']} s" if nproc > 1
        else f"{cfg['batch_size']} x {cfg['segment_seconds']} s",
        "steps_timed": int(len(sps)), "steps_skipped": skip,
        "first_step": int(rows[0]["step"]), "gan": int(rows[0]["step"]) >= int(cfg.get("gan_start", 1000)),
        "sec_per_step_median": round(float(np.median(sps)), 3),
        "sec_per_step_p5_p95": [round(float(v), 3) for v in np.percentile(sps, [5, 95])],
        "audio_s_per_s_median": round(audio_per_step / float(np.median(sps)), 2),
        "wall_seconds": round(wall, 1),
        "machine": f"{cpu_model()}, {os.cpu_count()} cores",
        "date": time.strftime("%Y-%m-%d"),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", type=Path, default=Path("recipes/codec_v1_joint_slow.json"))
    p.add_argument("--minutes", type=float, default=3.0, help="training time per run (default 3)")
    p.add_argument("--nproc", type=int, default=1, help="DDP processes (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    p.add_argument("--skip", type=int, default=5, help="first steps left out of the timing (default 5)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="change a recipe field for this run (repeatable), e.g. autocast=bf16 or batch_size=16")
    p.add_argument("--json", type=Path, help="also write the result here")
    a = p.parse_args(argv)
    if not a.recipe.is_file():
        raise SystemExit(f"no recipe at {a.recipe}")
    r = run(a.recipe, a.minutes, a.nproc, a.threads, a.skip, parse_overrides(a.overrides))
    print(json.dumps(r, indent=2))
    print(f"{r['batch']}: {r['sec_per_step_median']} s/step (median of {r['steps_timed']}), "
          f"{r['audio_s_per_s_median']} s of audio per second")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
