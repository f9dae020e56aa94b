"""uniaudio_lm training: stage batching, checkpoints, exact resume (fast); 2-process torchrun (slow)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from uniaudio_lm import STAGES, AudioVocab, BucketBatcher, default_tokenizer, load_checkpoint
from uniaudio_lm.data import SyntheticAudio, TextLines
from uniaudio_lm.train import TrainConfig, train

SMALL_CODEC = {"num_reasoning_codebooks": 2, "reasoning_codebook_size": 16, "num_recon_codebooks": 3,
               "recon_codebook_size": 32}


def recipe(out: Path, steps: int, **kw) -> TrainConfig:
    return TrainConfig(out_dir=str(out), stage=4, preset="tiny", codec=SMALL_CODEC, steps=steps, max_tokens=300,
                       synthetic=True, ckpt_every=2, log_every=1, warmup=2, **kw)


def test_stage_batches_mix_text_and_drop_conditions():
    tok = default_tokenizer()
    v = AudioVocab(**SMALL_CODEC)
    text = TextLines()
    for n, stage in STAGES.items():
        kinds = set(stage.mixture) - {"text"}
        sources = {"text": [text], **{k: [SyntheticAudio(v, k, text=text)] for k in kinds}}
        stage = dataclasses.replace(stage, cond_dropout=0.5)
        b = BucketBatcher(stage, sources, tok, v, max_tokens=400, seed=1)
        dropped = 0
        for step in range(6):
            batch, info = b.batch(step)
            assert info.kinds.count("text") >= stage.text_per_batch  # text-only data in every batch
            assert batch.text_ids.numel() <= 400 or len(info.kinds) == 1 + stage.text_per_batch
            dropped += info.dropped_conditions
            again, _ = b.batch(step)
            assert torch.equal(batch.text_ids, again.text_ids)  # a pure function of (seed, rank, step)
        if n == 3:
            assert dropped > 0


def test_train_checkpoint_and_exact_resume(tmp_path):
    full = train(recipe(tmp_path / "full", 4), quiet=True)
    assert full["step"] == 4
    train(recipe(tmp_path / "part", 2), quiet=True)
    ck = load_checkpoint(tmp_path / "part" / "last")
    assert ck.trainer_state["step"] == 2 and ck.optim_state["state"]
    resumed = train(recipe(tmp_path / "part", 4), quiet=True)
    assert resumed["step"] == 4 and resumed["tokens"] == full["tokens"]
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "part" / "losses.csv").read_text().splitlines()
    assert rows[0].startswith("step,loss,text_loss,audio_loss") and [r.split(",")[0] for r in rows[1:]] == ["1", "2", "3", "4"]
    assert not any(p.suffix == ".pt" or p.suffix == ".bin" for p in (tmp_path / "part").rglob("*"))


@pytest.mark.slow
def test_torchrun_two_processes_and_resume(tmp_path):
    def run(out: Path, steps: int) -> None:
        rp = tmp_path / f"{out.name}-{steps}.json"
        rp.write_text(json.dumps(dataclasses.asdict(recipe(out, steps, threads=1))))
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "uniaudio_lm.train", str(rp), "--quiet"]
        p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
        assert p.returncode == 0, p.stderr[-3000:]

    run(tmp_path / "full", 4)
    run(tmp_path / "part", 2)
    run(tmp_path / "part", 4)
    a = load_file(str(tmp_path / "full" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "part" / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    state = json.loads((tmp_path / "part" / "last" / "trainer.json").read_text())
    assert state["step"] == 4
    assert len((tmp_path / "part" / "losses.csv").read_text().splitlines()) == 5
