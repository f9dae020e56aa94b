"""Sound-effect recipes: sfx_caption, sfx_qa, sfx_fewshot, speech_sound_mix.

Test rows of ``sfx_caption``, ``sfx_qa`` and ``sfx_fewshot`` use only the held-out sound classes (see
:mod:`.sound_classes`); train rows of every recipe use only the other classes. Few-shot episodes follow
:mod:`.episodes` (query and demos from different recordings, meaningless labels).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Dict, List

import numpy as np

from .common import SR, Context, RecipeError, mix_at_snr, need_espeak, peak_norm, random_voice, sentences, speak_fit
from .episodes import Episode, EpisodeError, episodes
from .sound_classes import KIND_WORDS, TUXPAINT_DIR, SoundClass, all_classes, example, recordings

Rows = Dict[str, List[dict]]


def _classes(ctx: Context, need_tuxpaint: bool) -> List[SoundClass]:
    root = Path(str(ctx.options.get("tuxpaint_dir", TUXPAINT_DIR)))
    classes = all_classes(root, verbose=not need_tuxpaint)
    if need_tuxpaint and not any(c.origin == "tuxpaint" for c in classes):
        raise RecipeError(f"Tux Paint sounds not found under {root} (apt-get install tuxpaint-stamps-default)")
    return classes


def split_classes(classes: List[SoundClass], split: str) -> List[SoundClass]:
    """Train split: classes that are not held out; test split: only held-out classes."""
    out = [c for c in classes if c.held_out == (split == "test")]
    if len(out) < 2:
        raise RecipeError(f"fewer than two sound classes for the {split} split")
    return out


def _article(label: str) -> str:
    return ("an " if label[:1] in "aeiou" else "a ") + label


def sound_caption(c: SoundClass, x: np.ndarray, rng: random.Random) -> str:
    phrase = rng.choice(c.phrases)
    dur = x.size / SR
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    extra = []
    if dur < 1.5:
        extra.append("short")
    if peak < 0.4:
        extra.append("quiet")
    elif peak > 0.75:
        extra.append("loud")
    adj = " and ".join(extra)
    t = rng.randrange(4)
    if t == 0:
        return phrase[:1].upper() + phrase[1:] + "."
    if t == 1:
        return f"A {adj + ' ' if adj else ''}recording of {phrase}."
    if t == 2:
        return f"The sound of {phrase}" + (f", {adj}." if adj else ".")
    return f"{'A ' + adj + ' clip' if adj else 'A clip'}: {phrase}."


def sfx_caption(ctx: Context) -> Rows:
    """``text_to_sound`` and ``audio_caption`` rows from labelled sound examples (Tux Paint + synthetic)."""
    classes = _classes(ctx, need_tuxpaint=True)
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        pool = split_classes(classes, split)
        rows = out.setdefault(split, [])
        for task, base in (("text_to_sound", 140), ("audio_caption", 140)):
            for i in range(ctx.count(base if split == "train" else 40)):
                c = rng.choice(pool)
                x, facts = example(c, rng)
                cap = sound_caption(c, x, rng)
                path = ctx.save(x, split, f"{task}_{i:05d}")
                row = {"task": task, "recipe": ctx.recipe, "audio": path, "caption": cap, "label": c.label,
                       "sound_tag": c.label, "category": c.kind, "origin": c.origin, "augment": facts}
                if task == "audio_caption":
                    row["text"] = cap
                rows.append(row)
    return out


def _qa_for(c: SoundClass, rng: random.Random, dur: float, peak: float) -> tuple:
    opts = ["kind", "animal_yn", "bird_yn", "instrument_yn", "vehicle_yn", "loud"]
    if c.is_animal:
        opts += ["which_animal"] * 3
    if dur < 1.6 or dur > 2.4:
        opts.append("duration")
    q = rng.choice(opts)
    yn = lambda b: "yes" if b else "no"  # noqa: E731
    if q == "which_animal":
        return rng.choice(("What animal makes this sound?", "Which animal can you hear?")), _article(c.label)
    if q == "kind":
        return rng.choice(("What kind of sound is this?", "What is the source of this sound?")), KIND_WORDS[c.kind]
    if q == "animal_yn":
        return "Is this the sound of an animal?", yn(c.is_animal)
    if q == "bird_yn":
        return "Is this a bird?", yn(c.kind == "bird")
    if q == "instrument_yn":
        return "Is this a musical instrument?", yn(c.kind == "instrument")
    if q == "vehicle_yn":
        return "Is this a vehicle?", yn(c.kind == "vehicle")
    if q == "loud":
        return "Is the sound loud or quiet?", "loud" if peak >= 0.6 else "quiet"
    return "Is this sound shorter than two seconds?", yn(dur < 2.0)


def sfx_qa(ctx: Context) -> Rows:
    """``audio_qa``: questions about kind, animal, instrument, vehicle, loudness and length of a sound."""
    classes = _classes(ctx, need_tuxpaint=True)
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        pool = split_classes(classes, split)
        rows = out.setdefault(split, [])
        for i in range(ctx.count(220 if split == "train" else 40)):
            c = rng.choice(pool)
            x, facts = example(c, rng)
            peak = rng.choice((rng.uniform(0.12, 0.3), rng.uniform(0.75, 0.92)))
            x = peak_norm(x, peak)
            question, answer = _qa_for(c, rng, x.size / SR, peak)
            path = ctx.save(x, split, f"{i:05d}")
            rows.append({"task": "audio_qa", "recipe": ctx.recipe, "audio": path, "question": question,
                         "text": answer, "answer": answer, "label": c.label, "category": c.kind,
                         "origin": c.origin, "augment": dict(facts, peak=round(peak, 3))})
    return out


def sfx_fewshot(ctx: Context) -> Rows:
    """``fewshot_classify``: 2 classes, 1-2 demos per class, one query (see :mod:`.episodes`): the query
    is a different recording than every demo, labels are nonsense words drawn per episode (``label``,
    ``labels``; the true class is in ``class``), and test episodes use only classes outside training.

    Only classes with two or more recordings take part (synthetic classes: every clip is a fresh
    synthesis). Without Tux Paint the synthetic classes are used alone (and the output says so).
    """
    classes = _classes(ctx, need_tuxpaint=False)
    by_label = {c.label: c for c in classes}
    train_labels = [c.label for c in split_classes(classes, "train")]
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        pool = {c.label: list(recordings(c)) for c in split_classes(classes, split)}
        try:
            eps = episodes(pool, ctx.count(200 if split == "train" else 40), rng,
                           train_classes=train_labels if split == "test" else ())
        except EpisodeError as e:
            raise RecipeError(f"sfx_fewshot, {split} split: {e}") from None
        out[split] = [_episode_row(ctx, split, f"{i:05d}", ep, by_label, rng) for i, ep in enumerate(eps)]
    return out


def _episode_row(ctx: Context, split: str, name: str, ep: Episode, by_label: Dict[str, SoundClass],
                 rng: random.Random) -> dict:
    """Render an episode: a fresh example of each picked recording, written as ``<name>_demo<j>`` /
    ``<name>_query``."""
    def clip(cls: str, rec: str, suffix: str) -> tuple:
        c = by_label[cls]
        x, facts = example(c, rng, source=recordings(c)[rec])
        return ctx.save(x, split, f"{name}_{suffix}"), facts

    demos = []
    for j, (cls, rec) in enumerate(ep.demos):
        path, _ = clip(cls, rec, f"demo{j}")
        demos.append({"audio": path, "label": ep.names[cls], "class": cls, "recording": rec})
    path, facts = clip(*ep.query, "query")
    return {"task": "fewshot_classify", "recipe": ctx.recipe, "audio": path, "labels": ep.labels, "demos": demos,
            "text": ep.answer, "label": ep.answer, "class": ep.query[0], "recording": ep.query[1],
            "naming": ep.naming, "origin": sorted({by_label[c].origin for c in ep.classes}), "augment": facts}


def speech_sound_mix(ctx: Context) -> Rows:
    """``speech_sound``: an espeak sentence over a sound effect at 0-12 dB speech-to-sound ratio.

    ``caption`` is the sound's phrase (``a dog barking``), ``sound_tag`` its class label and ``description``
    a sentence about the whole clip."""
    need_espeak()
    classes = _classes(ctx, need_tuxpaint=True)
    train_classes = split_classes(classes, "train")
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        nrng = ctx.np_rng(rng)
        rows = out.setdefault(split, [])
        for i in range(ctx.count(180 if split == "train" else 40)):
            voice = random_voice(rng, "en", rate=(140, 230), plain=True)
            text, speech = speak_fit(rng, sentences("en", split), voice)
            c = rng.choice(train_classes)
            sound, facts = example(c, rng, max_s=speech.size / SR)
            if rng.random() < 0.5 or sound.size >= speech.size:
                placement = "background"
            else:
                placement = "event"
                padded = np.zeros(speech.size, np.float32)
                s = int(nrng.integers(0, speech.size - sound.size + 1))
                padded[s: s + sound.size] = sound
                sound = padded
            snr = round(rng.uniform(0.0, 12.0), 1)
            mix = peak_norm(mix_at_snr(speech, sound, snr), rng.uniform(0.5, 0.9))
            who = {"male": "A man", "female": "A woman"}.get(voice.gender, "Someone")
            phrase = rng.choice(c.phrases)
            desc = rng.choice((f"{who} speaks while {phrase} can be heard in the background.",
                               f"{who} talking over the sound of {phrase}.",
                               f"Speech with {phrase} in the background."))
            path = ctx.save(mix, split, f"{i:05d}")
            rows.append({"task": "speech_sound", "recipe": ctx.recipe, "audio": path, "text": text, "language": "en",
                         "sound_tag": c.label, "caption": phrase, "description": desc, "snr_db": snr,
                         "placement": placement,
                         "speaker": voice.name, "style": voice.style(), "origin": c.origin, "augment": facts})
    return out
