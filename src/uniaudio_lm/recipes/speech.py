"""espeak-ng speech recipes: tts, asr, instruct_tts, voice_tts, dysarthric_asr, spoken QA, speech editing."""

from __future__ import annotations

from pathlib import Path

import random
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .common import (SR, Context, Deck, RecipeError, Voice, crop, fade, lowpass, n_words, need_espeak, sentence_split,
                     need_pinyin, peak_norm, random_voice, sentences, speak, speak_fit, speed)
from .qa_bank import QA, families
from ..textgen import sentences as generated_sentences

Rows = Dict[str, List[dict]]

LANG_NAME = {"en": "English", "cmn": "Mandarin Chinese", "yue": "Cantonese"}


def _row(ctx: Context, task: str, audio: str, **fields: object) -> dict:
    r: Dict[str, object] = {"task": task, "recipe": ctx.recipe, "audio": audio}
    r.update({k: v for k, v in fields.items() if v is not None})
    return r


def _langs_ready(langs: Sequence[str]) -> None:
    need_espeak()
    if "cmn" in langs:
        need_pinyin()


def _short(pool: Sequence[str], lang: str, max_words: int = 10, max_chars: int = 16) -> List[str]:
    """Sentences short enough for slow speech (English words / Chinese characters)."""
    if lang == "en":
        out = [s for s in pool if n_words(s) <= max_words]
    else:
        out = [s for s in pool if len(s) <= max_chars]
    return out or list(pool)


# ------------------------------------------------------------------------------------ tts / asr
GENERATED_EN = 6000  # grammar sentences (uniaudio_lm.textgen) added to the English pool of tts / asr


def speech_pool(lang: str, split: str) -> List[str]:
    """Sentences for plain TTS / ASR: the shipped ones, and for English also :data:`GENERATED_EN` sentences
    of the project's grammar (new word combinations over one vocabulary), split by the same fixed hash."""
    pool = list(sentences(lang, split))
    if lang == "en":
        gen = generated_sentences(GENERATED_EN, seed=0, exclude=set(load_all_en()))
        pool += [t for t in gen if sentence_split("en", t) == split]
    return pool


def load_all_en() -> List[str]:
    return sentences("en", "train") + sentences("en", "test")


def _plain_speech(ctx: Context, task_of: Dict[str, str], sizes: Dict[str, Dict[str, int]]) -> Rows:
    _langs_ready([lg for s in sizes.values() for lg in s])
    out: Rows = {}
    for split, per_lang in sizes.items():
        rows = out.setdefault(split, [])
        for lang, base in per_lang.items():
            rng = ctx.rng(split, lang)
            pool = speech_pool(lang, split)
            deck = Deck(pool, rng)
            for i in range(ctx.count(base)):
                voice = random_voice(rng, lang)
                text, x = speak_fit(rng, pool, voice, first=deck.draw())
                path = ctx.save(x, split, f"{lang}_{i:05d}")
                rows.append(_row(ctx, task_of[lang], path, text=text, language=lang, speaker=voice.name,
                                 style=voice.style()))
    return out


EVERYDAY_EN = Path(__file__).resolve().parent.parent / "data" / "everyday_en_test.txt"


def everyday_sentences() -> List[str]:
    """The everyday English test sentences (written for the benchmark; not in the shipped sentence lists,
    the text corpus or the grammar)."""
    return [ln.strip() for ln in EVERYDAY_EN.read_text(encoding="utf-8").splitlines()
            if ln.strip() and not ln.startswith("#")]


def everyday_en(ctx: Context) -> Rows:
    """Test split only: each everyday English sentence read once by a random plain espeak-ng voice, as an
    ``asr`` row and a ``tts`` row of the same clip (``"everyday": true``)."""
    _langs_ready(["en"])
    rng = ctx.rng("test", "en")
    rows = []
    for i, text in enumerate(everyday_sentences()):
        voice = random_voice(rng, "en", plain=True)
        path = ctx.save(speak(text, voice), "test", f"en_{i:05d}")
        for task in ("asr", "tts"):
            rows.append(_row(ctx, task, path, text=text, language="en", speaker=voice.name, style=voice.style(),
                             everyday=True))
    return {"train": [], "test": rows}


