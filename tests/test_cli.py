"""The .rc round trip through the Python API and the rcodec CLI, seeking, and bad input."""

import io
import json
import math
import os
import signal as sig
import subprocess
import sys
import time
from pathlib import Path

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


# -- issue 23: signals, structure, bad numbers, info/tokens/modes/lengths ------------------------------

ENV = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}


def _silent_rc(codec, seconds: float) -> bytes:
    """A long .rc for ``codec`` written cheaply (all-zero tokens through the library's writer)."""
    from reasoningcodec.bitstream import CODING_PACKED, RcChunk, write_bytes
    from reasoningcodec.compress import chunk_samples, make_header

    c = codec.config
    n, cs = int(seconds * c.sample_rate), chunk_samples(codec, 20.0)
    h = make_header(codec, 1, n, c.sample_rate, c.num_recon_codebooks, cs, CODING_PACKED, None, None)
    chunks = []
    for start in range(0, n, cs):
        ns = min(cs, n - start)
        nr, nq = codec.num_frames(ns)
        chunks.append(RcChunk(start, ns, np.zeros((1, c.num_reasoning_codebooks, nr), np.int64),
                              np.zeros((1, c.num_recon_codebooks, nq), np.int64)))
    return write_bytes(h, chunks)


def _terminate_once_writing(args: list, folder, signum: int) -> tuple[int, str]:
    """Run rcodec, send ``signum`` as soon as its hidden temp output exists, return (exit code, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "reasoningcodec", *args], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=ENV)
    deadline = time.monotonic() + 300
    while not list(folder.glob(".*.part*")):
        if p.poll() is not None:
            pytest.fail(f"rcodec ended (exit {p.returncode}) before its temp file appeared: {p.stderr.read()!r}")
        if time.monotonic() > deadline:
            p.kill()
            pytest.fail("no temp file appeared")
        time.sleep(0.005)
    p.send_signal(signum)
    _, err = p.communicate(timeout=300)
    return p.returncode, err.decode()


@pytest.fixture
def other_thread():
    """A second thread that does not block signals: the kernel may hand it a signal sent to the process."""
    import threading

    stop = threading.Event()
    t = threading.Thread(target=stop.wait, daemon=True)
    t.start()
    yield t
    stop.set()
    t.join()


@pytest.mark.skipif(not hasattr(sig, "SIGHUP"), reason="no SIGHUP on this platform")
@pytest.mark.parametrize("signum", [sig.SIGTERM, sig.SIGHUP])
def test_a_signal_right_after_the_temp_file_is_made_leaves_nothing(tmp_path, monkeypatch, signum, other_thread):
    """The window between creating the temp file and recording its name: the signal waits until the
    name is recorded, so the clean-up finds the file (also when another thread is running)."""
    from reasoningcodec import atomic
    from reasoningcodec.cli_io import Terminated, atomic_output, terminate_cleanly

    real = atomic.temp_next_to

    def made_then_signalled(path, suffix=".part"):
        t = real(path, suffix)
        os.kill(os.getpid(), signum)
        time.sleep(0.05)              # time for another thread to take the signal, if the hold lets it
        return t

    monkeypatch.setattr(atomic, "temp_next_to", made_then_signalled)
    reached = []
    with pytest.raises(Terminated):
        with terminate_cleanly(), atomic_output(tmp_path / "x.rc", False):
            reached.append(True)
    assert list(tmp_path.iterdir()) == [] and not reached


@pytest.mark.parametrize("command,signum", [("compress", sig.SIGTERM), ("decompress", sig.SIGTERM),
                                            ("compress", sig.SIGHUP)])
def test_sigterm_removes_the_temp_file(tmp_path, model_dir, codec_cpu, command, signum):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if command == "compress":
        src, out = tmp_path / "long.wav", out_dir / "x.rc"
        sf.write(src, np.zeros(24000 * 60, np.float32), 24000, subtype="FLOAT")
    else:
        src, out = tmp_path / "long.rc", out_dir / "x.wav"
        src.write_bytes(_silent_rc(codec_cpu, 600))
    code, err = _terminate_once_writing([command, str(src), str(out), "--model", str(model_dir), "-q"], out_dir,
                                        signum)
    assert code == 128 + signum, err
    name = sig.Signals(signum).name
    assert "Traceback" not in err and err.strip().splitlines() == [f"rcodec: terminated ({name}); no output written"]
    assert list(out_dir.iterdir()) == [], "temp file or output left behind"


def _swapped_header(front, data: bytes) -> bytes:
    head = front.to_bytes()
    return head + data[len(head):]


def test_structurally_inconsistent_file_is_a_bitstream_error(tmp_path, small_codec, monkeypatch, capsys):
    """CRCs all valid, but a chunk holds fewer frames than its sample count needs, or none at all."""
    from reasoningcodec.bitstream import read_all, write_bytes

    data = rc.compress(signal(9600 * 3 + 50, seed=8).numpy(), small_codec, chunk_seconds=1.2)
    header, chunks = read_all(data)
    fewer = header.replace(recon_frame_rate=header.recon_frame_rate / 2)
    for c in chunks:
        c.recon = c.recon[..., : fewer.expected_frames(c.num_samples, "recon")]
    short = _swapped_header(header, write_bytes(fewer, chunks))
    header, chunks = read_all(data)
    chunks[1].recon = chunks[1].recon[..., :0]
    monkeypatch.setattr("reasoningcodec.bitstream.chunk._check_frames", lambda *a: None)
    empty = write_bytes(header, chunks)
    monkeypatch.undo()
    model = tmp_path / "small"
    small_codec.save_pretrained(model)
    for bad, msg in ((short, "chunk 0: 8 recon frames for 28800 samples; the header's frame rate needs exactly 15"),
                     (empty, "chunk 1: 0 recon frames for 50 samples; the header's frame rate needs exactly 1")):
        with pytest.raises(BitstreamError, match=msg):
            rc.decompress(bad, small_codec)
        rcf = tmp_path / "bad.rc"
        rcf.write_bytes(bad)
        capsys.readouterr()
        assert main(["decompress", str(rcf), str(tmp_path / "o.wav"), "--model", str(model), "-q", "-f"]) == 1
        assert capsys.readouterr().err.strip() == f"rcodec: error: {msg}"
        assert not (tmp_path / "o.wav").exists()


def test_bad_numbers_and_devices_are_one_line_errors(tmp_path, model_dir, capsys):
    wav, rcf = tmp_path / "in.wav", tmp_path / "x.rc"
    sf.write(wav, signal(24000).numpy().T, 24000)
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q"]) == 0
    dec = ["decompress", str(rcf), str(tmp_path / "o.wav"), "--model", str(model_dir), "-q"]
    enc = ["compress", str(wav), str(tmp_path / "o.rc"), "--model", str(model_dir), "-q"]
    cases = [(dec + ["--start", v], "--start") for v in ("inf", "nan", "-1", "1")]
    cases += [(dec + ["--duration", v], "--duration") for v in ("inf", "nan", "0")]
    cases += [(enc + ["--chunk-seconds", v], "--chunk-seconds") for v in ("1e9", "inf", "nan", "0.1", "0")]
    cases += [(enc + ["--bitrate", v], "--bitrate") for v in ("nan", "0")]
    cases += [(enc + ["--device", "tpu9"], "device 'tpu9' is not a torch device")]
    if not torch.cuda.is_available():
        cases += [(enc + ["--device", "cuda"], "device 'cuda' asked for, but no CUDA device is available")]
    for argv, name in cases:
        capsys.readouterr()
        assert main(argv) == 1, argv
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rcodec: error:") and name in lines[0], (argv, lines)
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "o.rc").exists()


def test_chunk_seconds_are_rounded_with_a_note(tmp_path, model_dir, capsys):
    wav, rcf = tmp_path / "in.wav", tmp_path / "x.rc"
    sf.write(wav, signal(24000 * 3).numpy().T, 24000)
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "--chunk-seconds", "1"]) == 0
    assert "--chunk-seconds 1 rounded to 1.2 s (chunks are whole multiples of 0.4 s" in capsys.readouterr().err
    assert main(["info", str(rcf), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["chunk_seconds"] == 1.2 and info["chunks"] == 3


def test_python_api_refuses_bad_numbers_and_devices(codec_cpu, model_dir):
    from reasoningcodec import OptionError

    data = rc.compress(signal(24000).numpy(), codec_cpu)
    for kw, name in (({"start": math.inf}, "start"), ({"start": math.nan}, "start"), ({"start": 1.0}, "start"),
                     ({"duration": math.inf}, "duration"), ({"duration": math.nan}, "duration")):
        with pytest.raises(OptionError, match=f"^{name} must be"):
            rc.decompress(data, codec_cpu, **kw)
    y, _ = rc.decompress(data, codec_cpu, start=0.5, duration=0.25)
    assert y.shape == (1, 6000)
    for bad in (1e9, math.inf, math.nan, 0.1, "20"):
        with pytest.raises(OptionError, match="^chunk_seconds must"):
            rc.compress(signal(4000).numpy(), codec_cpu, chunk_seconds=bad)
    with pytest.raises(OptionError, match="device 'tpu9' is not a torch device"):
        rc.load(device="tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(OptionError, match="no CUDA device is available"):
            rc.load(device="cuda")
        with pytest.raises(OptionError, match="no CUDA device is available"):
            rc.ReasoningCodec.from_pretrained(model_dir, device="cuda:0")


def test_info_fails_on_a_chunk_with_a_bad_crc(tmp_path, model_dir, capsys):
    from reasoningcodec.bitstream import CHUNK_OVERHEAD, RcReader

    wav, rcf = tmp_path / "in.wav", tmp_path / "x.rc"
    sf.write(wav, signal(24000 * 3).numpy().T, 24000)
    assert main(["compress", str(wav), str(rcf), "--model", str(model_dir), "-q", "--chunk-seconds", "1.2"]) == 0
    data = bytearray(rcf.read_bytes())
    data[RcReader(io.BytesIO(bytes(data))).chunk_info(1).offset + CHUNK_OVERHEAD] ^= 0x01  # chunk 1's payload
    rcf.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["info", str(rcf)]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == "rcodec: error: chunk 1: CRC32 mismatch (corrupt data)" and captured.out == ""


def test_tokens_refuses_an_existing_output_before_encoding(tmp_path, model_dir, monkeypatch, capsys):
    import reasoningcodec.cli_commands as commands

    wav, out = tmp_path / "in.wav", tmp_path / "t.npz"
    sf.write(wav, signal(4000).numpy().T, 24000)
    out.write_bytes(b"keep me")

    def no_model(*a):
        raise AssertionError("the model was loaded (and the file encoded) before the output was checked")

    monkeypatch.setattr(commands, "load_model", no_model)
    for command in ("tokens", "compress", "decompress"):
        capsys.readouterr()
        target = out if command == "tokens" else out.with_suffix(".rc" if command == "compress" else ".wav")
        target.write_bytes(b"keep me")
        assert main([command, str(wav), str(target), "--model", str(model_dir)]) == 1, command
        assert capsys.readouterr().err.strip() == f"rcodec: error: {target} exists; use -f to overwrite"
        assert target.read_bytes() == b"keep me"


def test_outputs_follow_the_umask(tmp_path, model_dir):
    """Outputs get 0666 & ~umask, the umask of the moment (as a plain open() does), never mkstemp's 0600."""
    from safetensors.torch import save_file

    from reasoningcodec import audio as audio_io
    from uniaudio_lm.cli import _write_atomic

    wav = tmp_path / "in.wav"
    sf.write(wav, signal(4000).numpy().T, 24000)
    old = os.umask(0o027)
    try:
        assert main(["compress", str(wav), str(tmp_path / "x.rc"), "--model", str(model_dir), "-q"]) == 0
        assert main(["decompress", str(tmp_path / "x.rc"), str(tmp_path / "y.wav"), "--model", str(model_dir),
                     "-q"]) == 0
        assert main(["tokens", str(wav), str(tmp_path / "t.npz"), "--model", str(model_dir), "-q"]) == 0
        audio_io.save(tmp_path / "s.flac", np.zeros(100, np.float32), 24000)
        _write_atomic([(tmp_path / "u.txt", lambda p: Path(p).write_text("x"))])
        _write_atomic([(tmp_path / "codes.safetensors", lambda p: save_file({"r": torch.zeros(2)}, p))])
        rc.ReasoningCodec.from_pretrained(model_dir).save_pretrained(tmp_path / "m")
        os.umask(0o002)
        assert main(["compress", str(wav), str(tmp_path / "x2.rc"), "--model", str(model_dir), "-q"]) == 0
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in [*tmp_path.iterdir(), *(tmp_path / "m").iterdir()]
             if p.is_file() and p.name != "in.wav"}
    assert modes.pop("x2.rc") == 0o664
    assert modes and set(modes.values()) == {0o640}, modes


