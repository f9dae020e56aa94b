"""The rule for committing resumable checkpoints: >= 3,000 steps apart, never the shipped weights."""

import json
import sys
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

from checkpoint_policy import main  # noqa: E402


def _run(tmp: Path, step: int, w: torch.Tensor) -> Path:
    d = tmp / f"run{step}"
    (d / "last" / "codec").mkdir(parents=True)
    (d / "last" / "state.json").write_text(json.dumps({"step": step}))
    save_file({"a": w}, str(d / "last" / "codec" / "model.safetensors"))
    return d


def test_checkpoint_policy(tmp_path):
    committed = tmp_path / "ckpt"
    committed.mkdir()
    (committed / "state.json").write_text(json.dumps({"step": 10_000}))
    default = tmp_path / "default"
    default.mkdir()
    shipped = torch.randn(8)
    save_file({"a": shipped.half()}, str(default / "model.safetensors"))
    assert main([str(_run(tmp_path, 12_999, torch.randn(8))), str(committed), str(default)]) == 1  # too close
    assert main([str(_run(tmp_path, 13_000, torch.randn(8))), str(committed), str(default)]) == 0
    assert main([str(_run(tmp_path, 14_000, shipped)), str(committed), str(default)]) == 1  # the shipped weights