WORDNET_DIR = Path("/usr/share/wordnet")
_WORDNET_OK = re.compile(r"[A-Za-z ,.'?!;-]+")


def wordnet_sentences(root: Path = WORDNET_DIR) -> List[str]:
    """The English usage examples of WordNet 3.0 (Debian ``wordnet-base``): 3-14 words of plain Latin
    letters and punctuation, first letter capitalised, ending with a full stop when they had no final
    punctuation; sentences of the test sides (shipped test sentences, everyday test sentences) removed.
    A broad vocabulary (about 29,000 word types) for the speech tasks."""
    files = sorted(root.glob("data.*")) if root.is_dir() else []
    if not files:
        raise RecipeError(f"WordNet data not found under {root} (apt-get install wordnet-base)")
    test = {_norm(t) for t in sentences("en", "test") + everyday_sentences()}
    out: Dict[str, str] = {}
    for f in files:
        for line in f.read_text(encoding="latin-1").splitlines():
            for ex in re.findall(r'"([^"]+)"', line):
                ex = " ".join(ex.split()).lstrip(".' ")
                if not ex or not _WORDNET_OK.fullmatch(ex) or not 3 <= len(ex.split()) <= 14 or not ex[0].isalpha():
                    continue
                ex = ex[0].upper() + ex[1:]
                if ex[-1] not in ".?!":
                    ex = ex.rstrip(",;-") + "."
                key = _norm(ex)
                if key not in test:
                    out.setdefault(key, ex)
    return [out[k] for k in sorted(out)]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z ]", "", text.lower()).strip()


def wordnet_speech(ctx: Context) -> Rows:
    """Train split only: WordNet usage examples (:func:`wordnet_sentences`) read by random espeak-ng
    voices, one ``asr`` and one ``tts`` row per clip (a broad vocabulary; the test side is the everyday
    sentences and the held-out shipped sentences, which are removed from the pool)."""
    _langs_ready(["en"])
    rng = ctx.rng("train", "en")
    pool = wordnet_sentences()
    deck = Deck(pool, rng)
    rows = []
    for i in range(ctx.count(4000)):
        voice = random_voice(rng, "en")
        text, x = speak_fit(rng, pool, voice, first=deck.draw())
        path = ctx.save(x, "train", f"en_{i:05d}")
        for task in ("asr", "tts"):
            rows.append(_row(ctx, task, path, text=text, language="en", speaker=voice.name, style=voice.style()))
    return {"train": rows, "test": []}


def espeak_tts(ctx: Context) -> Rows:
    """task ``tts``: English (en-us, en-gb), Mandarin, Cantonese; any espeak variant, 120-260 wpm, pitch 20-80."""
    return _plain_speech(ctx, {"en": "tts", "cmn": "tts", "yue": "tts"},
                         {"train": {"en": 1200, "cmn": 120, "yue": 120}, "test": {"en": 100, "cmn": 40, "yue": 40}})


def espeak_asr(ctx: Context) -> Rows:
    """task ``asr``: English and Mandarin (``language`` says which)."""
    return _plain_speech(ctx, {"en": "asr", "cmn": "asr"},
                         {"train": {"en": 1600, "cmn": 100}, "test": {"en": 100, "cmn": 40}})


def espeak_yue(ctx: Context) -> Rows:
    """task ``yue_asr``: Cantonese."""
    return _plain_speech(ctx, {"yue": "yue_asr"}, {"train": {"yue": 120}, "test": {"yue": 40}})


# ------------------------------------------------------------------------------------ instruct / voice
RATE_BINS = {"slow": (120, 130), "normal": (155, 190), "fast": (220, 260)}
PITCH_BINS = {"low": (20, 32), "medium": (42, 58), "high": (68, 80)}
VOLUME_PEAK = {"quiet": (0.08, 0.14), "normal": (0.4, 0.55), "loud": (0.85, 0.95)}

