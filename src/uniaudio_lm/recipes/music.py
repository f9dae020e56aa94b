"""Music recipes: midi_caption (text_to_music, music_caption) and sung_lyrics (song, lyric_recognition)."""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import soundfile as sf

from reasoningcodec.data.audio import resample
from reasoningcodec.data.sources_espeak import VARIANTS
from reasoningcodec.data.sources_music import (GM, SOUNDFONT, crop_window, fluidsynth_render, orchestrate,
                                               score_excerpt, score_paths)

from .common import (SR, Context, RecipeError, Voice, fade, n_words, need_espeak, need_pinyin, peak_norm, rms,
                     sentences, speak_raw, stable_hash, PLAIN_VARIANTS)

Rows = Dict[str, List[dict]]
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def need_fluidsynth() -> None:
    if shutil.which("fluidsynth") is None or not SOUNDFONT.exists():
        raise RecipeError("fluidsynth or the FluidR3_GM soundfont is missing "
                          "(apt-get install fluidsynth fluid-soundfont-gm)")


# ------------------------------------------------------------------------------------ MIDI writing
def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def write_midi(path: Path, notes: Sequence[Tuple[float, float, int, int, int]], programs: Dict[int, int],
               bpm: float) -> None:
    """Write a format-0 MIDI file. ``notes``: (start s, duration s, pitch, velocity, channel)."""
    tpq = 480
    to_ticks = lambda s: int(round(s * bpm / 60.0 * tpq))  # noqa: E731
    events: List[Tuple[int, int, bytes]] = []
    for ch, prog in programs.items():
        events.append((0, 0, bytes([0xC0 | ch, prog & 0x7F])))
    for start, dur, pitch, vel, ch in notes:
        events.append((to_ticks(start), 2, bytes([0x90 | ch, pitch & 0x7F, max(1, min(127, vel))])))
        events.append((to_ticks(start + dur), 1, bytes([0x80 | ch, pitch & 0x7F, 0])))
    events.sort(key=lambda e: (e[0], e[1]))
    tempo = int(round(60_000_000 / bpm))
    track = b"\x00\xff\x51\x03" + tempo.to_bytes(3, "big")
    now = 0
    for t, _, data in events:
        track += _vlq(t - now) + data
        now = t
    track += b"\x00\xff\x2f\x00"
    path.write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, tpq) + b"MTrk" + struct.pack(">I", len(track)) + track)


# ------------------------------------------------------------------------------------ midi_caption
COMPOSERS = {"bach": 0.5, "palestrina": 0.2, "monteverdi": 0.15, "trecento": 0.15}
STYLE_SHORT = {"bach": "a Bach chorale", "palestrina": "a Renaissance polyphonic piece by Palestrina",
               "monteverdi": "a Monteverdi madrigal", "trecento": "a fourteenth-century Italian song"}
TEST_SCORE_PERCENT = 15


def score_split(path: str) -> str:
    return "test" if stable_hash(f"score|{Path(path).name}") % 100 < TEST_SCORE_PERCENT else "train"


def tempo_word(bpm: int) -> str:
    return "slow" if bpm < 80 else ("fast" if bpm > 125 else "moderate")


def render_excerpt(path: str, rng: random.Random) -> Tuple[np.ndarray, Dict[str, Any]]:
    """A 4-6 s FluidSynth render of a re-orchestrated excerpt; facts for the caption."""
    from music21 import corpus, tempo

    full = corpus.parse(path, forceSource=True)
    bpm = rng.randrange(60, 161, 2)
    semis = rng.randint(-5, 6)
    score = score_excerpt(full, bpm, rng, seconds=8.0)
    for part in list(score.parts)[6:]:
        score.remove(part)
    parts = list(score.parts)
    mode = rng.random()
    progs_all = sorted(GM)
    if mode < 0.5 or len(parts) == 1:
        progs = [rng.choice(progs_all)] * len(parts)
        arrangement = "single"
    elif mode < 0.85:
        lead, acc = rng.sample(progs_all, 2)
        progs = [lead] + [acc] * (len(parts) - 1)
        arrangement = "lead"
    else:
        progs = [rng.choice(progs_all) for _ in parts]
        arrangement = "mixed"
    vel = rng.randint(45, 115)
    orchestrate(parts, progs, vel, rng)
    score.transpose(semis, inPlace=True)
    score.parts[0].insert(0, tempo.MetronomeMark(number=bpm))
    try:
        k = score.analyze("key")
        key = f"{k.tonic.name.replace('-', 'b')} {k.mode}"
    except Exception:  # analysis fails on some very sparse excerpts; the caption then omits the key
        key = ""
    expected = float(score.duration.quarterLength) * 60.0 / bpm + 2.0
    with tempfile.TemporaryDirectory() as td:
        mid = Path(td) / "s.mid"
        try:
            score.write("midi", fp=str(mid))
        except Exception:  # badly formed repeats: drop them and write unexpanded
            for el in list(score.recurse().getElementsByClass(("Repeat", "RepeatExpression"))):
                el.activeSite.remove(el)
            score.write("midi", fp=str(mid))
        x = fluidsynth_render(mid, max_s=min(30.0, max(7.0, expected)))
    x = crop_window(x, SR, rng, lo=4.0, hi=6.0)
    names: List[str] = []
    for p in progs:
        if GM[p] not in names:
            names.append(GM[p])
    return x, {"instruments": names, "arrangement": arrangement, "tempo_bpm": bpm, "key": key,
               "dynamics": "soft" if vel < 65 else ("loud" if vel > 95 else "moderate"), "parts": len(parts),
               "transpose": semis}


