"""uniaudio_lm.recipes: tiny builds (espeak_tts, espeak_instruct, noise_pairs, sfx_fewshot) and tokenize."""

from __future__ import annotations

import importlib.util
import json
import random
import shutil
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed"),
    pytest.mark.skipif(importlib.util.find_spec("pypinyin") is None, reason="pypinyin is not installed"),
]

RECIPES = ["espeak_tts", "espeak_instruct", "noise_pairs", "sfx_fewshot"]
TINY = {"enc_dim": 32, "latent_dim": 48, "dec_dim": 32, "reasoning_dim": 32, "reasoning_heads": 2,
        "reasoning_layers": 1, "num_recon_codebooks": 2, "recon_codebook_size": 64,
        "num_reasoning_codebooks": 2, "reasoning_codebook_size": 32, "dec_blocks": 1, "enc_blocks": 1}


def rows(out: Path, split: str, recipe: str) -> list[dict]:
    f = out / split / f"{recipe}.jsonl"
    return [json.loads(ln) for ln in f.read_text(encoding="utf-8").splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    from uniaudio_lm.recipes import build

    out = tmp_path_factory.mktemp("lm")
    info = build(out, RECIPES, scale=0.02, seed=3, log=lambda s: None)
    assert set(info["recipes"]) == set(RECIPES), info.get("skipped")
    return out


def test_clips_are_24k_mono_and_short(built):
    import soundfile as sf

    from uniaudio_lm.recipes.common import audio_refs

    seen = 0
    for split in ("train", "test"):
        for recipe in RECIPES:
            for r in rows(built, split, recipe):
                assert r["recipe"] == recipe and r["task"]
                for a in audio_refs(r):
                    info = sf.info(str(built / a))
                    assert info.samplerate == 24_000 and info.channels == 1, a
                    assert 0.99 <= info.duration <= 6.0 + 1e-3, (a, info.duration)
                    seen += 1
    assert seen > 50


def test_metadata_fields(built):
    for split in ("train", "test"):
        for r in rows(built, split, "espeak_tts"):
            assert r["task"] == "tts" and r["text"] and r["language"] in ("en", "cmn", "yue")
            assert 120 <= r["style"]["rate_wpm"] <= 260 and 20 <= r["style"]["pitch"] <= 80
            assert r["speaker"] == r["style"]["voice"]
        for r in rows(built, split, "espeak_instruct"):
            assert r["task"] == "instruct_tts" and r["caption"] and r["text"]
            assert {"rate_wpm", "pitch", "volume", "gender", "rate_class"} <= set(r["style"])
        for r in rows(built, split, "noise_pairs"):
            assert r["task"] in ("denoise", "fewshot_denoise") and r["source"] != r["audio"]
            assert 0.0 <= r["snr_db"] <= 15.0 and r["noise"] in ("white", "pink", "brown", "babble", "sound")
            if r["task"] == "fewshot_denoise":
                (d,) = r["demos"]
                assert set(d) >= {"source", "audio"}
        for r in rows(built, split, "sfx_fewshot"):
            assert r["task"] == "fewshot_classify" and len(r["labels"]) == 2 and r["text"] in r["labels"]
            per_label = {lab: sum(d["label"] == lab for d in r["demos"]) for lab in r["labels"]}
            assert all(1 <= n <= 2 for n in per_label.values()) and len(r["demos"]) == sum(per_label.values())
    tts_test = rows(built, "test", "espeak_tts")
    assert sum(r["language"] == "en" for r in tts_test) >= 2


def test_sentences_disjoint_between_splits(built):
    from uniaudio_lm.recipes import sentence_split

    texts = {"train": set(), "test": set()}
    for split in texts:
        for recipe in ("espeak_tts", "espeak_instruct"):
            texts[split] |= {(r["language"], r["text"]) for r in rows(built, split, recipe)}
        texts[split] |= {(r["language"], r["transcript"]) for r in rows(built, split, "noise_pairs")
                         if r["clean_origin"] == "espeak"}
    assert texts["train"] and texts["test"]
    assert not texts["train"] & texts["test"]
    assert all(sentence_split(lg, t) == "test" for lg, t in texts["test"])
    assert all(sentence_split(lg, t) == "train" for lg, t in texts["train"])
    assert all(len(t.split()) <= 10 for lg, t in texts["test"] if lg == "en")


def test_fewshot_test_classes_never_in_train(built):
    from uniaudio_lm.recipes.sound_classes import held_out

    train, test = set(), set()
    for r in rows(built, "train", "sfx_fewshot"):
        train |= {r["class"]} | {d["class"] for d in r["demos"]}
    train |= {r["noise_detail"] for r in rows(built, "train", "noise_pairs") if r["noise"] == "sound"}
    for r in rows(built, "test", "sfx_fewshot"):
        test |= {r["class"]} | {d["class"] for d in r["demos"]}
    assert train and test and not train & test
    assert all(held_out(lab) for lab in test) and not any(held_out(lab) for lab in train)


def test_fewshot_episodes_are_honest(built):
    """Query and demos come from different recordings; the labels are meaningless words."""
    from uniaudio_lm.recipes.episodes import NONSENSE

    for split in ("train", "test"):
        for r in rows(built, split, "sfx_fewshot"):
            assert all(d["recording"] != r["recording"] for d in r["demos"])
            assert set(r["labels"]) <= set(NONSENSE) and r["label"] == r["text"] and r["label"] in r["labels"]
            names = {d["class"]: d["label"] for d in r["demos"]}
            assert len(names) == 2 and len(set(names.values())) == 2 and names[r["class"]] == r["label"]


def test_synthetic_fallback_without_tuxpaint(tmp_path):
    from uniaudio_lm.recipes import build
    from uniaudio_lm.recipes.sound_classes import SYNTHETIC

    info = build(tmp_path, ["sfx_fewshot", "sfx_caption"], scale=0.02, seed=1,
                 options={"tuxpaint_dir": str(tmp_path / "missing")}, log=lambda s: None)
    assert "sfx_caption" in info["skipped"] and "Tux Paint" in info["skipped"]["sfx_caption"]
    assert not (tmp_path / "train" / "sfx_caption.jsonl").exists()
    labels = {s: {d["class"] for r in rows(tmp_path, s, "sfx_fewshot") for d in r["demos"]} for s in ("train", "test")}
    assert labels["train"] and labels["test"] and not labels["train"] & labels["test"]
    assert labels["train"] | labels["test"] <= set(SYNTHETIC)


def test_fast_and_slow_rows_have_requested_rates(built):
    import soundfile as sf

    test = rows(built, "test", "espeak_instruct")
    fast = [r for r in test if r["style"]["rate_class"] == "fast"]
    slow = [r for r in test if r["style"]["rate_class"] == "slow"]
    assert fast and slow and len(fast) + len(slow) == len(test)
    assert all(r["style"]["rate_wpm"] >= 220 for r in fast)
    assert all(r["style"]["rate_wpm"] <= 130 for r in slow)
    for r in rows(built, "train", "espeak_instruct"):
        lo, hi = {"slow": (120, 130), "normal": (155, 190), "fast": (220, 260)}[r["style"]["rate_class"]]
        assert lo <= r["style"]["rate_wpm"] <= hi

    def sec_per_word(rs: list[dict]) -> float:
        return sum(sf.info(str(built / r["audio"])).duration for r in rs) / sum(len(r["text"].split()) for r in rs)

    assert sec_per_word(slow) > 1.3 * sec_per_word(fast)
    fast_words, slow_words = ("fast", "rapid", "hurried", "quick"), ("slow", "unhurried", "leisurely")
    assert all(any(w in r["caption"].lower() for w in fast_words) for r in fast)
    assert all(any(w in r["caption"].lower() for w in slow_words) for r in slow)
    assert not any(w in r["caption"].lower() for r in slow for w in ("fast", "rapid", "quick"))


def test_build_is_deterministic_and_resumable(tmp_path, built):
    from uniaudio_lm.recipes import build

    info = build(tmp_path, ["espeak_tts"], scale=0.02, seed=3, log=lambda s: None)
    for split in ("train", "test"):
        assert rows(tmp_path, split, "espeak_tts") == rows(built, split, "espeak_tts")
    logs: list[str] = []
    build(tmp_path, ["espeak_tts"], scale=0.02, seed=3, log=logs.append)
    assert any("already built" in s for s in logs)
    with pytest.raises(ValueError, match="seed"):
        build(tmp_path, ["espeak_tts"], scale=0.02, seed=4, log=lambda s: None)
    with pytest.raises(ValueError, match="unknown recipe"):
        build(tmp_path, ["no_such_recipe"])
    assert info["recipes"]["espeak_tts"]["rows"]["test"]["tts"] >= 2


def test_tokenize_writes_loadable_manifest(tmp_path, built):
    import torch
    from safetensors.torch import load_file

    from reasoningcodec import CodecConfig, ReasoningCodec
    from uniaudio_lm import registry
    from uniaudio_lm.data import Manifest
    from uniaudio_lm.recipes import tokenize

    torch.manual_seed(0)
    model_dir = tmp_path / "codec"
    ReasoningCodec(CodecConfig(**TINY, model_id="tiny-recipes-test")).save_pretrained(model_dir)
    logs: list[str] = []
    info = tokenize(built, model=str(model_dir), recon_codebooks=1, log=logs.append)
    tok = built / "tokens"
    saved = json.loads((tok / "info.json").read_text())
    assert saved["model_id"] == "tiny-recipes-test" and saved["recon_codebooks"] == 1 and saved["complete"]
    assert info["rows"]["train"]["tts"] == len(rows(built, "train", "espeak_tts"))

    man = [json.loads(ln) for ln in (tok / "train.jsonl").read_text().splitlines()]
    n_train = sum(len(rows(built, "train", r)) for r in RECIPES)
    assert len(man) == n_train and all("audio" not in r and "codes" in r for r in man)
    first = man[0]
    t = load_file(str(tok / first["codes"]))
    assert t["reasoning"].dtype == torch.int16 and t["reasoning"].shape[0] == 2 and t["recon"].shape[0] == 1
    assert t["recon"].shape[1] >= 2 * t["reasoning"].shape[1]
    for r in man:
        for d in r.get("demos", []):
            assert "audio" not in d and (tok / d["codes"]).exists()
            if "source" in d:
                assert (tok / d["source"]).exists()
        if "source" in r:
            assert (tok / r["source"]).exists() and r["source"].endswith(".safetensors")

    # every row the registry knows loads through uniaudio_lm.data.Manifest and builds an example
    known = [r for r in man if _known(registry, r["task"])]
    assert {r["task"] for r in known} >= {"tts", "instruct_tts", "denoise"}
    path = tmp_path / "known.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in known))
    shutil.copytree(tok / "codes", tmp_path / "codes")
    total = 0
    for kind in sorted({registry.get(r["task"]).kind for r in known}):
        m = Manifest(path, kind)
        total += len(m)
        rng = random.Random(0)
        for _ in range(min(len(m), 6)):
            assert m(rng).segments
    assert total == len(known)

    # resumable: nothing left to encode; a different codebook count is refused
    again: list[str] = []
    tokenize(built, model=str(model_dir), recon_codebooks=1, log=again.append)
    assert "0 to encode" in again[0]
    with pytest.raises(ValueError, match="--force"):
        tokenize(built, model=str(model_dir), recon_codebooks=2, log=lambda s: None)


def _known(registry, task: str) -> bool:
    try:
        registry.get(task)
    except Exception:
        return False
    return True


def test_edit_and_qa_helpers():
    from uniaudio_lm.recipes.common import number_words
    from uniaudio_lm.recipes.qa_bank import bank
    from uniaudio_lm.recipes.speech import edit_sentence

    assert number_words(0) == "zero" and number_words(42) == "forty-two"
    assert number_words(105) == "one hundred and five"
    rng = random.Random(0)
    new, instr, facts = edit_sentence("The red car stopped at the old gate.", rng)
    assert new != "The red car stopped at the old gate." and instr.endswith(".")
    if facts["op"] == "replace":
        assert facts["old"] in instr and facts["new"] in new and facts["old"] not in new.split()
    train, test = bank("train"), bank("test")
    assert train and test and not {q.question for q in train} & {q.question for q in test}
    q = next(q for q in train + test if q.question == "What is seven plus five?")
    assert q.answer == "twelve" and "twelve" in q.answer_sentence


def test_check_finds_leaks(tmp_path, built):
    from uniaudio_lm.recipes import check

    assert check(built) == []
    bad = tmp_path / "bad"
    shutil.copytree(built, bad, ignore=shutil.ignore_patterns("tokens"))
    test_row = rows(bad, "test", "espeak_tts")[0]
    held = next(r for r in rows(bad, "test", "sfx_fewshot"))["labels"][0]
    with (bad / "train" / "espeak_tts.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(dict(test_row)) + "\n")
        f.write(json.dumps(dict(test_row, text="a new sentence", label=held)) + "\n")
    problems = check(bad)
    assert any("both splits" in p and test_row["text"] in p for p in problems)
    assert any("held-out sound class" in p and held in p for p in problems)


def test_everyday_sentences_are_outside_every_training_text():
    """The everyday English test sentences are in no shipped sentence list, the text corpus the model
    trains on, or the sentence grammar's output."""
    import re

    from uniaudio_lm.recipes.speech import GENERATED_EN, everyday_sentences, generated_sentences, load_all_en
    from uniaudio_lm.tokenizer import default_corpus_path

    def norm(s: str) -> str:
        return re.sub(r"[^a-z ]", "", s.lower()).strip()

    every = everyday_sentences()
    assert len(every) >= 100 and len({norm(s) for s in every}) == len(every)
    seen = {norm(s) for s in load_all_en()}
    seen |= {norm(s) for s in default_corpus_path().read_text(encoding="utf-8").splitlines()}
    seen |= {norm(s) for s in generated_sentences(GENERATED_EN, seed=0, exclude=set(load_all_en()))}
    assert not [s for s in every if norm(s) in seen]


def test_everyday_recipe_writes_test_rows_only(tmp_path):
    from uniaudio_lm.recipes import build
    from uniaudio_lm.recipes.speech import everyday_sentences

    info = build(tmp_path, ["everyday_en"], scale=1.0, seed=0, log=lambda s: None)
    assert "everyday_en" in info["recipes"]
    test = rows(tmp_path, "test", "everyday_en")
    assert not rows(tmp_path, "train", "everyday_en")
    assert [r["text"] for r in test if r["task"] == "asr"] == everyday_sentences()
    assert {r["task"] for r in test} == {"asr", "tts"} and all(r["everyday"] for r in test)


@pytest.mark.skipif(not Path("/usr/share/wordnet/data.noun").is_file(), reason="wordnet-base is not installed")
def test_wordnet_sentences_are_clean_and_never_test_sentences():
    import re

    from uniaudio_lm.recipes.common import sentences
    from uniaudio_lm.recipes.speech import everyday_sentences, wordnet_sentences

    pool = wordnet_sentences()
    assert len(pool) > 20000
    assert all(3 <= len(s.split()) <= 14 and s[0].isupper() and s[-1] in ".?!" for s in pool)
    norm = lambda s: re.sub(r"[^a-z ]", "", s.lower()).strip()  # noqa: E731
    test = {norm(s) for s in everyday_sentences() + sentences("en", "test")}
    assert not {norm(s) for s in pool} & test


def test_wordnet_recipe_needs_wordnet(tmp_path, monkeypatch):
    from uniaudio_lm.recipes import RecipeError, speech

    monkeypatch.setattr(speech, "WORDNET_DIR", tmp_path / "none")
    with pytest.raises(RecipeError, match="wordnet-base"):
        speech.wordnet_sentences(speech.WORDNET_DIR)


def test_real_asr_keeps_transcribed_english_recordings(tmp_path, monkeypatch):
    import numpy as np
    import soundfile as sf
    from reasoningcodec.data import sources_real
    from reasoningcodec.data.items import Item

    from uniaudio_lm.recipes.common import Context
    from uniaudio_lm.recipes.real_speech import real_asr

    t = np.arange(16000) / 16000
    files = {}
    for name, secs in (("hello", 1), ("long", 9)):
        files[name] = tmp_path / f"{name}.wav"
        sf.write(files[name], (0.3 * np.sin(2 * np.pi * 200 * t)).repeat(secs).astype(np.float32), 16000)

    def fake(cfg):
        base = dict(source="fake", category="speech", group="g", license="CC0", speaker="s")
        yield Item(item_id="a", language="en", transcript="Hello  there.", path=files["hello"], **base)
        yield Item(item_id="b", language="en-US", transcript="", path=files["hello"], **base)       # no text
        yield Item(item_id="c", language="fr", transcript="Bonjour.", path=files["hello"], **base)  # not English
        yield Item(item_id="d", language="en", transcript="Too long.", path=files["long"], **base)   # over 6 s
        yield Item(item_id="e", language="en", transcript="Noise.", path=files["hello"],
                   **{**base, "category": "sound"})

    for name in ("asterisk", "tuxpaint", "ktuberling"):
        monkeypatch.setattr(sources_real, name, fake if name == "asterisk" else (lambda cfg: iter(())))
    ctx = Context(tmp_path / "out", "real_asr", options={"gcompris_dir": str(tmp_path / "none")})
    out = real_asr(ctx)
    assert out["test"] == [] and [r["text"] for r in out["train"]] == ["Hello there."]
    r = out["train"][0]
    assert r["task"] == "asr" and r["language"] == "en" and (ctx.out_dir / r["audio"]).is_file()
    y, sr = sf.read(ctx.out_dir / r["audio"])
    assert sr == 24000 and 0.9 < len(y) / sr < 1.3