_RATE_WORDS = {"slow": ("slow", "unhurried", "leisurely"), "normal": ("steady", "moderately paced", "even-paced"),
               "fast": ("fast", "rapid", "hurried")}
_RATE_ADV = {"slow": ("slowly", "at a slow pace", "unhurriedly"), "normal": ("at a normal pace", "at a steady pace"),
             "fast": ("quickly", "at a fast pace", "rapidly")}
_PITCH_WORDS = {"low": ("low-pitched", "deep"), "medium": ("mid-pitched", "medium-pitched"),
                "high": ("high-pitched", "bright, high")}
_VOLUME_PHRASES = {"quiet": ("speaking quietly", "talking softly", "in a hushed, quiet voice"),
                   "normal": ("at a normal volume", "at a comfortable loudness"),
                   "loud": ("speaking loudly", "in a loud, projecting voice", "talking loudly")}


def rate_class(rate: int) -> str:
    return "slow" if rate <= 135 else ("fast" if rate >= 215 else "normal")


def pitch_class(pitch: int) -> str:
    return "low" if pitch <= 35 else ("high" if pitch >= 65 else "medium")


def style_caption(rng: random.Random, voice: Voice, volume: str, language: str = "en") -> str:
    """A one-line description of the voice, built from rate, pitch, loudness and gender (own wording)."""
    rc, pc = rate_class(voice.rate), pitch_class(voice.pitch)
    rate_w, rate_adv = rng.choice(_RATE_WORDS[rc]), rng.choice(_RATE_ADV[rc])
    pitch_w, vol = rng.choice(_PITCH_WORDS[pc]), rng.choice(_VOLUME_PHRASES[volume])
    gender = voice.gender or "neutral"
    who = {"male": rng.choice(("male", "man's")), "female": rng.choice(("female", "woman's"))}.get(gender, "")
    if voice.variant in ("whisper", "whisperf"):
        vol = "whispering" + ("" if volume == "normal" else f", {vol}")
    elif voice.variant == "croak":
        pitch_w += ", croaky"
    lang = "" if language == "en" else f" in {LANG_NAME[language]}"
    t = rng.randrange(4)
    if t == 0:
        return f"A {rate_w}, {pitch_w} {who} voice {vol}{lang}.".replace("  ", " ")
    if t == 1:
        return f"Speak {rate_adv} in a {pitch_w} {who} voice, {vol}{lang}.".replace("  ", " ")
    if t == 2:
        g = {"male": "Male", "female": "Female"}.get(gender, "A")
        return (f"{g} speaker{lang}: {pitch_w} voice, {rate_w} delivery, {vol}.").replace("  ", " ")
    return f"A {who} voice{lang}, {pitch_w}, speaking {rate_adv} and {vol.replace('speaking ', '')}.".replace(
        "  ", " ")


def espeak_instruct(ctx: Context) -> Rows:
    """task ``instruct_tts``: style caption from rate/pitch/volume/gender; test = 50 % fast, 50 % slow (English)."""
    _langs_ready(["en", "cmn", "yue"])
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        n = ctx.count(400 if split == "train" else 40)
        rows = out.setdefault(split, [])
        decks = {lg: Deck(sentences(lg, split), rng) for lg in ("en", "cmn", "yue")}
        for i in range(n):
            if split == "test":
                lang, rc = "en", ("fast", "slow")[i % 2]
            else:
                lang = rng.choices(("en", "cmn", "yue"), (0.7, 0.15, 0.15))[0]
                rc = rng.choice(("slow", "normal", "fast"))
            pc = rng.choice(tuple(PITCH_BINS))
            volume = rng.choice(tuple(VOLUME_PEAK))
            base = random_voice(rng, lang, plain=rng.random() < 0.9)
            voice = base.with_(rate=rng.randint(*RATE_BINS[rc]), pitch=rng.randint(*PITCH_BINS[pc]))
            pool = sentences(lang, split)
            if rc == "slow":
                pool = _short(pool, lang, 9, 14)
            text, x = speak_fit(rng, pool, voice, first=_pick_fitting(decks[lang], pool, rc, lang), faster=False)
            peak = rng.uniform(*VOLUME_PEAK[volume])
            x = peak_norm(x, peak)
            cap = style_caption(rng, voice, volume, lang)
            path = ctx.save(x, split, f"{i:05d}_{lang}_{rc}")
            rows.append(_row(ctx, "instruct_tts", path, text=text, language=lang, caption=cap, speaker=voice.name,
                             style=voice.style(rate_class=rc, pitch_class=pc, volume=volume,
                                               peak=round(peak, 3), whisper=voice.variant.startswith("whisper"))))
    return out


