"""Understanding probe: which spoken digit (FSDD) from reasoning tokens, reconstruction tokens, log-mel.

A small classifier is trained on 4 FSDD speakers and tested on the 2 held-out ones (``theo`` and
``yweweler``, never used in codec training). Per-clip frame sequences:

* reasoning tokens → their codebook vectors summed over the residual stages ``[Tr, Dr]``;
* reconstruction tokens → the same for the reconstruction quantiser ``[Tq, Dq]``;
* log-mel frames of the codec front-end ``[F, n_mels]`` (the unquantised baseline).

Each sequence becomes one vector by a *pooling*:

* ``mean-max``: the mean and the maximum over time (a bag of frames: word order is lost);
* ``mean-max+4-step``: the same plus the sequence linearly resampled to 4 evenly spaced time points, so the
  classifier sees the order of the sounds (a digit spans 2-5 reasoning windows).

The reported variant, ``mean-max+4-step+speed``, adds *speed perturbation* of the training speakers: each of
their clips is also encoded played 8% slower and 8% faster (pitch and tempo move together, as between
speakers), which triples the classifier's training set. The test clips are only ever the originals.

The classifier is a one-hidden-layer MLP (or ``--linear`` for logistic regression) trained with Adam on
standardised features; seed and hyper-parameters are fixed. Nothing is chosen on the test speakers:
``--cv`` scores every variant by leave-one-speaker-out over the 4 *training* speakers (train on 3,
test on the 4th). That is how both choices were made on rc-v2-s8173 reasoning tokens (2026-11-26):
``mean-max+4-step`` 67.6% vs 63.2% for ``mean-max`` (6 or 3 steps, shift augmentation, dropout 0.5, a
linear classifier, a 512-wide layer and a 5-seed ensemble all scored lower); then speed perturbation
±8% 71.4% (±15%: 66.7%, and ±8% with ±15% together: 68.1%, at the same number of classifier steps;
over seeds 0-2 ±8% beat no perturbation by 2.4 to 3.9 points).

    python benchmarks/probe.py [--model DIR] [--cv] [--out benchmarks/results/probe.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from tqdm import tqdm

import reasoningcodec as rc

BATCH = 32  # clips encoded per call
FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "train" / "fsdd"
TEST_SPEAKERS = {"theo", "yweweler"}


def features(codec: rc.ReasoningCodec, clips: list[np.ndarray], sr: int) -> list[dict[str, np.ndarray]]:
    """Frame sequences ``{name: [frames, dim]}`` of each clip (see the module docstring). The clips are
    encoded as one padded batch, which gives each clip's codes exactly as encoding it alone."""
    out = []
    wavs = [rc.audio.resample(x, sr, codec.sample_rate) for x in clips]  # once, for the codes and the log-mel
    with torch.no_grad():
        batch = codec.encode([torch.from_numpy(w) for w in wavs])
        for wav, codes in zip(wavs, codec.split(batch)):
            r = codec.reasoning_vq.decode(codes.reasoning)[0]  # [Tr, Dr]
            q = codec.recon_vq.decode(codes.recon)[0]  # [Tq, Dq]
            pad = -len(wav) % codec.config.stem_hop
            mel, _ = codec.mel(torch.from_numpy(np.pad(wav, (0, pad)))[None].to(codec.device))
            out.append({"reasoning": r.float().cpu().numpy(), "recon": q.float().cpu().numpy(),
                        "logmel": mel[0].float().cpu().numpy()})
    return out


def in_batches(clips: list[np.ndarray], size: int = BATCH) -> list[list[int]]:
    """Indices of ``clips`` in groups of up to ``size`` of similar length (little padding per batch)."""
    order = sorted(range(len(clips)), key=lambda i: len(clips[i]))
    return [order[i:i + size] for i in range(0, len(order), size)]


def resample_frames(t: np.ndarray, n: int) -> np.ndarray:
    """``t [T, D]`` linearly interpolated at ``n`` evenly spaced times from the first to the last frame."""
    if len(t) == 1:
        return np.repeat(t, n, axis=0)
    pos = np.linspace(0, len(t) - 1, n)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, len(t) - 1)
    w = (pos - lo)[:, None]
    return t[lo] * (1 - w) + t[hi] * w


def pool(t: np.ndarray, pooling: str) -> np.ndarray:
    """One vector per clip from its frame sequence ``t [T, D]`` (``T`` ≥ 1)."""
    t = t.astype(np.float32)
    pooled = np.concatenate([t.mean(0), t.max(0)])
    if pooling == "mean-max":
        return pooled
    if pooling == "mean-max+4-step":
        return np.concatenate([pooled, resample_frames(t, 4).reshape(-1)])
    raise ValueError(f"unknown pooling {pooling!r}; use one of {POOLINGS}")


POOLINGS = ("mean-max", "mean-max+4-step")
SPEEDS = (0.92, 1.08)  # speed perturbation of the training speakers' clips (the ``+speed`` variant)
# (name, pooling, with speed perturbation); the last is the reported one
VARIANTS = (("mean-max", "mean-max", False), ("mean-max+4-step", "mean-max+4-step", False),
            ("mean-max+4-step+speed", "mean-max+4-step", True))
CV_EPOCHS = 150


def speed_change(x: np.ndarray, sr: int, factor: float) -> np.ndarray:
    """``x`` played ``factor`` times faster (pitch and tempo together), still at ``sr``."""
    return rc.audio.resample(x, sr, int(round(sr / factor)))


