"""Learning curves of uniaudio_lm training runs: flagship-task scores against CPU-hours (not a test).

Each run folder written by ``python -m uniaudio_lm.train`` with ``snapshot_every`` holds
``snapshots/step_<N>/`` and ``losses.csv`` (its ``cpu_s`` column is the training process's CPU seconds).
Every snapshot is scored with the task functions of :mod:`benchmarks.lm_tasks` (same held-out rows, same
episodes, same seeds), and so is ``--start`` (the weights every run began from) at 0 CPU-hours::

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/lm_curve.py runs/lm_arms/control runs/lm_arms/stream \\
        --control control --tasks fewshot_classify --json benchmarks/results/lm_curve.json \\
        --png benchmarks/results/lm_curve.png

Scores already in ``--json`` are kept (a rerun scores only new snapshots). With ``--control``, each other
run is compared with the control at the largest CPU budget both reached (each run's last snapshot
within it), paired over the same few-shot episodes / ASR items (bootstrap 95% interval of the
difference).
"""

from __future__ import annotations

import argparse
import csv
import functools
import json
import os
import random
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

from benchmarks import lm_eval as E  # noqa: E402
from benchmarks import lm_tasks as LT  # noqa: E402

#: (task, metric) pairs plotted, and how one item scores for the paired comparison.
CURVE_METRICS = {"fewshot_classify": ("accuracy", "accuracy (real names shuffled)"), "asr": ("CER (en)",),
                 "asr_ctc": ("CER (en)",), "asr_encoder": ("CER (en)",)}


def snapshots(run: Path) -> list[tuple[int, Path]]:
    d = run / "snapshots"
    return sorted((int(p.name.split("_")[1]), p) for p in d.glob("step_*") if (p / "model.safetensors").is_file())


