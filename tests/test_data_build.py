"""Fast tests of the corpus builder: a tiny FSDD-only corpus and a fake GCompris-voices checkout."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

try:
    from reasoningcodec.data import build as data_build
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from reasoningcodec.data import build as data_build

from reasoningcodec.data.items import GCOMPRIS_URL, MANIFEST_COLUMNS, split_for
from reasoningcodec.data.sources_gcompris import alphabet_text, gcompris_licence, parse_credit
from reasoningcodec.data.sources_real import FSDD_HELD_OUT_SPEAKERS, find_fsdd

needs_fsdd = pytest.mark.skipif(find_fsdd() is None, reason="shared/data/train/fsdd not available")


def _build(out: Path) -> list:
    rc = data_build.main(["build", str(out), "--sources", "fsdd", "--max-clips", "20", "--seed", "3"])
    assert rc == 0
    return data_build.read_manifest(out / "manifest.tsv")


@needs_fsdd
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


GCOMPRIS_LICENSE = """./en/alphabet:
U0061.ogg   Julia Wycherley 2011 / GPL
10.ogg   Julia Wycherley 2011 / GPL

./en/words:
apple.ogg  http://www.art4apps.org/ Creative Common License BY-SA
orange-color.ogg  http://www.art4apps.org/ Creative Common License BY-SA

./fr/geography:
france.ogg  Clara Coudoin 2004 / GPL
spain.ogg  Baptiste Wijas 2002 / FDL

./fr/words:
apple.ogg  Zohra Coudoin 2015 / GPL V3+

./gd/geography/asia:
china.ogg  Public Domain

./pt_BR/colors:
red.ogg  GPL V3+

