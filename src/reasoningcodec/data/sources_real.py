"""Real recordings: FSDD (shared data) and Debian packages (tuxpaint, fillets, ktuberling, asterisk).

Each function yields :class:`~reasoningcodec.data.items.Item` objects; a missing
package yields nothing and prints a hint.
"""

from __future__ import annotations

import csv
import gzip
import os
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from .items import BuildConfig, Item, caption, clean_field, lang_name

FSDD_HELD_OUT_SPEAKERS = frozenset({"theo", "yweweler"})
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
FILLETS_DIR = Path("/usr/share/games/fillets-ng")
KTUBERLING_DIR = Path("/usr/share/ktuberling/sounds")
ASTERISK_DIR = Path("/usr/share/asterisk/sounds")


def _missing(name: str, path: Path, pkg: str) -> bool:
    if path.exists():
        return False
    print(f"[{name}] {path} not found: apt-get install {pkg}", file=sys.stderr)
    return True


def find_fsdd(explicit: Optional[Path] = None) -> Optional[Path]:
    """Locate ``shared/data/train/fsdd`` (explicit, $REASONINGCODEC_FSDD, or beside the repo)."""
    cands: List[Path] = []
    if explicit:
        cands.append(Path(explicit))
    if os.environ.get("REASONINGCODEC_FSDD"):
        cands.append(Path(os.environ["REASONINGCODEC_FSDD"]))
    here = Path(__file__).resolve()
    for up in here.parents:
        cands += [up / "shared" / "data" / "train" / "fsdd"]
    cands.append(Path("/work/shared/data/train/fsdd"))
    for c in cands:
        if (c / "manifest.tsv").exists():
            return c
    return None


def fsdd(cfg: BuildConfig) -> Iterator[Item]:
    """Free Spoken Digit Dataset, 8 kHz English digits; held-out speakers and FSDD's test takes excluded."""
    root = find_fsdd(cfg.fsdd_dir)
    if root is None:
        print("[fsdd] shared/data/train/fsdd not found (use --fsdd-dir)", file=sys.stderr)
        return
    data_root = root.parent.parent  # manifest paths are relative to shared/data
    with (root / "manifest.tsv").open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            spk = row["speaker"]
            if spk in FSDD_HELD_OUT_SPEAKERS or row.get("split", "train") == "test":
                continue
            path = data_root / row["path"]
            if not path.exists():
                path = root / "recordings" / Path(row["path"]).name
            word = DIGIT_WORDS[int(row["digit"])]
            yield Item(
                source="fsdd", item_id=path.stem, category="speech", group=path.stem,
                license="CC-BY-SA-4.0", language="en", speaker=f"fsdd_{spk}", transcript=word,
                analysis_text=caption("speech", language="English",
                                      speaker=f"FSDD speaker {spk}, 8 kHz recording",
                                      content=f"the spoken digit {word}"),
                path=path,
            )


_SUFFIX_RE = re.compile(r"^(?P<stem>.+?)_(?P<loc>[a-z]{2,3}(?:_[A-Za-z]{2})?)$")


