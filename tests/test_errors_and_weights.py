"""Bad input and weights give project errors with clear messages."""

import json

import numpy as np
import pytest
import torch

import reasoningcodec
from reasoningcodec import AudioError, CodecConfig, ReasoningCodec, WeightsError

from .conftest import signal


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(0), "empty"),
    (torch.zeros(1, 0), "empty"),
    (torch.full((1, 100), float("nan")), "NaN"),
    (torch.tensor([0.0, float("inf")]), "NaN or infinite"),
    (torch.zeros(1, 1, 1, 1, 1, 1, 10), "7-D"),
    ("/no/such/file.wav", "not found"),
    (np.array(["a", "b"]), "numeric"),
    (12345, "expected a path"),
])
def test_bad_audio(codec_cpu, bad, match):
    with pytest.raises(AudioError, match=match):
        codec_cpu.encode(bad)


@pytest.mark.parametrize("sr", [1, 0, -16000, 10_000_000, 44100.5, float("nan")])
def test_bad_sample_rate(codec_cpu, sr):
    with pytest.raises(AudioError, match="sample rate"):
        codec_cpu.encode(signal(1000), sample_rate=sr)


def test_bad_lengths(codec_cpu):
    with pytest.raises(AudioError, match="lengths"):
        codec_cpu.encode(signal(1000, batch=2), lengths=[1000, 2000])
    with pytest.raises(AudioError, match="lengths has"):
        codec_cpu.encode(signal(1000, batch=2), lengths=[1000])


def test_not_audio_file(codec_cpu, tmp_path):
    p = tmp_path / "x.wav"
    p.write_bytes(b"RIFF....this is not audio at all" * 10)
    with pytest.raises(AudioError, match="cannot read"):
        codec_cpu.encode(str(p))


def test_save_load_roundtrip(codec_cpu, tmp_path):
    codec_cpu.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "model.safetensors").exists()
    m = ReasoningCodec.from_pretrained(tmp_path)
    x = signal(20000, seed=5)
    a, b = codec_cpu.encode(x), m.encode(x)
    assert torch.equal(a.recon, b.recon) and torch.equal(a.reasoning, b.reasoning)
    assert m.weights_hash() == codec_cpu.weights_hash()


def test_truncated_weights(codec_cpu, tmp_path):
    codec_cpu.save_pretrained(tmp_path)
    w = tmp_path / "model.safetensors"
    w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated or corrupt"):
        ReasoningCodec.from_pretrained(tmp_path)


def test_config_wrong_field(codec_cpu, tmp_path):
    codec_cpu.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["num_recon_codebooks"] = "eight"
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="num_recon_codebooks"):
        ReasoningCodec.from_pretrained(tmp_path)
    cfg["num_recon_codebooks"] = 8
    cfg["not_a_field"] = 1
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="unknown field"):
        ReasoningCodec.from_pretrained(tmp_path)


def test_config_shape_mismatch(codec_cpu, tmp_path):
    codec_cpu.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["dec_dim"] = 128
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(WeightsError, match="shape"):
        ReasoningCodec.from_pretrained(tmp_path)


def test_missing_folder_and_offline_hub():
    with pytest.raises(WeightsError, match="not found"):
        ReasoningCodec.from_pretrained("/no/such/dir")
    with pytest.raises(WeightsError, match="Hugging Face Hub"):
        ReasoningCodec.from_pretrained("nobody/no-such-codec")


def test_config_json_roundtrip(tmp_path):
    c = CodecConfig(num_recon_codebooks=4)
    c.to_json(tmp_path / "c.json")
    assert CodecConfig.from_json(tmp_path / "c.json") == c


def test_load_default_is_trained_or_says_none():
    try:
        m = reasoningcodec.load()
    except reasoningcodec.NoWeightsInstalledError as e:
        assert "no trained default weights" in str(e)
    else:
        assert m.bitrate <= 2000
        assert m.config.model_id != "reasoningcodec-untrained"