def _pick_fitting(deck: Deck, pool: Sequence[str], rc: str, lang: str) -> str:
    """Next deck sentence, skipped while it is too long for slow speech."""
    for _ in range(4 * len(deck.items)):
        s = deck.draw()
        if rc != "slow" or s in pool:
            return s
    return pool[0]


def espeak_voice(ctx: Context) -> Rows:
    """task ``voice_tts``: voice prompt = another sentence (cropped to <= 3.5 s) by the same espeak voice."""
    _langs_ready(["en", "cmn", "yue"])
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        rows = out.setdefault(split, [])
        decks = {lg: Deck(sentences(lg, split), rng) for lg in ("en", "cmn", "yue")}
        for i in range(ctx.count(240 if split == "train" else 40)):
            lang = rng.choices(("en", "cmn", "yue"), (0.7, 0.15, 0.15))[0]
            voice = random_voice(rng, lang)
            pool = sentences(lang, split)
            text, x = speak_fit(rng, pool, voice, first=decks[lang].draw())
            others = [s for s in _short(pool, lang, 8, 12) if s != text] or [s for s in pool if s != text]
            ptext, p = speak_fit(rng, others, voice)
            p = crop(p, 3.5)
            cap = style_caption(rng, voice, "normal", lang)
            path = ctx.save(x, split, f"{i:05d}_{lang}")
            vpath = ctx.save(p, split, f"{i:05d}_{lang}_prompt", max_s=3.5)
            rows.append(_row(ctx, "voice_tts", path, text=text, language=lang, caption=cap, voice=vpath,
                             voice_text=ptext, speaker=voice.name, style=voice.style()))
    return out


# ------------------------------------------------------------------------------------ dysarthric
def dysarthric(x: np.ndarray, rng: np.random.Generator) -> Tuple[np.ndarray, Dict[str, float]]:
    """Slurred, unsteady speech: segment-wise time warp, irregular pauses, amplitude and pitch tremolo, low-pass."""
    pieces: List[np.ndarray] = []
    pos = 0
    while pos < x.size:
        n = int(rng.uniform(0.08, 0.25) * SR)
        seg = x[pos: pos + n]
        pos += n
        pieces.append(fade(speed(seg, float(rng.uniform(0.72, 1.2))), 4.0))
        if rng.random() < 0.08:
            pieces.append(np.zeros(int(rng.uniform(0.05, 0.2) * SR), np.float32))
    y = np.concatenate(pieces) if pieces else x
    t = np.arange(y.size) / SR
    # pitch tremolo: a sinusoidally modulated delay line (vibrato)
    vib_hz, vib_ms = float(rng.uniform(4.0, 7.0)), float(rng.uniform(0.6, 1.6))
    delay = (vib_ms / 1000.0) * SR * (1.0 + np.sin(2 * np.pi * vib_hz * t))
    idx = np.clip(np.arange(y.size) - delay, 0, y.size - 1)
    y = np.interp(idx, np.arange(y.size), y).astype(np.float32)
    trem_hz, depth = float(rng.uniform(3.0, 7.0)), float(rng.uniform(0.3, 0.6))
    y = y * (1.0 - depth * 0.5 * (1.0 + np.sin(2 * np.pi * trem_hz * t + rng.uniform(0, 6.28))))
    cutoff = float(rng.uniform(2500.0, 4500.0))
    y = lowpass(y.astype(np.float32), cutoff)
    return peak_norm(y, 0.7), {"vibrato_hz": round(vib_hz, 2), "vibrato_ms": round(vib_ms, 2),
                               "tremolo_hz": round(trem_hz, 2), "tremolo_depth": round(depth, 2),
                               "lowpass_hz": round(cutoff)}