def _stamp_texts(txt: Path) -> Dict[str, str]:
    """Parse a tuxpaint stamp .txt: first line English, then ``locale.utf8=text`` lines."""
    out: Dict[str, str] = {}
    if not txt.exists():
        return out
    lines = txt.read_text(encoding="utf-8", errors="replace").splitlines()
    if lines:
        out["en"] = lines[0].strip()
    for line in lines[1:]:
        m = re.match(r"^([A-Za-z_@]+)\.utf8=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip()
    return out


def _lookup(texts: Dict[str, str], loc: str) -> str:
    for key in (loc, loc.lower(), loc.split("_")[0]):
        if key in texts:
            return texts[key]
    if loc.lower() in ("zh_tw",):
        return texts.get("zh_TW", "")
    return ""


def tuxpaint(cfg: BuildConfig) -> Iterator[Item]:
    """Tux Paint stamps: ``*_desc*`` spoken descriptions (speech) and stamp sound effects (sound)."""
    if _missing("tuxpaint", TUXPAINT_DIR, "tuxpaint-stamps-default"):
        return
    lic = "GPL-2"
    files = sorted(p for p in TUXPAINT_DIR.rglob("*") if p.suffix.lower() in (".ogg", ".wav"))
    for p in files:
        name = p.name.split(".")[0]
        rel_dir = p.parent.relative_to(TUXPAINT_DIR).as_posix()
        tags = ", ".join(t for t in rel_dir.split("/") if t != "cartoon")
        iid = f"{rel_dir}/{p.name.split('.')[0]}".replace("/", "__")
        if p.suffix.lower() == ".wav":
            iid += "_wav"
        if "_desc" in name:
            stem, _, loc = name.partition("_desc")
            loc = loc.lstrip("_") or "en"
            texts = _stamp_texts(p.parent / f"{stem}.txt")
            text = _lookup(texts, loc)
            lang = loc.replace("_", "-")
            yield Item(
                source="tuxpaint", item_id=iid, category="speech", group=f"{rel_dir}/{stem}",
                license=lic, language=lang, transcript=text,
                analysis_text=caption("speech", language=lang_name(loc),
                                      speaker="Tux Paint volunteer narrator",
                                      content=text or f"a description of the picture '{stem.replace('_', ' ')}'"),
                path=p,
            )
            continue
        m = _SUFFIX_RE.match(name)
        has_loc = (m is not None and not (p.parent / f"{name}.txt").exists()
                   and (p.parent / f"{m.group('stem')}.txt").exists())
        loc = m.group("loc") if (m is not None and has_loc) else ""
        stem = m.group("stem") if loc else name
        texts = _stamp_texts(p.parent / f"{stem}.txt")
        if rel_dir.startswith("symbols"):  # spoken digits / letters
            loc = loc or ("de" if "german" in rel_dir else "en")
            word = _lookup(texts, loc)
            yield Item(
                source="tuxpaint", item_id=iid, category="speech", group=f"{rel_dir}/{stem}",
                license=lic, language=loc.replace("_", "-"),
                analysis_text=caption("speech", language=lang_name(loc),
                                      content=f"the spoken name of the symbol '{stem.split('_')[0]}'"
                                      + (f" ({word})" if word else "")),
                path=p,
            )
            continue
        event = re.sub(r"[_-]+", " ", stem).strip()
        yield Item(
            source="tuxpaint", item_id=iid, category="sound", group=f"{rel_dir}/{stem}",
            license=lic,
            analysis_text=caption("sound", event=event, description=texts.get("en", ""), tags=tags),
            path=p,
        )


_DIALOG_RE = re.compile(
    r'dialogId\(\s*"([^"]+)"\s*,\s*(?:"([^"]*)"|nil)\s*,\s*"((?:[^"\\]|\\.)*)"\s*\)'
    r'(?:\s*dialogStr\(\s*"((?:[^"\\]|\\.)*)"\s*\))?', re.S)


def _fillets_dialogs(level_dir: Path, lang: str) -> Dict[str, Tuple[str, str, str]]:
    """id -> (font, English text, translated text) from ``dialogs_<lang>.lua``."""
    f = level_dir / f"dialogs_{lang}.lua"
    if not f.exists():
        return {}
    src = f.read_text(encoding="utf-8", errors="replace")
    return {m.group(1): (m.group(2) or "", m.group(3), m.group(4) or "") for m in _DIALOG_RE.finditer(src)}


def _font_speaker(font: str) -> str:
    return {"font_small": "small fish", "font_big": "big fish"}.get(font, font.replace("font_", "") or "unknown")


def fillets(cfg: BuildConfig) -> Iterator[Item]:
    """Fish Fillets NG: Czech voice acting with subtitles, plus the game's music and effects."""
    if _missing("fillets", FILLETS_DIR, "fillets-ng-data fillets-ng-data-cs"):
        return
    lic = "GPL-2"
    sound = FILLETS_DIR / "sound"
    for p in sorted(sound.rglob("*.ogg")):
        rel = p.relative_to(sound)
        iid = rel.with_suffix("").as_posix().replace("/", "__")
        if rel.parts[0] == "share":
            yield Item(source="fillets", item_id=iid, category="sound", group=iid, license=lic,
                       analysis_text=caption("sound", event="underwater game effect "
                                             + re.sub(r"[_\d-]+", " ", p.stem.replace("sp-", "")).strip()),
                       path=p)
            continue
        level, lang = rel.parts[0], rel.parts[1]
        d = _fillets_dialogs(FILLETS_DIR / "script" / level, lang)
        font, en_text, tr_text = d.get(p.stem, ("", "", ""))
        text = tr_text if lang != "en" else en_text
        spk = _font_speaker(font)
        if lang == "cs":
            yield Item(
                source="fillets", item_id=iid, category="speech", group=iid, license=lic,
                language="cs", speaker=f"fillets_cs_{spk.replace(' ', '_')}", transcript=text,
                analysis_text=caption("speech", language="Czech",
                                      speaker=f"voice actor, game character {spk}, expressive acted dialogue",
                                      content=text, meaning=en_text if en_text != text else ""),
                path=p,
            )
        else:  # untranslated character voices and effects shipped for every language
            yield Item(
                source="fillets", item_id=iid, category="speech" if en_text else "sound", group=iid,
                license=lic, speaker=f"fillets_{spk.replace(' ', '_')}" if en_text else "",
                analysis_text=caption("speech", speaker=f"game character {spk}",
                                      subtitle=en_text) if en_text else
                caption("sound", event=f"game sound effect {p.stem}"),
                path=p,
            )
    for p in sorted((FILLETS_DIR / "music").glob("*.ogg")):
        yield Item(source="fillets", item_id=f"music__{p.stem}", category="music",
                   group=f"music/{p.stem}", license=lic, trim=False,
                   analysis_text=caption("music", genre="video game soundtrack",
                                         track=f"Fish Fillets NG {p.stem}"),
                   path=p)


def ktuberling(cfg: BuildConfig) -> Iterator[Item]:
    """KTuberling: short spoken words (names of toy parts) in ~20 languages."""
    if _missing("ktuberling", KTUBERLING_DIR, "ktuberling-data"):
        return
    for theme in sorted(KTUBERLING_DIR.glob("*.soundtheme")):
        try:
            root = ET.parse(theme).getroot()
        except ET.ParseError:
            continue
        code = root.get("code") or theme.stem
        for snd in root.iter("sound"):
            rel, concept = snd.get("file"), snd.get("name", "")
            if not rel or not (KTUBERLING_DIR / rel).exists():
                continue
            p = KTUBERLING_DIR / rel
            word = concept.replace("_", " ")
            yield Item(
                source="ktuberling", item_id=f"{code}__{p.stem}", category="speech",
                group=f"{code}/{p.stem}", license="GPL-2+", language=code.replace("_", "-"),
                speaker=f"ktuberling_{code}",
                transcript=word if code == "en" else "",
                analysis_text=caption("speech", language=lang_name(code),
                                      content=f"a single word naming '{word}'"),
                path=p,
            )


ASTERISK_VOICES = {  # dir -> (lang code, doc lang, speaker, gender, licence)
    "en_US_f_Allison": ("en-US", "en", "Allison Smith", "female", "CC-BY-SA-3.0"),
    "es_MX_f_Allison": ("es-MX", "es", "Allison Smith", "female", "CC-BY-SA-3.0"),
    "fr_CA_f_June": ("fr-CA", "fr", "June Wallack", "female", "CC-BY-SA-3.0"),
    "it_IT_m_Carlo": ("it-IT", "it", "Carlo Flora", "male", "CC-BY-3.0"),
    "ru_RU_f_IvrvoiceRU": ("ru-RU", "ru", "IvrvoiceRU (Maxim Topal)", "female", "CC-BY-3.0"),
}


def _asterisk_texts(lang: str) -> Dict[str, str]:
    f = Path(f"/usr/share/doc/asterisk-core-sounds-{lang}/core-sounds-{lang}.txt.gz")
    out: Dict[str, str] = {}
    if not f.exists():
        return out
    with gzip.open(f, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            line = line.lstrip("\ufeff")
            if line.startswith(";") or ":" not in line:
                continue
            key, _, text = line.partition(":")
            out[key.strip()] = clean_field(text)
    return out


def asterisk(cfg: BuildConfig) -> Iterator[Item]:
    """Asterisk PBX prompts (G.722, 16 kHz telephone band): source ``asterisk_tel``."""
    if _missing("asterisk_tel", ASTERISK_DIR, "asterisk-core-sounds-en-g722 (+es,fr,it,ru)"):
        return
    for d, (lang, doc_lang, spk, gender, lic) in ASTERISK_VOICES.items():
        vdir = ASTERISK_DIR / d
        if not vdir.is_dir():
            continue
        texts = _asterisk_texts(doc_lang)
        for p in sorted(vdir.rglob("*.g722")):
            key = p.relative_to(vdir).with_suffix("").as_posix()
            if key.startswith("silence/"):
                continue
            text = texts.get(key, "")
            yield Item(
                source="asterisk_tel", item_id=f"{d}__{key.replace('/', '__')}", category="speech",
                group=f"{d}/{key}", license=lic, language=lang, speaker=f"asterisk_{d}",
                transcript=text,
                analysis_text=caption("speech", language=lang_name(lang.replace("-", "_")),
                                      speaker=f"{spk}, {gender}, professional voice prompt",
                                      channel="telephone band, G.722 16 kHz", content=text),
                path=p,
            )
