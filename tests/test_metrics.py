"""Metrics, delay alignment and benchmark adapters (benchmarks/metrics.py and the other benchmarks/ modules)."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import metrics as M  # noqa: E402
from benchmarks.codec_adapters import Codec, HFCodec, IdentityCodec, Unavailable, make_codecs  # noqa: E402


def _eval_dir() -> Path | None:
    for c in [*(p / "shared" / "data" / "eval" for p in Path(__file__).resolve().parents),
              Path("/work/shared/data/eval")]:
        if (c / "manifest.tsv").exists():
            return c
    return None


EVAL = _eval_dir()
needs_eval = pytest.mark.skipif(EVAL is None, reason="shared/data/eval not available")


def _speech(name: str = "python-pesq_speech.flac") -> tuple[np.ndarray, int]:
    assert EVAL is not None
    x, sr = sf.read(EVAL / "speech" / name, dtype="float64", always_2d=True)
    return x.mean(axis=1), sr


def _through(codec: Codec, x: np.ndarray, sr: int) -> tuple[np.ndarray, int]:
    enc = codec.encode(M.resample(x, sr, codec.sample_rate).astype(np.float32))
    return codec.decode(enc), codec.output_rate


# ---------------------------------------------------------------------------------------------- alignment
@needs_eval
@pytest.mark.parametrize("name", ["python-pesq_speech.flac", "coqui-tts_LJ001-0002.flac"])
@pytest.mark.parametrize("delay_ms", [37.0, -23.0])
def test_delayed_copy_is_aligned_within_one_sample(name: str, delay_ms: float) -> None:
    x, sr = _speech(name)
    lag = int(round(delay_ms / 1000 * sr))
    deg = np.concatenate([np.zeros(lag), x]) if lag >= 0 else x[-lag:]
    deg = deg + 1e-3 * np.random.default_rng(0).standard_normal(len(deg))
    a = M.align(x, deg, sr)
    assert abs(a.lag - lag) <= 1
    assert len(a.ref) == len(a.deg)
    assert np.corrcoef(a.ref, a.deg)[0, 1] > 0.99


@needs_eval
def test_evaluate_aligns_after_resampling_the_degraded_signal() -> None:
    x, sr = _speech()
    lag = int(0.037 * sr)
    y = M.resample(np.concatenate([np.zeros(lag), x]), sr, 24_000)
    ev = M.evaluate(x, sr, y, 24_000, visqol_mode=None, metrics=("mel_distance", "si_sdr"))
    assert abs(ev.lag_samples - lag) <= 1
    assert ev.scores["si_sdr"].value > 30 and ev.scores["mel_distance"].value < 0.05


def test_lag_search_is_bounded_to_100_ms() -> None:
    sr = 16_000
    x = np.random.default_rng(1).standard_normal(sr)
    far = np.concatenate([np.zeros(int(0.3 * sr)), x])
    assert abs(M.estimate_lag(x, far, int(0.1 * sr))) <= int(0.1 * sr)
    assert M.estimate_lag(np.zeros(100), x, 10) == 0


def _phase_scrambled(x: np.ndarray, seed: int) -> np.ndarray:
    """The magnitude STFT of ``x`` with random phase, overlap-added: what a resynthesising codec keeps."""
    win, hop = 512, 128
    w = np.hanning(win)
    frames = np.lib.stride_tricks.sliding_window_view(np.concatenate([x, np.zeros(win)]), win)[::hop] * w
    spec = np.abs(np.fft.rfft(frames, axis=1))
    phase = np.random.default_rng(seed).uniform(-np.pi, np.pi, spec.shape)
    out = np.zeros(len(x) + 2 * win)
    for i, f in enumerate(np.fft.irfft(spec * np.exp(1j * phase), win, axis=1)):
        out[i * hop: i * hop + win] += f * w
    return out[: len(x)]


def _syllables(sr: int, seconds: float, seed: int) -> np.ndarray:
    """Speech-like test signal: harmonic bursts and noise bursts of random length and pitch, with pauses."""
    rng = np.random.default_rng(seed)
    out = []
    while sum(map(len, out)) < seconds * sr:
        n = int(rng.uniform(0.06, 0.25) * sr)
        t = np.arange(n) / sr
        if rng.random() < 0.6:
            f0 = rng.uniform(90, 260)
            burst = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 12))
        else:
            burst = rng.standard_normal(n)
        out += [burst * np.hanning(n) * rng.uniform(0.2, 1.0), np.zeros(int(rng.uniform(0.02, 0.15) * sr))]
    return np.concatenate(out)[: int(seconds * sr)]


@pytest.mark.parametrize("delay_ms", [31.0, -17.0, 0.0])
def test_resynthesised_signal_is_aligned_by_its_envelope(delay_ms: float) -> None:
    # a phase-scrambled copy has no waveform correlation to find; the band envelopes still give the delay
    sr = 16_000
    x = _syllables(sr, 4.0, 3)
    y = _phase_scrambled(x, 4)
    lag = int(round(delay_ms / 1000 * sr))
    deg = np.concatenate([np.zeros(lag), y]) if lag >= 0 else y[-lag:]
    wave = np.asarray(x) @ np.asarray(y) / np.sqrt((x @ x) * (y @ y))
    assert abs(wave) < M.WAVEFORM_TRUST  # the waveform route is not taken
    assert abs(M.estimate_lag(x, deg, int(0.1 * sr), sr) - lag) <= sr // 1000 + 1
    assert abs(M.align(x, deg, sr).lag - lag) <= sr // 1000 + 1


# ---------------------------------------------------------------------------------------------- metrics
def test_si_sdr_and_mel_distance_definitions() -> None:
    sr = 24_000
    t = np.arange(sr) / sr
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * np.random.default_rng(2).standard_normal(sr)
    assert M.si_sdr(x, 0.5 * x, sr).value == math.inf  # scale-invariant
    noisy = x + 0.03 * np.random.default_rng(3).standard_normal(sr)
    assert 0 < M.si_sdr(x, noisy, sr).value < 30
    assert M.mel_distance(x, x, sr).value == 0.0
    assert M.mel_distance(x, noisy, sr).value > 0.0
    assert M.log_mel(x).shape == (1 + (sr - 1024) // 256, 80)


def test_metrics_return_nan_with_a_reason_when_they_cannot_apply() -> None:
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    x = 0.1 * np.random.default_rng(4).standard_normal(2000)  # 0.125 s at 16 kHz
    for fn in (M.pesq_wb, M.pesq_nb, M.stoi):
        s = fn(x, x, 16_000)
        assert math.isnan(s.value) and "too short" in s.reason
    assert "silent" in M.si_sdr(np.zeros(2000), x, 16_000).reason
    assert "too short" in M.mel_distance(x[:100], x[:100], 24_000).reason
    assert "no overlap" in M.evaluate(x, 16_000, np.zeros(0), 16_000).scores["pesq_wb"].reason


@needs_eval
def test_identity_codec_scores_near_the_maximum() -> None:
    pytest.importorskip("pesq")
    pytest.importorskip("pystoi")
    x, sr = _speech()
    y, sr_y = _through(IdentityCodec(), x, sr)
    ev = M.evaluate(x, sr, y, sr_y, visqol_mode=None)
    assert ev.lag_samples == 0
    assert ev.scores["pesq_wb"].value > 4.4
    assert ev.scores["pesq_nb"].value > 4.3
    assert ev.scores["stoi"].value > 0.99
    assert ev.scores["si_sdr"].value > 35
    assert math.isnan(ev.scores["visqol"].value) and ev.scores["visqol"].reason


@needs_eval
@pytest.mark.skipif(shutil.which("opusenc") is None or shutil.which("opusdec") is None,
                    reason="opusenc/opusdec not installed (apt-get install opus-tools)")
def test_opus_6_kbps_scores_below_12_kbps() -> None:
    pytest.importorskip("pesq")
    pytest.importorskip("visqol", reason="visqol-python not installed")
    x, sr = _speech()
    o6, o12 = make_codecs(["opus6", "opus12"])
    assert isinstance(o6, Codec) and isinstance(o12, Codec)
    enc6 = o6.encode(M.resample(x, sr, 48_000).astype(np.float32))
    assert 5.0 < o6.real_kbps(enc6) < 8.0  # Ogg overhead included
    scores = {}
    for c in (o6, o12):
        y, sr_y = _through(c, x, sr)
        ev = M.evaluate(x, sr, y, sr_y, visqol_mode="speech", metrics=("pesq_wb", "visqol"))
        assert abs(ev.lag_samples) < 0.01 * sr
        scores[c.setting] = ev.scores
    for m in ("pesq_wb", "visqol"):
        assert scores["6kbps"][m].ok and scores["12kbps"][m].ok, scores
        assert scores["6kbps"][m].value < scores["12kbps"][m].value, (m, scores)


@needs_eval
def test_visqol_package_reproduces_the_cpp_conformance_score() -> None:
    """ViSQOL's own speech test pair (conformance v333, files at their stored 48 kHz, as in the C++ test)."""
    pytest.importorskip("visqol", reason="visqol-python not installed")
    assert EVAL is not None
    ref, sr = sf.read(EVAL / "speech" / "visqol_CA01_01.flac", dtype="float64")
    deg, _ = sf.read(EVAL / "visqol_anchors" / "visqol_transcoded_CA01_01.flac", dtype="float64")
    score = M._visqol_api("speech").measure_from_arrays(ref, deg, sample_rate=sr).moslqo
    expected = 3.3129 if M._have_lattice() else 3.3745  # lattice mapper (C++ default) / exponential fallback
    assert score == pytest.approx(expected, abs=0.01)


