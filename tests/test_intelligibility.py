"""benchmarks/intelligibility.py: text normalisation, WER, bootstrap intervals, the held-out sentence list,
and a 2-sentence end-to-end run (skipped without espeak-ng or the Whisper model)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import intelligibility as I  # noqa: E402

TINY = {"enc_dim": 32, "latent_dim": 48, "dec_dim": 32, "reasoning_dim": 32, "reasoning_heads": 2,
        "reasoning_layers": 1, "num_recon_codebooks": 2, "recon_codebook_size": 64,
        "num_reasoning_codebooks": 2, "reasoning_codebook_size": 32, "dec_blocks": 1, "enc_blocks": 1}


# ---------------------------------------------------------------------------------------------- text
@pytest.mark.parametrize("text, expected", [
    ("Hello, World!", "hello world"),
    ("I paid $18 for 2 tickets.", "i paid eighteen dollars for two tickets"),
    ("Over 250 runners", "over two hundred fifty runners"),
    ("over two hundred and fifty runners", "over two hundred fifty runners"),
    ("bread and butter", "bread and butter"),  # "and" outside a number stays
    ("The 6th floor, 21st of May", "the sixth floor twenty first of may"),
    ("1,500 people, 15% off", "one thousand five hundred people fifteen percent off"),
    ("Don't forget: it's 3 o'clock.", "dont forget its three oclock"),
    ("twenty-five", "twenty five"),
    ("OK, Mr. Smith", "okay mister smith"),
    ("", ""),
])
def test_normalize(text, expected):
    assert I.normalize(text) == expected


def test_ordinal_words():
    assert [I.ordinal_words(n) for n in (1, 2, 3, 5, 12, 20, 40, 99)] == [
        "first", "second", "third", "fifth", "twelfth", "twentieth", "fortieth", "ninety ninth"]


def test_word_edits():
    e = I.word_edits("the cat sat on the mat", "the cat sat on the mat")
    assert (e.sub, e.ins, e.dele, e.ref_len) == (0, 0, 0, 6)
    e = I.word_edits("the cat sat on the mat", "the dog sat on the mat")
    assert (e.sub, e.ins, e.dele) == (1, 0, 0) and e.rate == pytest.approx(1 / 6)
    e = I.word_edits("the cat sat", "the cat sat down")
    assert (e.sub, e.ins, e.dele) == (0, 1, 0)
    e = I.word_edits("the cat sat", "cat sat")
    assert (e.sub, e.ins, e.dele) == (0, 0, 1)
    e = I.word_edits("a b c", "")
    assert e.errors == 3 and e.rate == 1.0
    e = I.word_edits("a b", "x y z w")  # WER can exceed 100 %
    assert e.errors == 4 and e.rate == 2.0
    # spelling of numbers and punctuation are not errors
    assert I.word_edits("We need about thirty more chairs.", "we need about 30 more chairs").errors == 0


# ---------------------------------------------------------------------------------------------- statistics
def test_bootstrap_intervals():
    words = [10, 10, 10, 10]
    idx = I.bootstrap_indices(4, resamples=500, seed=0)
    assert idx.shape == (500, 4) and idx.min() >= 0 and idx.max() < 4
    assert np.array_equal(idx, I.bootstrap_indices(4, resamples=500, seed=0))  # fixed seed: reproducible

    same = I.corpus_wer([2, 2, 2, 2], words, idx)  # every sentence alike: no spread
    assert (same.value, same.lo, same.hi) == pytest.approx((0.2, 0.2, 0.2))

    spread = I.corpus_wer([0, 0, 4, 4], words, idx)
    assert spread.value == pytest.approx(0.2) and 0.0 <= spread.lo < 0.2 < spread.hi <= 0.4

    # corpus WER pools words: a long sentence weighs more than a short one
    pooled = I.corpus_wer([1, 0], [1, 9], I.bootstrap_indices(2, 100))
    assert pooled.value == pytest.approx(0.1)

    zero = I.paired_difference([1, 2, 3, 4], [1, 2, 3, 4], words, idx)
    assert (zero.value, zero.lo, zero.hi) == (0.0, 0.0, 0.0)
    better = I.paired_difference([0, 1, 0, 1], [3, 4, 3, 4], words, idx)  # always 3 fewer errors
    assert (better.value, better.lo, better.hi) == pytest.approx((-0.3, -0.3, -0.3))


# ---------------------------------------------------------------------------------------------- sentences
def test_sentence_list_is_held_out():
    sentences = I.load_sentences()
    assert len(sentences) >= 100 and len(set(sentences)) == len(sentences)
    assert len({I.normalize(s) for s in sentences}) == len(sentences)
    assert all(6 <= len(s.split()) <= 14 for s in sentences)
    texts, missing = I.training_texts()
    assert not missing and any("en.txt" in k for k in texts)
    assert I.overlaps(sentences) == []


def test_overlap_check_finds_training_text():
    from reasoningcodec.data.sources_espeak import load_sentences

    shipped = load_sentences("en")[0]
    bad = I.overlaps([shipped, shipped.upper().rstrip(".") + "!", "Where did Zoe find the red cup?",
                      "Honestly, I could not have asked for a better afternoon."])
    assert len(bad) == 3 and all("en.txt" in b for b in bad[:2]) and "grammar" in bad[2]


def test_refuses_overlapping_sentences_and_unknown_conditions(tmp_path, capsys):
    from reasoningcodec.data.sources_espeak import load_sentences

    f = tmp_path / "s.txt"
    f.write_text("# a comment\n" + load_sentences("en")[3] + "\n")
    assert I.main(["--sentence-file", str(f), "--quiet"]) == 2
    assert "not held out" in capsys.readouterr().err
    if shutil.which("espeak-ng") is not None:
        from benchmarks.lm_eval import whisper_status

        if whisper_status() == "ok":
            assert I.main(["--sentences", "1", "--conditions", "raw,mp3", "--quiet"]) == 2
            assert "unknown condition" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- end to end
def test_two_sentences_end_to_end(tmp_path):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed (apt-get install espeak-ng)")
    from benchmarks.lm_eval import whisper_status

    if whisper_status() != "ok":
        pytest.skip(whisper_status())
    import torch

    from reasoningcodec import CodecConfig, ReasoningCodec

    torch.manual_seed(0)
    ReasoningCodec(CodecConfig(**TINY)).eval().save_pretrained(tmp_path / "codec")
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["--sentences", "2", "--conditions", "raw,ours", "--model", str(tmp_path / "codec"),
            "--cache", str(tmp_path / "clips"), "--json", str(out), "--md", str(md), "--quiet"]
    assert I.main(argv) == 0
    r = json.loads(out.read_text())
    assert r["sentences"] == 2 and r["bootstrap"]["resamples"] == I.RESAMPLES
    assert [row["condition"] for row in r["rows"]] == ["raw", "ours"] and r["skipped"] == []
    for row in r["rows"]:
        assert row["words"] == sum(it["words"] for it in r["items"]) > 0
        assert row["ci"][0] <= row["wer"] <= row["ci"][1] and row["diff_vs_baseline"] is None  # no opus6 here
        assert set(row["per_voice"]) == {I.VOICES[0].name, I.VOICES[1].name}
    assert r["rows"][1]["kbps"] == pytest.approx(CodecConfig(**TINY).bitrate_with(2) / 1000)
    assert [it["voice"] for it in r["items"]] == [I.VOICES[0].name, I.VOICES[1].name]
    for it in r["items"]:
        assert set(it["hyp"]) == set(it["edits"]) == {"raw", "ours"}
        assert isinstance(it["hyp"]["raw"], str) and it["seconds"] > 0.5
    assert len(list((tmp_path / "clips").glob("*.wav"))) == 2
    assert "| raw |" in md.read_text()
    assert I.main(argv) == 0  # again, from the cached clips: same transcripts
    assert json.loads(out.read_text())["items"][0]["hyp"] == r["items"][0]["hyp"]
