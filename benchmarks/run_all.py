"""One command for the numbers in ``benchmarks/RESULTS.md``: run the benchmarks, then write the file.

    python benchmarks/run_all.py                    # every stage (< 30 min on the 2-core dev VM), then RESULTS.md
    python benchmarks/run_all.py --skip speed,probe # the other stages; skipped sections keep their older JSON
    python benchmarks/run_all.py --from-results     # no benchmark: only regenerate RESULTS.md from the JSON files
    python benchmarks/run_all.py --quick            # a few clips per stage, written under /tmp (pipeline check)

Stages, in this order, each its own process running the existing script with ``--threads``
(default 1) torch threads and ``OMP_NUM_THREADS`` set to the same, each writing its usual JSON into
``--results-dir`` (default ``benchmarks/results``):

* ``reconstruction`` — ``reconstruction.py --codecs ours,classical,neural --ours-codebooks 8,4``:
  the default model at 8 and 4 reconstruction codebooks (entropy-coded files), Opus, Codec 2, MP3, and
  EnCodec/Mimi/XCodec (rows say "weights not available here" when their checkpoints are not cached);
  ``reconstruction.{md,json}`` and ``quality_vs_bitrate_<category>.png``;
* ``file_size`` — ``file_size.py``: ``file_size.json``;
* ``probe`` — ``probe.py``: ``probe.json``;
* ``speed`` — ``speed.py --codecs ours,encodec`` (batch 1 and 16, streaming): ``speed.{md,json}``;
* ``lm_speed`` — ``lm_speed.py --devices cpu``: ``lm_speed.{md,json}``.

Then ``RESULTS.md`` is generated from those JSON files: a header (date, machine, load average and the
CPU use of other processes, the exact command, the default model's id, per-stage wall times, from the
run record ``run_all.json``), one section per stage, and — copied verbatim from
``results/carried_over.md`` — the hand-written measurements this command does not make (GPU numbers,
the 60-minute long-file test, training throughput, earlier checkpoints).

``--quick`` never writes into ``benchmarks/results`` or ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import json
import math
import os
import platform
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_report import FOOTNOTE, category_tables, summary_from_json  # noqa: E402

BENCH = ROOT / "benchmarks"
RESULTS_DIR = BENCH / "results"
RESULTS_MD = BENCH / "RESULTS.md"
CARRIED = RESULTS_DIR / "carried_over.md"
RECORD = "run_all.json"
STAGES = ("reconstruction", "file_size", "probe", "speed", "lm_speed")
OUTPUTS = {"reconstruction": "reconstruction.json", "file_size": "file_size.json", "probe": "probe.json",
           "speed": "speed.json", "lm_speed": "lm_speed.json"}
SPEED_CODECS = "ours,encodec"
QUICK_CLIPS = 2  # per category, --quick
QUICK_BANNER = ("> **QUICK RUN (`--quick`)**: a few clips per stage, to check the pipeline. These numbers must "
                "not be reported.")


# ----------------------------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def cpu_seconds() -> tuple[float, float] | None:
    """(busy, total) CPU seconds of the whole machine since boot, all cores, from ``/proc/stat``."""
    try:
        f = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    idle = f[3] + f[4]  # idle + iowait
    return (sum(f) - idle) / tick, sum(f) / tick


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def other_busy_cores(before: tuple[float, float] | None, after: tuple[float, float] | None, wall: float,
                     own_cpu: float) -> float | None:
    """Cores kept busy by processes other than ours over ``wall`` seconds (machine busy time − ours)."""
    if before is None or after is None or wall <= 0:
        return None
    return max(0.0, (after[0] - before[0] - own_cpu) / wall)


def machine_info(threads: int) -> dict[str, Any]:
    import torch

    ram = ram_gib()
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "ram_gib": None if ram is None else round(ram, 1), "torch": torch.__version__,
            "python": platform.python_version(), "stage_threads": threads}


def default_model_info(model: str | None) -> dict[str, Any]:
    """Id of the model the quality stages use, and whether its architecture is the installed default's
    (the speed stage times a randomly initialised model of that architecture)."""
    import reasoningcodec as rc

    try:
        m = rc.ReasoningCodec.from_pretrained(model) if model else rc.load()
    except Exception as e:  # noqa: BLE001 - reported in the header, the stages report their own failure
        return {"model_id": None, "source": model or "installed default", "error": f"{type(e).__name__}: {e}"[:200]}
    try:  # the speed stage times a random model of the installed default's architecture
        ref = rc.load().config
    except Exception:  # noqa: BLE001
        ref = rc.CodecConfig()
    a, b = dataclasses.asdict(m.config), dataclasses.asdict(ref)
    a.pop("model_id"), b.pop("model_id")
    return {"model_id": m.config.model_id, "source": model or "installed default",
            "same_architecture_as_default_config": a == b}


# ----------------------------------------------------------------------------------------------- stages
def quick_manifest(manifest: Path, out: Path, per_category: int = QUICK_CLIPS) -> Path:
    """The first ``per_category`` eval clips of each category, with absolute paths (both reconstruction.py
    and file_size.py join manifest paths onto a root, which leaves absolute paths as they are)."""
    root = manifest.resolve().parent.parent
    with open(manifest, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        fields, rows, count = reader.fieldnames or [], [], {}
        for r in reader:
            if r.get("usage") not in ("eval", "eval-internal-only") or "visqol_anchors" in r["path"]:
                continue
            if count.get(r["category"], 0) < per_category:
                count[r["category"]] = count.get(r["category"], 0) + 1
                rows.append({**r, "path": str(root / r["path"])})
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n",
                           escapechar="\\")
        w.writeheader()
        w.writerows(rows)
    return out


def stage_command(stage: str, a: argparse.Namespace, results: Path, manifest: Path | None) -> list[str]:
    py = [sys.executable, str(BENCH / f"{stage}.py")]
    model = ["--model", a.model] if a.model else []
    man = ["--manifest", str(manifest)] if manifest else []
    if stage == "reconstruction":
        return py + ["--codecs", "ours,classical,neural", "--ours-codebooks", "8,4", "--out", str(results), *man,
                     *model] + (["--weights-dir", a.weights_dir] if a.weights_dir else [])
    if stage == "file_size":
        return py + ["--out", str(results / OUTPUTS["file_size"]), *man, *model]
    if stage == "probe":
        return py + ["--out", str(results / OUTPUTS["probe"]), "--cv", *model] + (["--max-per-digit", "2"] if a.quick else [])
    if stage == "speed":
        return py + ["--threads", str(a.threads), "--codecs", SPEED_CODECS, "--out", str(results)] + (
            ["--seconds", "2", "--runs", "1"] if a.quick else [])
    if stage == "lm_speed":
        return py + ["--threads", str(a.threads), "--devices", "cpu", "--out", str(results)] + (
            ["--presets", "tiny", "--steps", "1", "--gen-frames", "8", "--gen-batch", "2"] if a.quick else [])
    raise ValueError(stage)


def display_command(cmd: list[str], threads: int) -> str:
    """``OMP_NUM_THREADS=1 python benchmarks/x.py …`` with repository-relative paths."""
    def rel(s: str) -> str:
        try:
            return str(Path(s).resolve().relative_to(ROOT)) if s.startswith("/") else s
        except ValueError:
            return s
    return f"OMP_NUM_THREADS={threads} " + shlex.join(["python", *(rel(c) for c in cmd[1:])])


def run_stage(stage: str, cmd: list[str], threads: int, results: Path) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1",
           "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(
               p for p in (str(ROOT), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")) if p)}
    out = results / OUTPUTS[stage]
    mtime = out.stat().st_mtime if out.exists() else None
    print(f"\n=== {stage}: {display_command(cmd, threads)}", flush=True)
    c0, m0, t0 = children_cpu(), cpu_seconds(), time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - t0
    others = other_busy_cores(m0, cpu_seconds(), wall, children_cpu() - c0)
    wrote = out.exists() and out.stat().st_mtime != mtime
    status = "ran" if proc.returncode == 0 and wrote else "failed"
    print(f"=== {stage}: {status} in {wall / 60:.1f} min", flush=True)
    return {"name": stage, "status": status, "seconds": round(wall, 1), "returncode": proc.returncode,
            "command": display_command(cmd, threads), "output": OUTPUTS[stage],
            "other_busy_cores": None if others is None else round(others, 2),
            "loadavg_end": [round(v, 2) for v in os.getloadavg()]}


# ----------------------------------------------------------------------------------------------- report
def _load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _link(target: Path, base: Path) -> str:
    return os.path.relpath(target, base)


def _num(v: float | None, fmt: str = "{:,.0f}") -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)


def _stage_line(stage: str, record: dict[str, Any] | None, date: str | None) -> str:
    st = {s["name"]: s for s in (record or {}).get("stages", [])}.get(stage)
    when = f"results file dated {date}" if date else "results file without a date"
    if st is None or record is None:
        return f"_Not measured by a recorded `run_all.py` run ({when})._"
    if st["status"] == "ran" and st.get("replaced_after_run"):
        return (f"**The results file was rewritten after the recorded run** ({when}): not measured by the "
                "command in the header.")
    if st["status"] == "ran":
        return f"Measured by this command: `{st['command']}` ({st['seconds'] / 60:.1f} min)."
    if st["status"] == "failed":
        return (f"**The stage failed in this run** (exit code {st['returncode']}); the numbers below are the "
                f"older {when}, not re-run by this command.")
    return f"_Skipped in this run (`--skip`): {when}, not re-run by this command._"


def _model_note(model_id: str | None, default_id: str | None) -> str:
    if model_id is None:
        return "Model: not recorded in the results file."
    if default_id and model_id != default_id:
        return f"Model: `{model_id}` — **not the default model `{default_id}`**."
    return f"Model: `{model_id}`."


def header(record: dict[str, Any] | None, command: str, regenerated: bool,
           default_model: dict[str, Any] | None = None, results: Path = RESULTS_DIR,
           base: Path = BENCH) -> list[str]:
    now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    lines = ["# Benchmark results", "",
             "<!-- Generated by benchmarks/run_all.py from benchmarks/results/*.json and "
             "benchmarks/results/carried_over.md: edit those, not this file. -->", ""]
    if record is None:
        return lines + [f"Generated on {now} by `{command}` from result files written by earlier separate runs "
                        "(there is no run record `results/run_all.json`): machine, load and stage times were not "
                        "recorded; each section states its own date and model."
                        + (f" Default model installed now: `{default_model['model_id']}`."
                           if default_model and default_model.get("model_id") else ""), ""]
    if record.get("quick"):
        lines += [QUICK_BANNER, ""]
    m, load, model = record["machine"], record["load"], record["default_model"]
    ram = f", {m['ram_gib']:.1f} GiB RAM" if m.get("ram_gib") else ""
    busy = load.get("other_busy_cores_start")
    other = ("not measured" if busy is None else
             f"{'yes' if busy >= 0.25 else 'no'} — other processes kept {busy:.2f} of {m['cores']} cores busy "
             "in the 2 s before the start" + (" (CPU speeds below are pessimistic)" if busy >= 0.25 else ""))
    la = ", ".join(f"{v:.2f}" for v in load["loadavg_start"])
    la_end = ", ".join(f"{v:.2f}" for v in load.get("loadavg_end") or [])
    arch = model.get("same_architecture_as_default_config")
    lines += ["| | |", "|---|---|",
              f"| measured | {record['started']} → {record.get('finished', 'unfinished')} "
              f"({record.get('total_seconds', 0) / 60:.1f} min) |",
              f"| command | `{record['command']}` |",
              f"| machine | {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable){ram} |",
              f"| software | torch {m['torch']}, python {m['python']}; each stage ran with {m['stage_threads']} "
              f"torch thread(s) (`OMP_NUM_THREADS={m['stage_threads']}`) |",
              f"| other load present | {other} |",
              f"| load average (1, 5, 15 min) | at start {la}" + (f"; at end {la_end}" if la_end else "") + " |",
              f"| default model | `{model.get('model_id')}` ({model['source']})"
              + ("" if model.get("model_id") else f": {model.get('error', 'not loaded')}")
              + ("; the speed stage times a random-init model of the same architecture" if arch else
                 "; **its architecture differs from the installed default's, which the speed stage times**" if arch is False
                 else "") + " |", ""]
    if regenerated:
        lines += [f"This file was regenerated on {now} with `{command}` from the JSON files of that run "
                  "(or of the earlier runs named in each section); no benchmark was re-run.", ""]
    lines += ["| stage | status | wall time | other processes (cores busy) | results file |",
              "|---|---|---:|---:|---|"]
    for s in record.get("stages", []):
        t = f"{s['seconds'] / 60:.1f} min" if s.get("seconds") is not None else "—"
        o = "—" if s.get("other_busy_cores") is None else f"{s['other_busy_cores']:.2f}"
        lines.append(f"| {s['name']} | {s['status']} | {t} | {o} | `{_link(results / s['output'], base)}` |")
    lines.append("")
    return lines


def reconstruction_section(d: dict[str, Any] | None, results: Path, base: Path, record: dict[str, Any] | None,
                           default_id: str | None) -> list[str]:
    if d is None:
        return ["## Reconstruction quality", "", "_No results file `results/reconstruction.json` yet._", ""]
    meta = d["meta"]
    summary = summary_from_json(d["summary"])
    labels = meta.get("codecs") or list(dict.fromkeys(lbl for rows in summary.values() for lbl in rows))
    lines = [f"## Reconstruction quality (eval set, {meta['n_clips']} clips)", "",
             _stage_line("reconstruction", record, meta.get("date")), "",
             _model_note(meta.get("ours_model_id"), default_id) + " `ours@kN` = our codec decoding N "
             "reconstruction codebooks, entropy-coded `.rc` files.", ""]
    if meta.get("random_weights_smoke"):
        lines += ["> RANDOM-WEIGHTS SMOKE RUN: these numbers are meaningless and must not be reported.", ""]
    lines += [f"Clips: `{meta['source']}` ({meta['n_clips']} clips). {meta['mono']}", "",
              f"Metrics: {meta['metrics']}", "", f"ViSQOL: {meta['visqol']}", ""]
    lines += category_tables(summary, d.get("unavailable", []), labels, level=3)
    lines += FOOTNOTE + [""]
    pngs = [(c, results / f"quality_vs_bitrate_{c}.png") for c in summary]
    pngs = [(c, p) for c, p in pngs if p.exists()]
    if pngs:
        lines += ["Rate–quality plots: " + ", ".join(f"[{c}]({_link(p, base)})" for c, p in pngs) + ".", ""]
    return lines


def file_size_section(d: dict[str, Any] | None, record: dict[str, Any] | None, default_id: str | None) -> list[str]:
    if d is None:
        return ["## File size", "", "_No results file `results/file_size.json` yet._", ""]
    res = d["results"]
    first = next(iter(res.values()), {})
    lines = [f"## File size (eval clips, mono, {first.get('clips', '?')} files, "
             f"{first.get('seconds', 0) / 60:.1f} min)", "", _stage_line("file_size", record, d.get("date")), "",
             _model_note(d.get("model_id"), default_id) + " Bits per second of audio of whole `.rc` files "
             "(header, chunk records, index and footer included).", ""]
    if not d.get("has_entropy_tables", True):
        lines += ["The model has no entropy tables: both columns are bit-packed files.", ""]
    adaptive = all("auto_bps" in v for v in res.values())
    if adaptive:
        lines += ["| recon codebooks | raw bit/s | bit-packed file | rANS file | default file (adaptive: each chunk "
                  "rANS or bit-packed) | default vs packed |",
                  "|---|---:|---:|---:|---:|---:|"]
    else:  # results of a build before the adaptive coding mode
        lines += ["| recon codebooks | raw bit/s | bit-packed file | entropy-coded file (default) "
                  "| saving of rANS vs packing |",
                  "|---|---:|---:|---:|---:|"]
    for key, v in res.items():
        raw, packed, rans = v["raw_bps"], v["packed_bps"], v["rans_bps"]
        cells = [f"{b:.0f} ({100 * (b / raw - 1):+.1f}%)" for b in (packed, rans, v.get("auto_bps", rans))]
        if adaptive:
            cells.append(f"{100 * (v['auto_bps'] / packed - 1):+.2f}%")
        else:
            cells = cells[:2] + [f"{100 * (1 - rans / packed):.1f}%"]
        lines.append(f"| {key.split('_')[0]} | {raw:.0f} | " + " | ".join(cells) + " |")
    return lines + [""]


def probe_section(d: dict[str, Any] | None, record: dict[str, Any] | None, default_id: str | None) -> list[str]:
    if d is None:
        return ["## Understanding probe", "", "_No results file `results/probe.json` yet._", ""]
    names = {"reasoning": "reasoning tokens", "recon": "reconstruction tokens", "logmel": "log-mel (unquantised)"}
    speakers = ", ".join(f"`{s}`" for s in d.get("test_speakers", []))
    lines = [f"## Understanding probe (FSDD spoken digits, held-out speakers {speakers})", "",
             _stage_line("probe", record, d.get("date")), "",
             _model_note(d.get("model_id"), default_id) + f" Classifier `{d.get('classifier')}` trained on "
             f"{d.get('train_clips')} clips of the other speakers; chance is 10%.", ""]
    if d.get("max_per_digit"):
        lines += [f"Subset: at most {d['max_per_digit']} clips per speaker and digit.", ""]
    # older files: one pooling, or one column per pooling
    by_variant = d.get("accuracy_by_variant") or d.get("accuracy_by_pooling") or {"mean-max": d["accuracy"]}
    variants = list(by_variant)
    reported = d.get("variant") or d.get("pooling")
    speeds = d.get("speeds")
    note = ("Variants: `mean-max` = mean and maximum over time (a bag of frames); `mean-max+4-step` = the same "
            "plus the frame sequence resampled to 4 time points (keeps the order of the sounds)")
    if speeds:
        note += ("; `+speed` = the classifier also trains on the training speakers' clips played at "
                 + " and ".join(f"{f:g}×" for f in speeds) + " speed (test clips untouched)")
    lines += [note + "." + (f" Reported: `{reported}`." if reported else ""), ""]
    lines += ["| features | " + " | ".join(f"`{p}`" for p in variants) + " |",
              "|---|" + "---:|" * len(variants)]
    lines += [f"| {names.get(k, k)} | " + " | ".join(f"{100 * by_variant[p][k]:.1f}%" if k in by_variant[p] else "—"
                                                   for p in variants) + " |" for k in by_variant[variants[0]]]
    lines += ["", f"Digit accuracy on the {d.get('test_clips'):,} clips of the held-out speakers."]
    cv = d.get("cv")
    if cv:
        held = ", ".join(f"`{s}`" for s in cv.get("held_out_in_turn", []))
        lines += ["", "How the reported variant was chosen, without the test speakers: leave-one-speaker-out over the training "
                  f"speakers ({held}; train on the others, test on the one left out, {cv.get('epochs')} epochs), "
                  f"{cv.get('features')} tokens, mean accuracy: "
                  + ", ".join(f"`{p}` {100 * v:.1f}%" for p, v in cv["mean_accuracy"].items()) + "."]
    return lines + [""]


def speed_section(d: dict[str, Any] | None, record: dict[str, Any] | None) -> list[str]:
    if d is None:
        return ["## Speed", "", "_No results file `results/speed.json` yet._", ""]
    from benchmarks import speed

    info, args = d["machine"], argparse.Namespace(**d["args"])
    body = speed.markdown(info, d["results"], args).split("\n")[2:]  # drop its own title
    where = "GPU" if info.get("device") == "cuda" else f"CPU, {info.get('threads')} thread(s)"
    return [f"## Speed ({where}, {args.codecs})", "", _stage_line("speed", record, info.get("date")), "", *body]


def lm_speed_section(d: dict[str, Any] | None, record: dict[str, Any] | None, date: str | None) -> list[str]:
    if d is None:
        return ["## uniaudio_lm speed", "", "_No results file `results/lm_speed.json` yet._", ""]
    m, args = d.get("machine", {}), d.get("args", {})
    gb = args.get("gen_batch", 8)
    lines = ["## uniaudio_lm speed", "", _stage_line("lm_speed", record, date), "",
             f"Random-init presets, synthetic stage-4 batches; torch {m.get('torch')}, {m.get('threads')} thread(s); "
             f"median of {args.get('steps')} training steps after a warm-up; generation of {args.get('gen_frames')} "
             "frames (temperature 0.9, top-k 50).", "",
             f"| preset | device | params | train tokens/s | gen frames/s, 1 stream | gen frames/s, batch of {gb} |",
             "|---|---|---:|---:|---:|---:|"]
    for r in d["results"]:
        one, many = r.get("gen_b1_frames_per_s"), r.get(f"gen_b{gb}_frames_per_s")
        lines.append(f"| {r['preset']} | {r['device']} | {r['params_M']:.1f} M | {_num(r.get('train_tokens_per_s'))} "
                     f"| {_num(one, '{:.1f}')} | {_num(many, '{:.1f}')} |")
    return lines + [""]


def lm_tasks_section(results: Path, base: Path) -> list[str]:
    """The per-task table of ``lm_tasks.py`` (its own command: it is not a stage of this one)."""
    head = ["## uniaudio_lm tasks", ""]
    d, md = _load(results / "lm_tasks.json"), results / "lm_tasks.md"
    if d is None or not md.is_file():
        return head + ["_No results file `results/lm_tasks.json` yet (`python benchmarks/lm_tasks.py`)._", ""]
    meta = d.get("meta", {})
    merged = meta.get("merged_from")
    skip = ("data", "out") + (("tasks", "no_status", "status_out") if merged else ())
    args = {k: v for k, v in meta.get("args", {}).items() if v not in (None, "", "None", "False") and k not in skip}
    cmd = "python benchmarks/lm_tasks.py " + " ".join(
        f"--{k.replace('_', '-')} {shlex.quote(str(v))}" if v != "True" else f"--{k.replace('_', '-')}"
        for k, v in args.items())
    how = (f"{len(merged)} processes over disjoint `--tasks` subsets, combined with `--merge`; "
           f"{meta.get('seconds', 0) / 60:.1f} min wall, {meta.get('cpu_seconds', 0) / 60:.1f} min summed over the processes"
           if merged else f"{meta.get('seconds', 0) / 60:.1f} min")
    table = [ln for ln in md.read_text().splitlines() if ln.startswith("|")]
    return head + [f"**Not run by this command** (about 10-25 min on its own): measured on {meta.get('date')} by "
                   f"`OMP_NUM_THREADS={meta.get('machine', {}).get('threads', 1)} {cmd.strip()}` "
                   f"({how}, results [`lm_tasks.md`]({_link(md, base)})). "
                   f"Model: {meta.get('model')}; Whisper: {meta.get('whisper')}.", "",
                   "**model** rows are the model's outputs on held-out test rows; *baseline* rows are trivial outputs "
                   "or ceilings of the metric; *sanity* rows check the learned metrics on real held-out audio.", "",
                   *table, ""]


def carried_section(carried: Path, base: Path) -> list[str]:
    head = ["## Carried over (not re-run by this command)", ""]
    if not carried.exists():
        return head + [f"_No `{carried.name}`: nothing carried over._", ""]
    return head + [f"Copied verbatim from [`{carried.name}`]({_link(carried, base)}): measurements from earlier "
                   "sessions, machines or models that the command above does not repeat.", "",
                   carried.read_text().rstrip("\n"), ""]


def _recorded_date(path: Path) -> str | None:
    """The ``date`` a results file records (top level or one level down), or ``None``."""
    d = _load(path)
    if not isinstance(d, dict):
        return None
    for v in [d, *(x for x in d.values() if isinstance(x, dict))]:
        if isinstance(v.get("date"), str):
            return v["date"]
    return None


def _mark_replaced(record: dict[str, Any], results: Path, slack_s: float = 60.0) -> None:
    """Flag stages whose results file was written after the end of the recorded run (by a later, separate
    command), so the report does not attribute them to the recorded one. The date the file records decides
    (a clone gives every file a new modification time); a file that records only a day counts as later
    when that day is; one that records no date is taken as the run's."""
    try:
        finished = datetime.datetime.fromisoformat(record["finished"])
    except (KeyError, TypeError, ValueError):
        return
    end = finished.timestamp()
    for st in record.get("stages", []):
        out = results / st.get("output", "")
        if st.get("status") != "ran" or not out.is_file():
            continue
        date = _recorded_date(out)
        if date is None:
            continue
        try:
            when = datetime.datetime.fromisoformat(date)
        except ValueError:
            continue
        if len(date) <= 10:  # a day only
            later = when.date() > finished.date()
        else:
            if when.tzinfo is None and finished.tzinfo is not None:
                when = when.replace(tzinfo=finished.tzinfo)
            later = when.timestamp() > end + slack_s
        if later:
            st["replaced_after_run"] = True