# ---------------------------------------------------------------------------------------------- adapters
@pytest.mark.parametrize("name,rate", [("encodec_1.5", 24_000), ("encodec_6", 24_000), ("mimi_8", 24_000),
                                       ("xcodec_2", 16_000)])
def test_neural_adapters_run_end_to_end_on_tiny_random_models(name: str, rate: int) -> None:
    pytest.importorskip("transformers")
    (codec,) = make_codecs([name], random_weights_smoke=True)
    assert isinstance(codec, HFCodec), codec
    assert codec.sample_rate == rate
    n = 2 * rate  # 2 s: a whole number of frames for every family
    x = 0.1 * np.sin(2 * np.pi * 220 * np.arange(n) / rate).astype(np.float32)
    enc = codec.encode(x)
    codes = enc.payload[0] if isinstance(enc.payload, tuple) else enc.payload
    assert codes.dtype.is_floating_point is False
    assert enc.bits == codes.numel() * codec.nbits
    assert codes.shape[-1] == pytest.approx(2 * float(codec.model.config.frame_rate), abs=1)
    assert codec.real_kbps(enc) == pytest.approx(codec.nominal_kbps, rel=0.05)
    y = codec.decode(enc)
    assert y.shape == (n,) and y.dtype == np.float32 and np.isfinite(y).all()


