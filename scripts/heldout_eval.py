"""Compare codec checkpoints on held-out clips of the *training* sources (the corpus ``val`` split).

This is what checkpoints are chosen by during training; ``../shared/data/eval`` is only for the final
report. Two numbers per model, on the same clips for every model:

* ``val_mel`` — the trainer's validation number: multi-resolution log-mel L1 on ``--val-clips`` crops of
  ``2 × segment`` seconds (same crops, seed and loudness normalisation as ``reasoningcodec.train``);
* ``stoi`` / ``pesq_wb`` — means over ``--speech-clips`` whole val speech clips (at most
  ``--max-seconds`` each), encoded and decoded through the public API (``encode`` → ``decode``).

    python scripts/heldout_eval.py runs/x/last/codec src/reasoningcodec/pretrained/default
    python scripts/heldout_eval.py --json out.json MODEL...
    python scripts/heldout_eval.py --opus 6 MODEL   # Opus 6 kbit/s on the same speech clips too
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.metrics import evaluate  # noqa: E402
from reasoningcodec import ReasoningCodec  # noqa: E402
from reasoningcodec.train.config import TrainConfig  # noqa: E402
from reasoningcodec.train.dataset import ClipStore, read_manifest  # noqa: E402
from reasoningcodec.train.losses import MultiResolutionMelLoss  # noqa: E402
from reasoningcodec.train.validation import val_batch, validate  # noqa: E402


def speech_clips(clips, n: int, seed: int):
    speech = sorted((c for c in clips if c.category == "speech"), key=lambda c: str(c.path))
    random.Random(seed).shuffle(speech)
    return speech[:n]


def speech_scores(codec_fn, rate: int, corpus: Path, n_speech: int, max_seconds: float, seed: int) -> dict:
    """Mean STOI / PESQ-WB over the held-out speech clips, each ``x`` (at ``rate``, peak 0.5) scored
    against ``codec_fn(x)`` → ``(y, y_rate)``."""
    store = ClipStore(rate)
    stoi, pesq = [], []
    for c in speech_clips(read_manifest(corpus, "val"), n_speech, seed):
        x = store.get(c)[: int(max_seconds * rate)]
        x = (x / (np.abs(x).max() + 1e-6) * 0.5).astype(np.float32)
        y, y_rate = codec_fn(x)
        s = evaluate(x, rate, y, y_rate, visqol_mode=None, metrics=("stoi", "pesq_wb")).scores
        if s["stoi"].ok:
            stoi.append(s["stoi"].value)
        if s["pesq_wb"].ok:
            pesq.append(s["pesq_wb"].value)
    return {"stoi": round(float(np.mean(stoi)), 4), "pesq_wb": round(float(np.mean(pesq)), 4),
            "speech_clips": len(stoi)}


def score(model_dir: Path, corpus: Path, n_val: int, n_speech: int, max_seconds: float, seed: int) -> dict:
    codec = ReasoningCodec.from_pretrained(model_dir).eval()
    cfg = codec.config
    val = read_manifest(corpus, "val")
    if not val:
        raise SystemExit(f"{corpus}/manifest.tsv has no val clips")
    store = ClipStore(cfg.sample_rate)
    tc = TrainConfig()
    seg = int(round(tc.segment_seconds * cfg.sample_rate / cfg.reasoning_hop)) * cfg.reasoning_hop
    mel = MultiResolutionMelLoss(cfg.sample_rate)
    val_mel = validate(codec, mel, val_batch(val, store, seg * 2, n_val, seed))

    def codec_fn(x: np.ndarray) -> tuple[np.ndarray, int]:
        with torch.no_grad():
            return codec.decode(codec.encode(torch.from_numpy(x))).reshape(-1).cpu().numpy(), cfg.sample_rate

    speech = speech_scores(codec_fn, cfg.sample_rate, corpus, n_speech, max_seconds, seed)
    return {"model": str(model_dir), "val_mel": round(val_mel, 4), "stoi": speech["stoi"],
            "pesq_wb": speech["pesq_wb"], "val_clips": n_val, "speech_clips": speech["speech_clips"]}


def score_opus(kbps: float, corpus: Path, n_speech: int, max_seconds: float, seed: int, rate: int = 24000) -> dict:
    """Opus at ``kbps`` (the eval benchmark's settings) on the same speech clips, for reference."""
    from benchmarks.codec_adapters import OpusCodec

    from reasoningcodec.audio import resample

    opus = OpusCodec(kbps)

    def codec_fn(x: np.ndarray) -> tuple[np.ndarray, int]:
        return opus.decode(opus.encode(resample(x, rate, opus.sample_rate))), opus.output_rate

    speech = speech_scores(codec_fn, rate, corpus, n_speech, max_seconds, seed)
    return {"model": opus.label, "val_mel": None, "stoi": speech["stoi"], "pesq_wb": speech["pesq_wb"],
            "val_clips": 0, "speech_clips": speech["speech_clips"]}


def add_clip_args(p: argparse.ArgumentParser) -> None:
    """The options that choose the held-out clips (shared with ``learning_curve.py``)."""
    p.add_argument("--corpus", type=Path, default=Path("data/corpus"))
    p.add_argument("--val-clips", type=int, default=128)
    p.add_argument("--speech-clips", type=int, default=60)
    p.add_argument("--max-seconds", type=float, default=6.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("models", nargs="+", type=Path, help="codec folders (ReasoningCodec.from_pretrained)")
    add_clip_args(p)
    p.add_argument("--json", type=Path, help="also write the rows here")
    p.add_argument("--opus", type=float, action="append", default=[], metavar="KBPS",
                   help="also score Opus at KBPS on the same speech clips (repeatable; needs opus-tools)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    rows = []
    for m in a.models:
        t = time.time()
        r = score(m, a.corpus, a.val_clips, a.speech_clips, a.max_seconds, a.seed)
        r["seconds"] = round(time.time() - t, 1)
        rows.append(r)
        print(json.dumps(r), flush=True)
    for kbps in a.opus:
        t = time.time()
        r = score_opus(kbps, a.corpus, a.speech_clips, a.max_seconds, a.seed)
        r["seconds"] = round(time.time() - t, 1)
        rows.append(r)
        print(json.dumps(r), flush=True)
    if a.json:
        a.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
