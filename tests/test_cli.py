"""The .rc round trip through the Python API and the rcodec CLI, seeking, and bad input."""

import io
import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import reasoningcodec as rc
from reasoningcodec import BitstreamError, CodecConfig, ReasoningCodec
from reasoningcodec.cli import main
from reasoningcodec.compress import DecodeStats, decode_range, open_reader

from .conftest import signal


@pytest.fixture(scope="module")
def small_codec():
    torch.manual_seed(1)
    cfg = CodecConfig(enc_dim=32, latent_dim=48, dec_dim=32, reasoning_dim=32, reasoning_heads=2,
                      reasoning_layers=1, num_recon_codebooks=4, recon_codebook_size=64,
                      num_reasoning_codebooks=2, reasoning_codebook_size=32, model_id="test-small")
    return ReasoningCodec(cfg).eval()


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, codec_cpu):
    d = tmp_path_factory.mktemp("model")
    codec_cpu.save_pretrained(d)
    return d


def reference(codec, x: np.ndarray) -> np.ndarray:
    """codec.decode(codec.encode(channel)) for every channel of ``x [C, T]``."""
    return np.concatenate([codec.decode(codec.encode(torch.from_numpy(ch)))[0].numpy() for ch in x])


@pytest.mark.parametrize("channels", [1, 2])
def test_cli_round_trip_equals_decode_encode(tmp_path, model_dir, codec_cpu, channels):
    x = signal(24000, seed=channels, batch=channels).numpy().astype(np.float32) * 0.8
    wav = tmp_path / "in.wav"
    sf.write(wav, x.T, 24000, subtype="FLOAT")
    rcf, out = tmp_path / "x.rc", tmp_path / "out.wav"
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q"]) == 0
    assert main(["decompress", str(rcf), str(out), "--model", str(model_dir), "-q", "--subtype", "FLOAT"]) == 0
    y, sr = sf.read(out, always_2d=True, dtype="float32")
    assert sr == 24000 and y.shape == (24000, channels)
    assert np.abs(y.T - reference(codec_cpu, x)).max() <= 1e-4
    assert main(["info", str(rcf), "--json"]) == 0


@pytest.fixture(params=["plain", "decoder-reasoning"])
def seek_codec(request, codec_cpu, codec_decr_cpu):
    """Seeking must warm a decoder up exactly, also one that reads the reasoning tokens."""
    return codec_cpu if request.param == "plain" else codec_decr_cpu


def test_multichunk_tokens_equal_whole_and_seek(seek_codec):
    codec_cpu = seek_codec
    x = signal(24000 * 9 + 333, seed=4).numpy()
    data = rc.compress(x, codec_cpu, chunk_seconds=2.0)
    reader = open_reader(io.BytesIO(data), codec_cpu)
    assert reader.num_chunks == 5
    chunks = list(reader.iter_chunks())
    whole = codec_cpu.encode(torch.from_numpy(x))
    assert np.array_equal(np.concatenate([c.recon for c in chunks], -1), whole.recon.numpy())
    assert np.array_equal(np.concatenate([c.reasoning for c in chunks], -1), whole.reasoning.numpy())
    ref = codec_cpu.decode(whole)[0].numpy()
    y, sr = rc.decompress(data, codec_cpu)
    assert np.abs(y - ref).max() <= 1e-4
    # a seek decodes only the chunks it needs (plus one chunk of decoder warm-up before them)
    stats = DecodeStats([], [])
    a, b = 24000 * 3 + 100, 24000 * 5 + 7
    part = np.concatenate(list(decode_range(reader, codec_cpu, a, b, stats)), axis=1)
    assert stats.chunks_decoded == [1, 2] and stats.context_chunks == [0]
    assert np.abs(part - ref[:, a:b]).max() <= 1e-4
    stats = DecodeStats([], [])
    list(decode_range(reader, codec_cpu, 0, 1000, stats))
    assert stats.chunks_decoded == [0] and stats.context_chunks == []


