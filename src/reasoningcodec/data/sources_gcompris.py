"""GCompris-voices: real recorded speech of the GCompris educational software, 43 languages.

A checkout of https://github.com/gcompris/GCompris-voices (``--gcompris-dir``, default
``data/gcompris-voices``) holds ``<lang>/<category>/[<region>/]<name>.ogg``: letters and
numbers (``alphabet``), colours, place names (``geography``, ``geo_country``, ``france``),
words named by their English concept (``words``), short game phrases (``misc``) and activity
introductions (``intro``). Contributor and licence of each file come from the
repository's ``LICENSE`` list (``./<lang>/<category>:`` headers, then
``<name>.ogg  <who> <year> / <licence>`` lines).
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

from .items import GCOMPRIS_URL, BuildConfig, Item, caption, clean_field, lang_name

GCOMPRIS_KINDS: Dict[str, str] = {  # category folder -> how its recordings are spoken
    "alphabet": "single letter or number",
    "colors": "single word",
    "words": "single word",
    "geography": "place name",
    "geo_country": "place name",
    "france": "place name",
    "misc": "short word or phrase",
    "intro": "activity introduction",
}

DECIMAL_ALPHABETS = frozenset({"pa"})
"""Language folders whose ``alphabet`` letters are numbered U0061..U0086 in decimal (no U006A-U006F):
their names are not code points, so those letters get no transcript (digits and numbers still do)."""

_NAME_FIXES = (("¦ín", "Šín"), ("JakÅtys", "Jakštys"))
"""Mojibake in ``LICENSE``: Latin-9 ``Š`` read as Latin-1; UTF-8 ``š`` read as Latin-1, one byte lost."""

Credit = Tuple[str, str]
"""``(contributor name, licence)``; the name is empty when ``LICENSE`` gives only a licence."""


def gcompris_licence(text: str, credit: str = "") -> str:
    """SPDX-style id of a ``LICENSE`` licence text (``GPL V3+`` -> ``GPL-3+``, ``FDL`` -> ``GFDL``).

    ``GPL`` without a version stays ``GPL``. ``credit`` is the whole attribution: Art4Apps
    recordings are CC BY-SA 3.0 (``en/words/README``); other CC BY-SA credits give no version.
    Unknown texts are returned cleaned but unchanged.
    """
    norm = re.sub(r"\s+", "", text).upper().rstrip("/")
    if re.fullmatch(r"(?:CREATIVECOMMONS?LICEN[CS]E|CC)BY-SA", norm):
        return "CC-BY-SA-3.0" if "art4apps" in credit.lower() else "CC-BY-SA"
    if norm == "PUBLICDOMAIN":
        return "public-domain"
    if norm == "FDL":
        return "GFDL"
    m = re.fullmatch(r"(?:GNU)?GPLV?(\d)?(\+)?(&FREEART)?", norm)
    if m:
        version, plus, free_art = m.groups()
        return "GPL" + (f"-{version}" if version else "") + (plus or "") + (" & FreeArt" if free_art else "")
    return clean_field(text)


def _credit_name(who: str) -> str:
    """Contributor of an attribution: the voice where roles are given, without e-mails and years."""
    for bad, good in _NAME_FIXES:
        who = who.replace(bad, good)
    if "(voice)" in who:
        who = next(part for part in who.split(",") if "(voice)" in part)
    who = re.sub(r"<[^>]*>|\S+@\S+|\((?:voice|tech|editor|\d{4})\)|\b(?:19|20)\d\d\b|https?://(?:www\.)?",
                 "", who)
    who = re.sub(r"^\s*(?:Copyright|Ophavsret)\s+", "", who)
    return clean_field(who).strip(" -/")


def parse_credit(attribution: str) -> Credit:
    """Split a ``LICENSE`` attribution (``Hermien Bos 2011 / GPL``) into name and licence."""
    who, sep, lic = attribution.rpartition(" / ")
    if not sep:  # "http://www.art4apps.org/ Creative Common License BY-SA", "GPL V3+", "Public Domain"
        m = re.search(r"Creative Commons? Licen[cs]e", attribution)
        who, lic = (attribution[:m.start()], attribution[m.start():]) if m else ("", attribution)
    return _credit_name(who), gcompris_licence(lic, attribution)


def read_credits(license_file: Path) -> Dict[str, Credit]:
    """``<lang>/<category>/<name>.ogg`` -> credit, from the repository's ``LICENSE`` list."""
    credits: Dict[str, Credit] = {}
    folder = ""
    for line in license_file.read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        header = re.fullmatch(r"\./(.+):", line)
        if header:
            folder = header.group(1)
            continue
        parts = line.split(None, 1)
        if len(parts) == 2 and folder:
            credits[f"{folder}/{parts[0]}"] = parse_credit(parts[1])
    return credits