def render(results: Path, out: Path, *, carried: Path = CARRIED, command: str = "python benchmarks/run_all.py",
           regenerated: bool = False, default_model: dict[str, Any] | None = None) -> str:
    """The text of RESULTS.md from the JSON files in ``results`` and its run record, if any.

    ``default_model`` (from :func:`default_model_info`) is used only when there is no run record, to say
    which sections were measured on another model than the one installed now.
    """
    record = _load(results / RECORD)
    if record is not None:
        default_model = record.get("default_model")
        _mark_replaced(record, results)
    default_id = (default_model or {}).get("model_id")
    base = out.resolve().parent
    lines = header(record, command, regenerated, default_model, results.resolve(), base)
    lines += reconstruction_section(_load(results / OUTPUTS["reconstruction"]), results.resolve(), base, record,
                                    default_id)
    lines += file_size_section(_load(results / OUTPUTS["file_size"]), record, default_id)
    lines += probe_section(_load(results / OUTPUTS["probe"]), record, default_id)
    lines += speed_section(_load(results / OUTPUTS["speed"]), record)
    lm = results / OUTPUTS["lm_speed"]  # files written before lm_speed.py stored its date: the file time stands in
    lm_data = _load(lm)
    lm_date = (lm_data or {}).get("date") or ((datetime.datetime.fromtimestamp(lm.stat().st_mtime).astimezone()
                                               .isoformat(timespec="seconds") + " (file time)") if lm.exists() else None)
    lines += lm_speed_section(lm_data, record, lm_date)
    lines += lm_tasks_section(results.resolve(), base)
    lines += carried_section(carried, base)
    return "\n".join(lines).rstrip("\n") + "\n"