def test_seek_with_chunks_shorter_than_decoder_context(seek_codec):
    codec_cpu = seek_codec
    x = signal(24000 * 4, seed=12).numpy()
    data = rc.compress(x, codec_cpu, chunk_seconds=0.4)  # 5 frames per chunk < 15 frames of context
    reader = open_reader(io.BytesIO(data), codec_cpu)
    ref = codec_cpu.decode(codec_cpu.encode(torch.from_numpy(x)))[0].numpy()
    stats = DecodeStats([], [])
    a, b = 24000 * 3 + 11, 24000 * 3 + 4000  # inside chunk 7 = [67200, 76800)
    part = np.concatenate(list(decode_range(reader, codec_cpu, a, b, stats)), axis=1)
    # 15 warm-up frames = chunks 4-6; a decoder that reads reasoning also needs the window closing chunk 3
    assert stats.chunks_decoded == [7]
    assert stats.context_chunks == ([3, 4, 5, 6] if codec_cpu.config.decoder_reasoning else [4, 5, 6])
    assert np.abs(part - ref[:, a:b]).max() <= 1e-4


def test_cli_seek(tmp_path, model_dir, codec_cpu):
    x = signal(24000 * 5, seed=9).numpy()
    wav, rcf, out = tmp_path / "in.wav", tmp_path / "x.rc", tmp_path / "part.wav"
    sf.write(wav, x.T, 24000, subtype="FLOAT")
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q", "--chunk-seconds", "1.2"]) == 0
    assert main(["decompress", str(rcf), str(out), "--model", str(model_dir), "-q", "--start", "2.5",
                 "--duration", "1.5", "--subtype", "FLOAT"]) == 0
    y, _ = sf.read(out, always_2d=True, dtype="float32")
    ref = reference(codec_cpu, x)[:, 60000:96000]
    assert y.shape == (36000, 1) and np.abs(y.T - ref).max() <= 1e-4


def test_resampled_and_lower_bitrate(tmp_path, model_dir):
    x = signal(44100, seed=2).numpy()
    wav, rcf, out = tmp_path / "in.flac", tmp_path / "x.rc", tmp_path / "out.wav"
    sf.write(wav, x.T, 44100)
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q", "--recon-codebooks", "2"]) == 0
    assert main(["decompress", str(rcf), str(out), "--model", str(model_dir), "-q"]) == 0
    info = sf.info(out)
    assert info.samplerate == 44100 and abs(info.frames - 44100) <= 1
    small = rcf.stat().st_size
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q", "-f", "--packed"]) == 0
    assert rcf.stat().st_size > small


def test_tokens_command(tmp_path, model_dir, codec_cpu):
    x = signal(30000, seed=6).numpy()
    wav = tmp_path / "in.wav"
    sf.write(wav, x.T, 24000, subtype="FLOAT")
    assert main(["tokens", str(wav), str(tmp_path / "t.npz"), "--model", str(model_dir), "-q"]) == 0
    assert main(["tokens", str(wav), str(tmp_path / "t.json"), "--model", str(model_dir), "-q"]) == 0
    z = np.load(tmp_path / "t.npz")
    codes = codec_cpu.encode(torch.from_numpy(x))
    assert np.array_equal(z["recon"], codes.recon.numpy()) and np.array_equal(z["reasoning"], codes.reasoning.numpy())
    j = json.loads((tmp_path / "t.json").read_text())
    assert np.array_equal(np.array(j["recon"]), z["recon"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reasoningcodec", *args], capture_output=True, text=True,
                          env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})


