"""Metrics of the per-task LM benchmark (benchmarks/lm_eval.py)."""

from __future__ import annotations

import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import lm_eval as E  # noqa: E402

SR = 24_000
HAVE_ESPEAK = shutil.which("espeak-ng") is not None
needs_espeak = pytest.mark.skipif(not HAVE_ESPEAK, reason="espeak-ng not installed")


def espeak(text: str, voice: str = "en-us", rate: int = 175, pitch: int = 50) -> tuple[np.ndarray, int]:
    from reasoningcodec.data.sources_espeak import synth

    return synth(text, voice, rate, pitch)


def harmonic(f0: float, seconds: float = 1.0, sr: int = SR, n: int = 6) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return 0.3 * sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, n + 1))


# ---------------------------------------------------------------- text
def test_normalize_text():
    assert E.normalize_text("  Hello,   WORLD!  It's 21 o'clock. ") == "hello world its twenty one oclock"
    assert E.normalize_text("你好，世界。") == "你好 世界"
    assert E.number_words(105) == "one hundred five"


def test_edit_counts_known():
    c = E.edit_counts("a b c d".split(), "a x c d e".split())
    assert (c.sub, c.ins, c.dele, c.ref_len) == (1, 1, 0, 4)
    c = E.edit_counts("a b c d".split(), "a d".split())
    assert (c.sub, c.ins, c.dele) == (0, 0, 2)
    assert E.edit_counts([], []).rate == 0.0
    assert E.edit_counts([], ["x"]).rate == math.inf
    assert E.edit_counts("kitten", "sitting").errors == 3


def test_wer_cer():
    assert E.wer("The cat sat on the mat.", "the cat sat on the mat") == 0.0
    assert E.wer("the cat sat on the mat", "the dog sat on mat") == pytest.approx(2 / 6)
    assert E.wer("one two three", "") == 1.0
    assert E.cer("abcd", "abed") == pytest.approx(1 / 4)
    assert E.cer("ab cd", "abcd") == pytest.approx(1 / 5)  # English: the space counts
    # Chinese: spaces ignored on both sides
    assert E.cer("今天 天气 很好", "今天天气很好") == 0.0
    assert E.cer("今天天气很好", "今天天气不好") == pytest.approx(1 / 6)
    pooled = E.error_rate([("a b", "a c"), ("x y z w", "x y z w")], "word")
    assert pooled.rate == pytest.approx(1 / 6)


def test_exact_and_answer_match():
    assert E.exact_match("Three.", "three")
    assert E.exact_match("3", "three")
    assert not E.exact_match("three", "there are three")
    assert E.answer_match("three", "there are three dogs")
    assert not E.answer_match("three", "threesome")


def test_keyword_accuracy():
    cap = "A fast piano melody with a dog barking in the background."
    assert E.keyword_found(cap, "dog_bark")  # word order free, plural/-ing stemmed
    assert E.keyword_found(cap, ["upbeat", "fast"])  # alternatives
    assert not E.keyword_found(cap, "violin")
    assert E.keyword_accuracy(cap, ["piano", "violin", ["fast", "quick"], "dog"]) == pytest.approx(3 / 4)
    assert math.isnan(E.keyword_accuracy(cap, []))


# ---------------------------------------------------------------- pitch and rate
@pytest.mark.parametrize("f0", [110.0, 200.0, 320.0])
def test_f0_of_harmonic_tone(f0):
    assert E.median_f0(harmonic(f0)) == pytest.approx(f0, rel=0.01)
    assert E.median_f0((harmonic(f0, sr=16_000), 16_000)) == pytest.approx(f0, rel=0.01)


def test_f0_silence_and_noise_unvoiced():
    assert math.isnan(E.median_f0(np.zeros(SR)))
    assert math.isnan(E.median_f0(0.1 * np.random.default_rng(0).standard_normal(SR)))


def pseudo_speech(stretch: float, seed: int = 0) -> np.ndarray:
    """Vowel-like bursts (harmonic tone with a raised-cosine envelope) with short gaps, every time
    scaled by ``stretch``: the same 'syllables', spoken ``stretch`` times slower."""
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(14):
        dur = rng.uniform(0.12, 0.22) * stretch
        env = np.sin(np.pi * np.arange(int(dur * SR)) / int(dur * SR)) ** 2
        parts.append(env * harmonic(rng.uniform(100, 160), dur)[: len(env)])
        parts.append(0.002 * rng.standard_normal(int(rng.uniform(0.03, 0.06) * stretch * SR)))
    return np.concatenate(parts)