def train_probe(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray, linear: bool,
                seed: int = 0, epochs: int = 300) -> float:
    """Accuracy on ``(xte, yte)`` of a classifier trained on ``(xtr, ytr)``."""
    torch.manual_seed(seed)
    mu, sd = xtr.mean(0), xtr.std(0) + 1e-6
    a = torch.tensor((xtr - mu) / sd, dtype=torch.float32)
    b = torch.tensor((xte - mu) / sd, dtype=torch.float32)
    ya = torch.tensor(ytr)
    d = a.shape[1]
    net = torch.nn.Linear(d, 10) if linear else torch.nn.Sequential(
        torch.nn.Dropout(0.2), torch.nn.Linear(d, 256), torch.nn.GELU(), torch.nn.Dropout(0.2), torch.nn.Linear(256, 10))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-2)
    for _ in range(epochs):
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
    p.add_argument("--cv", action="store_true",
                   help="also score each pooling of the reasoning tokens by leave-one-speaker-out over the "
                        "training speakers (how the reported pooling was chosen; ~2 min)")
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
    kinds = ("reasoning", "recon", "logmel")
    sr = 0
    clips = []
    for r in rows:
        x, sr_r = sf.read(str(a.fsdd.parent.parent / r["path"]), dtype="float32")
        if sr and sr_r != sr:
            raise SystemExit(f"FSDD clips at {sr} and {sr_r} Hz: expected one rate")
        sr = sr_r
        clips.append(x / (np.abs(x).max() + 1e-6) * 0.5)
    labels = [int(r["digit"]) for r in rows]
    speakers = [r["speaker"] for r in rows]
    train_idx = [i for i, r in enumerate(rows) if r["speaker"] not in TEST_SPEAKERS]
    feats: dict[str, list] = {k: [None] * len(rows) for k in kinds}
    # training speakers only, in ``train_idx`` order
    sped: dict[float, dict[str, list]] = {f: {k: [None] * len(train_idx) for k in kinds} for f in SPEEDS}
    jobs = [(None, clips)] + [(f, [speed_change(clips[i], sr, f) for i in train_idx]) for f in SPEEDS]
    with tqdm(total=sum(len(c) for _, c in jobs), desc="encode FSDD", unit="clip") as bar:
        for f, group in jobs:
            dest = feats if f is None else sped[f]
            for idx in in_batches(group):
                for i, fe in zip(idx, features(codec, [group[i] for i in idx], sr)):
                    for k, v in fe.items():
                        dest[k][i] = v
                bar.update(len(idx))
    y, spk = np.array(labels), np.array(speakers)
    te = np.isin(spk, sorted(TEST_SPEAKERS))

    @lru_cache(maxsize=None)
    def pooled(kind: str, pooling: str, speed: float | None = None) -> np.ndarray:
        """``[clips, dim]`` of the original clips, or of the training speakers' clips at ``speed``."""
        return np.stack([pool(t, pooling) for t in (feats[kind] if speed is None else sped[speed][kind])])

    def fit(kind: str, pooling: str, speed: bool, train: np.ndarray, test: np.ndarray, epochs: int) -> float:
        """Train on the clips where ``train`` (plus their sped-up copies if ``speed``), test on ``test``."""
        X = pooled(kind, pooling)
        xtr, ytr = [X[train]], [y[train]]
        if speed:
            keep = train[~te]  # the sped-up copies exist for the training speakers' clips, in the same order
            for f in SPEEDS:
                xtr.append(pooled(kind, pooling, f)[keep])
                ytr.append(y[~te][keep])
        return train_probe(np.concatenate(xtr), np.concatenate(ytr), X[test], y[test], a.linear, epochs=epochs)

    result: dict = {"model_id": codec.config.model_id, "train_clips": int((~te).sum()), "test_clips": int(te.sum()),
                    "test_speakers": sorted(TEST_SPEAKERS), "classifier": "logistic" if a.linear else "mlp-256",
                    "variant": VARIANTS[-1][0], "speeds": list(SPEEDS), "date": time.strftime("%Y-%m-%d"),
                    "max_per_digit": a.max_per_digit or None, "accuracy": {}, "accuracy_by_variant": {}}
    for name, pooling, speed in VARIANTS:
        result["accuracy_by_variant"][name] = {k: fit(k, pooling, speed, ~te, te, 300) for k in kinds}
    result["accuracy"] = result["accuracy_by_variant"][VARIANTS[-1][0]]
    if a.cv:
        folds = sorted(set(spk[~te]))
        cv: dict = {"features": "reasoning", "held_out_in_turn": folds, "epochs": CV_EPOCHS, "mean_accuracy": {}}
        for name, pooling, speed in VARIANTS:
            accs = [fit("reasoning", pooling, speed, ~te & (spk != s), spk == s, CV_EPOCHS) for s in folds]
            cv["mean_accuracy"][name] = float(np.mean(accs))
        result["cv"] = cv
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=2) + "\n")
    names = [v[0] for v in VARIANTS]
    print("| features | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    for k in kinds:
        print(f"| {k} | " + " | ".join(f"{100 * result['accuracy_by_variant'][n][k]:.1f}%" for n in names) + " |")
    if a.cv:
        print("leave-one-training-speaker-out (reasoning): " + ", ".join(
            f"{p} {100 * v:.1f}%" for p, v in result["cv"]["mean_accuracy"].items()))


if __name__ == "__main__":
    main()
