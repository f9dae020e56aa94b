"""The rule for committing resumable checkpoints: >= 3,000 steps apart, never the shipped weights."""

import json
import sys
from pathlib import Path

import pytest
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
    # ... unless the export leaves them out and names the default instead
    assert main([str(_run(tmp_path, 14_001, shipped)), str(committed), str(default), "--by-reference"]) == 0


def _training_run(tmp: Path, codec_w: torch.Tensor) -> Path:
    run = tmp / "run"
    (run / "last").mkdir(parents=True)
    save_file({"codec.w": torch.randn(4), "codec_ema.w": codec_w, "disc.d": torch.randn(3)},
              str(run / "last" / "modules.safetensors"))
    (run / "last" / "state.json").write_text(json.dumps({"step": 7, "audio_seconds": 1.0, "train_seconds": 2.0,
                                                         "config": {"codec": {}}, "cpu_seconds": 3.0}))
    return run


def _model(tmp: Path, w: torch.Tensor, model_id: str) -> Path:
    d = tmp / model_id
    d.mkdir()
    save_file({"w": w.half()}, str(d / "model.safetensors"))
    (d / "config.json").write_text(json.dumps({"model_id": model_id}))
    return d


def test_resumable_checkpoint_refers_to_the_shipped_codec_instead_of_storing_it(tmp_path, monkeypatch):
    from safetensors.torch import load_file

    import reasoningcodec.hub as hub
    from reasoningcodec.train import checkpoint as ckpt
    from reasoningcodec.train.export import export_resumable

    ema = torch.randn(4)
    run = _training_run(tmp_path, ema)
    default = _model(tmp_path, ema, "rc-test-s7")
    out = tmp_path / "ckpt_ref"
    export_resumable(run, out, codec_from=default)
    assert sorted(load_file(str(out / "modules.safetensors"))) == ["disc.d"]  # no codec stored
    assert json.loads((out / "state.json").read_text())["codec_from"] == "rc-test-s7"
    monkeypatch.setattr(hub, "DEFAULT_DIR", default)
    with ckpt.module_file(out) as merged:
        state = load_file(str(merged))
    assert sorted(state) == ["codec.w", "disc.d"] and torch.equal(state["codec.w"], ema.half())
    # another installed default: a clear error, not silently other weights
    monkeypatch.setattr(hub, "DEFAULT_DIR", _model(tmp_path, torch.randn(4), "rc-other"))
    with pytest.raises(ValueError, match="takes its codec weights from the shipped model rc-test-s7"):
        with ckpt.module_file(out):
            pass
    # a codec that differs from the given model is stored as usual
    full = tmp_path / "ckpt_full"
    export_resumable(run, full, codec_from=_model(tmp_path, torch.randn(4), "rc-different"))
    assert sorted(load_file(str(full / "modules.safetensors"))) == ["codec.w", "disc.d"]
    assert "codec_from" not in json.loads((full / "state.json").read_text())
    with ckpt.module_file(full) as path:
        assert path == full / "modules.safetensors"
