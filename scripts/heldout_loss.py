"""Teacher-forced losses on held-out rows, per task, for models with any text tokenizer.

For every snapshot of each run (or a model folder), the rows of a held-out manifest (default
``data/lm/tokens/test.jsonl``: sentences and clips of the recipes' test splits, never trained on) are built
as training builds them (each row's prompt drawn with a seed of its index) and scored without sampling:

* **text bits per byte**: the text-head loss over the row's target text (a transcription, a caption, an
  answer, and the ``<audio>`` switch), in bits, divided by the UTF-8 bytes of that text (a special token
  counts as one byte). Per byte, so models with different tokenizers compare;
* **audio nats per code**: the depth transformer's loss over the row's target codec frames (speech for
  ``tts`` / ``instruct_tts``), per code.

A development measure for comparing training designs at equal compute (the task benchmark's test
sentences are not used)::

    OMP_NUM_THREADS=1 python scripts/heldout_loss.py runs/lm_arms/whisper_init runs/lm_arms/whisper_scratch \\
        --start src/uniaudio_lm/pretrained/default --json benchmarks/results/backbone_curve.json
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from uniaudio_lm import UniAudioLM, default_tokenizer, registry  # noqa: E402
from uniaudio_lm.data import STYLED_TASKS, Manifest  # noqa: E402
from uniaudio_lm.model import IGNORE  # noqa: E402
from uniaudio_lm.sentence import build, collate  # noqa: E402
from uniaudio_lm.style import Style, from_row as style_from_row  # noqa: E402
from uniaudio_lm.tokenizer import TextTokenizer  # noqa: E402

TASKS = ("asr", "tts", "instruct_tts", "audio_caption", "spoken_qa")


def rows_by_task(manifest: Path, tasks: tuple[str, ...], limit: int) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in tasks}
    for ln in manifest.read_text(encoding="utf-8").splitlines():
        r = json.loads(ln) if ln.strip() else None
        if r and r["task"] in out and len(out[r["task"]]) < limit:
            out[r["task"]].append(r)
    return out


@torch.no_grad()
def score(model: UniAudioLM, tok: TextTokenizer, manifest: Path, rows: dict[str, list[dict[str, Any]]],
          batch: int = 8) -> dict[str, dict[str, float]]:
    src = Manifest.__new__(Manifest)        # only its code loading: the rows are given
    src.root, src.codebooks = manifest.parent, (model.config.num_reasoning_codebooks,
                                                model.config.num_recon_codebooks)
    model.eval()
    out: dict[str, dict[str, float]] = {}
    for task, rs in rows.items():
        if not rs:
            continue
        items, styles = [], []
        for i, r in enumerate(rs):
            ex = registry.get(task).example(rng=random.Random(i), **src.fields(r))
            items.append(build(ex.segments, tok, model.vocab))
            styles.append((style_from_row(r) or Style()).features() if task in STYLED_TASKS else None)
        order = sorted(range(len(items)), key=lambda j: len(items[j]))
        row_t = [0.0] * len(rs)             # per row: text nats, text bytes, audio nats, audio codes
        row_b = [0] * len(rs)
        row_a = [0.0] * len(rs)
        row_c = [0] * len(rs)
        for k in range(0, len(order), batch):
            idx = order[k:k + batch]
            b = collate([items[j] for j in idx], tok, model.vocab)
            if model.style_proj is not None and all(styles[j] is not None for j in idx):
                b.style = torch.tensor([styles[j] for j in idx], dtype=torch.float32)
            g = model.hidden(b.text_ids, b.audio_ids, b.is_audio, b.valid, style=b.style,
                             style_at=None if b.style is None else b.is_audio & b.loss_mask)
            text_sel, labels, audio_sel = model.targets(b)
            if bool(text_sel.any()):
                lab = labels[text_sel]
                ce = F.cross_entropy(model.text_logits(g.text_hidden[:, :-1][text_sel]).float(), lab, reduction="none")
                for r, c, t in zip(text_sel.nonzero()[:, 0].tolist(), ce.tolist(), lab.tolist()):
                    row_t[idx[r]] += c
                    row_b[idx[r]] += 1 if tok.is_special(t) else len(tok.token_bytes(t))
            codes = b.audio_ids[:, 1:][audio_sel]
            alab = model.audio_labels(codes)
            if bool((alab != IGNORE).any()):
                logits = model.depth(g.audio_hidden[:, :-1][audio_sel], codes)
                ce = F.cross_entropy(logits.flatten(0, 1).float(), alab.flatten(), ignore_index=IGNORE,
                                     reduction="none").view(alab.shape).sum(1)
                n = (alab != IGNORE).sum(1)
                for r, c, m in zip(audio_sel.nonzero()[:, 0].tolist(), ce.tolist(), n.tolist()):
                    row_a[idx[r]] += c
                    row_c[idx[r]] += m
        nb, nc = sum(row_b), sum(row_c)
        out[task] = {"rows": len(rs),
                     "text_bits_per_byte": sum(row_t) / math.log(2) / nb if nb else float("nan"),
                     "audio_nats_per_code": sum(row_a) / nc if nc else float("nan"),
                     "per_row": {"text_nats": [round(x, 4) for x in row_t], "text_bytes": row_b,
                                 "audio_nats": [round(x, 3) for x in row_a], "audio_codes": row_c}}
    return out


def paired(a: dict[str, Any], b: dict[str, Any], metric: str, n_boot: int = 2000, seed: int = 0
           ) -> tuple[float, float, float]:
    """``b − a`` of one task's ``text`` (bits per byte) or ``audio`` (nats per code) over the same rows, with
    a 95% bootstrap interval over rows (both ratios recomputed on each resample)."""
    num, den = ("text_nats", "text_bytes") if metric == "text" else ("audio_nats", "audio_codes")
    scale = 1 / math.log(2) if metric == "text" else 1.0
    xa, xb = a["per_row"], b["per_row"]
    rows = [i for i in range(len(xa[den])) if xa[den][i] and xb[den][i]]

    def diff(idx: list[int]) -> float:
        return scale * (sum(xb[num][i] for i in idx) / sum(xb[den][i] for i in idx)
                        - sum(xa[num][i] for i in idx) / sum(xa[den][i] for i in idx))

    rng = random.Random(seed)
    boots = sorted(diff([rng.choice(rows) for _ in rows]) for _ in range(n_boot))
    return diff(rows), boots[int(0.025 * n_boot)], boots[int(0.975 * n_boot) - 1]


def load(folder: Path) -> tuple[UniAudioLM, TextTokenizer]:
    model = UniAudioLM.from_pretrained(folder)
    own = folder / "tokenizer.json"
    tok = TextTokenizer.load(own) if own.is_file() else default_tokenizer()
    if tok.vocab_size != model.config.text_vocab_size:
        raise SystemExit(f"{folder}: the model has {model.config.text_vocab_size} text ids, its tokenizer "
                         f"{tok.vocab_size}")
    return model, tok


def last_step(run: Path) -> int | None:
    f = run / "losses.csv"
    rows = list(csv.DictReader(f.open())) if f.is_file() else []
    return int(rows[-1]["step"]) if rows else None


def cpu_hours(run: Path, step: int) -> float | None:
    f = run / "losses.csv"
    if not f.is_file():
        return None
    for row in csv.DictReader(f.open()):
        if int(row["step"]) == step:
            return float(row["cpu_s"]) / 3600
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="*", type=Path, help="run folders (their snapshots/step_*) or model folders")
    ap.add_argument("--start", type=Path, action="append", default=[], help="extra model folders to score")
    ap.add_argument("--manifest", type=Path, default=ROOT / "data/lm/tokens/test.jsonl")
    ap.add_argument("--tasks", default=",".join(TASKS))
    ap.add_argument("--rows", type=int, default=200, help="at most this many rows per task")
    ap.add_argument("--every", type=int, default=1, help="score every n-th snapshot (the last always)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--report", action="store_true",
                    help="only print, from --json, each run against the first (paired intervals)")
    ap.add_argument("--match", choices=("step", "cpu"), default="step",
                    help="--report pairs points at the same step, or each with the first run's largest CPU "
                         "budget not above its own")
    ap.add_argument("--first", default=None, help="--report: the run the others are compared with")
    a = ap.parse_args(argv)
    if a.report:
        return report(json.loads(a.json.read_text())["points"], a.match, a.first)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    rows = rows_by_task(a.manifest, tuple(a.tasks.split(",")), a.rows)
    results: list[dict[str, Any]] = []
    if a.json is not None and a.json.is_file():
        results = json.loads(a.json.read_text())["points"]
    done = {(p["run"], p["step"]) for p in results}
    todo: list[tuple[str, int, Path, Path | None]] = [(str(s), 0, s, None) for s in a.start]
    for run in a.runs:
        if not (run / "snapshots").is_dir():
            todo.append((str(run), 0, run, None))
            continue
        snaps = [(int(s.name[5:]), s) for s in sorted((run / "snapshots").glob("step_*"))]
        last = last_step(run)
        if (run / "model").is_dir() and last and (not snaps or last > snaps[-1][0]):
            snaps.append((last, run / "model"))                  # the final weights
        keep = [x for i, x in enumerate(snaps) if (i + 1) % a.every == 0 or x == snaps[-1]]
        todo += [(str(run), step, folder, run) for step, folder in keep]
    for name, step, folder, run in todo:
        if (name, step) in done:
            continue
        model, tok = load(folder)
        res = score(model, tok, a.manifest, rows)
        point = {"run": name, "step": step, "cpu_h": cpu_hours(run, step) if run else None, "tasks": res}
        results.append(point)
        print(json.dumps(point), flush=True)
        if a.json is not None:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            text = json.dumps({"manifest": str(a.manifest), "points": results}, separators=(",", ":"))
            a.json.write_text(text + "\n")
    return 0


def report(points: list[dict[str, Any]], match: str = "step", first: str | None = None) -> int:
    """Each other run's points against ``first``'s (default: the first run that is not a ``--start`` model)
    at the same step, or at its largest CPU budget not above the point's: ``metric (difference [95%])``."""
    first = first or next(p["run"] for p in points if p["cpu_h"] is not None)
    mine = [p for p in points if p["run"] == first]
    for p in points:
        if p["run"] == first or p["cpu_h"] is None:
            continue
        if match == "step":
            q = next((x for x in mine if x["step"] == p["step"]), None)
        else:
            q = max((x for x in mine if x["cpu_h"] <= p["cpu_h"] + 1e-9), key=lambda x: x["cpu_h"], default=None)
        if q is None:
            continue
        cells = []
        for task, res in p["tasks"].items():
            for metric, key in (("text", "text_bits_per_byte"), ("audio", "audio_nats_per_code")):
                if math.isnan(res[key]) or (metric == "text" and res[key] < 0.01):
                    continue
                d, lo, hi = paired(q["tasks"][task], res, metric)
                cells.append(f"{task} {metric} {res[key]:.3f} vs {q['tasks'][task][key]:.3f} "
                             f"({d:+.3f} [{lo:+.3f}, {hi:+.3f}])")
        print(f"{p['run']} step {p['step']} vs {first} step {q['step']} ({p['cpu_h']:.2f} vs {q['cpu_h']:.2f} CPU-h): "
              + "; ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
