"""scripts/arm_curve.py: equal-compute arms scored per CPU-seconds snapshot, compared with a control."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

from reasoningcodec.data import build as data_build
from reasoningcodec.data.sources_real import find_fsdd

from .test_train import TINY, _with_val_clips

pytestmark = pytest.mark.skipif(find_fsdd() is None, reason="shared/data/train/fsdd not available")


def _load_script():
    spec = importlib.util.spec_from_file_location(
        "arm_curve", Path(__file__).resolve().parents[1] / "scripts" / "arm_curve.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def val_corpus(tmp_path_factory) -> Path:
    """tests/test_train.py's tiny FSDD corpus, with 3 clips in the val split."""
    out = tmp_path_factory.mktemp("corpus")
    assert data_build.main(["build", str(out), "--sources", "fsdd", "--max-clips", "40", "--seed", "1"]) == 0
    return _with_val_clips(out, tmp_path_factory.mktemp("val") / "corpus")


def _save_tiny(dest: Path, seed: int, state: dict | None = None) -> None:
    import torch

    from reasoningcodec import CodecConfig, ReasoningCodec

    torch.manual_seed(seed)
    ReasoningCodec(CodecConfig(**TINY)).save_pretrained(dest)
    if state is not None:
        (dest / "train_state.json").write_text(json.dumps(state))


def _arm(root: Path, name: str, seed: int, marks=(60, 120)) -> Path:
    for i, mark in enumerate(marks):
        _save_tiny(root / name / "snap" / f"cpu{mark}", seed + i,
                   {"step": 100 + 10 * (i + 1), "audio_seconds": 3600.0 * (i + 1), "train_seconds": mark / 2,
                    "cpu_seconds": mark + 0.5})
    return root / name


def test_arm_curve_script(tmp_path, val_corpus, monkeypatch):
    pytest.importorskip("pesq", reason="PESQ-WB needs the pesq package")
    pytest.importorskip("pystoi", reason="STOI needs the pystoi package")
    ac = _load_script()
    _save_tiny(tmp_path / "start", 0)
    control, disc4 = _arm(tmp_path / "arms", "control", 1), _arm(tmp_path / "arms", "disc4", 3)
    out, png = tmp_path / "arms.json", tmp_path / "arms.png"
    clip_args = ["--corpus", str(val_corpus), "--speech-clips", "2", "--val-clips", "2", "--max-seconds", "1"]
    argv = [str(control), str(disc4), "--start", str(tmp_path / "start"), *clip_args, "--json", str(out),
            "--png", str(png)]
    assert ac.main(argv) == 0
    got = json.loads(out.read_text())
    rows = got["rows"]
    assert [(r["arm"], r["cpu_mark_s"]) for r in rows] == [(a, m) for a in ("control", "disc4") for m in (0, 60, 120)]
    assert [r["cpu_hours"] for r in rows[:3]] == [0.0, round(60 / 3600, 4), round(120 / 3600, 4)]
    assert [(r["step"], r["audio_h"]) for r in rows[1:3]] == [(110, 1.0), (120, 2.0)]
    assert rows[0]["step"] is None and rows[0]["model"] == str(tmp_path / "start")  # --start is every arm's CPU 0
    for r in rows:
        assert r["clips"] == 2 and 1 <= r["pesq_wb"] <= 4.7 and -1 <= r["stoi"] <= 1
        assert r["mel"] > 0 and r["cpp"] > 0 and 0 < r["val_mel"] < 100
    assert all(r["vs_control"] is None and r["verdict"] is None for r in rows[:3])  # the control itself
    for r in rows[3:]:
        for m in ac.METRICS:
            c = r["vs_control"][m]
            assert c["clips"] == 2 and c["lo"] <= c["diff"] <= c["hi"]
    assert all(r["vs_control"][m]["diff"] == 0 for m in ac.METRICS for r in rows[3:4])  # both are the start at 0
    assert rows[5]["verdict"] and set(rows[5]["verdict"].values()) <= {"better", "worse", "same"}
    assert rows[3]["verdict"] is None and rows[4]["verdict"] is None  # only at the last common mark
    assert got["verdicts"]["disc4"]["cpu_hours"] == rows[5]["cpu_hours"]
    cache = json.loads((control / "snap" / "cpu60" / "scores.json").read_text())
    assert len(cache["entries"]) == 1 and (tmp_path / "start" / "scores.json").exists()
    assert png.stat().st_size > 0

    # a copy of the control (with its cached scores): nothing is scored again, and it is the control exactly
    shutil.copytree(control, tmp_path / "arms" / "twin")

    def no_scoring(*args, **kwargs):
        raise AssertionError("a cached snapshot was scored again")

    monkeypatch.setattr(ac, "score_model", no_scoring)
    assert ac.main([str(control), str(tmp_path / "arms" / "twin"), "--start", str(tmp_path / "start"), *clip_args,
                    "--json", str(out)]) == 0
    twin = [r for r in json.loads(out.read_text())["rows"] if r["arm"] == "twin"]
    for m in ac.METRICS:
        assert all(r["vs_control"][m] == {"diff": 0.0, "lo": 0.0, "hi": 0.0, "clips": 2} for r in twin)
        assert twin[-1]["verdict"][m] == "same"

    # a new snapshot: only it is scored
    monkeypatch.undo()
    calls = []
    real = ac.score_model
    monkeypatch.setattr(ac, "score_model", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    _arm(tmp_path / "arms", "control", 5, marks=(180,))
    assert ac.main([str(control), str(disc4), *clip_args, "--json", str(out)]) == 0
    assert calls == [control / "snap" / "cpu180"]
    rows = json.loads(out.read_text())["rows"]
    assert [r["cpu_mark_s"] for r in rows if r["arm"] == "control"] == [60, 120, 180]  # no --start: no CPU 0
    assert [r["cpu_mark_s"] for r in rows if r["verdict"]] == [120]  # disc4's last mark in common