def music_caption(f: Dict[str, Any], comp: str, rng: random.Random) -> str:
    insts: List[str] = list(f["instruments"])
    if f["arrangement"] == "single":
        inst = rng.choice((f"{insts[0]} alone", f"a {insts[0]} ensemble" if f["parts"] != 1 else f"solo {insts[0]}",
                           f"only {insts[0]}"))
    elif f["arrangement"] == "lead" and len(insts) > 1:
        inst = f"{insts[0]} carrying the melody over {insts[1]}"
    else:
        inst = ", ".join(insts[:-1]) + f" and {insts[-1]}" if len(insts) > 1 else insts[0]
    bpm = int(f["tempo_bpm"])
    tw = tempo_word(bpm)
    key = f" in {f['key']}" if f["key"] else ""
    dyn = str(f["dynamics"])
    style = STYLE_SHORT[comp]
    t = rng.randrange(3)
    if t == 0:
        loud = {"soft": "soft", "moderate": "moderately loud", "loud": "loud"}[dyn]
        return f"A {loud}, {tw} arrangement of {style}{key} for {inst}, about {bpm} BPM."
    if t == 1:
        return f"{tw.capitalize()} music{key} played by {inst} at {bpm} beats per minute; {dyn} dynamics; {style}."
    return f"{inst[0].upper() + inst[1:]}, {tw} tempo ({bpm} BPM){',' if key else ''}{key.replace(' in ', ' ')}, " \
           f"{dyn}: {style}."


def midi_caption(ctx: Context) -> Rows:
    """``text_to_music`` and ``music_caption`` (same render) from music21 corpus excerpts; held-out scores in test."""
    need_fluidsynth()
    try:
        paths = score_paths()
    except ImportError as e:
        raise RecipeError("music21 missing (pip install music21)") from e
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        by_comp = {c: [p for p in paths.get(c, []) if score_split(p) == split] for c in COMPOSERS}
        comps = [c for c in COMPOSERS if by_comp[c]]
        if not comps:
            raise RecipeError("no music21 corpus scores found")
        rows = out.setdefault(split, [])
        i = 0
        n = ctx.count(150 if split == "train" else 40)
        failures = 0
        while i < n:
            comp = rng.choices(comps, [COMPOSERS[c] for c in comps])[0]
            path = rng.choice(by_comp[comp])
            try:
                x, f = render_excerpt(path, random.Random(rng.getrandbits(62)))
            except Exception as e:  # an unparsable score: try another (reported if it keeps happening)
                failures += 1
                if failures > 20 + n:
                    raise RecipeError(f"too many music21 failures, last: {type(e).__name__}: {e}") from e
                continue
            if x.size < 4.0 * SR or float(np.max(np.abs(x))) < 1e-3:
                continue
            apath = ctx.save(x, split, f"{i:05d}")
            facts = dict(f, composer=comp, score=Path(path).name)
            common = {"recipe": ctx.recipe, "audio": apath, "instrument": f["instruments"][0],
                      "instruments": f["instruments"], "tempo_bpm": f["tempo_bpm"], "key": f["key"], "facts": facts}
            rows.append({"task": "text_to_music", "caption": music_caption(f, comp, rng), **common})
            cap = music_caption(f, comp, rng)
            rows.append({"task": "music_caption", "caption": cap, "text": cap, **common})
            i += 1
    return out