def test_rate_ranks_stretched_synthetic_below_original():
    fast, slow = E.speaking_rate(pseudo_speech(1.0)), E.speaking_rate(pseudo_speech(1.6))
    assert fast.nuclei == pytest.approx(14, abs=2)
    assert slow.rate < fast.rate / 1.3


@needs_espeak
def test_rate_ranks_slower_espeak_below_faster():
    text = "The little boat drifted slowly along the quiet river in the morning."
    rates = [E.speaking_rate(espeak(text, rate=r)).rate for r in (110, 170, 260)]
    assert rates[0] < rates[1] < rates[2]
    assert 2.0 < rates[1] < 7.0  # syllables per second of ordinary speech
    acc, n = E.pair_accuracy([(rates[2], rates[0]), (rates[1], rates[0]), (rates[0], rates[2])])
    assert (acc, n) == (pytest.approx(2 / 3), 3)


@needs_espeak
def test_f0_follows_espeak_pitch():
    text = "Please bring the green bottle to the kitchen."
    f = [E.median_f0(espeak(text, pitch=p)) for p in (15, 50, 90)]
    assert f[0] < f[1] < f[2]


def test_silence_rate_is_nan():
    assert math.isnan(E.speaking_rate(np.zeros(SR)).rate)


# ---------------------------------------------------------------- denoising
def test_si_sdr_improvement():
    rng = np.random.default_rng(0)
    clean = harmonic(150, 2.0) * np.sin(np.pi * np.arange(2 * SR) / SR) ** 2
    noise = 0.3 * rng.standard_normal(len(clean))
    noisy = clean + noise
    assert E.si_sdr_improvement(clean, noisy, noisy) == pytest.approx(0.0, abs=1e-6)
    half = clean + 0.25 * noise  # noise power / 16 → +12 dB
    assert E.si_sdr_improvement(clean, noisy, half) == pytest.approx(12.04, abs=0.3)
    delayed = np.concatenate([np.zeros(480), half])  # a 20 ms codec delay is removed
    assert E.si_sdr_improvement(clean, noisy, delayed) == pytest.approx(12.04, abs=0.5)
    assert E.si_sdr_improvement(clean, noisy, clean + 2 * noise) < -5
    # the phase-blind companion: 0 for the input, positive when cleaner, negative when noisier
    assert E.mel_distance_improvement(clean, noisy, noisy) == pytest.approx(0.0, abs=1e-9)
    assert E.mel_distance_improvement(clean, noisy, delayed) > 0.1
    assert E.mel_distance_improvement(clean, noisy, clean + 2 * noise) < -0.1


# ---------------------------------------------------------------- speaker similarity
@needs_espeak
def test_speaker_similarity_same_voice_above_different():
    texts = ["The old farmer sold three brown horses at the market.",
             "Where did you leave the blue umbrella yesterday?",
             "My sister baked a lemon cake for the party tonight."]
    voices = ["en-us+m3", "en-us+f2"]
    feats, labels = [], []
    for v in voices:
        for i, t in enumerate(texts):
            feats.append(E.speaker_features(espeak(t, v, rate=150 + 30 * i, pitch=40 + 10 * i)))
            labels.append(v)
    emb = E.SpeakerEmbedder()
    emb.mean, emb.std = np.mean(feats, axis=0), np.std(feats, axis=0) + 1e-8  # standardise, no LDA
    g = E.similarity_gap(emb.embed_features(np.array(feats)), labels)
    assert (g.n_same, g.n_different) == (6, 9)
    assert g.same > g.different + 0.3
    assert g.auc > 0.9


def test_speaker_embedder_lda_separates_synthetic_speakers():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((6, 80))
    x = np.concatenate([c + 0.5 * rng.standard_normal((10, 80)) for c in centres])
    y = np.repeat(np.arange(6), 10)
    emb = E.SpeakerEmbedder(dims=5).fit(x[::2], y[::2])
    assert E.similarity_gap(emb.embed_features(x[1::2]), y[1::2]).auc > 0.95
    with pytest.raises(ValueError):
        E.SpeakerEmbedder().fit(x[:5], [0] * 5)