@pytest.mark.parametrize("sr,n,want", [(22050, 1000, 1088), (44100, 1000, 544), (16000, 1003, 1505),
                                       (16000, 1001, 1502), (48000, 777, 389)])  # n * 24000 / sr, halves up
def test_encode_of_a_path_and_the_rc_agree_on_the_length(tmp_path, model_dir, codec_cpu, sr, n, want):
    x = signal(n, seed=3).numpy()[0]
    wav = tmp_path / "in.wav"
    sf.write(wav, x, sr, subtype="FLOAT")
    from_path = int(codec_cpu.encode(str(wav)).lengths[0])
    from_array = int(codec_cpu.encode(x, sample_rate=sr).lengths[0])
    from reasoningcodec.bitstream import RcHeader

    rc_path = RcHeader.from_bytes(rc.compress(str(wav), codec_cpu)).num_samples
    rc_array = RcHeader.from_bytes(rc.compress(x, codec_cpu, sample_rate=sr)).num_samples
    assert main(["tokens", str(wav), str(tmp_path / "t.npz"), "--model", str(model_dir), "-q"]) == 0
    tokens = int(np.load(tmp_path / "t.npz")["num_samples"])
    assert from_path == from_array == rc_path == rc_array == tokens == want


# -- issue 23 items 4, 5, 10: exact seeks at the original rate, input levels, --version, stdin/stdout, tokens
# over a dataset ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_dir(tmp_path_factory, small_codec):
    d = tmp_path_factory.mktemp("small")
    small_codec.save_pretrained(d)
    return d


