"""Bad input and weights give project errors with clear messages."""

import json
import warnings

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


# -- issue 23 items 5 and 9: integer PCM, levels far above full scale, [T, C] arrays -----------------------


def test_unsigned_8_bit_is_centred_like_wav(codec_cpu):
    x = signal(4800, seed=1).numpy()[0]
    u8 = np.clip(np.round(128 + 127 * x), 0, 255).astype(np.uint8)
    want = codec_cpu.encode((u8.astype(np.float32) - 128) / 128)
    for got in (codec_cpu.encode(u8), codec_cpu.encode(torch.from_numpy(u8))):
        assert torch.equal(got.recon, want.recon) and torch.equal(got.reasoning, want.reasoning)
    silence = codec_cpu.encode(np.full(4800, 128, np.uint8))
    assert torch.equal(silence.recon, codec_cpu.encode(np.zeros(4800, np.float32)).recon)
    assert torch.equal(codec_cpu.prepare(np.array([0, 128, 255], np.uint8))[0].cpu(),
                       torch.tensor([[-1.0, 0.0, 127 / 128]]))


def test_integer_arrays_compress_like_encode(codec_cpu):
    x = signal(4800, seed=1).numpy()[0]
    i16 = np.round(x * 32767).astype(np.int16)
    assert reasoningcodec.compress(i16, codec_cpu) == reasoningcodec.compress(i16 / 32768.0, codec_cpu)


def test_audio_far_above_full_scale_is_refused_and_above_it_warned(codec_cpu, tmp_path):
    import soundfile as sf

    x = signal(4800, seed=1).numpy()[0]
    x = x / np.abs(x).max()  # peak exactly 1.0: no warning
    loud = tmp_path / "loud.wav"
    sf.write(loud, x * 3e5, 24000, subtype="FLOAT")
    for call in (lambda: codec_cpu.encode(x * 3e5), lambda: codec_cpu.encode(str(loud)),
                 lambda: reasoningcodec.compress(x * 3e5, codec_cpu, normalize=True),
                 lambda: reasoningcodec.compress(str(loud), codec_cpu, normalize=True),
                 lambda: reasoningcodec.compress(str(loud), codec_cpu)):
        with pytest.raises(AudioError, match=r"peaks at 300000, but float audio is expected in \[-1, 1\]"):
            call()
    from reasoningcodec import AudioWarning

    with pytest.warns(AudioWarning, match=r"audio peaks at 5, above full scale \(1.0\)"):
        codec_cpu.encode(x * 5)
    with pytest.warns(AudioWarning, match="will distort it"):
        reasoningcodec.compress(x * 5, codec_cpu)
    with pytest.warns(AudioWarning, match="normalised for coding, it decodes at full scale"):
        reasoningcodec.compress(x * 5, codec_cpu, normalize=True)


def test_normalising_hot_audio_decodes_at_full_scale_not_clipped(codec_cpu, tmp_path):
    """The header's gain, undone on decode, must not bring audio that peaked at 5 back to 5 (a WAV would
    clip nearly all of it): it decodes as the same audio at full scale would."""
    import soundfile as sf

    from reasoningcodec.bitstream import RcHeader

    x = signal(9600, seed=1).numpy()[0]
    x = x / np.abs(x).max()
    hot = tmp_path / "hot.wav"
    sf.write(hot, x * 5, 24000, subtype="FLOAT")
    unit = reasoningcodec.compress(x, codec_cpu, normalize=True)
    for source in (x * 5, str(hot)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the warning itself: the test above
            data = reasoningcodec.compress(source, codec_cpu, normalize=True)
        g, g_unit = RcHeader.from_bytes(data).loudness_gain_db, RcHeader.from_bytes(unit).loudness_gain_db
        assert abs(g - g_unit) < 1e-3, (g, g_unit)
        y, y_unit = reasoningcodec.decompress(data, codec_cpu)[0], reasoningcodec.decompress(unit, codec_cpu)[0]
        assert np.abs(y - y_unit).max() <= 1e-3 * max(1.0, np.abs(y_unit).max())


@pytest.mark.parametrize("shape", [(24000, 2), (24000, 1), (1000, 8)])
def test_samples_by_channels_arrays_are_refused_with_how_to_pass_them(codec_cpu, shape):
    x = np.zeros(shape, np.float32)
    with pytest.raises(AudioError, match=r"looks like \[T, C\] .*\[C, T\] for clip 1"):
        codec_cpu.encode([np.zeros(100, np.float32), x])
    with pytest.raises(AudioError, match=r"looks like \[T, C\] .*soundfile.read.*x\.T"):
        codec_cpu.encode(x)
    with pytest.raises(AudioError, match=r"looks like \[T, C\] .*x\.transpose"):
        codec_cpu.encode(x[None])
    with pytest.raises(AudioError, match=r"looks like \[T, C\] .*\[C, T\] \(channels, samples\).*x\.T"):
        reasoningcodec.compress(x, codec_cpu)
    assert codec_cpu.encode(x.T).recon.shape[0] == shape[1]  # [C, T] as [B, T]: one item per channel
    assert codec_cpu.encode(np.zeros((999, 8), np.float32)).recon.shape[0] == 999  # not clearly [T, C]