def espeak_dysarthric(ctx: Context) -> Rows:
    """task ``dysarthric_asr``, test split only (zero-shot): held-out English sentences, slow and distorted."""
    need_espeak()
    rng = ctx.rng("test")
    nrng = ctx.np_rng(rng)
    pool = _short(sentences("en", "test"), "en", 9)
    deck = Deck(pool, rng)
    rows: List[dict] = []
    for i in range(ctx.count(40)):
        for _ in range(20):
            voice = random_voice(rng, "en", rate=(95, 125), pitch=(25, 70), plain=True)
            text = deck.draw()
            y, fx = dysarthric(speak(text, voice), nrng)
            if y.size <= 6.0 * SR:
                break
        else:
            raise RecipeError("dysarthric speech does not fit into 6 s")
        path = ctx.save(y, "test", f"{i:05d}")
        rows.append(_row(ctx, "dysarthric_asr", path, text=text, language="en", speaker=voice.name,
                         style=voice.style(), effects=fx))
    return {"train": [], "test": rows}


# ------------------------------------------------------------------------------------ spoken QA
ANSWER_VOICE = Voice("en", "en-us", "f3", 165, 55)
"""The assistant voice of every spoken answer (a fixed voice makes the target learnable)."""


def espeak_qa(ctx: Context) -> Rows:
    """``spoken_qa`` (spoken question -> short text answer) and ``spoken_qa_speech`` (-> spoken answer)."""
    need_espeak()
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        fams = families(split)
        if not fams:
            raise RecipeError(f"question bank has no {split} questions")
        names = sorted(fams)
        decks = {f: Deck(fams[f], rng) for f in names}
        rows = out.setdefault(split, [])
        for task, base in (("spoken_qa", 180 if split == "train" else 40),
                           ("spoken_qa_speech", 140 if split == "train" else 40)):
            for i in range(ctx.count(base)):
                qa: QA = decks[rng.choice(names)].draw()
                voice = random_voice(rng, "en", rate=(130, 230), plain=True)
                q = speak(qa.question, voice)
                qpath = ctx.save(crop(q, 6.0), split, f"{task}_{i:05d}_q")
                common = dict(language="en", transcript=qa.question, answer=qa.answer, family=qa.family,
                              speaker=voice.name)
                if task == "spoken_qa":
                    rows.append(_row(ctx, task, qpath, text=qa.answer, **common))
                else:
                    a = speak(qa.answer_sentence, ANSWER_VOICE)
                    apath = ctx.save(crop(a, 6.0), split, f"{task}_{i:05d}_a")
                    rows.append(_row(ctx, task, apath, source=qpath, answer_text=qa.answer_sentence,
                                     answer_speaker=ANSWER_VOICE.name, **common))
    return out


# ------------------------------------------------------------------------------------ speech editing
SWAPS: Dict[str, Tuple[str, ...]] = {
    "red": ("blue", "green", "yellow"), "blue": ("red", "green", "grey"), "green": ("blue", "red", "brown"),
    "white": ("black", "yellow"), "black": ("white", "brown"), "yellow": ("red", "orange"),
    "two": ("three", "four"), "three": ("two", "five"), "four": ("six", "two"), "five": ("seven", "nine"),
    "six": ("eight", "four"), "seven": ("nine", "three"), "ten": ("twelve", "eight"), "twenty": ("thirty", "ten"),
    "morning": ("evening", "afternoon"), "evening": ("morning",), "night": ("day",), "summer": ("winter",),
    "winter": ("summer",), "left": ("right",), "right": ("left",), "small": ("large", "tiny"), "old": ("new",),
    "new": ("old",), "big": ("small",), "little": ("big",), "dog": ("cat",), "cat": ("dog",), "cold": ("warm",),
    "warm": ("cold",), "hot": ("cold",), "Monday": ("Friday",), "Tuesday": ("Sunday",), "Thursday": ("Monday",),
    "Friday": ("Tuesday",), "Saturday": ("Sunday",), "Sunday": ("Saturday",), "house": ("garden",),
    "river": ("lake",), "train": ("bus",), "book": ("letter",), "tea": ("coffee",), "coffee": ("tea",),
    "bread": ("cake",), "window": ("door",), "door": ("window",), "table": ("desk",), "car": ("van",),
}
DELETABLE = ("very", "old", "small", "little", "just", "still", "really", "quietly", "slowly", "again", "always",
             "only", "also", "new", "big", "long", "tiny", "thin", "empty", "wooden", "fresh", "warm")
