"""Few-shot classification episodes whose answer has to come from the audio.

An episode is ``ways`` classes, ``shots`` labelled demonstrations of each and one query. Three rules
keep it honest (issue 22, item 4):

- **different recordings**: each class of an episode keeps one of its source recordings back for the
  query, and its demonstrations come from its other recordings, so the query is never an augmented
  copy of a demonstration (the rule is the same for every class, whichever turns out to be the query);
- **unseen classes**: classes listed as training classes are never used (:func:`eligible`);
- **labels without meaning**: the names shown to the model are meaningless words drawn per episode
  (``"nonsense"``) or the episode's real class names in a random order (``"shuffled"``), so a name says
  nothing about which sound carries it.

Everything here works on names: a class has recordings (ids: a source file, or one id per synthesised
clip), and the caller turns each ``(class, recording)`` pick into a clip (a fresh augmentation in the
recipe, an existing held-out clip in the benchmark).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from typing import Callable, Iterable, Mapping, Sequence

#: Meaningless label words (pronounceable, no English meaning, not a class name).
NONSENSE: tuple[str, ...] = ("dax", "wug", "fep", "zorp", "blick", "tupa", "gazzer", "mib", "lorp", "nef", "kwim",
                             "sarn", "vop", "jeb", "trel", "yull", "pim", "roke", "snib", "quon")


class EpisodeError(ValueError):
    """Too few eligible classes (or recordings) to build an episode."""


@dataclass(frozen=True)
class Episode:
    """One few-shot episode.

    Attributes:
        classes: the true classes, in the order drawn.
        names: true class → the label shown to the model.
        demos: ``(class, recording)`` of each demonstration, in presentation order.
        query: ``(class, recording)`` of the query.
        naming: ``"nonsense"`` or ``"shuffled"``.
    """

    classes: tuple[str, ...]
    names: Mapping[str, str]
    demos: tuple[tuple[str, str], ...]
    query: tuple[str, str]
    naming: str

    @property
    def answer(self) -> str:
        """The label shown for the query's class (the right answer)."""
        return self.names[self.query[0]]

    @property
    def labels(self) -> list[str]:
        """The candidate labels (shown names, in class order)."""
        return [self.names[c] for c in self.classes]


def nonsense_names(classes: Sequence[str], rng: random.Random) -> dict[str, str]:
    """A different meaningless word for each class."""
    if len(classes) > len(NONSENSE):
        raise EpisodeError(f"{len(classes)} classes but only {len(NONSENSE)} nonsense words")
    return dict(zip(classes, rng.sample(NONSENSE, len(classes))))


def shuffled_names(classes: Sequence[str], rng: random.Random) -> dict[str, str]:
    """The classes' own names in a random order (a class keeps its name by chance only)."""
    names = list(classes)
    rng.shuffle(names)
    return dict(zip(classes, names))


NAMINGS: dict[str, Callable[[Sequence[str], random.Random], dict[str, str]]] = {
    "nonsense": nonsense_names, "shuffled": shuffled_names}


def eligible(pool: Mapping[str, Iterable[str]], train_classes: Iterable[str] = ()) -> dict[str, list[str]]:
    """Classes of ``pool`` (class → recording ids) that are not training classes and have at least two
    distinct recordings (one for the query, one or more for the demonstrations), with sorted recordings."""
    train = set(train_classes)
    out = {}
    for c in sorted(pool):
        recs = sorted(set(pool[c]))
        if c not in train and len(recs) >= 2:
            out[c] = recs
    return out


def episode(pool: Mapping[str, Sequence[str]], rng: random.Random, ways: int = 2, shots: int = 1,
            naming: str = "nonsense") -> Episode:
    """One episode from ``pool`` (class → at least two recording ids; see :func:`eligible`)."""
    if naming not in NAMINGS:
        raise EpisodeError(f"naming is one of {sorted(NAMINGS)}, got {naming!r}")
    if len(pool) < ways:
        raise EpisodeError(f"a {ways}-way episode needs {ways} classes, the pool has {len(pool)}")
    classes = rng.sample(sorted(pool), ways)
    held = {c: rng.choice(list(pool[c])) for c in classes}  # the recording each class would be queried with
    demos: list[tuple[str, str]] = []
    for c in classes:
        others = [r for r in pool[c] if r != held[c]]
        if not others:
            raise EpisodeError(f"class {c!r} has a single recording")
        picks = rng.sample(others, min(shots, len(others)))
        picks += [rng.choice(others) for _ in range(shots - len(picks))]
        demos += [(c, r) for r in picks]
    rng.shuffle(demos)
    target = rng.choice(classes)
    return Episode(tuple(classes), NAMINGS[naming](classes, rng), tuple(demos), (target, held[target]), naming)


def episodes(pool: Mapping[str, Iterable[str]], n: int, rng: random.Random, train_classes: Iterable[str] = (),
             ways: int = 2, shots: Sequence[int] = (1, 2), naming: str = "nonsense") -> list[Episode]:
    """``n`` episodes over the :func:`eligible` classes of ``pool``; each draws its number of shots from
    ``shots``."""
    ok = eligible(pool, train_classes)
    if len(ok) < ways:
        raise EpisodeError(f"{len(ok)} class(es) outside training with two or more recordings "
                           f"({', '.join(ok) or 'none'}); a {ways}-way episode needs {ways}")
    return [episode(ok, rng, ways, rng.choice(list(shots)), naming) for _ in range(n)]


def renamed(ep: Episode, naming: str, rng: random.Random) -> Episode:
    """The same episode (sounds, order, answer class) with names drawn by another naming."""
    return replace(ep, names=NAMINGS[naming](ep.classes, rng), naming=naming)