def cpu_at(run: Path) -> dict[int, float]:
    """step → the training process's CPU seconds after that step (``losses.csv``)."""
    out: dict[int, float] = {}
    with (run / "losses.csv").open(encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r.get("cpu_s"):
                out[int(r["step"])] = float(r["cpu_s"])
    return out


def as_pipeline(folder: Path, codec: Any, recon_codebooks: int) -> Any:
    """A model folder (config.json + model.safetensors) loaded as a pipeline with the given codec."""
    from uniaudio_lm import pipeline as P

    if not (folder / "pipeline.json").is_file():
        (folder / "pipeline.json").write_text(json.dumps({"format": 1, "codec_model_id": codec.config.model_id,
                                                          "tokenizer": "default",
                                                          "recon_codebooks": recon_codebooks}, indent=1))
    pipe = P.load(folder, codec=codec)
    pipe.encode = _cached(pipe.encode)  # the same held-out clips are encoded for every snapshot
    return pipe


_CODES: dict[str, Any] = {}


def _cached(encode: Any) -> Any:
    @functools.wraps(encode)
    def enc(audio: Any) -> Any:
        if isinstance(audio, (str, Path)):
            key = str(audio)
            if key not in _CODES:
                _CODES[key] = encode(audio)
            return _CODES[key]
        return encode(audio)
    return enc


def item_scores(b: Any, task: str) -> list[float]:
    """Per-item scores of the model (few-shot: 1/0 per episode, nonsense labels; ASR: character errors
    per reference character)."""
    if task == "fewshot_classify":
        eps = b.items.get("fewshot_classify", [])
        hyps = b.items.get("fewshot_classify_model", {}).get("nonsense", [])
        return [float(h["hyp"] == h["names"][e["answer"]]) for e, h in zip(eps, hyps)]
    if task == "asr":
        return [E.error_rate([(x["ref"], x["hyp"])], "char").rate for x in b.items.get("asr", [])
                if "ref" in x and x.get("set", "en") == "en"]
    return []


def score(folder: Path, codec: Any, a: argparse.Namespace, tasks: list[str]) -> dict[str, Any]:
    pipe = as_pipeline(folder, codec, a.recon_codebooks)
    b = LT.Bench(a.data, pipe, "", a.per_task, 0, a.asr_en_rows, a.seed, a.threads, a.fewshot_episodes,
                 test=LT.read_rows(a.data / "test"))
    b.asr_decoder = "lm"            # the curve's ASR is the language model's; an audio encoder's CTC is read apart
    out: dict[str, Any] = {"metrics": {}, "items": {}}
    for t in tasks:
        LT.TASK_FNS[t](b)
        out["items"][t] = item_scores(b, t)
    if "asr" in tasks and getattr(pipe.model, "ctc_blank", None) is not None:
        cer, items = ctc_readout(b, pipe)
        out["metrics"]["asr_ctc|CER (en)"] = cer
        out["items"]["asr_ctc"] = items
    if "asr" in tasks and getattr(pipe.model, "audio_encoder", None) is not None:
        cer, items = encoder_readout(b, pipe)
        out["metrics"]["asr_encoder|CER (en)"] = cer
        out["items"]["asr_encoder"] = items
    for r in b.rows:
        if r["kind"] == "model" and r["metric"] in CURVE_METRICS.get(r["task"], ()):
            out["metrics"][f"{r['task']}|{r['metric']}"] = r["value"]
        elif r["kind"] == "baseline" and r.get("role") == "reference":
            what = r["note"].split(";")[0]
            out.setdefault("baselines", {})[f"{r['task']}|{r['metric']}|{what}"] = r["value"]
    return out


@torch.no_grad()
def ctc_readout(b: Any, pipe: Any) -> tuple[float, list[float]]:
    """The CTC head's greedy transcripts of the everyday ASR clips (models trained with ``ctc_weight``):
    the ASR prompt and the clip's audio item, read at its audio positions. Returns the corpus CER and the
    per-sentence CERs."""
    from uniaudio_lm import build, collate
    from uniaudio_lm.tasks import understanding

    model = pipe.model.eval()
    pairs = []
    for r in LT.everyday_rows(b, "asr"):
        ex = understanding("asr", pipe.encode(str(b.path(r["audio"]))), None)
        batch = collate([build(ex.segments, pipe.tokenizer, model.vocab, eot=False)], pipe.tokenizer, model.vocab)
        h = model.hidden(batch.text_ids, batch.audio_ids, batch.is_audio, batch.valid).text_hidden[0]
        pairs.append((r["text"], pipe.tokenizer.decode(model.ctc_greedy(h[batch.is_audio[0]]))))
    return E.error_rate(pairs, "char").rate, [E.error_rate([p], "char").rate for p in pairs]


@torch.no_grad()
def encoder_readout(b: Any, pipe: Any) -> tuple[float, list[float]]:
    """The audio encoder's CTC transcripts of the everyday ASR clips, decoded as ``uniaudio_lm.asr`` does with
    ``decoder="ctc"`` (beam search with the character model). Returns the corpus CER and the per-sentence CERs."""
    from uniaudio_lm.ctc_decode import ctc_transcript

    pipe.model.eval()
    pairs = [(r["text"], ctc_transcript(pipe, pipe.encode(str(b.path(r["audio"]))))) for r in LT.everyday_rows(b, "asr")]
    return E.error_rate(pairs, "char").rate, [E.error_rate([p], "char").rate for p in pairs]


def paired(ctrl: list[float], arm: list[float], n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    d = np.asarray(arm, float) - np.asarray(ctrl, float)
    rng = np.random.default_rng(seed)
    boots = [float(d[rng.integers(0, len(d), len(d))].mean()) for _ in range(n_boot)]
    return {"diff": float(d.mean()), "lo": float(np.percentile(boots, 2.5)), "hi": float(np.percentile(boots, 97.5)),
            "n": int(len(d))}


def compare(res: dict[str, Any], control: str) -> dict[str, Any]:
    runs = res["runs"]
    if control not in runs:
        return {}
    out = {}
    for name, pts in runs.items():
        if name == control or not pts or not runs[control]:
            continue
        budget = min(max(p["cpu_s"] for p in pts), max(p["cpu_s"] for p in runs[control]))
        pa = max((p for p in pts if p["cpu_s"] <= budget + 1), key=lambda p: p["cpu_s"])
        pc = max((p for p in runs[control] if p["cpu_s"] <= budget + 1), key=lambda p: p["cpu_s"])
        out[name] = {"cpu_h": budget / 3600, "arm_step": pa["step"], "control_step": pc["step"],
                     **{t: paired(pc["items"][t], pa["items"][t]) for t in pa["items"]
                        if pc["items"].get(t) and len(pc["items"][t]) == len(pa["items"][t])}}
    return out


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for pts in res["runs"].values() for p in pts for k in p["metrics"]})
    if not keys:
        return
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.6), squeeze=False)
    names = sorted(res["runs"])
    colour = {n: plt.get_cmap("tab20")(i % 20) for i, n in enumerate(names)}     # one colour per run
    for ax, k in zip(axes[0], keys):
        for name in names:
            pts = sorted((p for p in res["runs"][name] if p["metrics"].get(k) is not None), key=lambda p: p["cpu_s"])
            if pts:
                ax.plot([p["cpu_s"] / 3600 for p in pts], [p["metrics"][k] for p in pts], marker="o", ms=3,
                        label=name, color=colour[name])
        for (bk, base), ls in zip(sorted((bk, v) for bk, v in res.get("baselines", {}).items()
                                        if bk.startswith(k + "|") and v is not None), (":", "-.", "--")):
            ax.axhline(base, ls=ls, c="grey", lw=0.9,
                       label=bk.split("|")[2].split(" (")[0].replace("nearest demo by ", "nearest demo, "))
        if k.startswith("fewshot"):
            ax.axhline(0.5, ls="--", c="k", lw=0.8, label="chance")
        ax.set_xlabel("training CPU-hours (one thread)")
        ax.set_title(k.replace("|", ": "), fontsize=9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="training run folders (with snapshots/ and losses.csv)")
    ap.add_argument("--start", type=Path, default=ROOT / "src" / "uniaudio_lm" / "pretrained" / "default",
                    help="the weights the runs started from, scored at 0 CPU-hours (default: the shipped model)")
    ap.add_argument("--tasks", default="fewshot_classify", help="comma list of lm_tasks tasks")
    ap.add_argument("--control", default=None, help="run name the others are compared with")
    ap.add_argument("--every", type=int, default=1, help="score every N-th snapshot (and the last)")
    ap.add_argument("--steps", default=None, help="comma list: score only these snapshot steps")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "lm")
    ap.add_argument("--per-task", type=int, default=20)
    ap.add_argument("--asr-en-rows", type=int, default=100)
    ap.add_argument("--fewshot-episodes", type=int, default=200)
    ap.add_argument("--recon-codebooks", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" / "lm_curve.json")
    ap.add_argument("--png", type=Path, default=None)
    ap.add_argument("--cpu-offset", action="append", default=[], metavar="RUN=SECONDS",
                    help="CPU seconds a run spent before its losses.csv began (an earlier phase it started from)")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    unknown = [t for t in tasks if t not in LT.TASK_FNS]
    if unknown:
        print(f"unknown task(s) {unknown}", file=sys.stderr)
        return 2
    missing = [str(r) for r in a.runs if not (r / "losses.csv").is_file()]
    if missing:
        print(f"not a training run folder (no losses.csv): {', '.join(missing)}", file=sys.stderr)
        return 2
    import reasoningcodec

    codec = reasoningcodec.load()
    res: dict[str, Any] = json.loads(a.json.read_text()) if a.json.is_file() else {}
    res.setdefault("runs", {})
    res["meta"] = {"tasks": tasks, "data": str(a.data), "fewshot_episodes": a.fewshot_episodes,
                   "asr_en_rows": a.asr_en_rows, "seed": a.seed, "codec": codec.config.model_id,
                   "start": str(a.start)}
    start_pt: dict[str, Any] | None = None
    for run in a.runs:
        pts = res["runs"].setdefault(run.name, [])
        done = {p["step"] for p in pts if all(t in p["items"] for t in tasks)}
        offset = dict(x.split("=", 1) for x in a.cpu_offset).get(run.name, 0)
        cpu = {k: v + float(offset) for k, v in cpu_at(run).items()}
        snaps = snapshots(run)
        if a.steps:
            want = {int(x) for x in a.steps.split(",") if x.strip()}
            chosen = [s for s in snaps if s[0] in want]
        else:
            chosen = [s for i, s in enumerate(snaps) if i % a.every == a.every - 1 or i == len(snaps) - 1]
        if 0 not in done:
            if start_pt is None:
                t0 = time.perf_counter()
                start_pt = score(a.start, codec, a, tasks)
                print(f"start {a.start}: {start_pt['metrics']} ({time.perf_counter() - t0:.0f} s)", flush=True)
            pts.append({"step": 0, "cpu_s": 0.0, **start_pt})
        for step, folder in chosen:
            if step in done or step not in cpu:
                continue
            t0 = time.perf_counter()
            s = score(folder, codec, a, tasks)
            pts.append({"step": step, "cpu_s": cpu[step], **s})
            print(f"{run.name} step {step} ({cpu[step] / 3600:.2f} CPU-h): {s['metrics']} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)
            res["baselines"] = {**res.get("baselines", {}), **s.get("baselines", {})}
        pts.sort(key=lambda p: p["step"])
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(res, indent=1))
    if a.control:
        res["comparison"] = compare(res, a.control)
        print(json.dumps(res["comparison"], indent=1))
    a.json.write_text(json.dumps(res, indent=1))
    if a.png:
        plot(res, a.png)
    return 0


if __name__ == "__main__":
    random.seed(0)
    raise SystemExit(main())