def test_seek_at_the_original_rate_equals_the_same_span_of_a_full_decode(tmp_path, small_dir):
    from reasoningcodec.audio import resampled_length

    sr, n = 22050, 12 * 24000  # 12 s at 22,050 Hz: 12 s at the model rate
    wav, rcf = tmp_path / "in.wav", tmp_path / "x.rc"
    sf.write(wav, signal(12 * sr, seed=5).numpy()[0], sr, subtype="FLOAT")
    model = ["--model", str(small_dir), "-q", "--subtype", "FLOAT"]
    assert main(["compress", str(wav), str(rcf), *model[:3], "--chunk-seconds", "2"]) == 0
    assert main(["decompress", str(rcf), str(tmp_path / "full.wav"), *model]) == 0
    full, _ = sf.read(tmp_path / "full.wav", dtype="float32")
    for start, duration in (("7", "3"), ("2.345", "1.5"), ("0.01", "0.5"), ("11.5", None)):
        span = ["--start", start] + (["--duration", duration] if duration else [])
        assert main(["decompress", str(rcf), str(tmp_path / "part.wav"), *model, *span, "-f"]) == 0
        part, got_sr = sf.read(tmp_path / "part.wav", dtype="float32")
        a = round(float(start) * 24000)
        b = min(n, a + round(float(duration) * 24000)) if duration else n
        oa, ob = resampled_length(a, 24000, sr), resampled_length(b, 24000, sr)
        assert got_sr == sr and part.shape == (ob - oa,), (start, duration)
        assert np.abs(part - full[oa:ob]).max() <= 1e-6, (start, duration)