./th/alphabet:
U0061.ogg  Susan Rich 2003 / GPL
"""


def _fake_gcompris(root: Path) -> None:
    """A miniature GCompris-voices checkout: LICENSE list, Ogg Vorbis tones, a duplicate, links."""
    names = ["en/alphabet/U0061", "en/alphabet/10", "en/words/apple", "en/words/orange-color",
             "fr/geography/france", "fr/geography/spain", "fr/geography/chad", "fr/words/apple",
             "gd/geography/asia/china", "pt_BR/colors/red", "pt_BR/colors/green"]
    t = np.arange(int(0.6 * 44_100)) / 44_100
    for i, name in enumerate(names):  # a different tone each, so no two files are identical
        path = root / f"{name}.ogg"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), 0.3 * np.sin(2 * np.pi * (300 + 40 * i) * t), 44_100, format="OGG", subtype="VORBIS")
    (root / "th/alphabet").mkdir(parents=True)
    shutil.copy(root / "en/alphabet/U0061.ogg", root / "th/alphabet/U0061.ogg")  # byte-identical
    os.symlink("apple.ogg", root / "en/words/alias.ogg")
    os.symlink("fr", root / "nn")
    (root / "LICENSE").write_text(GCOMPRIS_LICENSE, encoding="utf-8")


def test_gcompris_fake_checkout(tmp_path: Path) -> None:
    voices, out = tmp_path / "voices", tmp_path / "corpus"
    _fake_gcompris(voices)
    rc = data_build.main(["build", str(out), "--sources", "gcompris", "--gcompris-dir", str(voices)])
    assert rc == 0
    rows = {r["path"].removeprefix("clips/gcompris/").removesuffix(".flac"): r
            for r in data_build.read_manifest(out / "manifest.tsv")}
    # Left out: the symbolic links, the copy in th/, and fr/geography/chad (not in LICENSE,
    # and its folder has two different credits). pt_BR/colors/green takes its folder's credit.
    assert sorted(rows) == sorted([
        "en__alphabet__U0061", "en__alphabet__10", "en__words__apple", "en__words__orange-color",
        "fr__geography__france", "fr__geography__spain", "fr__words__apple",
        "gd__geography__asia__china", "pt_BR__colors__red", "pt_BR__colors__green"])
    expected = {  # id -> (language, speaker, transcript, licence)
        "en__alphabet__U0061": ("en", "Julia Wycherley", "a", "GPL"),
        "en__alphabet__10": ("en", "Julia Wycherley", "10", "GPL"),
        "en__words__apple": ("en", "art4apps.org", "apple", "CC-BY-SA-3.0"),
        "en__words__orange-color": ("en", "art4apps.org", "", "CC-BY-SA-3.0"),
        "fr__geography__france": ("fr", "Clara Coudoin", "", "GPL"),
        "fr__geography__spain": ("fr", "Baptiste Wijas", "", "GFDL"),
        "fr__words__apple": ("fr", "Zohra Coudoin", "", "GPL-3+"),
        "gd__geography__asia__china": ("gd", "gcompris-gd", "", "public-domain"),
        "pt_BR__colors__red": ("pt-BR", "gcompris-pt-BR", "", "GPL-3+"),
        "pt_BR__colors__green": ("pt-BR", "gcompris-pt-BR", "", "GPL-3+"),
    }
    for iid, (lang, speaker, transcript, lic) in expected.items():
        r = rows[iid]
        assert (r["language"], r["speaker"], r["transcript"], r["license"]) == (lang, speaker, transcript, lic)
        assert r["source"] == "gcompris" and r["category"] == "speech"
        assert r["split"] == split_for("gcompris", iid.replace("__", "/"))
        info = sf.info(str(out / r["path"]))
        assert info.samplerate == 24_000 and info.channels == 1 and 1.0 <= info.duration <= 12.0
    assert rows["fr__words__apple"]["analysis_text"] == (
        "domain: speech. language: French. speaker: GCompris voice (educational software), single word. "
        "content: a word for the concept 'apple'.")
    assert rows["en__alphabet__U0061"]["analysis_text"].endswith("content: the letter 'a'.")
    assert rows["pt_BR__colors__red"]["analysis_text"].startswith("domain: speech. language: Portuguese (BR).")
    assert "content: the place name 'china'." in rows["gd__geography__asia__china"]["analysis_text"]


def test_gcompris_missing_checkout_says_how_to_get_it(tmp_path: Path) -> None:
    missing = tmp_path / "no-voices"
    with pytest.raises(SystemExit, match=re.escape(f"git clone {GCOMPRIS_URL} {missing}")):
        data_build.main(["build", str(tmp_path / "corpus"), "--sources", "gcompris", "--gcompris-dir", str(missing)])


@pytest.mark.parametrize("attribution, credit", [
    ("Hermien Bos 2011 / GPL", ("Hermien Bos", "GPL")),
    ("Julia Wycherley / GPL 3+", ("Julia Wycherley", "GPL-3+")),
    ("Ophavsret Maja Hoehn 2004 / GPL", ("Maja Hoehn", "GPL")),
    ("Makni Bassem <maknibassem on gmail dot com> / GPL", ("Makni Bassem", "GPL")),
    ("Enrico Nicoletto (2013) / GPLv3+", ("Enrico Nicoletto", "GPL-3+")),
    ("Zohra Coudoin 2002 / GPLV3", ("Zohra Coudoin", "GPL-3")),
    ("Navaraj Budha 2002 / GPL V2+", ("Navaraj Budha", "GPL-2+")),
    ("Marina Snaaijer (voice), Ivar Snaaijer (tech) / GPL 2 +", ("Marina Snaaijer", "GPL-2+")),
    ("Dessy Widyasari - cidut_dsy@yahoo.com (voice), Umar Said - umarsaid@gmail.com(editor) 2007 / GPL",
     ("Dessy Widyasari", "GPL")),
    ("Martin ¦ín <martin dot sin on zshk dot cz> / GPL", ("Martin Šín", "GPL")),
    ("Jonas JakÅtys & Rolandas JakÅtys 2013 / GNU GPL V3+ & FreeArt",
     ("Jonas Jakštys & Rolandas Jakštys", "GPL-3+ & FreeArt")),
    ("Smart4Kids.com Creative Common License BY-SA", ("Smart4Kids.com", "CC-BY-SA")),
    ("GPL V3+", ("", "GPL-3+")),
    ("Public Domain", ("", "public-domain")),
])
def test_gcompris_credits(attribution: str, credit: tuple) -> None:
    assert parse_credit(attribution) == credit


def test_gcompris_unknown_licence_is_kept() -> None:
    assert gcompris_licence(" MIT licence ") == "MIT licence"


@pytest.mark.parametrize("stem, text", [
    ("U0061", "a"), ("U0430", "а"), ("U0C85U0C82", "ಅಂ"), ("10", "10"), ("U0085", ""), ("U006H", ""), ("dj", ""),
])
def test_gcompris_alphabet_text(stem: str, text: str) -> None:
    assert alphabet_text(stem) == text