# ----------------------------------------------------------------------------------------------- main
def _stages(s: str) -> list[str]:
    names = [n.strip() for n in s.split(",") if n.strip()]
    bad = [n for n in names if n not in STAGES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(STAGES)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"{QUICK_CLIPS} clips per category, short speed runs, tiny "
                   "probe and LM presets; output under the temp folder unless --results-dir/--out say otherwise")
    p.add_argument("--from-results", "--dry-run", dest="from_results", action="store_true",
                   help="run nothing: regenerate the report from the JSON files in --results-dir")
    p.add_argument("--skip", type=_stages, default=[], help=f"comma list of stages not to run ({','.join(STAGES)})")
    p.add_argument("--results-dir", type=Path, help=f"stage outputs (default {RESULTS_DIR.relative_to(ROOT)})")
    p.add_argument("--out", type=Path, help=f"the report (default {RESULTS_MD.relative_to(ROOT)})")
    p.add_argument("--carried-over", type=Path, default=CARRIED, help="hand-written part copied verbatim")
    p.add_argument("--threads", type=int, default=1, help="torch threads per stage (default 1)")
    p.add_argument("--model", help="codec folder for the quality, size and probe stages (default: installed model)")
    p.add_argument("--weights-dir", help="local EnCodec/Mimi/XCodec checkpoints (see reconstruction.py)")
    p.add_argument("--manifest", type=Path, help="eval manifest for reconstruction and file size "
                   "(default: reconstruction.py's)")
    a = p.parse_args(argv)
    quick_dir = Path(tempfile.gettempdir()) / "reasoningcodec_bench_quick"
    a.results_dir = (a.results_dir or (quick_dir if a.quick else RESULTS_DIR)).resolve()
    a.out = (a.out or (a.results_dir / "RESULTS.md" if a.quick else RESULTS_MD)).resolve()
    if a.quick and (a.results_dir == RESULTS_DIR.resolve() or a.out == RESULTS_MD.resolve()):
        p.error("--quick output must not go to benchmarks/results or benchmarks/RESULTS.md")
    return a


