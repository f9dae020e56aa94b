"""The harmonic source prior: exact phase across pieces and restarts, streaming == offline, batch == single,
seeking through .rc, a grown model that starts as its checkpoint, YIN labels, and bad configs."""

import io
import math

import numpy as np
import pytest
import torch

import reasoningcodec as rc
from reasoningcodec import CodecConfig, ReasoningCodec
from reasoningcodec.codes import Codes
from reasoningcodec.compress import DecodeStats, decode_range, open_reader
from reasoningcodec.errors import WeightsError
from reasoningcodec.harmonic import HarmonicSource
from reasoningcodec.train.pitch import yin

from .conftest import signal

SMALL = dict(enc_dim=32, latent_dim=48, dec_dim=32, reasoning_dim=32, reasoning_heads=2, reasoning_layers=1,
             num_recon_codebooks=4, recon_codebook_size=64, num_reasoning_codebooks=2, reasoning_codebook_size=32)


@pytest.fixture(scope="module")
def harmonic_codec() -> ReasoningCodec:
    """A random harmonic-source codec whose gain is not the zero it starts as, restarting every 24 frames."""
    torch.manual_seed(3)
    c = ReasoningCodec(CodecConfig(**SMALL, harmonic_source=True, harmonic_reset_frames=24)).eval()
    with torch.no_grad():
        torch.nn.init.normal_(c.harm_gain.weight, std=0.05)
        c.f0_head.proj.bias.copy_(torch.tensor([0.0, 3.0] * c.config.stem_stride))  # mostly voiced
    return c


def glide(n: int, sr: int = 24000, f_start: float = 110.0, f_end: float = 220.0) -> torch.Tensor:
    f = torch.linspace(f_start, f_end, n, dtype=torch.float64)
    ph = 2 * math.pi * torch.cumsum(f, 0) / sr
    return (sum(torch.sin(k * ph) / k for k in range(1, 12)) * 0.2).float()


def test_source_pieces_equal_one_pass_and_restart_bounds_memory():
    src = HarmonicSource(24000, 960, 240, 8000.0, reset_frames=10)
    f0 = torch.rand(2, 37, dtype=torch.float64) * 300 + 60
    f0[0, 5:8] = 0.0  # unvoiced frames
    whole, st = src(f0)
    parts, s = [], None
    for a, b in [(0, 1), (1, 4), (4, 13), (13, 20), (20, 37)]:
        spec, s = src(f0[:, a:b], s)
        parts.append(spec)
    assert torch.equal(torch.cat(parts, 1), whole) and torch.equal(s.phase, st.phase)
    # a decode that starts at frame 7 knows nothing before it: from the restart at frame 10 on it matches
    late, _ = src(f0[:, 7:], src.initial_state(2, f0.device, frame=7))
    assert torch.equal(late[:, 3:], whole[:, 10:])
    assert not torch.equal(late[:, :3], whole[:, 7:10])
    # unvoiced frames render no source
    samples, _ = src.samples(torch.zeros(1, 3), torch.zeros(1, dtype=torch.long))
    assert torch.count_nonzero(samples) == 0


def test_source_is_a_harmonic_comb_at_f0():
    src = HarmonicSource(24000, 960, 240, 1000.0, reset_frames=10_000)
    y, _ = src.samples(torch.full((1, 100), 200.0), torch.zeros(1, dtype=torch.long))
    mag = torch.fft.rfft(y[0, 4800:] * torch.hann_window(19200, dtype=torch.float32)).abs()
    freqs = torch.fft.rfftfreq(19200, 1 / 24000)
    peaks = freqs[mag > 0.3 * mag.max()]
    assert set(torch.round(peaks / 200).long().tolist()) == {1, 2, 3, 4, 5}  # harmonics up to 1 kHz only
    assert torch.all((peaks / 200 - torch.round(peaks / 200)).abs() < 0.01)


def test_streaming_decode_equals_offline_and_batch_equals_single(harmonic_codec):
    c = harmonic_codec
    x = torch.stack([glide(48000), signal(48000, seed=5)[0]])
    codes = c.encode(x)
    y = c.decode(codes)
    assert y.abs().max() > 0
    for step in (1, 3, 7):
        dec = c.stream_decoder(2)
        out = [dec.push(codes.recon[..., a:a + step]) for a in range(0, codes.recon.shape[-1], step)]
        out.append(dec.finish())
        ys = torch.cat(out, -1)[..., : y.shape[-1]]
        assert torch.allclose(ys, y, atol=1e-5)
    for i, one in enumerate(c.split(codes)):
        yi = c.decode(one)
        assert torch.allclose(yi[0], y[i, :, : yi.shape[-1]], atol=1e-5)


def test_harmonic_term_changes_the_output_and_zero_gain_does_not(harmonic_codec):
    plain = ReasoningCodec(CodecConfig(**SMALL)).eval()
    missing, unexpected = plain.load_state_dict(harmonic_codec.state_dict(), strict=False)
    assert not missing and unexpected  # the harmonic parts are all the grown model adds
    codes = harmonic_codec.encode(glide(24000))
    assert not torch.allclose(harmonic_codec.decode(codes), plain.decode(codes), atol=1e-4)
    grown = ReasoningCodec(CodecConfig(**SMALL, harmonic_source=True)).eval()
    grown.load_state_dict(plain.state_dict(), strict=False)  # harm_gain keeps its zero initialisation
    assert torch.equal(grown.decode(codes), plain.decode(codes))


def test_seek_through_rc_matches_whole_decode(harmonic_codec):
    c = harmonic_codec
    x = (glide(24000 * 6) + signal(24000 * 6, seed=9)[0] * 0.3).numpy()
    data = rc.compress(x, c, chunk_seconds=0.8)
    reader = open_reader(io.BytesIO(data), c)
    ref = c.decode(c.encode(torch.from_numpy(x)))[0].numpy()
    stats = DecodeStats([], [])
    a, b = 24000 * 4 + 17, 24000 * 5
    part = np.concatenate(list(decode_range(reader, c, a, b, stats)), axis=1)
    assert stats.context_chunks  # warmed up on earlier chunks, through a restart of the source
    assert np.abs(part - ref[:, a:b]).max() <= 1e-4


def test_yin_tracks_a_glide_and_rejects_noise_and_silence():
    sr = 24000
    x = torch.stack([glide(sr, f_start=120.0, f_end=240.0), torch.randn(sr) * 0.1, torch.zeros(sr)])
    f0, voiced = yin(x, sr, 240)
    assert f0.shape == (3, 100)
    t = (torch.arange(100) + 1) * 240 / sr
    truth = 120.0 + 120.0 * t - 120.0 * 0.02  # the analysis window's middle lags its end by ~20 ms
    v = voiced[0, 5:]
    assert v.float().mean() > 0.95
    assert torch.all(((f0[0, 5:] - truth[5:]) / truth[5:]).abs()[v] < 0.03)
    assert voiced[1].float().mean() < 0.1 and not voiced[2].any()


def test_bad_harmonic_configs_are_refused():
    with pytest.raises(WeightsError, match="f0_min"):
        CodecConfig(harmonic_source=True, f0_min=500.0, f0_max=100.0)
    with pytest.raises(WeightsError, match="harmonic_max_hz"):
        CodecConfig(harmonic_source=True, harmonic_max_hz=20000.0)
    with pytest.raises(WeightsError, match="harmonic_reset_frames"):
        CodecConfig(harmonic_source=True, harmonic_reset_frames=0)