PREFIXES = ("I think", "Of course", "Honestly", "Apparently", "As usual")


def edit_sentence(text: str, rng: random.Random) -> Optional[Tuple[str, str, Dict[str, str]]]:
    """One word-level edit of an English sentence -> (new text, instruction, edit facts), or None."""
    toks = text.split()
    core = [t.strip(".,;:!?\"'") for t in toks]
    ops = []
    swaps = [i for i, w in enumerate(core) if w in SWAPS or w.lower() in SWAPS]
    dels = [i for i, w in enumerate(core) if w.lower() in DELETABLE and 0 < i < len(toks) - 1
            and toks[i] == core[i]]
    if swaps:
        ops += ["replace"] * 3
    if dels:
        ops += ["delete"]
    ops += ["insert"]
    op = rng.choice(ops)
    if op == "replace":
        i = rng.choice(swaps)
        old = core[i]
        new = rng.choice(SWAPS.get(old, SWAPS.get(old.lower(), ("",))))
        if old[0].isupper() and not new[0].isupper():
            new = new.capitalize()
        toks[i] = toks[i].replace(old, new, 1)
        instr = rng.choice((f"Replace the word '{old}' with '{new}'.", f"Change '{old}' to '{new}'.",
                            f"Say '{new}' instead of '{old}'."))
        return " ".join(toks), instr, {"op": "replace", "old": old, "new": new}
    if op == "delete":
        i = rng.choice(dels)
        old = core[i]
        del toks[i]
        instr = rng.choice((f"Delete the word '{old}'.", f"Remove '{old}' from the sentence.",
                            f"Leave out the word '{old}'."))
        return " ".join(toks), instr, {"op": "delete", "old": old}
    pre = rng.choice(PREFIXES)
    first = toks[0] if toks[0] in ("I",) or toks[0][1:2].isupper() else toks[0][:1].lower() + toks[0][1:]
    new_text = " ".join([f"{pre},", first] + toks[1:])
    instr = rng.choice((f"Insert '{pre}' at the beginning.", f"Add the words '{pre}' at the start.",
                        f"Begin the sentence with '{pre}'."))
    return new_text, instr, {"op": "insert", "new": pre}


def espeak_edit(ctx: Context) -> Rows:
    """task ``speech_edit``: source = sentence A, target = A with one word replaced/deleted/inserted, same voice."""
    need_espeak()
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        pool = [s for s in sentences("en", split) if n_words(s) <= 13]
        deck = Deck(pool, rng)
        rows = out.setdefault(split, [])
        i = 0
        n = ctx.count(180 if split == "train" else 40)
        while i < n:
            text = deck.draw()
            ed = edit_sentence(text, rng)
            if ed is None:
                continue
            new_text, instr, facts = ed
            voice = random_voice(rng, "en", rate=(140, 240), plain=True)
            a, b = speak(text, voice), speak(new_text, voice)
            if max(a.size, b.size) > 6.0 * SR:
                continue
            src = ctx.save(a, split, f"{i:05d}_src")
            tgt = ctx.save(b, split, f"{i:05d}")
            rows.append(_row(ctx, "speech_edit", tgt, source=src, text=new_text, source_text=text,
                             instruction=instr, edit=facts, language="en", speaker=voice.name, style=voice.style()))
            i += 1
    return out
