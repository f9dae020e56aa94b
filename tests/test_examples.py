"""The example scripts run end to end (on a small randomly initialised model: plumbing only)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from reasoningcodec import CodecConfig, ReasoningCodec

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("ex")
    torch.manual_seed(0)
    cfg = CodecConfig(enc_dim=32, latent_dim=48, dec_dim=32, reasoning_dim=32, reasoning_heads=2,
                      reasoning_layers=1, num_recon_codebooks=2, recon_codebook_size=64,
                      num_reasoning_codebooks=2, reasoning_codebook_size=32)
    ReasoningCodec(cfg).save_pretrained(d / "model")
    audio = d / "audio"
    audio.mkdir()
    rng = np.random.default_rng(0)
    for i, sr in enumerate([16000, 24000, 44100]):
        sf.write(audio / f"clip{i}.wav", (0.1 * rng.standard_normal(int(sr * (0.5 + i * 0.3)))), sr)
    return d


def run(*args):
    p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


def test_compress_folder(setup):
    out = run(ROOT / "examples/compress_folder.py", setup / "audio", setup / "rc", "--model", setup / "model", "--decode")
    assert len(list((setup / "rc").glob("*.rc"))) == 3 and "smaller" in out


def test_stream_live(setup):
    out = run(ROOT / "examples/stream_live.py", setup / "audio/clip2.wav", "--model", setup / "model", "--streams", "2")
    assert "latency" in out and "max abs diff" in out


def test_tokenize_dataset_resumes(setup):
    args = [ROOT / "examples/tokenize_dataset.py", setup / "audio", setup / "tok", "--model", setup / "model",
            "--shard-size", "2", "--batch", "2"]
    run(*args)
    shards = sorted((setup / "tok").glob("shard-*.npz"))
    assert len(shards) == 2
    first = shards[0].stat().st_mtime_ns
    run(*args)  # resumable: finished shards are not rewritten
    assert shards[0].stat().st_mtime_ns == first
    index = [json.loads(x) for x in (setup / "tok" / "index.jsonl").read_text().splitlines()]
    assert len(index) == 3
    z = np.load(shards[0])
    assert z["recon_0"].shape[0] == 2


def test_tokenize_dataset_skips_a_bad_file_keeps_its_batch_and_fails(setup, tmp_path):
    """One corrupt file: reported and skipped, the good files of its batch kept, exit status 1; outputs
    follow the umask (temp files from reasoningcodec.atomic, not mkstemp's 0600)."""
    import os
    import shutil

    audio = tmp_path / "audio"
    shutil.copytree(setup / "audio", audio)
    (audio / "clip1b.wav").write_bytes(b"RIFF" + bytes(60))  # sorts into the first batch, beside clip1
    args = [ROOT / "examples/tokenize_dataset.py", audio, tmp_path / "tok", "--model", setup / "model",
            "--shard-size", "8", "--batch", "4"]
    for attempt in range(2):  # a re-run keeps the finished shard and still reports the bad file
        p = subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300,
                           preexec_fn=lambda: os.umask(0o022))
        assert p.returncode == 1, p.stderr[-2000:]
        assert f"{audio / 'clip1b.wav'}" in p.stderr and "1 files could not be read" in p.stderr
    index = [json.loads(x) for x in (tmp_path / "tok" / "index.jsonl").read_text().splitlines()]
    assert sorted(Path(r["path"]).name for r in index) == ["clip0.wav", "clip1.wav", "clip2.wav"]
    failed = [json.loads(x) for x in (tmp_path / "tok" / "failed.jsonl").read_text().splitlines()]
    assert [Path(r["path"]).name for r in failed] == ["clip1b.wav"]
    modes = {f.name: f.stat().st_mode & 0o777 for f in (tmp_path / "tok").iterdir()}
    assert set(modes.values()) == {0o644}, modes
