"""Fresh few-shot episodes from labelled training clips (uniaudio_lm.episode_stream)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from uniaudio_lm import AudioVocab, default_tokenizer
from uniaudio_lm.episode_stream import EpisodeStream, EpisodeStreamError, labelled_clips
from uniaudio_lm.recipes.episodes import NONSENSE
from uniaudio_lm.sentence import AudioItem, TextField, build
from uniaudio_lm.train import TrainConfig, train

SMALL_CODEC = {"num_reasoning_codebooks": 2, "reasoning_codebook_size": 16, "num_recon_codebooks": 3,
               "recon_codebook_size": 32}


def _codes(root: Path, name: str, seed: int) -> str:
    g = torch.Generator().manual_seed(seed)
    rel = f"codes/{name}.safetensors"
    (root / "codes").mkdir(parents=True, exist_ok=True)
    save_file({"reasoning": torch.randint(0, 16, (2, 4), generator=g),
               "recon": torch.randint(0, 32, (3, 10), generator=g)}, str(root / rel))
    return rel


def _manifest(tmp_path: Path) -> Path:
    rows, n = [], 0
    for cls in ("tone", "click", "buzz"):  # synthetic classes: every clip a recording of its own
        for k in range(4):
            rows.append({"task": "audio_qa", "codes": _codes(tmp_path, f"{cls}{k}", n), "question": "q?", "text": "a",
                         "label": cls, "origin": "synthetic"})
            n += 1
    for cls, files in (("cow", ["cow.ogg", "cow2.ogg"]), ("sheep", ["sheep.ogg", "lamb.ogg"]), ("dog", ["dog.ogg"])):
        for k in range(4):  # recorded classes: augmented copies of a few source files
            rows.append({"task": "audio_caption", "codes": _codes(tmp_path, f"{cls}{k}", n), "text": "x",
                         "label": cls, "origin": "tuxpaint", "category": "mammal",
                         "augment": {"file": files[k % len(files)]}})
            n += 1
    for spk in ("en+a", "en+b"):
        for k in range(3):
            rows.append({"task": "tts", "codes": _codes(tmp_path, f"{spk}{k}", n), "text": "hi", "speaker": spk})
            n += 1
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_labelled_clips_group_by_family_and_recording(tmp_path):
    rows = [json.loads(x) for x in _manifest(tmp_path).read_text().splitlines()]
    pools = labelled_clips(rows)
    assert set(pools["sound"]) == {"tone", "click", "buzz", "cow", "sheep", "dog"}
    assert {c.recording for c in pools["sound"]["cow"]} == {"tuxpaint:cow.ogg", "tuxpaint:cow2.ogg"}
    assert len({c.recording for c in pools["sound"]["tone"]}) == 4
    assert set(pools["category"]) == {"mammal"} and set(pools["speaker"]) == {"en+a", "en+b"}


def test_targets_are_new_recordings_of_shown_classes(tmp_path):
    s = EpisodeStream(_manifest(tmp_path), families={"sound": 1.0, "speaker": 1.0}, clips=(3, 8))
    assert "dog" not in s.pools["sound"]  # one recording: it could never be a fair query
    rng = random.Random(0)
    n_targets = 0
    for _ in range(200):
        ep = s.draw(rng)
        assert 3 <= len(ep) <= 8
        names = {c: name for c, _, name, _ in ep}
        assert len(set(names.values())) == len(names)  # one label per class, distinct
        seen: dict[str, set[str]] = {}
        for cls, clip, name, target in ep:
            assert name in NONSENSE or name in s.pools["sound"] or name in s.pools["speaker"]
            if target:  # the class was shown before, never with this recording
                assert cls in seen and clip.recording not in seen[cls]
                n_targets += 1
            seen.setdefault(cls, set()).add(clip.recording)
    assert n_targets > 200  # several targets per episode on average


def test_example_puts_the_loss_on_query_labels_only(tmp_path):
    s = EpisodeStream(_manifest(tmp_path), families={"sound": 1.0})
    tok, v = default_tokenizer(), AudioVocab(**SMALL_CODEC)
    ex = s(random.Random(3))
    assert ex.kind == "fewshot" and ex.task == "fewshot_classify"
    items = [x for x in ex.segments if isinstance(x, AudioItem)]
    answers = [x for x in ex.segments if isinstance(x, TextField)]
    assert len(items) == len(answers) and not any(x.target for x in items)
    st = build(ex.segments, tok, v)
    assert int(st.loss_mask.sum()) > 0 and not bool((st.loss_mask & st.is_audio).any())


def test_too_few_classes_is_a_clear_error(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text(json.dumps({"task": "audio_qa", "codes": _codes(tmp_path, "a", 0), "question": "q", "text": "a",
                             "label": "tone", "origin": "synthetic"}) + "\n")
    with pytest.raises(EpisodeStreamError, match="no family"):
        EpisodeStream(p)
    with pytest.raises(EpisodeStreamError, match="unknown episode families"):
        EpisodeStream(_manifest(tmp_path), families={"smell": 1.0})


def test_training_with_an_episode_stream_logs_cpu_and_snapshots(tmp_path):
    m = _manifest(tmp_path / "data")
    cfg = TrainConfig(out_dir=str(tmp_path / "run"), stage=4, preset="tiny", codec=SMALL_CODEC, steps=4,
                      max_tokens=600, manifests=[str(m)], ckpt_every=2, log_every=1, warmup=2, snapshot_every=2,
                      mixture={"fewshot": 1.0}, episode_stream={"families": {"sound": 1.0}, "replace": True})
    state = train(cfg, quiet=True)
    assert state["step"] == 4 and state["cpu_s"] > 0
    rows = (tmp_path / "run" / "losses.csv").read_text().splitlines()
    assert rows[0].split(",")[8:] == ["cpu_s", "ctc_loss", "encoder_ctc_loss"] and len(rows) == 5
    cpu = [float(r.split(",")[8]) for r in rows[1:]]
    assert cpu == sorted(cpu)
    assert sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir()) == ["step_000002", "step_000004"]


def test_crop_cuts_the_same_span_of_both_streams(tmp_path):
    s = EpisodeStream(_manifest(tmp_path), families={"sound": 1.0}, crop_s=(0.4, 0.4), crop_p=1.0)
    r = torch.arange(20).repeat(2, 1)
    q = torch.arange(50).repeat(3, 1)
    rng = random.Random(0)
    for _ in range(20):
        cr, cq = s.crop((r, q), rng)
        assert cr.shape == (2, 2) and cq.shape == (3, 5)
        assert int(cq[0, 0]) == int(int(cr[0, 0]) * 2.5)  # the window starts at the same time in both
    never = EpisodeStream(_manifest(tmp_path), families={"sound": 1.0}, crop_s=(0.4, 0.4), crop_p=0.0)
    assert never.crop((r, q), rng)[0].shape == (2, 20)


def test_symbolic_episodes_targets_are_repeats_of_shown_classes():
    from uniaudio_lm.episode_stream import SymbolicEpisodes

    s = SymbolicEpisodes((2, 3), (16, 32), frames=(2, 4), clips=(3, 6), noise=0.2)
    tok, v = default_tokenizer(), AudioVocab(**SMALL_CODEC)
    rng = random.Random(0)
    for _ in range(20):
        ex = s(rng)
        items = [x for x in ex.segments if isinstance(x, AudioItem)]
        labels = [x for x in ex.segments if isinstance(x, TextField)]
        assert 3 <= len(items) <= 6 and len(items) == len(labels)
        seen = set()
        for lab in labels:  # a label is a target exactly when its class was shown before
            assert lab.target == (lab.text in seen)
            seen.add(lab.text)
        assert all(int(x.reasoning.max()) < 16 and int(x.recon.max()) < 32 for x in items)
        st = build(ex.segments, tok, v)
        assert not bool((st.loss_mask & st.is_audio).any())
