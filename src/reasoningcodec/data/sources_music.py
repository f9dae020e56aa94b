"""Music: Warzone 2100 soundtrack (real tracks) and FluidSynth renders of MIDI/scores.

``midi`` renders scores from the music21 corpus (public-domain compositions) with a
random General MIDI instrument per part, tempo, velocity and transposition, plus the
OpenMSX MIDI set as arranged; each render is cropped to one 8-12 s window.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import numpy as np

from .items import BuildConfig, Item, caption

WARZONE_DIR = Path("/usr/share/games/warzone2100/music/albums")
OPENMSX_DIR = Path("/usr/share/games/openttd/baseset/openmsx")
SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
SF_LICENSE = "FluidR3_GM soundfont MIT"

WARZONE_LICENSE = {
    "aftermath_soundtrack": "CC-BY-SA-3.0+ or GPL-2+",
    "legacy_soundtrack": "CC-BY-SA-3.0+ or GPL-2+",
    "original_soundtrack": "GPL-2+",
}


def warzone(cfg: BuildConfig) -> Iterator[Item]:
    """Warzone 2100 music tracks, cut into 10 s segments."""
    if not WARZONE_DIR.exists():
        print("[warzone] not found: apt-get install warzone2100-music", file=sys.stderr)
        return
    for album_dir in sorted(p for p in WARZONE_DIR.iterdir() if p.is_dir()):
        meta: Dict[str, Dict[str, object]] = {}
        album_title, album_author = album_dir.name.replace("_", " "), ""
        mf = album_dir / "album.json"
        if mf.exists():
            album = json.loads(mf.read_text(encoding="utf-8"))
            album_title, album_author = str(album.get("title", album_title)), str(album.get("author", ""))
            meta = {str(t["filename"]): t for t in album.get("tracks", [])}
        for p in sorted(album_dir.glob("*.opus")):
            t = meta.get(p.name, {})
            bpm = t.get("bpm")
            lic = WARZONE_LICENSE.get(album_dir.name, "GPL-2+")
            if p.stem == "track3_enhanced":
                lic = "GPL-2+"
            yield Item(
                source="warzone", item_id=f"{album_dir.name}__{p.stem}", category="music",
                group=f"{album_dir.name}/{p.stem}", license=lic, trim=False, seg_s=10.0,
                analysis_text=caption(
                    "music", genre="video game soundtrack, electronic and orchestral",
                    track=f"'{t.get('title', p.stem)}' by {t.get('author', album_author)}",
                    album=f"Warzone 2100 {album_title}",
                    tempo=f"{bpm} bpm" if bpm and bpm != 80 else ""),
                path=p,
            )


# General MIDI programs (0-based) used for random orchestration.
GM: Dict[int, str] = {
    0: "acoustic grand piano", 1: "bright piano", 4: "electric piano", 6: "harpsichord",
    8: "celesta", 11: "vibraphone", 12: "marimba", 13: "xylophone", 16: "drawbar organ",
    19: "church organ", 21: "accordion", 22: "harmonica", 24: "nylon guitar",
    25: "steel guitar", 26: "jazz guitar", 27: "clean electric guitar", 32: "acoustic bass",
    33: "electric bass", 40: "violin", 41: "viola", 42: "cello", 43: "contrabass",
    45: "pizzicato strings", 46: "harp", 48: "string ensemble", 52: "choir aahs",
    53: "voice oohs", 56: "trumpet", 57: "trombone", 58: "tuba", 60: "french horn",
    61: "brass section", 64: "soprano sax", 65: "alto sax", 66: "tenor sax", 68: "oboe",
    69: "english horn", 70: "bassoon", 71: "clarinet", 72: "piccolo", 73: "flute",
    74: "recorder", 75: "pan flute", 79: "ocarina", 80: "square lead", 81: "sawtooth lead",
    88: "new age pad", 89: "warm pad", 105: "banjo", 108: "kalimba", 114: "steel drums",
}
STYLE = {
    "bach": "Baroque chorale or cantata movement by J. S. Bach",
    "palestrina": "Renaissance vocal polyphony by Palestrina",
    "monteverdi": "late Renaissance madrigal by Monteverdi",
    "trecento": "14th-century Italian song (trecento)",
    "mozart": "Classical-era music by Mozart",
    "haydn": "Classical-era music by Haydn",
    "beethoven": "music by Beethoven",
}
COMPOSER_WEIGHTS = {"bach": 0.45, "palestrina": 0.2, "monteverdi": 0.15, "trecento": 0.12,
                    "mozart": 0.03, "haydn": 0.02, "beethoven": 0.03}
SCORE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".mid", ".midi")  # not RomanText analyses
MAX_RENDER_S = 30  # fluidsynth wall-clock limit per render


def fluidsynth_render(mid: Path, sr: int = 24_000, gain: float = 0.6,
                      max_s: float = 400.0) -> np.ndarray:
    """Render a MIDI file with FluidSynth (FluidR3 GM) to mono float32 at ``sr``.

    Some MIDI files make ``fluidsynth -F`` render forever (a voice that never ends),
    so raw 16-bit stereo PCM is written and the process is stopped once ``max_s``
    seconds of audio exist or after :data:`MAX_RENDER_S` of wall-clock time.
    """
    with tempfile.TemporaryDirectory() as td:
        raw = Path(td) / "s.raw"
        limit = int(max_s * sr) * 4
        proc = subprocess.Popen(["fluidsynth", "-ni", "-q", "-g", str(gain), "-r", str(sr),
                                 "-T", "raw", "-O", "s16", "-F", str(raw), str(SOUNDFONT), str(mid)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        try:
            while proc.poll() is None:
                time.sleep(0.02)
                size = raw.stat().st_size if raw.exists() else 0
                if size >= limit or time.monotonic() - t0 > MAX_RENDER_S:
                    proc.kill()
                    break
        finally:
            proc.wait()
        data = np.fromfile(raw, dtype="<i2") if raw.exists() else np.zeros(0, dtype="<i2")
    data = data[: min(data.size, limit // 2) // 2 * 2].reshape(-1, 2)
    return (data.astype(np.float32).mean(axis=1) / 32768.0).astype(np.float32)


def crop_window(x: np.ndarray, sr: int, rng: random.Random, lo: float = 8.0,
                hi: float = 12.0) -> np.ndarray:
    """Random ``lo``..``hi`` s window from the non-silent part of ``x``; loudness lifted to peak 0.7."""
    nz = np.nonzero(np.abs(x) > 1e-3)[0]
    if nz.size:
        x = x[nz[0]: nz[-1] + 1]
    n = int(rng.uniform(lo, hi) * sr)
    if x.size > n:
        s = rng.randrange(0, x.size - n)
        x = x[s: s + n]
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if 0.0 < peak < 0.7:
        x = x * (0.7 / peak)
    return x.astype(np.float32)


def score_excerpt(score: "object", bpm: int, rng: random.Random, seconds: float = 15.0) -> "object":
    """About ``seconds`` of measures at ``bpm`` from a random start (whole score if short)."""
    try:
        measures = list(score.parts[0].getElementsByClass("Measure"))  # type: ignore[attr-defined]
        if len(measures) < 4:
            return score
        bar_ql = float(measures[len(measures) // 2].barDuration.quarterLength) or 4.0
        n = max(2, int(seconds * bpm / 60.0 / bar_ql) + 1)
        first = int(measures[0].number or 0)
        last = int(measures[-1].number or len(measures))
        if last - first + 1 <= n:
            return score
        start = rng.randint(first, last - n + 1)
        return score.measures(start, start + n - 1)  # type: ignore[attr-defined]
    except Exception:  # odd scores: fall back to the whole piece
        return score


def orchestrate(parts: List["object"], progs: List[int], vel: int, rng: random.Random) -> None:
    """Give each music21 part the General MIDI program ``progs[i]`` (its old instrument and tempo marks
    removed) and a velocity around ``vel`` (±8 per note)."""
    from music21 import instrument

    for part, prog in zip(parts, progs):
        for el in list(part.recurse().getElementsByClass(("Instrument", "MetronomeMark"))):
            el.activeSite.remove(el)
        inst = instrument.instrumentFromMidiProgram(prog)
        inst.midiProgram = prog
        part.insert(0, inst)
        for n in part.recurse().notes:
            n.volume.velocity = max(1, min(127, vel + rng.randint(-8, 8)))


def _render_score(path: str, rng: random.Random) -> Tuple[np.ndarray, int, Dict[str, str]]:
    """Parse a music21 corpus score, re-orchestrate, render, crop; returns caption facts."""
    from music21 import corpus, tempo

    full = corpus.parse(path)
    semis = rng.randint(-5, 6)
    bpm = rng.randrange(60, 161, 2)
    score = score_excerpt(full, bpm, rng)
    parts = list(score.parts)[:8]
    vel = rng.randint(45, 115)
    if rng.random() < 0.35:
        progs = [rng.choice(list(GM))] * len(parts)
    else:
        progs = [rng.choice(list(GM)) for _ in parts]
    try:
        k = full.analyze("key")
        key_name = f"{k.transpose(semis).tonic.name.replace('-', 'b')} {k.mode}"
    except Exception:  # analysis is best effort
        key_name = ""
    orchestrate(parts, progs, vel, rng)
    for part in list(score.parts)[8:]:
        score.remove(part)
    score.transpose(semis, inPlace=True)
    score.parts[0].insert(0, tempo.MetronomeMark(number=bpm))
    expected_s = float(score.duration.quarterLength) * 60.0 / bpm + 3.0
    with tempfile.TemporaryDirectory() as td:
        mid = Path(td) / "s.mid"
        try:
            score.write("midi", fp=str(mid))
        except Exception:  # e.g. badly formed repeats: drop repeat marks and write unexpanded
            for el in list(score.recurse().getElementsByClass(("Repeat", "RepeatExpression"))):
                el.activeSite.remove(el)
            score.write("midi", fp=str(mid))
        x, sr = fluidsynth_render(mid, max_s=min(400.0, max(12.0, expected_s))), 24_000
    names = []
    for prog in progs:
        if GM[prog] not in names:
            names.append(GM[prog])
    facts = {"instruments": ", ".join(names), "tempo": f"{bpm} bpm", "key": key_name,
             "transposition": f"{semis:+d} semitones", "parts": str(len(parts)),
             "dynamics": "soft" if vel < 65 else ("loud" if vel > 95 else "moderate")}
    return crop_window(x, sr, rng), sr, facts


def _render_midi_file(mid: Path, rng: random.Random) -> Tuple[np.ndarray, int, Dict[str, str]]:
    """Render a MIDI file as arranged; instrument names read with music21 when possible."""
    facts: Dict[str, str] = {}
    try:
        from music21 import converter, instrument

        s = converter.parse(str(mid))
        names = []
        for inst in s.recurse().getElementsByClass(instrument.Instrument):
            nm = (inst.instrumentName or "").lower()
            if inst.midiProgram is not None and inst.midiProgram in GM:
                nm = GM[inst.midiProgram]
            if nm and nm not in names:
                names.append(nm)
        marks = s.metronomeMarkBoundaries()
        if marks:
            facts["tempo"] = f"{int(round(marks[0][2].number))} bpm"
        facts["instruments"] = ", ".join(names[:8])
    except Exception:  # metadata is best effort; the audio is what matters
        pass
    x, sr = fluidsynth_render(mid), 24_000
    return crop_window(x, sr, rng), sr, facts


def score_paths() -> Dict[str, List[str]]:
    """music21 corpus score paths per composer of :data:`COMPOSER_WEIGHTS`."""
    from music21 import corpus

    out: Dict[str, List[str]] = {}
    for comp in COMPOSER_WEIGHTS:
        try:
            paths = sorted({str(p) for p in corpus.getComposer(comp)
                            if Path(str(p)).suffix.lower() in SCORE_SUFFIXES})
        except Exception:
            paths = []
        if paths:
            out[comp] = paths
    return out


def midi(cfg: BuildConfig) -> Iterator[Item]:
    """``cfg.midi_renders`` FluidSynth renders (90% music21 corpus, 10% OpenMSX)."""
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        print("[midi] apt-get install fluidsynth fluid-soundfont-gm", file=sys.stderr)
        return
    rng = random.Random(f"midi|{cfg.seed}")
    try:
        scores = score_paths()
    except ImportError:
        print("[midi] music21 missing (pip install music21): only OpenMSX", file=sys.stderr)
        scores = {}
    msx = sorted(OPENMSX_DIR.glob("*.mid")) if OPENMSX_DIR.exists() else []
    comps = list(scores)
    weights = [COMPOSER_WEIGHTS[c] for c in comps]
    for i in range(cfg.midi_renders):
        seed = rng.randrange(1 << 30)
        if msx and (not comps or rng.random() < 0.1):
            mid = rng.choice(msx)

            def render_msx(mid: Path = mid, seed: int = seed) -> Tuple[np.ndarray, int, Dict[str, str]]:
                x, sr, facts = _render_midi_file(mid, random.Random(seed))
                return x, sr, {"analysis_text": caption(
                    "music", instruments=facts.get("instruments", ""), tempo=facts.get("tempo", ""),
                    style="OpenTTD OpenMSX game music (MIDI), rendered with FluidSynth")}

            yield Item(source="midi", item_id=f"{i:05d}_openmsx_{mid.stem}", category="music",
                       group=f"openmsx/{mid.stem}", license=f"GPL-2.0 (OpenMSX); {SF_LICENSE}",
                       trim=False, render=render_msx)
            continue
        comp = rng.choices(comps, weights)[0]
        path = rng.choice(scores[comp])

        def render_score(path: str = path, seed: int = seed, comp: str = comp
                         ) -> Tuple[np.ndarray, int, Dict[str, str]]:
            x, sr, f = _render_score(path, random.Random(seed))
            text = caption("music", instruments=f["instruments"], tempo=f["tempo"], key=f["key"],
                           dynamics=f["dynamics"], texture=f"{f['parts']} part" + ("" if f["parts"] == "1" else "s"),
                           style=f"{STYLE[comp]} ({Path(path).stem}), transposed {f['transposition']}, "
                                 "rendered with FluidSynth")
            return x, sr, {"analysis_text": text}

        yield Item(source="midi", item_id=f"{i:05d}_{comp}_{Path(path).stem}", category="music",
                   group=f"{comp}/{Path(path).name}",
                   license=f"public-domain composition (music21 corpus, BSD-3); {SF_LICENSE}",
                   trim=False, render=render_score)
