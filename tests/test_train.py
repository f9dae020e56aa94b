"""Trainer: a few steps of a tiny config (fast), and 2-process torchrun with resume (slow)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from reasoningcodec.data import build as data_build
from reasoningcodec.data.sources_real import find_fsdd

pytestmark = pytest.mark.skipif(find_fsdd() is None, reason="shared/data/train/fsdd not available")

TINY = {"enc_dim": 32, "latent_dim": 48, "dec_dim": 32, "reasoning_dim": 32, "reasoning_heads": 2,
        "reasoning_layers": 1, "num_recon_codebooks": 2, "recon_codebook_size": 64,
        "num_reasoning_codebooks": 2, "reasoning_codebook_size": 32, "dec_blocks": 1, "enc_blocks": 1}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    assert data_build.main(["build", str(out), "--sources", "fsdd", "--max-clips", "40", "--seed", "1"]) == 0
    return out


def recipe(tmp: Path, corpus: Path, steps: int) -> Path:
    r = {"corpus": str(corpus), "out_dir": str(tmp / "run"), "codec": TINY, "steps": steps, "batch_size": 2,
         "segment_seconds": 0.4, "gan_start": 2, "align_every": 2, "align_batch": 2, "threads": 1,
         "log_every": 1, "val_every": 2, "val_clips": 2, "disc_channels": 4, "ckpt_minutes": 100}
    p = tmp / "recipe.json"
    p.write_text(json.dumps(r))
    return p


def test_train_steps_and_resume(tmp_path, corpus):
    from reasoningcodec import ReasoningCodec
    from reasoningcodec.train import TrainConfig, train

    cfg = TrainConfig.from_json(recipe(tmp_path, corpus, 3))
    state = train(cfg, quiet=True)
    assert state["step"] == 3
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) >= 4 and "mel" in log[0]
    header = log[0].split(",")
    ctc = [r.split(",")[header.index("ctc")] for r in log[1:] if r.split(",")[header.index("ctc")]]
    assert ctc and all(0 <= float(v) < 1e4 for v in ctc)  # FSDD digits carry transcripts: CTC is trained
    cfg.steps = 5
    state = train(cfg, quiet=True)  # resumes from run/last
    assert state["step"] == 5
    m = ReasoningCodec.from_pretrained(tmp_path / "run" / "last" / "codec")
    assert m.config.num_recon_codebooks == 2


@pytest.mark.slow
def test_torchrun_two_processes_and_resume(tmp_path, corpus):
    rp = recipe(tmp_path, corpus, 3)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "reasoningcodec.train", str(rp), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    st = json.loads((tmp_path / "run" / "last" / "state.json").read_text())
    assert st["step"] == 3
    p = subprocess.run(cmd + ["--steps", "5"], capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    st = json.loads((tmp_path / "run" / "last" / "state.json").read_text())
    assert st["step"] == 5
    rows = (tmp_path / "run" / "log.csv").read_text().splitlines()
    losses = [float(r.split(",")[7]) for r in rows[1:] if r.split(",")[7]]
    assert losses and all(l == l and abs(l) < 1e6 for l in losses)  # finite


def test_transcript_ctc_targets_and_gradient():
    import torch

    from reasoningcodec.train.text_head import TranscriptCTC, encode_transcripts

    tg, lens = encode_transcripts(["Zero!", "", "天黑"])
    assert lens.tolist() == [4, 0, 6] and tg[:4].tolist() == [b + 1 for b in b"zero"]
    head = TranscriptCTC(16, slots=4)
    mem = torch.randn(3, 3, 16, requires_grad=True)
    loss = head(mem, torch.tensor([3, 2, 3]), tg, lens)
    loss.backward()
    assert torch.isfinite(loss) and loss > 0
    assert mem.grad[1].abs().sum() == 0  # the clip without a transcript contributes nothing
    assert mem.grad[0].abs().sum() > 0
