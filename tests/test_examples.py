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