def test_missing_weights_become_labelled_rows_not_numbers(tmp_path: Path) -> None:
    ours, = make_codecs(["ours_k8"], model_dir=str(tmp_path / "missing"))
    assert isinstance(ours, Unavailable) and ours.label == "ours@k8" and "no trained weights" in ours.reason
    mimi, = make_codecs(["mimi_8"], weights_dir=str(tmp_path))
    if isinstance(mimi, Unavailable):  # unless the real checkpoint is in the local HF cache
        assert mimi.reason.startswith("weights not available here")
    with pytest.raises(ValueError, match="unknown codec"):
        make_codecs(["opus7"])


@needs_eval
def test_manifest_selection_skips_anchors_and_other_usages() -> None:
    from benchmarks.reconstruction import clips_from_folder, clips_from_manifest

    clips = clips_from_manifest(EVAL / "manifest.tsv")
    assert clips and all(c.path.exists() for c in clips)
    assert {c.category for c in clips} == {"speech", "music", "sound"}
    assert not any("visqol_anchors" in c.name for c in clips)
    folder = clips_from_folder(EVAL)
    assert len(folder) == len(clips) and not any("visqol_anchors" in c.name for c in folder)


@needs_eval
def test_benchmark_script_writes_table_json_and_plots(tmp_path: Path) -> None:
    pytest.importorskip("pesq")
    pytest.importorskip("matplotlib")
    from benchmarks.reconstruction import main

    rc = main(["--codecs", "identity,ours_k8", "--random-weights-smoke", "--max-clips", "1",
               "--categories", "speech", "--no-visqol", "--quiet", "--out", str(tmp_path)])
    assert rc == 0
    out = tmp_path / "smoke"
    text = (out / "reconstruction.md").read_text()
    assert "RANDOM-WEIGHTS SMOKE" in text and "| identity@pcm16 |" in text and "| ours@k8 |" in text
    data = json.loads((out / "reconstruction.json").read_text())
    assert {r["codec"] for r in data["clips"]} == {"identity@pcm16", "ours@k8"}
    ours = next(r for r in data["clips"] if r["codec"] == "ours@k8")
    assert ours["error"] is None and ours["bits"] > 0 and ours["kbps"] > 0
    assert (out / "quality_vs_bitrate_speech.png").stat().st_size > 1000