def test_closed_stdout_pipe_is_quiet(tmp_path, model_dir):
    # `rcodec info x.rc | head -1`: the reader is gone before rcodec writes; no error message, no traceback
    wav, rcf = tmp_path / "in.wav", tmp_path / "x.rc"
    sf.write(wav, signal(4000).numpy().T, 24000)
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q"]) == 0
    p = subprocess.Popen([sys.executable, "-m", "reasoningcodec", "info", str(rcf)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    p.stdout.close()  # long before the child has imported torch
    err = p.stderr.read().decode()
    assert p.wait(timeout=120) == 141, err
    assert err == ""


def test_cli_errors_are_one_line(tmp_path, model_dir):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio" * 100)
    garbage = tmp_path / "g.rc"
    garbage.write_bytes(b"RCDC" + bytes(200))
    good_in = tmp_path / "ok.wav"
    sf.write(good_in, signal(4000).numpy().T, 24000)
    existing = tmp_path / "exists.rc"
    existing.write_bytes(b"keep me")
    cases = [
        ("compress", str(tmp_path / "missing.wav"), str(tmp_path / "o.rc"), "--model", str(model_dir)),
        ("compress", str(bad), str(tmp_path / "o.rc"), "--model", str(model_dir)),
        ("compress", str(good_in), str(existing), "--model", str(model_dir)),
        ("decompress", str(garbage), str(tmp_path / "o.wav"), "--model", str(model_dir)),
        ("info", str(garbage)),
        ("compress", str(good_in), str(tmp_path / "o2.rc"), "--model", str(tmp_path / "nomodel")),
    ]
    for args in cases:
        p = run_cli(*args)
        assert p.returncode != 0, args
        assert "Traceback" not in p.stderr, p.stderr
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("rcodec: error:"), p.stderr
    assert existing.read_bytes() == b"keep me"
    assert not list(tmp_path.glob(".*.part*")), "temp files left behind"
    assert not (tmp_path / "o.rc").exists() and not (tmp_path / "o.wav").exists()


def test_model_mismatch(codec_cpu, small_codec):
    data = rc.compress(signal(4000).numpy(), small_codec)
    with pytest.raises(BitstreamError, match="written by model 'test-small'"):
        rc.decompress(data, codec_cpu)


def test_every_flipped_byte_and_truncation(small_codec):
    """Each corrupted file decodes to exactly the right audio or raises BitstreamError."""
    x = signal(9600 * 3 + 50, seed=8).numpy()
    data = rc.compress(x, small_codec, chunk_seconds=1.2)
    good, _ = rc.decompress(data, small_codec)
    for i in range(len(data)):
        bad = bytearray(data)
        bad[i] ^= 0xFF
        try:
            y, _ = rc.decompress(bytes(bad), small_codec)
        except BitstreamError:
            continue
        assert y.shape == good.shape and np.array_equal(y, good), f"silent wrong output at byte {i}"
    for n in range(len(data)):
        with pytest.raises(BitstreamError):
            rc.decompress(data[:n], small_codec)


@pytest.mark.slow
def test_ten_minute_round_trip(tmp_path, model_dir, codec_cpu):
    n = 24000 * 600
    t = np.arange(n) / 24000
    x = (0.2 * np.sin(2 * np.pi * 220 * t * (1 + 0.1 * np.sin(t))) * (np.sin(3 * t) > 0)).astype(np.float32)
    wav, rcf, out = tmp_path / "long.wav", tmp_path / "long.rc", tmp_path / "long_out.wav"
    sf.write(wav, x, 24000, subtype="FLOAT")
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q"]) == 0
    assert main(["decompress", str(rcf), str(out), "--model", str(model_dir), "-q", "--subtype", "FLOAT"]) == 0
    y, _ = sf.read(out, dtype="float32")
    ref = codec_cpu.decode(codec_cpu.encode(torch.from_numpy(x)))[0, 0].numpy()
    assert y.shape == ref.shape and np.abs(y - ref).max() <= 1e-4


def test_default_coding_is_adaptive_and_never_larger_than_either_mode(tmp_path, small_codec):
    """With entropy tables, ``coding="auto"`` writes each chunk rANS-coded or bit-packed, whichever is
    smaller (coding mode 2): the file is no larger than the all-rANS or the all-packed one and decodes to
    the same audio; ``rcodec info`` names the mode."""
    import copy

    from reasoningcodec.bitstream import CODING_ADAPTIVE, RcHeader, count_tokens
    from reasoningcodec.bitstream.entropy import EntropyTables

    codec = copy.deepcopy(small_codec)
    c = codec.config
    codes = codec.encode(signal(48000, seed=4))  # tables fitted on tones: speech-like skew for tones, not noise
    codec.entropy_tables = EntropyTables.from_counts(*count_tokens(
        codes.reasoning.numpy(), codes.recon.numpy(), c.reasoning_codebook_size, c.recon_codebook_size))
    rng = np.random.default_rng(0)
    x = np.concatenate([signal(48000, seed=4)[0].numpy(), 0.3 * rng.standard_normal(48000).astype(np.float32)])
    sizes = {m: rc.compress(x, codec, sample_rate=24000, coding=m, chunk_seconds=0.4) for m in ("auto", "rans", "packed")}
    assert RcHeader.from_bytes(sizes["auto"]).coding_mode == CODING_ADAPTIVE
    assert len(sizes["auto"]) <= min(len(sizes["rans"]), len(sizes["packed"]))
    y = {m: rc.decompress(b, codec)[0] for m, b in sizes.items()}
    assert np.array_equal(y["auto"], y["packed"]) and np.array_equal(y["auto"], y["rans"])
    d = tmp_path / "model"
    codec.save_pretrained(d)
    rcf = tmp_path / "x.rc"
    rcf.write_bytes(sizes["auto"])
    out = subprocess.run([sys.executable, "-m", "reasoningcodec", "info", str(rcf), "--json"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["coding"] == "adaptive"