def main(argv: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    a = parse_args(raw)
    command = shlex.join(["python", "benchmarks/run_all.py", *raw])
    if a.from_results:
        default = None if (a.results_dir / RECORD).exists() else default_model_info(a.model)
        text = render(a.results_dir, a.out, carried=a.carried_over, command=command, regenerated=True,
                      default_model=default)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(text)
        print(f"wrote {a.out} from {a.results_dir}")
        return 0

    a.results_dir.mkdir(parents=True, exist_ok=True)
    m0 = cpu_seconds()
    time.sleep(2.0)  # nothing of ours runs: what the machine does now is other load
    busy = other_busy_cores(m0, cpu_seconds(), 2.0, 0.0)
    record: dict[str, Any] = {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"), "command": command,
        "quick": a.quick, "machine": machine_info(a.threads),
        "load": {"loadavg_start": [round(v, 2) for v in os.getloadavg()],
                 "other_busy_cores_start": None if busy is None else round(busy, 2)},
        "default_model": default_model_info(a.model), "stages": []}
    print(f"machine: {record['machine']}\nload average at start: {record['load']['loadavg_start']}; other processes "
          f"busy cores: {record['load']['other_busy_cores_start']}\ndefault model: {record['default_model']}",
          flush=True)
    manifest = a.manifest
    if a.quick:
        from benchmarks.reconstruction import DEFAULT_MANIFEST

        manifest = quick_manifest(a.manifest or DEFAULT_MANIFEST, a.results_dir / "quick_manifest.tsv")
    t0 = time.perf_counter()
    for stage in STAGES:
        if stage in a.skip:
            record["stages"].append({"name": stage, "status": "skipped", "seconds": None, "returncode": None,
                                     "command": None, "output": OUTPUTS[stage], "other_busy_cores": None})
        else:
            record["stages"].append(run_stage(stage, stage_command(stage, a, a.results_dir, manifest), a.threads,
                                              a.results_dir))
        record["total_seconds"] = round(time.perf_counter() - t0, 1)
        (a.results_dir / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    record["finished"] = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
    record["load"]["loadavg_end"] = [round(v, 2) for v in os.getloadavg()]
    (a.results_dir / RECORD).write_text(json.dumps(record, indent=1) + "\n")

    text = render(a.results_dir, a.out, carried=a.carried_over, command=command)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(text)
    print("\n| stage | status | minutes |\n|---|---|---:|")
    for s in record["stages"]:
        minutes = "—" if s["seconds"] is None else f"{s['seconds'] / 60:.1f}"
        print(f"| {s['name']} | {s['status']} | {minutes} |")
    print(f"| total | | {record['total_seconds'] / 60:.1f} |\nwrote {a.out}")
    return 1 if any(s["status"] == "failed" for s in record["stages"]) else 0


if __name__ == "__main__":
    sys.exit(main())
