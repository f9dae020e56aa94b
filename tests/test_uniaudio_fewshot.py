"""Honest few-shot episodes (issue 22, item 4): the episode builder and the benchmark's episodes (fast,
no audio is read)."""

from __future__ import annotations

import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from uniaudio_lm.recipes.episodes import NONSENSE, EpisodeError, eligible, episodes, renamed

ROOT = Path(__file__).resolve().parent.parent

POOL = {
    "camel": ["tuxpaint:camel.ogg", "tuxpaint:dromedary.ogg"],
    "goat": ["tuxpaint:goat.ogg", "tuxpaint:mountaingoat.ogg", "tuxpaint:ram.ogg"],
    "bell": [f"synthetic:bell:{k}" for k in range(4)],
    "warble": [f"synthetic:warble:{k}" for k in range(4)],
    "bear": ["tuxpaint:bear.ogg"],                       # one recording: can never be used
    "dog": ["tuxpaint:dog.ogg", "tuxpaint:dog2.ogg"],    # a training class
}
TRAIN = ["dog", "cat", "duck"]


def test_episode_properties():
    eps = episodes(POOL, 300, random.Random(0), train_classes=TRAIN)
    assert len(eps) == 300
    for ep in eps:
        assert len(ep.classes) == 2 and len(set(ep.classes)) == 2
        # test classes never appear in training; single-recording classes cannot keep a query apart
        assert not set(ep.classes) & set(TRAIN) and "bear" not in ep.classes
        # the query is a different recording than every demonstration
        assert all(rec != ep.query[1] for _, rec in ep.demos)
        assert ep.query[0] in ep.classes and all(rec in POOL[c] for c, rec in ep.demos + (ep.query,))
        shots = Counter(c for c, _ in ep.demos)
        assert set(shots) == set(ep.classes) and len(set(shots.values())) == 1 and set(shots.values()) <= {1, 2}
        # labels are meaningless words, different per class, and the answer is the query class's name
        assert set(ep.labels) <= set(NONSENSE) and len(set(ep.labels)) == 2 and not set(ep.labels) & set(POOL)
        assert ep.answer == ep.names[ep.query[0]] and ep.naming == "nonsense"
    # names are drawn per episode: no word stands for one class, and either class is the answer
    word_classes: dict[str, set] = {}
    for ep in eps:
        for c, w in ep.names.items():
            word_classes.setdefault(w, set()).add(c)
    assert sum(len(v) > 1 for v in word_classes.values()) >= len(word_classes) // 2
    assert 0.35 < np.mean([ep.query[0] == ep.classes[0] for ep in eps]) < 0.65
    assert {c for ep in eps for c in ep.classes} == {"camel", "goat", "bell", "warble"}


def test_shuffled_names_are_the_classes_in_random_order():
    eps = episodes(POOL, 200, random.Random(1), train_classes=TRAIN, naming="shuffled")
    kept = []
    for ep in eps:
        assert sorted(ep.labels) == sorted(ep.classes)
        kept.append(ep.names[ep.query[0]] == ep.query[0])
    assert 0.35 < np.mean(kept) < 0.65  # a class carries its own name by chance only
    ep = eps[0]
    other = renamed(ep, "nonsense", random.Random(2))
    assert (other.demos, other.query, other.classes) == (ep.demos, ep.query, ep.classes)
    assert set(other.labels) <= set(NONSENSE) and other.naming == "nonsense"


def test_eligibility_and_errors():
    assert set(eligible(POOL, TRAIN)) == {"camel", "goat", "bell", "warble"}
    assert set(eligible(POOL)) == {"camel", "goat", "bell", "warble", "dog"}
    with pytest.raises(EpisodeError, match="two or more recordings"):
        episodes({"a": ["r1", "r2"], "b": ["r3"]}, 5, random.Random(0))
    with pytest.raises(EpisodeError, match="naming"):
        episodes(POOL, 1, random.Random(0), naming="real")
    a = episodes(POOL, 20, random.Random(7), train_classes=TRAIN)
    assert a == episodes(POOL, 20, random.Random(7), train_classes=TRAIN)  # seeded


def test_benchmark_episodes_use_held_out_clips_of_other_recordings():
    sys.path.insert(0, str(ROOT))
    from benchmarks import lm_tasks as L

    test, train = {}, {}
    clip = iter(range(10_000))

    def row(task: str, label: str, file: str | None) -> dict:
        return {"task": task, "audio": f"audio/{task}/test/{next(clip):05d}.flac", "label": label,
                "augment": {"file": file} if file else {}}

    for task in ("audio_caption", "text_to_sound", "audio_qa"):
        for f in ("camel.ogg", "dromedary.ogg", "camel.ogg"):
            test.setdefault(task, []).append(row(task, "camel", f))
        test[task] += [row(task, "goat", f) for f in ("goat.ogg", "ram.ogg")]
        test[task] += [row(task, "bell", None) for _ in range(3)]  # synthetic: each clip its own recording
        test[task] += [row(task, "bear", "bear.ogg") for _ in range(3)]  # one recording
        test[task] += [row(task, "dog", f) for f in ("dog.ogg", "dog2.ogg")]  # also a train class
    train["audio_caption"] = [{"task": "audio_caption", "label": "dog"}]
    train["fewshot_classify"] = [{"task": "fewshot_classify", "label": "dax", "class": "owl",
                                  "demos": [{"label": "wug", "class": "dog"}]}]
    b = L.Bench(Path("/nowhere"), None, "no model", 20, 50, 100, 0, 1, 60, test=test)
    b._train = train
    assert L.train_sound_classes(b) == {"dog", "owl"}
    eps = L.fewshot_episodes(b)
    rec = {r["audio"]: L.recording_of(r, "audio") for rows in test.values() for r in rows}
    assert len(eps) == 60
    for ep, demos, query in eps:
        assert set(ep.classes) <= {"camel", "goat", "bell"}
        assert query not in demos and all(rec[d] != rec[query] for d in demos)
        assert [rec[d] for d in demos] == [r for _, r in ep.demos] and rec[query] == ep.query[1]
    info = b.sanity["fewshot_episodes"]
    assert info["left_out_train_classes"] == ["dog"] and info["left_out_single_recording"] == ["bear"]
    assert info["real_classes"] == ["camel", "goat"]
    # the acoustic baseline picks the class of the nearest mean demo
    f = np.eye(3)
    assert L.nearest_demo(f[0] + 0.1 * f[1], [f[0], f[1], f[2]], ["a", "b", "b"]) == "a"
