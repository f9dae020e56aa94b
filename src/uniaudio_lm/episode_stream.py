"""Few-shot classification episodes drawn afresh at every training step from labelled training clips.

The few-shot recipe renders a few hundred fixed episodes; a model sees each many times and learns little
about comparing sounds from 1-2 label tokens per episode. :class:`EpisodeStream` instead composes a new
episode for every draw from the clips of a tokenised manifest, grouped by what they are labelled with
("families"):

- ``sound``: the sound class of a labelled clip (``label`` / few-shot ``class``);
- ``category``: the coarse category of a recorded sound clip (``bird``, ``mammal``... of the Tux Paint
  stamps), so different stamps of one category are different recordings of one class;
- ``speaker``: the voice of a speech clip (``speaker``), every clip a recording of its own;
- ``instrument``: the lead instrument of a music clip.

An episode is a run of 3-8 clips of 2-3 classes of one family, each followed by its label. Labels are
meaningless words drawn per episode, or the family's class names shuffled, so a label says nothing about
the sound. A class is introduced by its first clip (its label is a condition); every later clip of a
class whose recording differs from all earlier clips of that class has its label as a training target,
so the answer has to come from comparing the sound with the earlier clips, never from recognising an
augmented copy. The sequence has the layout of a few-shot classification prompt (demonstrations, then a
query), with several queries per sequence: one episode gives several targets instead of one.

Only training-split rows are read, so held-out classes (which never occur in training rows) never occur
here either.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch

from .data import load_codes
from .recipes.episodes import NONSENSE
from .sentence import AudioItem, TextField
from .tasks import Audio, Example, task_prompt

FAMILIES = ("sound", "category", "speaker", "instrument")


class EpisodeStreamError(ValueError):
    """The manifest holds too few labelled clips to draw episodes."""


@dataclass(frozen=True)
class Clip:
    """A labelled clip: its code file (relative to the manifest) and the recording it was made from."""

    codes: str
    recording: str


def recording_of(row: dict[str, Any], key: str = "codes") -> str:
    """The source recording of a labelled clip row: its Tux Paint file (augmented copies share it), else
    its ``recording`` field, else the clip itself (``row[key]``: a synthesis is its own recording)."""
    f = (row.get("augment") or {}).get("file")
    return f"tuxpaint:{f}" if f else row.get("recording") or f"clip:{row[key]}"


def labelled_clips(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, list[Clip]]]:
    """family → class → clips, from tokenised manifest rows (code paths in ``codes``)."""
    out: dict[str, dict[str, list[Clip]]] = {f: {} for f in FAMILIES}

    def put(family: str, cls: Any, clip: Clip) -> None:
        if isinstance(cls, str) and cls:
            clips = out[family].setdefault(cls, [])
            if clip not in clips:
                clips.append(clip)

    for r in rows:
        codes = r.get("codes")
        if r.get("task") == "fewshot_classify":
            for d in [*r.get("demos", []), r]:
                if "class" in d and "codes" in d:
                    put("sound", d["class"], Clip(d["codes"], d.get("recording") or f"clip:{d['codes']}"))
            continue
        if not isinstance(codes, str):
            continue
        clip = Clip(codes, recording_of(r))
        if isinstance(r.get("label"), str) and r.get("origin") in ("tuxpaint", "synthetic"):
            put("sound", r["label"], clip)
            if r.get("origin") == "tuxpaint":
                put("category", r.get("category"), clip)
        elif isinstance(r.get("speaker"), str) and r.get("task") in ("tts", "asr", "instruct_tts", "yue_asr"):
            put("speaker", r["speaker"], Clip(codes, f"clip:{codes}"))
        elif (r.get("facts") or {}).get("arrangement") == "solo" and isinstance(r.get("instrument"), str):
            put("instrument", r["instrument"], Clip(codes, f"clip:{codes}"))
    return out


def _usable(classes: dict[str, list[Clip]]) -> dict[str, list[Clip]]:
    """Classes with at least two recordings (a target needs a recording its class has not shown yet)."""
    return {c: v for c, v in sorted(classes.items()) if len({x.recording for x in v}) >= 2}


class EpisodeStream:
    """An example source (``rng -> Example``) of fresh few-shot classification episodes (module docstring).

    Args:
        manifest: a tokenised training manifest (``tokens/train.jsonl``).
        codebooks: ``(Kr, Kq)`` reasoning / reconstruction stages the model reads.
        families: family → sampling weight (families with fewer than ``max(ways)`` usable classes are
            dropped).
        clips: (min, max) clips per episode.
        ways: class counts to draw from.
        shuffled_names: probability of labelling with the family's class names shuffled instead of
            meaningless words.
        max_positions: an episode stops adding clips before its audio frames and labels would pass
            this many positions (the model's context and the batch budget).
        crop_s: ``(shortest, longest)`` seconds a clip is cut to (a random window, the same span of both
            streams), with probability ``crop_p``: shorter episodes, so more of them per CPU-second.
        frame_rates: reasoning and reconstruction frames per second of the codes.
        max_cache: code files kept in memory.
    """

    def __init__(self, manifest: str | Path, codebooks: tuple[int, int] | None = None,
                 families: dict[str, float] | None = None, clips: tuple[int, int] = (3, 8),
                 ways: Sequence[int] = (2, 3), shuffled_names: float = 0.3, max_positions: int = 900,
                 crop_s: tuple[float, float] | None = None, crop_p: float = 0.0,
                 frame_rates: tuple[float, float] = (5.0, 12.5), max_cache: int = 20000) -> None:
        path = Path(manifest)
        self.root = path.parent
        rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
        pools = labelled_clips(rows)
        weights = families or {"sound": 1.0, "category": 0.5, "speaker": 1.0, "instrument": 0.5}
        unknown = sorted(set(weights) - set(FAMILIES))
        if unknown:
            raise EpisodeStreamError(f"unknown episode families {unknown}; known: {list(FAMILIES)}")
        self.ways = tuple(sorted(set(int(w) for w in ways)))
        if not self.ways or self.ways[0] < 2:
            raise EpisodeStreamError(f"ways are 2 or more, got {list(ways)}")
        self.clips = (max(self.ways[-1] + 1, int(clips[0])), max(int(clips[1]), self.ways[-1] + 1))
        self.pools = {f: _usable(pools[f]) for f, w in weights.items() if w > 0}
        self.pools = {f: p for f, p in self.pools.items() if len(p) >= self.ways[-1]}
        if not self.pools:
            raise EpisodeStreamError(f"{path}: no family has {self.ways[-1]} labelled classes with two or more "
                                     "recordings (build the sound, speech and music recipes first)")
        self.families = list(self.pools)
        self.weights = [weights[f] for f in self.families]
        self.codebooks = codebooks
        self.shuffled_names = shuffled_names
        self.max_positions = max_positions
        self.crop_s, self.crop_p, self.frame_rates = crop_s, crop_p, frame_rates
        self._cache: dict[str, Audio] = {}
        self.max_cache = max_cache

    def summary(self) -> dict[str, dict[str, int]]:
        """family → {"classes", "clips"}."""
        return {f: {"classes": len(p), "clips": sum(len(v) for v in p.values())} for f, p in self.pools.items()}

    def _codes(self, name: str) -> Audio:
        a = self._cache.get(name)
        if a is None:
            a = load_codes(self.root / name, self.codebooks)
            if len(self._cache) < self.max_cache:
                self._cache[name] = a
        return a

    def crop(self, audio: Audio, rng: random.Random) -> Audio:
        """A random window of ``crop_s`` seconds of both streams (with probability ``crop_p``)."""
        r, q = audio
        if self.crop_s is None or rng.random() >= self.crop_p:
            return r, q
        rr, qr = self.frame_rates
        n = max(1, round(rng.uniform(*self.crop_s) * rr))
        if r.shape[-1] <= n:
            return r, q
        a = rng.randrange(r.shape[-1] - n + 1)
        qa = int(a * qr / rr)
        return r[:, a : a + n], q[:, qa : qa + max(1, round(n * qr / rr))]

    def draw(self, rng: random.Random) -> list[tuple[str, Clip, str, bool]]:
        """One episode as ``(class, clip, label, is_target)`` in presentation order."""
        family = rng.choices(self.families, self.weights)[0]
        pool = self.pools[family]
        ways = rng.choice([w for w in self.ways if w <= len(pool)])
        classes = rng.sample(sorted(pool), ways)
        if rng.random() < self.shuffled_names:
            names = rng.sample(sorted(pool), ways)
            rng.shuffle(names)
        else:
            names = rng.sample(NONSENSE, ways)
        label = dict(zip(classes, names))
        n = rng.randint(*self.clips)
        order = list(classes) + [rng.choice(classes) for _ in range(n - ways)]
        rng.shuffle(order)
        seen: dict[str, set[str]] = {}
        out = []
        for c in order:
            shown = seen.setdefault(c, set())
            fresh = [x for x in pool[c] if x.recording not in shown]
            if shown and fresh and rng.random() < 0.85:
                clip, target = rng.choice(fresh), True  # a new recording of a class already shown: a query
            else:
                clip, target = rng.choice(pool[c]), False  # a demonstration (possibly another take)
            out.append((c, clip, label[c], target and bool(shown)))
            shown.add(clip.recording)
        return out

    def __call__(self, rng: random.Random) -> Example:
        segs: list[Any] = [task_prompt("fewshot_classify", rng)]
        used = 16  # the prompt
        for _, clip, name, target in self.draw(rng):
            r, q = self.crop(self._codes(clip.codes), rng)
            used += r.shape[-1] + q.shape[-1] + 4 + 6  # frames, their delimiters, the tagged label
            if used > self.max_positions and len(segs) > 1:
                break
            segs += [AudioItem(r, q), TextField("answer", name, target)]
        return Example(segs, "fewshot", "fewshot_classify")


class SymbolicEpisodes:
    """An example source of few-shot classification episodes over made-up "sounds": each class of an
    episode is a random code sequence, and each of its clips a copy with a fraction ``noise`` of the codes
    redrawn. Nothing here is audio; the episodes isolate the skill the audio episodes need (bind a label to
    the earlier clip that matches the query) at a fraction of their length.

    Args:
        codebooks: ``(Kr, Kq)``; sizes: ``(reasoning, reconstruction)`` codebook sizes.
        frames: (min, max) reasoning frames per clip (reconstruction frames: 2.5 ×).
        clips, ways: as :class:`EpisodeStream`; noise: fraction of codes redrawn per clip.
    """

    def __init__(self, codebooks: tuple[int, int], sizes: tuple[int, int], frames: tuple[int, int] = (3, 8),
                 clips: tuple[int, int] = (3, 8), ways: Sequence[int] = (2, 3), noise: float = 0.3) -> None:
        self.codebooks, self.sizes, self.frames = codebooks, sizes, frames
        self.ways = tuple(sorted(set(int(w) for w in ways)))
        self.clips = (max(self.ways[-1] + 1, int(clips[0])), max(int(clips[1]), self.ways[-1] + 1))
        self.noise = noise

    def _noisy(self, proto: Audio, g: torch.Generator) -> Audio:
        out = []
        for x, size in zip(proto, self.sizes):
            flip = torch.rand(x.shape, generator=g) < self.noise
            out.append(torch.where(flip, torch.randint(0, size, x.shape, generator=g), x))
        return out[0], out[1]

    def __call__(self, rng: random.Random) -> Example:
        g = torch.Generator().manual_seed(rng.getrandbits(62))
        ways = rng.choice(self.ways)
        protos = []
        for _ in range(ways):
            tr = rng.randint(*self.frames)
            protos.append((torch.randint(0, self.sizes[0], (self.codebooks[0], tr), generator=g),
                           torch.randint(0, self.sizes[1], (self.codebooks[1], max(1, round(2.5 * tr))), generator=g)))
        names = rng.sample(NONSENSE, ways)
        order = list(range(ways)) + [rng.randrange(ways) for _ in range(rng.randint(*self.clips) - ways)]
        rng.shuffle(order)
        segs: list[Any] = [task_prompt("fewshot_classify", rng)]
        seen: set[int] = set()
        for c in order:
            r, q = self._noisy(protos[c], g)
            segs += [AudioItem(r, q), TextField("answer", names[c], c in seen)]
            seen.add(c)
        return Example(segs, "fewshot", "fewshot_classify")
