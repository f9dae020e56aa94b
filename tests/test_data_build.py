"""Fast test of the corpus builder on a tiny FSDD-only corpus."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import soundfile as sf

try:
    from reasoningcodec.data import build as data_build
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from reasoningcodec.data import build as data_build

from reasoningcodec.data.items import MANIFEST_COLUMNS, split_for
from reasoningcodec.data.sources_real import FSDD_HELD_OUT_SPEAKERS, find_fsdd

pytestmark = pytest.mark.skipif(find_fsdd() is None, reason="shared/data/train/fsdd not available")


def _build(out: Path) -> list:
    rc = data_build.main(["build", str(out), "--sources", "fsdd", "--max-clips", "20", "--seed", "3"])
    assert rc == 0
    return data_build.read_manifest(out / "manifest.tsv")


def test_fsdd_tiny_corpus(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    rows = _build(out)
    assert len(rows) == 20
    header = (out / "manifest.tsv").read_text(encoding="utf-8").splitlines()[0].split("\t")
    assert tuple(header) == MANIFEST_COLUMNS
    for r in rows:
        assert r["source"] == "fsdd" and r["category"] == "speech"
        assert r["split"] in ("train", "val")
        assert r["license"] == "CC-BY-SA-4.0"
        assert r["transcript"] and r["analysis_text"].startswith("domain: speech.")
        spk = r["speaker"].removeprefix("fsdd_")
        assert spk not in FSDD_HELD_OUT_SPEAKERS
        assert not any(h in r["path"] for h in FSDD_HELD_OUT_SPEAKERS)
        info = sf.info(str(out / r["path"]))
        assert info.samplerate == 24_000 and info.channels == 1
        assert info.subtype == "PCM_16" and info.format == "FLAC"
        assert 1.0 <= info.duration <= 12.0
        assert abs(info.duration - float(r["duration_s"])) < 0.01

    # Resuming writes nothing new and gives the same manifest.
    before = (out / "manifest.tsv").read_text(encoding="utf-8")
    _build(out)
    assert (out / "manifest.tsv").read_text(encoding="utf-8") == before

    # A fresh build makes the same clips with the same splits.
    rows2 = _build(tmp_path / "again")
    assert {r["path"]: r["split"] for r in rows} == {r["path"]: r["split"] for r in rows2}


def test_split_is_deterministic_and_about_two_percent() -> None:
    groups = [f"file{i}" for i in range(5000)]
    a = [split_for("fsdd", g) for g in groups]
    assert a == [split_for("fsdd", g) for g in groups]
    frac = a.count("val") / len(a)
    assert 0.01 < frac < 0.03
