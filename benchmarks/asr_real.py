"""uniaudio_lm speech recognition on real recorded speech with transcripts (the evaluation set).

The task benchmark (``lm_tasks.py``) measures ASR on espeak-ng renditions of held-out sentences; this one
reads the English speech clips of the evaluation manifest that carry a transcript (LJ Speech, CMU ARCTIC,
LibriSpeech, VCTK... recordings the model never saw) and reports CER and WER per decoder, with a
bootstrap 95% interval over clips. It measures only; nothing is chosen from it::

    python benchmarks/asr_real.py --eval-dir ../shared/data/eval --json benchmarks/results/asr_real.json
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
for p in (ROOT, ROOT / "src"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

import numpy as np  # noqa: E402

from benchmarks import lm_eval as E  # noqa: E402


def clips(eval_dir: Path) -> list[dict]:
    """Speech rows of ``manifest.tsv`` with a transcript (path resolved under ``eval_dir``'s parent)."""
    man = eval_dir / "manifest.tsv"
    if not man.is_file():
        raise FileNotFoundError(f"{man} not found (pass --eval-dir)")
    with man.open(encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f, delimiter="\t") if r.get("category") == "speech"
                and (r.get("transcript") or "").strip()]
    for r in rows:
        r["file"] = str(eval_dir.parent / r["path"])
    return rows


def interval(refs: list[str], hyps: list[str], unit: str, n_boot: int = 2000) -> tuple[float, float, float]:
    counts = [E.error_rate([(r, h)], unit) for r, h in zip(refs, hyps)]
    err = np.array([c.errors for c in counts], float)
    n = np.array([c.ref_len for c in counts], float)
    rng = np.random.default_rng(0)
    boots = []
    for _ in range(n_boot):
        i = rng.integers(0, len(err), len(err))
        boots.append(err[i].sum() / max(n[i].sum(), 1))
    return float(err.sum() / max(n.sum(), 1)), float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))


def run_decoders(pipe: object, inputs: list, refs: list[str], decoders: str, tags: list[dict],
                 what: str) -> dict:
    """``uniaudio_lm.asr`` with each of the comma-separated ``decoders`` on every input → per decoder CER and
    WER with their intervals, CPU seconds and the items (each ``tags`` entry plus ref and hyp); printed as
    it goes. A decoder the model cannot use is reported and skipped."""
    import uniaudio_lm as ul

    out = {}
    for dec in [d.strip() for d in decoders.split(",") if d.strip()]:
        t0 = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                hyps = [ul.asr(x, pipeline=pipe, decoder=dec) for x in inputs]
            except ValueError as e:
                print(f"{dec}: {e}", file=sys.stderr)
                continue
        cer, wer = interval(refs, hyps, "char"), interval(refs, hyps, "word")
        out[dec] = {"cer": cer, "wer": wer, "cpu_s": time.process_time() - t0,
                    "items": [{**t, "ref": r, "hyp": h} for t, r, h in zip(tags, refs, hyps)]}
        print(f"{dec}: CER {cer[0]:.1%} [{cer[1]:.1%}, {cer[2]:.1%}]  WER {wer[0]:.1%} [{wer[1]:.1%}, {wer[2]:.1%}] "
              f"({len(refs)} {what}, {time.process_time() - t0:.0f} CPU-s)", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--eval-dir", type=Path, default=ROOT.parent / "shared" / "data" / "eval")
    ap.add_argument("--model", type=Path, default=None, help="pipeline folder (default: the installed one)")
    ap.add_argument("--decoders", default="lm,ctc", help="comma list of uniaudio_lm.asr decoders")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    import torch

    import uniaudio_lm as ul

    torch.set_num_threads(a.threads)
    try:
        rows = clips(a.eval_dir)
    except FileNotFoundError as e:
        print(str(e), file=sys.stderr)
        return 2
    pipe = ul.load(a.model)
    refs = [r["transcript"] for r in rows]
    def rel(p: object, base: Path) -> str:
        try:
            return str(Path(str(p)).resolve().relative_to(base))
        except ValueError:
            return str(p)

    out: dict = {"meta": {"eval_dir": rel(a.eval_dir, ROOT.parent), "clips": len(rows), "date": time.strftime("%Y-%m-%d"),
                          "model_dir": rel(pipe.directory, ROOT), "sources": sorted({r["source"] for r in rows})}}
    out["decoders"] = run_decoders(pipe, [r["file"] for r in rows], refs, a.decoders,
                                   [{"path": r["path"]} for r in rows], "clips")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
