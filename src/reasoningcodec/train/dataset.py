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
               noise_prob: float = 0.1, hop: int = 1, teacher: "TeacherCache | None" = None
               ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``[B, seg]`` random crops, short clips zero-padded at a random offset, random gain, light noise.

    With ``teacher``, crops start on multiples of ``hop`` (the reasoning hop; ``seg`` must be a multiple)
    and the call returns ``(wav, targets [B, seg/hop, D], mask [B, seg/hop])``: the cached teacher
    state of every window, ``mask`` False where the window is padding or the clip has no cache.
    """
    if teacher is not None and seg % hop:
        raise ValueError(f"segment {seg} is not a multiple of the hop {hop}")
    out = np.zeros((batch, seg), dtype=np.float32)
    n_win = seg // hop
    tgt = np.zeros((batch, n_win, teacher.dim if teacher else 0), dtype=np.float32)
    mask = np.zeros((batch, n_win), dtype=bool)
    for i in range(batch):
        for _ in range(5):  # avoid near-silent crops
            clip = sampler.pick()
            x = store.get(clip)
            if len(x) >= seg:
                s = int(rng.integers(0, (len(x) - seg) // hop + 1)) * hop
                y = x[s:s + seg]
                src, dst, n = s // hop, 0, n_win
            else:
                y = np.zeros(seg, dtype=np.float32)
                s = int(rng.integers(0, (seg - len(x)) // hop + 1)) * hop
                y[s:s + len(x)] = x
                src, dst, n = 0, s // hop, -(-len(x) // hop)
            if np.sqrt(np.mean(y**2)) > 1e-3:
                break
        if teacher is not None:
            states = teacher.get(clip)
            if states is not None:
                n = max(0, min(n, len(states) - src, n_win - dst))
                tgt[i, dst:dst + n] = states[src:src + n]
                mask[i, dst:dst + n] = True
        peak = float(np.abs(y).max()) + 1e-6
        gain = 10 ** (rng.uniform(-18, 0) / 20) / peak * 0.95
        y = y * min(gain, 10 ** (30 / 20))
        if rng.random() < noise_prob:
            y = y + rng.standard_normal(seg).astype(np.float32) * 10 ** (rng.uniform(-70, -35) / 20)
        out[i] = y
    if teacher is None:
        return torch.from_numpy(out)
    return torch.from_numpy(out), torch.from_numpy(tgt), torch.from_numpy(mask)


class TeacherCache:
    """Cached teacher states per clip (``whisper_teacher.build_cache``), as learnable targets.

    Whisper adds absolute position embeddings, and they survive into its encoder states: on this
    corpus the mean state at each window index explains ~44% of the states' variance. A random
    crop does not know where in its clip it starts, so that part is unpredictable for the student.
    Targets are therefore ``(state − mean state at that window index) / per-dimension std``, with
    both statistics taken over every cached clip of ``clips`` (indices seen fewer than
    ``min_count`` times use the last well-estimated index). Clips without a cache file get ``None``.
    """

    def __init__(self, corpus: Path, clips: list[Clip], min_count: int = 200) -> None:
        from .whisper_teacher import CACHE_DIR, DIM, cache_path

        self.corpus, self.dim = corpus, DIM
        self.cache: dict[Path, np.ndarray | None] = {}
        raw = {}
        for c in clips:
            p = cache_path(corpus, c.path)
            raw[c.path] = np.load(p) if p.exists() else None
        have = [v for v in raw.values() if v is not None]
        if not have:
            raise FileNotFoundError(f"no teacher states under {corpus / CACHE_DIR}; build them with "
                                    f"python -m reasoningcodec.train.whisper_teacher {corpus}")
        self.coverage = len(have) / max(1, len(clips))
        longest = max(len(v) for v in have)
        total, count = np.zeros((longest, DIM)), np.zeros(longest)
        for v in have:
            total[: len(v)] += v
            count[: len(v)] += 1
        ok = int(np.flatnonzero(count >= min(min_count, count[0]))[-1]) + 1
        self.index_mean = (total[:ok] / count[:ok, None]).astype(np.float32)
        sq = np.zeros(DIM)
        for v in have:
            sq += ((v - self._mean(len(v))) ** 2).sum(0)
        self.std = np.sqrt(sq / count.sum()).astype(np.float32) + 1e-3
        for k, v in raw.items():
            self.cache[k] = None if v is None else ((v - self._mean(len(v))) / self.std).astype(np.float16)

    def _mean(self, n: int) -> np.ndarray:
        return self.index_mean[np.minimum(np.arange(n), len(self.index_mean) - 1)]

    def get(self, clip: Clip) -> np.ndarray | None:
        v = self.cache.get(clip.path)
        return None if v is None else v.astype(np.float32)


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
