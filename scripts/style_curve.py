"""InstructTTS rate and pitch control per training snapshot (a development measure, not a test).

For each snapshot of each run (and ``--start``), the first ``--pairs`` English ``instruct_tts`` test rows
of the data build (grammar sentences: the benchmark's everyday sentences are kept for the release
gate) are spoken twice per kind with the captions :mod:`benchmarks.lm_tasks` writes (fast vs slow, high
vs low pitch; same wording otherwise, same seed), and scored as the benchmark scores them: the share of
pairs whose measured rate differs by 1.25× (pitch by 2 semitones) in the requested direction, plus the
mean log ratio (rate, in octaves of speed) and mean difference (pitch, in semitones) as smoother
signals. The pipeline's duration model is the shipped one, as in use::

    OMP_NUM_THREADS=1 python scripts/style_curve.py runs/lm_arms/style runs/lm_arms/style_c \\
        --json benchmarks/results/style_curve.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("UNIAUDIO_NO_WARN", "1")
ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from benchmarks import lm_curve as LC  # noqa: E402
from benchmarks import lm_eval as E  # noqa: E402
from benchmarks import lm_tasks as LT  # noqa: E402


def dev_rows(data: Path, n: int) -> list[dict]:
    rows = [r for r in LT.read_rows(data / "test").get("instruct_tts", [])
            if r.get("language", "en") == "en" and not r.get("everyday")]
    return rows[:n]


def score(folder: Path, codec: Any, rows: list[dict], data: Path, duration: dict | None) -> dict[str, Any]:
    from uniaudio_lm import api as A

    if duration is not None:   # the shipped duration model, as in use (as_pipeline keeps an existing file)
        pj = {"format": 1, "codec_model_id": codec.config.model_id, "tokenizer": "default", "recon_codebooks": 4}
        (folder / "pipeline.json").write_text(json.dumps({**pj, "duration": duration}, indent=1))
    pipe = LC.as_pipeline(folder, codec, 4)
    out: dict[str, Any] = {}
    for kind in ("rate", "pitch"):
        pairs = []
        for r in rows:
            hi, lo = LT._style_captions(r, kind)
            lim = 2.0 * LT.duration(data / r["audio"]) + 1.0
            a = A.instruct_tts(r["text"], hi, pipeline=pipe, seed=0, max_seconds=lim)
            c = A.instruct_tts(r["text"], lo, pipeline=pipe, seed=0, max_seconds=lim)
            if kind == "rate":
                pairs.append((E.speaking_rate(a).rate, E.speaking_rate(c).rate))
            else:
                pairs.append((E.median_f0(a), E.median_f0(c)))
        need = LT.RATE_RATIO if kind == "rate" else 2 ** (LT.PITCH_SEMITONES / 12)
        acc, n = E.pair_margin(pairs, need)
        lost = sum(math.isnan(x) or math.isnan(y) for x, y in pairs)
        ok = [(x, y) for x, y in pairs if x > 0 and y > 0 and not (math.isnan(x) or math.isnan(y))]
        logr = [math.log2(x / y) * (1 if kind == "rate" else 12) for x, y in ok]
        out[kind] = {"pass": acc * n / len(pairs) if pairs else float("nan"), "n": len(pairs), "unmeasured": lost,
                     "mean": float(np.mean(logr)) if logr else float("nan"), "pairs": pairs}
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="*", type=Path)
    ap.add_argument("--data", type=Path, default=ROOT / "data/lm")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--start", type=Path, default=ROOT / "src/uniaudio_lm/pretrained/default")
    ap.add_argument("--json", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", default=None, help="comma list: only these snapshot steps")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    import reasoningcodec

    codec = reasoningcodec.load()
    rows = dev_rows(a.data, a.pairs)
    shipped = json.loads((ROOT / "src/uniaudio_lm/pretrained/default/pipeline.json").read_text())
    duration = shipped.get("duration")
    res = json.loads(a.json.read_text()) if a.json.is_file() else {}
    want = None if a.steps is None else {int(s) for s in a.steps.split(",")}
    todo: list[tuple[str, int, float, Path]] = []
    if "start" not in res:
        tmp = Path("/tmp/style_curve_start")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for f in ("config.json", "model.safetensors"):
            shutil.copy(a.start / f, tmp / f)
        todo.append(("start", 0, 0.0, tmp))
    for run in a.runs:
        cpu = LC.cpu_at(run)
        for step, snap in LC.snapshots(run):
            key = f"{run.name}@{step}"
            if key not in res and (want is None or step in want):
                todo.append((key, step, cpu.get(step, float("nan")) / 3600, snap))
    for key, step, cpu_h, folder in todo:
        t0 = time.time()
        s = score(folder, codec, rows, a.data, duration)
        s.update({"step": step, "cpu_h": cpu_h})
        res[key] = s
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))
        print(f"{key:22s} {cpu_h:5.2f} CPU-h  rate pass {s['rate']['pass']:.2f} (log2 ratio {s['rate']['mean']:+.3f})  "
              f"pitch pass {s['pitch']['pass']:.2f} ({s['pitch']['mean']:+.2f} st)  [{time.time() - t0:.0f} s]",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
