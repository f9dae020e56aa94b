"""The four training stages as data, and the length-bucketed batch sampler.

Stage 1: text-only + audio-only + reasoning ↔ reconstruction translation (pre-training);
stage 2: understanding; stage 3: generation; stage 4: joint multi-task with few-shot auditory sentences.
Text-only examples are added to every batch in every stage; generation examples have their conditions
replaced by padding with probability ``cond_dropout`` (classifier-free guidance).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Sequence

import torch

from .data import ExampleSource
from .sentence import SentenceBatch, SentenceTensors, build, collate, drop_conditions
from .style import Style
from .tasks import Example
from .tokenizer import TextTokenizer
from .vocab import AudioVocab


@dataclass(frozen=True)
class StageConfig:
    """One training stage.

    Attributes:
        mixture: kind → sampling weight of the non-text part of each batch.
        text_per_batch: text-only examples added to every batch.
        cond_dropout: probability of replacing the conditions of a generation example by padding.
        lr, warmup, min_lr_ratio: cosine schedule of the stage.
        freeze: parameter-name prefixes kept frozen.
    """

    stage: int
    name: str
    mixture: dict[str, float]
    text_per_batch: int = 2
    cond_dropout: float = 0.1
    lr: float = 3e-4
    warmup: int = 200
    min_lr_ratio: float = 0.1
    freeze: tuple[str, ...] = field(default_factory=tuple)


STAGES: dict[int, StageConfig] = {
    1: StageConfig(1, "pretrain", {"text": 1.0, "audio": 1.0, "translation": 1.0}, lr=3e-4),
    2: StageConfig(2, "understanding", {"understanding": 1.0}, lr=2e-4),
    3: StageConfig(3, "generation", {"generation": 1.0}, lr=2e-4),
    4: StageConfig(4, "joint", {"understanding": 1.0, "generation": 1.0, "translation": 0.2, "fewshot": 0.5},
                   lr=1e-4),
}


@dataclass
class BatchInfo:
    """What went into one batch."""

    kinds: list[str]
    num_tokens: int
    dropped_conditions: int


class BucketBatcher:
    """Builds the batch of step ``s`` deterministically from ``(seed, rank, s)``.

    A pool of ``pool_size`` examples is drawn from the stage mixture and sorted by length; a random run
    of consecutive (similar-length) examples is taken while ``count × longest <= max_tokens``; then
    ``text_per_batch`` text-only examples of at most that length are added.
    """

    def __init__(self, stage: StageConfig, sources: dict[str, Sequence[ExampleSource]], tokenizer: TextTokenizer,
                 vocab: AudioVocab, max_tokens: int, seed: int = 0, rank: int = 0, pool_size: int = 32) -> None:
        self.stage, self.tok, self.vocab = stage, tokenizer, vocab
        self.max_tokens, self.seed, self.rank, self.pool_size = max_tokens, seed, rank, pool_size
        self.kinds = [k for k, w in stage.mixture.items() if w > 0 and sources.get(k)]
        if not self.kinds:
            raise ValueError(f"no sources for any kind of stage {stage.stage} ({sorted(stage.mixture)})")
        self.weights = [stage.mixture[k] for k in self.kinds]
        self.sources = sources
        self.text_sources = list(sources.get("text", []))
        if stage.text_per_batch and not self.text_sources:
            raise ValueError("text-only examples go into every batch: give a 'text' source")

    def _build(self, ex: Example, rng: random.Random) -> tuple[SentenceTensors, bool]:
        st = build(ex.segments, self.tok, self.vocab)
        if ex.kind == "generation" and rng.random() < self.stage.cond_dropout:
            return drop_conditions(st, self.tok, self.vocab), True
        return st, False

    def _style(self, ex: Example, dropped: bool, key: str) -> tuple[float, ...]:
        """The example's style features, parts left out at random (:data:`uniaudio_lm.style.DROP`; all of
        it when the conditions were dropped). A separate random stream, so the batches are the same with
        and without style conditioning."""
        if ex.style is None or dropped:
            return Style().features()
        return ex.style.dropped(random.Random(key)).features()

    def batch(self, step: int) -> tuple[SentenceBatch, BatchInfo]:
        rng = random.Random(f"{self.seed}/{self.rank}/{step}")
        pool: list[tuple[SentenceTensors, str, bool, tuple[float, ...]]] = []
        for j in range(self.pool_size):
            kind = rng.choices(self.kinds, self.weights)[0]
            ex = rng.choice(list(self.sources[kind]))(rng)
            st, dropped = self._build(ex, rng)
            pool.append((st, ex.kind, dropped, self._style(ex, dropped, f"style/{self.seed}/{self.rank}/{step}/{j}")))
        pool.sort(key=lambda x: len(x[0]))
        tpb = self.stage.text_per_batch

        def fits(lo: int, hi: int) -> bool:
            return (hi - lo + 1 + tpb) * len(pool[hi][0]) <= self.max_tokens

        lo = hi = rng.randrange(len(pool))
        while True:  # grow a run of similar lengths while the padded batch stays within budget
            moves = [m for m in ((lo - 1, hi), (lo, hi + 1)) if m[0] >= 0 and m[1] < len(pool) and fits(*m)]
            if not moves:
                break
            lo, hi = rng.choice(moves)
        chosen = pool[lo : hi + 1]
        longest = max(16, len(pool[hi][0]))
        texts = [_head(build(rng.choice(self.text_sources)(rng).segments, self.tok, self.vocab), longest)
                 for _ in range(tpb)]
        items = [x[0] for x in chosen] + texts
        b = collate(items, self.tok, self.vocab)
        styles = [x[3] for x in chosen] + [Style().features()] * len(texts)
        if any(any(f) for f in styles):
            b.style = torch.tensor(styles, dtype=torch.float32)
        info = BatchInfo([x[1] for x in chosen] + ["text"] * len(texts), b.num_tokens, sum(x[2] for x in chosen))
        return b, info


def _head(st: SentenceTensors, n: int) -> SentenceTensors:
    """The first ``n`` positions (long text-only examples are cut to the batch length)."""
    return SentenceTensors(st.text_ids[:n], st.audio_ids[:n], st.is_audio[:n], st.loss_mask[:n], st.cond_mask[:n])


def lr_at(stage: StageConfig, step: int, total: int) -> float:
    """Linear warm-up then cosine decay to ``min_lr_ratio × lr``."""
    import math

    if step < stage.warmup:
        return stage.lr * (step + 1) / stage.warmup
    p = min(1.0, (step - stage.warmup) / max(1, total - stage.warmup))
    return stage.lr * (stage.min_lr_ratio + (1 - stage.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))
