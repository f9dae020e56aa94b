"""Score every committed version of a resumable checkpoint on the same held-out clips: a learning curve.

Each commit that changed ``CHECKPOINT/modules.safetensors`` is read from git (nothing in the work tree
changes), turned into a codec folder (its weight average when it holds one) and scored by
``scripts/heldout_eval.py``'s ``score`` — validation log-mel L1 and speech STOI / PESQ-WB on held-out
clips of the training sources. Beside the step and the hours of audio the run had seen (the
checkpoint's ``state.json``), a least-squares line of each speech metric against log2(hours of audio),
over the commits from ``--fit-from-step`` on, says how much each doubling of the training audio has
bought, and — if that rate held, which is an extrapolation and nothing more — how many hours of audio
``--target-pesq`` / ``--target-stoi`` would take; the same against log2(steps) beside it (steps of
different batch sizes count alike there).

    python scripts/learning_curve.py --json benchmarks/results/learning_curve.json
    python scripts/learning_curve.py --commits 4176e9b d371bce   # just these
    python scripts/learning_curve.py --from-json benchmarks/results/learning_curve.json --plot curve.png
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load

sys.path.insert(0, str(Path(__file__).resolve().parent))
from heldout_eval import add_clip_args, score  # noqa: E402

from reasoningcodec import CodecConfig, ReasoningCodec  # noqa: E402
from reasoningcodec.train.checkpoint import fold_ema  # noqa: E402


def git(*args: str) -> bytes:
    return subprocess.run(["git", *args], check=True, capture_output=True).stdout


def checkpoint_commits(checkpoint: str) -> list[str]:
    """Commits that changed the checkpoint's weights, oldest first."""
    out = git("log", "--format=%H", "--", f"{checkpoint}/modules.safetensors").decode().split()
    return out[::-1]


def codec_at(commit: str, checkpoint: str, dest: Path) -> dict:
    """Write the codec of ``checkpoint`` at ``commit`` to ``dest``; return its state.json."""
    state = json.loads(git("show", f"{commit}:{checkpoint}/state.json"))
    tensors = fold_ema(load(git("show", f"{commit}:{checkpoint}/modules.safetensors")))
    cfg = CodecConfig.from_dict({**CodecConfig().to_dict(), **state.get("config", {}).get("codec", {})})
    codec = ReasoningCodec(cfg)
    weights = {k[len("codec."):]: v.float() for k, v in tensors.items() if k.startswith("codec.")}
    codec.load_state_dict(weights)  # strict: an older architecture is an error, not a silent partial load
    codec.save_pretrained(dest)
    return state


def fit(rows: list[dict], key: str, x_key: str = "audio_hours") -> dict:
    """``key`` ≈ a + b·log2(``x_key``) by least squares."""
    x = np.log2([r[x_key] for r in rows])
    y = np.array([r[key] for r in rows])
    b, a = np.polyfit(x, y, 1)
    resid = y - (a + b * x)
    return {"x": x_key, "per_doubling": round(float(b), 4), "intercept": round(float(a), 4),
            "rms_residual": round(float(np.sqrt(np.mean(resid ** 2))), 4), "points": len(rows)}


def x_for(f: dict, target: float) -> float | None:
    """Where the fitted line reaches ``target`` (hours or steps, as fitted); None if it never does."""
    if f["per_doubling"] <= 0:
        return None
    return round(2 ** ((target - f["intercept"]) / f["per_doubling"]), 0)


def plot(out: dict, path: Path) -> None:
    """PESQ-WB and STOI against hours of audio seen (log axis), with the fitted lines and the targets."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, fits = out["rows"], out.get("fit", {})
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in zip(axes, ("pesq_wb", "stoi"), ("PESQ-WB", "STOI")):
        hours = [r["audio_hours"] for r in rows]
        ax.plot(hours, [r[key] for r in rows], "o", label="checkpoints/codec_v1 (held-out speech)")
        f = fits.get(key)
        if f:
            top = max(hours[-1] * 2, f.get("hours_to_target") or 0)
            xs = np.geomspace(min(r["audio_hours"] for r in rows if r["step"] >= fits["from_step"]), top, 50)
            ax.plot(xs, f["intercept"] + f["per_doubling"] * np.log2(xs), "--",
                    label=f"fit from step {fits['from_step']:,}: {f['per_doubling']:+.3f} per doubling")
            if f.get("target") is not None:
                ax.axhline(f["target"], color="k", lw=0.8, label=f"{fits.get('target_label', 'target')}: {f['target']}")
        ax.set_xscale("log")
        ax.set_xlabel("hours of audio seen in training")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def score_commits(a: argparse.Namespace) -> list[dict]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for c in a.commits or checkpoint_commits(a.checkpoint):
            d = Path(tmp) / c
            try:
                state = codec_at(c, a.checkpoint, d)
            except (RuntimeError, KeyError, subprocess.CalledProcessError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                print(f"{c[:9]}: skipped ({first[:160]})", flush=True)
                continue
            t = time.time()
            r = score(d, a.corpus, a.val_clips, a.speech_clips, a.max_seconds, a.seed)
            r.update(model=a.checkpoint, commit=c[:9], step=state["step"],
                     audio_hours=round(state["audio_seconds"] / 3600, 1), seconds=round(time.time() - t, 1))
            rows.append(r)
            print(json.dumps(r), flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", default="checkpoints/codec_v1")
    p.add_argument("--commits", nargs="*", help="only these commits (default: every one that changed it)")
    add_clip_args(p)
    p.add_argument("--fit-from-step", type=int, default=0, help="fit only commits at or after this step")
    p.add_argument("--target-pesq", type=float, help="e.g. Opus 6 kbit/s on the same clips")
    p.add_argument("--target-stoi", type=float)
    p.add_argument("--target-label", default="target", help="legend text for the targets' lines")
    p.add_argument("--json", type=Path)
    p.add_argument("--plot", type=Path, help="write a PNG of the curve and its fit")
    p.add_argument("--from-json", type=Path, help="do not score: take the rows of this file (a --json output) and fit them again")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = json.loads(a.from_json.read_text())["rows"] if a.from_json else score_commits(a)
    rows.sort(key=lambda r: r["step"])
    out = {"rows": rows}
    fitted = [r for r in rows if r["step"] >= a.fit_from_step]
    if len(fitted) >= 3:
        out["fit"] = {"from_step": a.fit_from_step, "target_label": a.target_label}
        for key, target in (("pesq_wb", a.target_pesq), ("stoi", a.target_stoi)):
            f = fit(fitted, key)
            by_steps = fit(fitted, key, "step")
            if target is not None:
                f["target"] = target
                f["hours_to_target"] = x_for(f, target)
                by_steps["steps_to_target"] = x_for(by_steps, target)
            out["fit"][key] = f
            out["fit"][f"{key}_by_steps"] = by_steps
        print(json.dumps(out["fit"]), flush=True)
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    if a.plot:
        plot(out, a.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