def test_input_levels_on_the_command_line(tmp_path, small_dir, capsys):
    loud, hot = tmp_path / "loud.wav", tmp_path / "hot.wav"
    x = signal(24000, seed=2).numpy()[0]
    sf.write(loud, x / np.abs(x).max() * 3e5, 24000, subtype="FLOAT")  # integer PCM stored as float, times 10
    sf.write(hot, x / np.abs(x).max() * 4.0, 24000, subtype="FLOAT")
    capsys.readouterr()
    assert main(["compress", str(loud), str(tmp_path / "l.rc"), "--model", str(small_dir), "--normalize"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rcodec: error: audio in") and "peaks at 300000" in err[0], err
    assert not (tmp_path / "l.rc").exists()
    assert main(["tokens", str(loud), str(tmp_path / "l.npz"), "--model", str(small_dir), "-q"]) == 1
    assert "peaks at 300000" in capsys.readouterr().err
    assert main(["compress", str(hot), str(tmp_path / "h.rc"), "--model", str(small_dir)]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("rcodec: warning: audio in") and "peaks at 4, above full scale (1.0)" in err[0], err


def test_version_and_compress_output_must_be_rc(tmp_path, small_dir, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"rcodec {rc.__version__}"
    wav = tmp_path / "in.wav"
    sf.write(wav, signal(4000).numpy().T, 24000)
    for name in ("a.mp3", "a.wav", "a"):
        assert main(["compress", str(wav), str(tmp_path / name), "--model", str(small_dir), "-q"]) == 1
        assert capsys.readouterr().err.strip() == (f"rcodec: error: the output of compress is a .rc file: name it "
                                                   f"*.rc, got {name!r} (rcodec decompress writes audio)")
        assert not (tmp_path / name).exists()


def _stdio(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdin_and_stdout(tmp_path, small_dir, monkeypatch, capsysbinary):
    wav, rcf = tmp_path / "in.flac", tmp_path / "x.rc"
    sf.write(wav, signal(30000, seed=4, batch=2).numpy().T, 16000)
    m = ["--model", str(small_dir), "-q"]
    assert main(["compress", str(wav), str(rcf), *m]) == 0
    assert main(["decompress", str(rcf), str(tmp_path / "y.wav"), *m]) == 0
    capsysbinary.readouterr()
    _stdio(monkeypatch, wav.read_bytes())
    assert main(["compress", "-", str(tmp_path / "s.rc"), *m]) == 0  # stdin → file
    assert (tmp_path / "s.rc").read_bytes() == rcf.read_bytes()
    assert main(["compress", str(wav), "-", *m]) == 0  # file → stdout
    assert capsysbinary.readouterr().out == rcf.read_bytes()
    _stdio(monkeypatch, rcf.read_bytes())
    assert main(["decompress", "-", "-", *m]) == 0  # stdin → stdout, as WAV
    y, sr = sf.read(io.BytesIO(capsysbinary.readouterr().out), dtype="float32")
    ref, ref_sr = sf.read(tmp_path / "y.wav", dtype="float32")
    assert sr == ref_sr == 16000 and np.array_equal(y, ref)
    _stdio(monkeypatch, b"not audio")
    assert main(["compress", "-", str(tmp_path / "t.rc"), *m]) == 1
    assert capsysbinary.readouterr().err.decode().startswith("rcodec: error: cannot read <stdin> as audio")


def _dataset(root: Path) -> list[Path]:
    """Four short files in two folders (16 kHz, 24 kHz stereo, 44.1 kHz) and one that is not audio."""
    (root / "a").mkdir(parents=True)
    (root / "b" / "c").mkdir(parents=True)
    files = [root / "a" / "one.wav", root / "a" / "two.flac", root / "b" / "c" / "three.wav", root / "b" / "four.ogg"]
    for i, (f, sr, ch) in enumerate(zip(files, (16000, 24000, 44100, 24000), (1, 2, 1, 1))):
        sf.write(f, signal(int(sr * (0.4 + 0.2 * i)), seed=i, batch=ch).numpy().T, sr)
    (root / "b" / "broken.wav").write_bytes(b"RIFF" + bytes(40))
    (root / "notes.txt").write_text("not audio")
    return files


def test_tokens_over_a_folder_resumes_and_skips_bad_files(tmp_path, small_dir, monkeypatch, capsys):
    import reasoningcodec.cli_commands as commands

    files = _dataset(tmp_path / "data")
    out = tmp_path / "tok"
    loads = []
    real = commands.load_model
    monkeypatch.setattr(commands, "load_model", lambda *a: loads.append(a) or real(*a))
    capsys.readouterr()
    assert main(["tokens", str(tmp_path / "data"), str(out), "--model", str(small_dir), "-q"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith(f"rcodec: skipped {tmp_path / 'data' / 'b' / 'broken.wav'}: cannot read"), err
    assert err[-1].startswith("rcodec: error: 1 of 5 files have no tokens"), err
    assert len(loads) == 1  # one model for every file
    index = json.loads((out / "index.json").read_text())
    assert [e["tokens"] for e in index["files"]] == ["a/one.npz", "a/two.npz", "b/c/three.npz", "b/four.npz"]
    assert index["missing"] == [str(tmp_path / "data" / "b" / "broken.wav")] and index["model_id"] == "test-small"
    for f, e in zip(files, index["files"]):  # each as the single-file command writes it
        z = np.load(out / e["tokens"])
        assert main(["tokens", str(f), str(tmp_path / "one.npz"), "--model", str(small_dir), "-q", "-f"]) == 0
        one = np.load(tmp_path / "one.npz")
        assert np.array_equal(z["recon"], one["recon"]) and np.array_equal(z["reasoning"], one["reasoning"])
        assert e["num_samples"] == int(z["num_samples"]) == int(one["num_samples"])
    (tmp_path / "data" / "b" / "broken.wav").unlink()
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.npz")}
    (out / "a" / "two.npz").write_bytes(b"PK truncated")  # an incomplete output is redone
    assert main(["tokens", str(tmp_path / "data"), str(out), "--model", str(small_dir), "-q"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.npz") if p.name != "two.npz"} == \
        {p: t for p, t in mtimes.items() if p.name != "two.npz"}
    assert np.load(out / "a" / "two.npz")["recon"].shape[0] == 2  # stereo: one row per channel
    assert json.loads((out / "index.json").read_text())["num_missing"] == 0


def test_tokens_sharded_by_rank_then_merged(tmp_path, small_dir, small_codec, monkeypatch, capsys):
    files = _dataset(tmp_path / "data")
    (tmp_path / "data" / "b" / "broken.wav").unlink()
    lst = tmp_path / "data" / "list.txt"
    lst.write_text("# two of them, and two more\n" + "\n".join(str(f.relative_to(tmp_path / "data")) for f in files))
    out = tmp_path / "tok"
    args = ["tokens", str(lst), str(out), "--model", str(small_dir), "-q"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(args) == 0
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.npz")) == ["a/two.npz", "b/four.npz"]
    assert not (out / "index.json").exists()  # no barrier without torchrun: --merge writes it
    assert main(args + ["--merge"]) == 1
    assert "2 of 4 files have no tokens" in capsys.readouterr().err
    monkeypatch.setenv("RANK", "0")
    assert main(args) == 0
    assert main(args + ["--merge"]) == 0
    index = json.loads((out / "index.json").read_text())
    assert [e["audio"] for e in index["files"]] == sorted(str(f) for f in files) and index["num_missing"] == 0
    torch.manual_seed(2)  # same model id, other weights: its tokens are not "done", nor silently replaced
    ReasoningCodec(small_codec.config).save_pretrained(tmp_path / "other")
    capsys.readouterr()
    assert main(["tokens", str(lst), str(out), "--model", str(tmp_path / "other"), "-q"]) == 1
    assert "holds tokens of another model ('test-small'); use another output folder, or -f" in capsys.readouterr().err


@pytest.mark.slow
def test_tokens_with_torchrun(tmp_path, small_dir):
    _dataset(tmp_path / "data")
    (tmp_path / "data" / "b" / "broken.wav").unlink()
    out = tmp_path / "tok"
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "-m",
                        "reasoningcodec", "tokens", str(tmp_path / "data"), str(out), "--model", str(small_dir), "-q"],
                       capture_output=True, text=True, timeout=600, env={**os.environ, **ENV})
    assert p.returncode == 0, p.stderr[-3000:]
    index = json.loads((out / "index.json").read_text())
    assert index["num_files"] == 4 and index["num_missing"] == 0


@pytest.mark.skipif(not hasattr(sig, "SIGHUP"), reason="no SIGHUP on this platform")
@pytest.mark.parametrize("signum", [sig.SIGTERM, sig.SIGHUP])
def test_a_signal_right_after_the_temp_folder_is_made_leaves_nothing(tmp_path, monkeypatch, signum, other_thread):
    """The same window for the folders that model installs write (``temp_dir_next_to``)."""
    from reasoningcodec import atomic
    from reasoningcodec.cli_io import Terminated, terminate_cleanly

    real = atomic.tempfile.mkdtemp

    def made_then_signalled(*a, **kw):
        t = real(*a, **kw)
        os.kill(os.getpid(), signum)
        time.sleep(0.05)              # time for another thread to take the signal, if the hold lets it
        return t

    monkeypatch.setattr(atomic.tempfile, "mkdtemp", made_then_signalled)
    reached = []
    with pytest.raises(Terminated):
        with terminate_cleanly(), atomic.temp_dir_next_to(tmp_path / "model") as tmp:
            (tmp / "config.json").write_text("{}")
            reached.append(True)
    assert list(tmp_path.iterdir()) == [] and not reached
    monkeypatch.undo()
    with atomic.temp_dir_next_to(tmp_path / "model") as tmp:        # no signal: the folder is there, then gone
        (tmp / "a").write_text("x")
        assert tmp.parent == tmp_path and tmp.name.startswith(".model.")
    assert list(tmp_path.iterdir()) == []