def _folder_credits(credits: Dict[str, Credit]) -> Dict[str, Credit]:
    """Folder -> its credit, for folders whose listed files all share one (name, licence)."""
    seen: Dict[str, Set[Credit]] = {}
    for rel, credit in credits.items():
        seen.setdefault(rel.rpartition("/")[0], set()).add(credit)
    return {folder: next(iter(c)) for folder, c in seen.items() if len(c) == 1}


def gcompris_files(root: Path) -> List[Path]:
    """``.ogg`` recordings in the category folders under ``root``, sorted.

    Symbolic links (duplicates, such as ``nn -> nb``) and hidden folders are left out.
    """
    out: List[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):  # does not descend into linked folders
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        here = Path(dirpath)
        if len(here.relative_to(root).parts) < 2:  # the root and the language folders
            continue
        out += [here / f for f in filenames if f.endswith(".ogg") and not (here / f).is_symlink()]
    return sorted(out)


def alphabet_text(stem: str) -> str:
    """Text of an ``alphabet`` file name: ``U0061`` -> ``a``, ``U0C85U0C82`` -> ``ಅಂ``, ``10``.

    "" when unknown, or when a code point is not printable (such as U0085).
    """
    if re.fullmatch(r"(?:U[0-9A-Fa-f]{4})+", stem):
        text = "".join(chr(int(stem[i + 1:i + 5], 16)) for i in range(0, len(stem), 5))
        return text if text.isprintable() else ""
    return stem if stem.isdigit() else ""


def _content(category: str, stem: str, text: str) -> str:
    """Caption ``content`` of one recording, from its category, file name and known text."""
    concept = re.sub(r"[_-]+", " ", stem).strip()
    if category == "alphabet":
        if not text:
            return f"a letter of the alphabet ('{stem}')"
        return f"the number {text}" if text.isdigit() else f"the letter '{text}'"
    if category == "colors":
        return f"the colour '{concept}'"
    if category == "words":
        return f"the word '{text}'" if text else f"a word for the concept '{concept}'"
    if category == "intro":
        return f"the spoken introduction of the activity '{concept}'"
    if category == "misc":
        return f"a short game word or phrase ('{concept}')"
    if GCOMPRIS_KINDS.get(category) == "place name":
        return f"the place name '{concept}'"
    return f"a recording named '{concept}'"


def gcompris(cfg: BuildConfig) -> Iterator[Item]:
    """GCompris-voices: letters, numbers, colours, place names, words, phrases and intros.

    Transcripts only where the file name gives the text for certain: ``alphabet`` letters
    and numbers (all languages) and English ``colors``/``words``; the English concept is
    in the caption otherwise. Byte-identical files are kept once, files without a
    ``LICENSE`` entry only when their folder has a single credit.
    """
    root = Path(cfg.gcompris_dir)
    if not (root / "LICENSE").is_file():
        raise SystemExit(f"[gcompris] {root} is not a GCompris-voices checkout: "
                         f"git clone {GCOMPRIS_URL} {root}  (or pass --gcompris-dir DIR)")
    credits = read_credits(root / "LICENSE")
    folder_credits = _folder_credits(credits)
    seen: Set[str] = set()
    duplicates = unlicensed = 0
    for p in gcompris_files(root):
        rel = p.relative_to(root).as_posix()
        credit = credits.get(rel) or folder_credits.get(rel.rpartition("/")[0])
        if credit is None:
            unlicensed += 1
            continue
        digest = hashlib.sha1(p.read_bytes()).hexdigest()
        if digest in seen:
            duplicates += 1
            continue
        seen.add(digest)
        folder, category = rel.split("/")[:2]
        lang = folder.replace("_", "-")
        name, lic = credit
        if category == "alphabet":
            text = alphabet_text(p.stem)
            if folder in DECIMAL_ALPHABETS and not text.isdigit():
                text = ""
        elif folder == "en" and category in ("colors", "words") and re.fullmatch(r"[a-z]+", p.stem):
            text = p.stem
        else:
            text = ""
        kind = GCOMPRIS_KINDS.get(category, "short recording")
        group = rel.rpartition(".")[0]
        yield Item(
            source="gcompris", item_id=group.replace("/", "__"), category="speech", group=group,
            license=lic, language=lang, speaker=name or f"gcompris-{lang}", transcript=text,
            analysis_text=caption("speech", language=lang_name(folder),
                                  speaker=f"GCompris voice (educational software), {kind}",
                                  content=_content(category, p.stem, text)),
            path=p,
        )
    if duplicates or unlicensed:
        print(f"[gcompris] skipped {duplicates} byte-identical duplicates and {unlicensed} files "
              "without a LICENSE entry", file=sys.stderr)
