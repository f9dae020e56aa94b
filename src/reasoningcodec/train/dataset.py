"""Training data: random crops (codec batches) and whole clips with analysis text (alignment batches).

Reads the manifest written by ``python -m reasoningcodec.data build``. Clips are decoded once and
kept in memory (the corpus is a few GB of float32 at most).
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


@dataclass
class Clip:
    path: Path
    source: str
    category: str
    duration: float
    text: str
    transcript: str = ""


def read_manifest(root: Path, split: str) -> list[Clip]:
    clips = []
    with open(root / "manifest.tsv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["split"] != split:
                continue
            clips.append(Clip(root / row["path"], row["source"], row["category"], float(row["duration_s"]),
                              row.get("analysis_text", ""), row.get("transcript", "") or ""))
    return clips


class ClipStore:
    """Lazy in-memory cache of decoded clips (float32, model rate)."""

    def __init__(self, sample_rate: int) -> None:
        self.sr = sample_rate
        self.cache: dict[Path, np.ndarray] = {}

    def get(self, clip: Clip) -> np.ndarray:
        x = self.cache.get(clip.path)
        if x is None:
            x, sr = sf.read(str(clip.path), dtype="float32", always_2d=True)
            x = x.mean(axis=1)
            if sr != self.sr:
                from ..audio import resample

                x = resample(x, sr, self.sr)
            self.cache[clip.path] = x
        return x


class Sampler:
    """Weighted sampling of clips by ``source`` (weights from the training config)."""

    def __init__(self, clips: list[Clip], source_weights: dict[str, float], seed: int) -> None:
        self.rng = random.Random(seed)
        by_src: dict[str, list[Clip]] = {}
        for c in clips:
            by_src.setdefault(c.source, []).append(c)
        self.groups = by_src
        self.sources = sorted(by_src)
        self.weights = [source_weights.get(s, source_weights.get("*", 1.0)) for s in self.sources]

    def refresh(self, clips: list[Clip]) -> None:
        by_src: dict[str, list[Clip]] = {}
        for c in clips:
            by_src.setdefault(c.source, []).append(c)
        self.groups = by_src

    def pick(self) -> Clip:
        src = self.rng.choices(self.sources, self.weights)[0]
        return self.rng.choice(self.groups[src])


def crop_batch(store: ClipStore, sampler: Sampler, batch: int, seg: int, rng: np.random.Generator,
               noise_prob: float = 0.1) -> torch.Tensor:
    """``[B, seg]`` random crops, short clips zero-padded at a random offset, random gain, light noise."""
    out = np.zeros((batch, seg), dtype=np.float32)
    for i in range(batch):
        for _ in range(5):  # avoid near-silent crops
            x = store.get(sampler.pick())
            if len(x) >= seg:
                s = int(rng.integers(0, len(x) - seg + 1))
                y = x[s:s + seg]
            else:
                y = np.zeros(seg, dtype=np.float32)
                s = int(rng.integers(0, seg - len(x) + 1))
                y[s:s + len(x)] = x
            if np.sqrt(np.mean(y**2)) > 1e-3:
                break
        peak = float(np.abs(y).max()) + 1e-6
        gain = 10 ** (rng.uniform(-18, 0) / 20) / peak * 0.95
        y = y * min(gain, 10 ** (30 / 20))
        if rng.random() < noise_prob:
            y = y + rng.standard_normal(seg).astype(np.float32) * 10 ** (rng.uniform(-70, -35) / 20)
        out[i] = y
    return torch.from_numpy(out)


def text_batch(store: ClipStore, sampler: Sampler, batch: int, hop: int, max_samples: int,
               rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor, list[str], list[str]]:
    """Whole clips with analysis text: ``([B, T] padded to a multiple of hop, lengths [B], texts, transcripts)``
    (a transcript is "" where the clip has none)."""
    xs, texts, transcripts = [], [], []
    while len(xs) < batch:
        c = sampler.pick()
        if not c.text:
            continue
        x = store.get(c)[:max_samples]
        peak = float(np.abs(x).max()) + 1e-6
        xs.append(x / peak * 10 ** (rng.uniform(-12, -1) / 20))
        texts.append(c.text)
        transcripts.append(c.transcript)
    t = max(len(x) for x in xs)
    t = -(-t // hop) * hop
    out = np.zeros((batch, t), dtype=np.float32)
    for i, x in enumerate(xs):
        out[i, : len(x)] = x
    return torch.from_numpy(out), torch.tensor([len(x) for x in xs]), texts, transcripts