# ------------------------------------------------------------------------------------ sung lyrics
PENTATONIC = {"major": (0, 2, 4, 7, 9), "minor": (0, 3, 5, 7, 10)}
ACCOMP = {0: "piano", 4: "electric piano", 24: "nylon guitar", 46: "harp", 48: "strings", 11: "vibraphone"}


def estimate_f0(x: np.ndarray, fmin: float = 60.0, fmax: float = 600.0) -> float:
    """Median F0 (Hz) of the voiced 40 ms frames (normalised autocorrelation); 0 if none is voiced."""
    n, hop = int(0.04 * SR), int(0.01 * SR)
    lo, hi = int(SR / fmax), int(SR / fmin)
    if x.size < n:
        return 0.0
    level = np.max(np.abs(x))
    f0s = []
    for s in range(0, x.size - n, hop):
        fr = x[s: s + n].astype(np.float64)
        if np.max(np.abs(fr)) < 0.1 * level:
            continue
        fr = fr - fr.mean()
        ac = np.correlate(fr, fr, "full")[n - 1:]
        if ac[0] <= 0:
            continue
        ac = ac / ac[0]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5:
            f0s.append(SR / lag)
    return float(np.median(f0s)) if f0s else 0.0


def _sox_note(x: np.ndarray, cents: float, tempo: float) -> np.ndarray:
    with tempfile.TemporaryDirectory() as td:
        a, b = Path(td) / "a.wav", Path(td) / "b.wav"
        sf.write(str(a), x, SR, subtype="FLOAT")
        subprocess.run(["sox", str(a), str(b), "pitch", f"{cents:.1f}", "tempo", "-s", f"{tempo:.4f}"],
                       check=True, capture_output=True)
        y, sr = sf.read(str(b), dtype="float32")
    return resample(y, sr)


def lyric_lines(lang: str, split: str) -> List[str]:
    """Lyric lines from the shipped sentences of one split.

    English: whole sentences of at most 9 words and 4-9 word clauses before a comma. Mandarin: whole
    sentences of at most 11 characters and clauses of 4-10 characters (punctuation removed).
    """
    lines: List[str] = []
    for s in sentences(lang, split):
        if lang == "en":
            cands = [s] + ([s.split(",")[0]] if "," in s else [])
            lines += [c.rstrip(".!?,;:") for c in cands if 4 <= n_words(c) <= 9]
        else:
            cjk = lambda t: "".join(ch for ch in t if "\u4e00" <= ch <= "\u9fff")  # noqa: E731
            whole = cjk(s)
            if 4 <= len(whole) <= 11:
                lines.append(whole)
            clauses = [cjk(c) for c in re.split("[，。？！、；：,.?!;:]", s)]
            lines += [c for c in clauses if 4 <= len(c) <= 10 and c != whole]
    return sorted(set(lines))


def _lyric(rng: random.Random, lang: str, split: str) -> Tuple[str, List[str]]:
    """A lyric line and its sung units (English words / pinyin syllables, one per Chinese character)."""
    lines = lyric_lines(lang, split)
    if not lines:
        raise RecipeError(f"no {lang} lyric lines in the {split} sentences")
    text = rng.choice(lines)
    if lang == "en":
        return text, [w.strip(".,;:!?\"'") for w in text.split() if w.strip(".,;:!?\"'")]
    from pypinyin import Style, lazy_pinyin

    syl = lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True)
    if len(syl) != len(text):
        raise RecipeError(f"pinyin does not align with characters: {text}")
    return text, syl