# ---------------------------------------------------------------- classifier
def test_audio_classifier_on_synthetic_classes():
    rng = np.random.default_rng(0)

    def clip(kind: str) -> np.ndarray:
        n = int(rng.uniform(0.8, 1.5) * SR)
        if kind == "tone":
            return harmonic(rng.uniform(200, 600), n / SR)[:n]
        if kind == "noise":
            return 0.2 * rng.standard_normal(n)
        x = np.zeros(n)  # clicks
        x[rng.integers(0, n, 12)] = 1.0
        return x + 0.001 * rng.standard_normal(n)

    kinds = ["tone", "noise", "clicks"]
    tr = [(E.clip_features(clip(k)), k) for k in kinds for _ in range(6)]
    clf = E.AudioClassifier().fit(np.array([f for f, _ in tr]), [k for _, k in tr])
    te = [(clip(k), k) for k in kinds for _ in range(4)]
    assert E.accuracy([k for _, k in te], [clf.predict(x) for x, _ in te]) == 1.0
    assert clf.classes == sorted(kinds)


# ---------------------------------------------------------------- Whisper
@needs_espeak
@pytest.mark.skipif(E.whisper_status() != "ok", reason="Whisper tiny.en (lm-eval extra) not installed")
def test_whisper_transcribes_espeak():
    text = "Please open the window in the kitchen."
    w = E.Whisper(threads=1)
    hyp = w.transcribe(espeak(text, "en-us", rate=150))
    assert E.wer(text, hyp) <= 0.5, hyp
    assert E.wer(text, w.transcribe(np.zeros(SR))) >= 0.9  # silence is not the sentence


# ---------------------------------------------------------------- benchmark script
def _lm_tasks():
    import sys
    from pathlib import Path

    bench = str(Path(__file__).resolve().parent.parent / "benchmarks")
    sys.path.insert(0, bench)
    try:
        import lm_tasks
    finally:
        sys.path.remove(bench)
    return lm_tasks


def test_edit_applied_and_caption_keys():
    L = _lm_tasks()
    rep = {"text": "The red car stopped.", "source_text": "The blue car stopped.",
           "edit": {"op": "replace", "old": "blue", "new": "red"}}
    assert L.edit_applied(rep, "the red car stopped")
    assert not L.edit_applied(rep, "The blue car stopped.")  # the input copied
    assert not L.edit_applied(rep, "")
    dele = {"text": "The car stopped.", "source_text": "The old car stopped.", "edit": {"op": "delete", "old": "old"}}
    assert L.edit_applied(dele, "the car stopped")
    assert not L.edit_applied(dele, "")  # nothing said is not a deletion
    assert not L.edit_applied(dele, "banana")
    ins = {"text": "Of course, the car stopped.", "source_text": "The car stopped.",
           "edit": {"op": "insert", "new": "Of course"}}
    assert L.edit_applied(ins, "of course the car stopped") and not L.edit_applied(ins, "the car stopped")
    keys = L.music_keywords({"instrument": "acoustic grand piano", "tempo_bpm": 140, "key": "D minor"})
    assert keys == [["acoustic grand piano", "piano"], "fast", "D minor"]
    assert E.keyword_accuracy("A fast piano piece in D minor.", keys) == 1.0
    assert L.music_family("acoustic grand piano") == "piano" and L.music_family("trumpet") == "brass"


