"""Understanding probe: which spoken digit (FSDD) from reasoning tokens, reconstruction tokens, log-mel.

A small classifier is trained on 4 FSDD speakers and tested on the 2 held-out ones (``theo`` and
``yweweler``, never used in codec training). Features per clip, each pooled over time (mean ‖ max):

* reasoning tokens → their codebook vectors summed over the 8 residual stages ``[Tr, 256]``;
* reconstruction tokens → the same for the reconstruction quantiser ``[Tq, 384]``;
* log-mel frames of the codec front-end ``[F, 100]`` (the unquantised baseline).

The classifier is a one-hidden-layer MLP (or ``--linear`` for logistic regression) trained with Adam
on standardised features; the seed and hyper-parameters are fixed, nothing is tuned on the test speakers.

    python benchmarks/probe.py [--model DIR] [--out benchmarks/results/probe.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from tqdm import tqdm

import reasoningcodec as rc

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train" / "fsdd"
TEST_SPEAKERS = {"theo", "yweweler"}


def features(codec: rc.ReasoningCodec, x: np.ndarray, sr: int) -> dict[str, np.ndarray]:
    with torch.no_grad():
        codes = codec.encode(torch.from_numpy(x), sample_rate=sr)
        r = codec.reasoning_vq.decode(codes.reasoning)[0]  # [Tr, Dr]
        q = codec.recon_vq.decode(codes.recon)[0]  # [Tq, Dq]
        wav = rc.audio.resample(x, sr, codec.sample_rate)
        pad = -len(wav) % codec.config.stem_hop
        mel, _ = codec.mel(torch.from_numpy(np.pad(wav, (0, pad)))[None].to(codec.device))
        mel = mel[0]
    pool = lambda t: torch.cat([t.mean(0), t.max(0).values]).cpu().numpy()  # noqa: E731
    return {"reasoning": pool(r), "recon": pool(q), "logmel": pool(mel)}


def train_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, linear: bool,
                seed: int = 0) -> float:
    torch.manual_seed(seed)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a = torch.tensor((xtr - mu) / sd, dtype=torch.float32)
    b = torch.tensor((xte - mu) / sd, dtype=torch.float32)
    ya = torch.tensor(ytr)
    d = a.shape[1]
    net = torch.nn.Linear(d, 10) if linear else torch.nn.Sequential(
        torch.nn.Dropout(0.2), torch.nn.Linear(d, 256), torch.nn.GELU(), torch.nn.Dropout(0.2), torch.nn.Linear(256, 10))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    for _ in range(300):
        net.train()
        perm = torch.randperm(len(a))
        for i in range(0, len(a), 128):
            idx = perm[i:i + 128]
            loss = F.cross_entropy(net(a[idx]), ya[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        return float((net(b).argmax(1).numpy() == yte).mean())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="codec folder (default: the embedded model)")
    p.add_argument("--fsdd", type=Path, default=FSDD)
    p.add_argument("--linear", action="store_true")
    p.add_argument("--max-per-digit", type=int, default=0,
                   help="at most this many clips per speaker and digit (0 = all; for quick smoke runs)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "probe.json")
    a = p.parse_args()
    codec = rc.ReasoningCodec.from_pretrained(a.model) if a.model else rc.load()
    rows = list(csv.DictReader(open(a.fsdd / "manifest.tsv", encoding="utf-8"), delimiter="\t",
                               quoting=csv.QUOTE_NONE))
    if a.max_per_digit:  # the first N takes of each (speaker, digit), in manifest order
        count: dict[tuple[str, str], int] = {}
        kept = []
        for r in rows:
            key = (r["speaker"], r["digit"])
            if count.get(key, 0) < a.max_per_digit:
                count[key] = count.get(key, 0) + 1
                kept.append(r)
        rows = kept
    feats: dict[str, list] = {"reasoning": [], "recon": [], "logmel": []}
    labels, test = [], []
    for r in tqdm(rows, desc="encode FSDD", unit="clip"):
        x, sr = sf.read(str(a.fsdd.parent.parent / r["path"]), dtype="float32")
        x = x / (np.abs(x).max() + 1e-6) * 0.5
        for k, v in features(codec, x, sr).items():
            feats[k].append(v)
        labels.append(int(r["digit"]))
        test.append(r["speaker"] in TEST_SPEAKERS)
    y, te = np.array(labels), np.array(test)
    result = {"model_id": codec.config.model_id, "train_clips": int((~te).sum()), "test_clips": int(te.sum()),
              "test_speakers": sorted(TEST_SPEAKERS), "classifier": "logistic" if a.linear else "mlp-256",
              "date": time.strftime("%Y-%m-%d"), "max_per_digit": a.max_per_digit or None, "accuracy": {}}
    for k, v in feats.items():
        X = np.stack(v)
        result["accuracy"][k] = train_probe(X[~te], y[~te], X[te], y[te], a.linear)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| features | held-out speaker digit accuracy |\n|---|---|")
    for k, v in result["accuracy"].items():
        print(f"| {k} | {100 * v:.1f}% |")


if __name__ == "__main__":
    main()