def _melody(rng: random.Random, n: int, tonic: int, mode: str, bpm: int) -> Tuple[List[int], List[float]]:
    scale = PENTATONIC[mode]
    deg = rng.choice((0, 1, 2))
    pitches, beats = [], []
    for i in range(n):
        if i == n - 1:
            deg = 0
        pitches.append(tonic + 12 * (deg // 5) + scale[deg % 5])
        beats.append(2.0 if i == n - 1 else rng.choice((0.5, 1.0, 1.0, 1.0, 1.5)))
        deg = max(-2, min(4, deg + rng.choice((-2, -1, -1, 0, 1, 1, 2))))
    return pitches, [b * 60.0 / bpm for b in beats]


def sing(units: Sequence[str], voice: Voice, pitches: Sequence[int], durs: Sequence[float]) -> np.ndarray:
    """Each unit spoken by espeak-ng, shifted to its note's pitch and stretched to its length (sox)."""
    out = []
    default_f0 = 120.0 if voice.gender == "male" else 210.0
    for unit, m, d in zip(units, pitches, durs):
        x = speak_raw(unit, voice)
        f0 = estimate_f0(x) or default_f0
        target = 440.0 * 2 ** ((m - 69) / 12)
        cents = 1200.0 * np.log2(target / f0)
        n = int(d * SR)
        tempo = float(np.clip(x.size / max(n * 0.92, 1), 0.25, 4.0))
        y = _sox_note(x, cents, tempo)
        y = y[:n] if y.size >= n else np.pad(y, (0, n - y.size))
        out.append(fade(y.astype(np.float32), 15.0))
    return np.concatenate(out)


def sung_lyrics(ctx: Context) -> Rows:
    """``song`` and ``lyric_recognition`` (same clip): espeak syllables pitch-shifted to a pentatonic melody,
    over a quiet FluidSynth accompaniment of the melody and its tonic."""
    need_espeak()
    need_pinyin()
    need_fluidsynth()
    if shutil.which("sox") is None:
        raise RecipeError("sox not found (apt-get install sox)")
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        rows = out.setdefault(split, [])
        for i in range(ctx.count(140 if split == "train" else 40)):
            lang = rng.choices(("en", "cmn"), (0.65, 0.35))[0]
            bpm = rng.randrange(84, 132, 4)
            for _ in range(20):
                text, units = _lyric(rng, lang, split)
                gender = rng.choice(("male", "female"))
                tonic = rng.randint(45, 50) if gender == "male" else rng.randint(55, 60)
                mode = rng.choice(("major", "minor"))
                pitches, durs = _melody(rng, len(units), tonic, mode, bpm)
                if sum(durs) <= 5.4 and len(units) >= 3:
                    break
                bpm = min(bpm + 8, 160)
            else:
                raise RecipeError("could not fit a lyric line into 5.4 s")
            variant = rng.choice([v for v in PLAIN_VARIANTS if VARIANTS[v] == gender])
            base = {"en": rng.choice(("en-us", "en")), "cmn": "cmn-latn-pinyin"}[lang]
            voice = Voice(lang, base, variant, rng.randint(140, 170), 50)
            vocal = sing(units, voice, pitches, durs)
            prog = rng.choice(sorted(ACCOMP))
            onsets = np.concatenate([[0.0], np.cumsum(durs)[:-1]])
            notes = [(float(t), float(d) * 0.95, p, rng.randint(45, 60), 0) for t, d, p in zip(onsets, durs, pitches)]
            total = float(sum(durs))
            t = 0.0
            while t < total:
                notes.append((t, min(2 * 60.0 / bpm, total - t), tonic - 12, 40, 1))
                t += 2 * 60.0 / bpm
            with tempfile.TemporaryDirectory() as td:
                mid = Path(td) / "m.mid"
                write_midi(mid, notes, {0: prog, 1: prog}, bpm)
                acc = fluidsynth_render(mid, max_s=total + 0.5)
            n = vocal.size + int(0.3 * SR)
            acc = np.pad(acc, (0, max(0, n - acc.size)))[:n]
            vocal = np.pad(vocal, (0, n - vocal.size))
            acc_db = rng.uniform(-16.0, -10.0)
            mix = vocal + acc * (rms(vocal) / (rms(acc) + 1e-9)) * 10 ** (acc_db / 20)
            mix = peak_norm(fade(mix.astype(np.float32), 20.0), rng.uniform(0.5, 0.9))
            key = f"{NOTE_NAMES[tonic % 12]} {mode}"
            cap = (f"A {gender} voice singing a {'bright' if mode == 'major' else 'wistful'} pentatonic melody in "
                   f"{key} at {bpm} BPM, softly accompanied by {ACCOMP[prog]}"
                   + (" (in Mandarin)." if lang == "cmn" else "."))
            path = ctx.save(mix, split, f"{i:05d}_{lang}")
            common = {"recipe": ctx.recipe, "audio": path, "lyric": text, "language": lang, "caption": cap,
                      "melody": list(pitches), "durations_s": [round(d, 3) for d in durs], "tempo_bpm": bpm,
                      "key": key, "instrument": ACCOMP[prog], "speaker": voice.name,
                      "accompaniment_db": round(acc_db, 1)}
            rows.append({"task": "song", **common})
            rows.append({"task": "lyric_recognition", "text": text, **common})
    return out