# ---------------------------------------------------------------- benchmark script (random tiny model)
def test_lm_tasks_benchmark_smoke(tmp_path, monkeypatch):
    """benchmarks/lm_tasks.py end to end on a two-row data folder with a random tiny model: model rows
    get numbers, baselines are the trivial values, a task without rows says so."""
    pytest.importorskip("uniaudio_lm.api")
    import json

    import soundfile as sf

    lm_tasks = _lm_tasks()
    (tmp_path / "audio").mkdir()
    (tmp_path / "test").mkdir()
    rng = np.random.default_rng(0)
    clips = {"tone0": harmonic(300, 1.0), "tone1": harmonic(420, 1.0), "noise0": 0.2 * rng.standard_normal(SR),
             "noise1": 0.2 * rng.standard_normal(SR), "q0": harmonic(350, 1.0), "q1": 0.2 * rng.standard_normal(SR)}
    for name, x in clips.items():
        sf.write(tmp_path / "audio" / f"{name}.flac", x.astype(np.float32), SR)
    # few-shot rows of recipes.episodes: true class and source recording of every clip (the benchmark
    # builds its own episodes from them: each class has two recordings here)
    demos = [{"audio": "audio/tone0.flac", "label": "dax", "class": "tone", "recording": "r-tone0"},
             {"audio": "audio/noise0.flac", "label": "wug", "class": "noise", "recording": "r-noise0"}]
    rows = [{"task": "fewshot_classify", "audio": "audio/q0.flac", "labels": ["dax", "wug"], "demos": demos,
             "label": "dax", "text": "dax", "class": "tone", "recording": "r-q0"},
            {"task": "fewshot_classify", "audio": "audio/q1.flac", "labels": ["dax", "wug"], "demos": demos,
             "label": "wug", "text": "wug", "class": "noise", "recording": "r-q1"},
            {"task": "asr", "audio": "audio/tone1.flac", "text": "hello world", "language": "en"},
            {"task": "tts", "audio": "audio/tone1.flac", "text": "hello world", "language": "en"}]
    (tmp_path / "test" / "fake.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "res" / "lm.json"
    monkeypatch.setattr(E, "whisper_status", lambda: "Whisper not available: removed for this test")
    rc = lm_tasks.main(["--data", str(tmp_path), "--random-tiny", "--per-task", "2", "--tts-en-rows", "1",
                        "--asr-en-rows", "1", "--tasks", "fewshot_classify,asr,audio_qa,tts", "--out", str(out),
                        "--fewshot-episodes", "4"])
    assert rc == 0
    res = json.loads(out.read_text())
    by = {(r["task"], r["metric"], r["kind"], r["note"]): r for r in res["rows"]}
    assert by[("fewshot_classify", "accuracy", "baseline", "chance (2-way)")]["value"] == 0.5
    model = next(r for r in res["rows"] if r["task"] == "fewshot_classify" and r["kind"] == "model")
    assert model["metric"] == "accuracy" and model["note"].startswith("nonsense labels")
    assert model["n"] == 4 and model["value"] in (0.0, 0.25, 0.5, 0.75, 1.0) and model["target"] == ">= 0.75"
    assert any(r["metric"] == "accuracy (real names shuffled)" and r["n"] == 4 for r in res["rows"])
    nearest = next(r for r in res["rows"] if r["note"].startswith("nearest demo"))
    assert nearest["role"] == "reference" and nearest["n"] == 4
    assert res["sanity"]["fewshot_episodes"]["episodes"] == 4
    assert by[("asr", "CER (en)", "baseline", "empty output")]["value"] == 1.0
    asr = next(r for r in res["rows"] if r["task"] == "asr" and r["kind"] == "model" and r["metric"] == "CER (en)")
    assert asr["value"] is not None and "no everyday_en rows" in asr["note"]  # old builds: grammar sentences
    audio_qa = [r for r in res["rows"] if r["task"] == "audio_qa"]
    assert audio_qa and audio_qa[0]["value"] is None and "no audio_qa test rows" in audio_qa[0]["note"]
    tts = [r for r in res["rows"] if r["task"] == "tts"]
    assert len(tts) == 1 and tts[0]["value"] is None and tts[0]["note"].startswith("Whisper not available")
    md = out.with_suffix(".md").read_text()
    assert "| fewshot_classify | accuracy | **model** |" in md
    # the same tasks as two parallel runs, merged: the same rows in registry order, one table
    a_out, b_out, merged = tmp_path / "res" / "a.json", tmp_path / "res" / "b.json", tmp_path / "res" / "m.json"
    common = ["--data", str(tmp_path), "--random-tiny", "--per-task", "2", "--tts-en-rows", "1", "--asr-en-rows", "1",
              "--fewshot-episodes", "4", "--no-status"]
    assert lm_tasks.main([*common, "--tasks", "tts,asr", "--out", str(a_out)]) == 0
    assert lm_tasks.main([*common, "--tasks", "fewshot_classify,audio_qa", "--out", str(b_out)]) == 0
    assert lm_tasks.main(["--merge", str(b_out), str(a_out), "--out", str(merged), "--no-status"]) == 0
    m = json.loads(merged.read_text())
    key = lambda r: (r["task"], r["metric"], r["kind"], r["note"], r["n"])  # noqa: E731
    assert sorted(map(key, m["rows"])) == sorted(map(key, res["rows"]))
    assert [r["task"] for r in m["rows"]] == sorted((r["task"] for r in m["rows"]), key=lm_tasks.registry_tasks().index)
    assert "| fewshot_classify | accuracy | **model** |" in merged.with_suffix(".md").read_text()


def test_pair_margin_counts_unmeasurable_pairs_as_failures():
    nan = float("nan")
    pairs = [(5.0, 3.0), (5.0, 4.5), (nan, 3.0), (2.0, 0.0), (3.0, 5.0)]
    assert E.pair_margin(pairs, 1.25) == (pytest.approx(1 / 5), 5)  # only 5/3 clears 1.25; NaN and 0 fail
    assert E.pair_margin(pairs[:2], 1.05) == (1.0, 2)
    acc, n = E.pair_margin([], 1.25)
    assert n == 0 and math.isnan(acc)
