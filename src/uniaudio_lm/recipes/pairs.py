"""Paired recipes: noise_pairs (denoise, fewshot_denoise) and vc_pairs (fewshot_vc)."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from reasoningcodec.data.audio import decode, resample, trim_silence
from reasoningcodec.data.sources_real import DIGIT_WORDS, FSDD_HELD_OUT_SPEAKERS, find_fsdd

from .common import (SR, Context, RecipeError, Voice, coloured_noise, crop, fit_length, mix_at_snr, need_espeak,
                     need_pinyin, random_voice, rms, sentences, speak, speak_fit)
from .sound_classes import TUXPAINT_DIR, SoundClass, all_classes, example

Rows = Dict[str, List[dict]]
NOISE_TYPES = ("white", "pink", "brown", "babble", "sound")


# ------------------------------------------------------------------------------------ clean speech
class FSDD:
    """Real speech: 2-4 spoken digits of one FSDD speaker (train takes of non-held-out speakers only)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.by_speaker: Dict[str, List[Tuple[Path, int]]] = {}
        data_root = root.parent.parent
        with (root / "manifest.tsv").open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                if row["speaker"] in FSDD_HELD_OUT_SPEAKERS or row.get("split", "train") == "test":
                    continue
                p = data_root / row["path"]
                if not p.exists():
                    p = root / "recordings" / Path(row["path"]).name
                if p.exists():
                    self.by_speaker.setdefault(row["speaker"], []).append((p, int(row["digit"])))
        if not self.by_speaker:
            raise RecipeError(f"no usable FSDD recordings under {root}")

    def sample(self, rng: random.Random) -> Tuple[np.ndarray, str, str]:
        spk = rng.choice(sorted(self.by_speaker))
        parts, words = [], []
        for p, d in rng.sample(self.by_speaker[spk], rng.randint(2, 4)):
            x, sr = decode(p)
            parts += [trim_silence(resample(x, sr), threshold_dbfs=-40.0, keep_s=0.03),
                      np.zeros(int(rng.uniform(0.1, 0.25) * SR), np.float32)]
            words.append(DIGIT_WORDS[d])
        y = np.concatenate(parts[:-1])
        return (0.7 * y / (np.max(np.abs(y)) + 1e-9)).astype(np.float32), " ".join(words), f"fsdd_{spk}"


def _fsdd(ctx: Context) -> Optional[FSDD]:
    explicit = ctx.options.get("fsdd_dir")
    root = find_fsdd(Path(str(explicit)) if explicit else None)
    return FSDD(root) if root is not None else None


def _espeak_clean(rng: random.Random, split: str) -> Tuple[np.ndarray, str, str, str]:
    lang = rng.choices(("en", "cmn", "yue"), (0.7, 0.15, 0.15))[0]
    voice = random_voice(rng, lang, plain=True)
    text, x = speak_fit(rng, sentences(lang, split), voice, max_s=5.5)
    return x, text, lang, voice.name


# ------------------------------------------------------------------------------------ noise
class NoiseMaker:
    """Noise of one of :data:`NOISE_TYPES`; babble is built from a pool of same-split espeak sentences."""

    def __init__(self, ctx: Context, split: str, sounds: List[SoundClass], pool_size: int = 24) -> None:
        rng = ctx.rng(split, "babble")
        self.babble: List[np.ndarray] = []
        for _ in range(min(pool_size, max(6, ctx.count(pool_size)))):
            lang = rng.choice(("en", "en", "cmn", "yue"))
            self.babble.append(speak_fit(rng, sentences(lang, split), random_voice(rng, lang, plain=True))[1])
        self.sounds = sounds

    def make(self, kind: str, n: int, rng: random.Random, detail: Optional[str] = None) -> Tuple[np.ndarray, str]:
        nrng = np.random.default_rng(rng.getrandbits(63))
        if kind in ("white", "pink", "brown"):
            return coloured_noise(nrng, n, kind), kind
        if kind == "babble":
            y = np.zeros(n, np.float32)
            k = rng.randint(3, 5)
            for x in rng.sample(self.babble, k):
                x = fit_length(np.roll(x, rng.randrange(x.size)), n)
                y += x / (rms(x) + 1e-9)
            return y, f"{k} talkers"
        if kind == "sound":
            c = next((s for s in self.sounds if s.label == detail), None) or rng.choice(self.sounds)
            x, _ = example(c, rng, max_s=n / SR)
            return fit_length(x, n), c.label
        raise ValueError(f"unknown noise type {kind!r}")


def _pair(noise: NoiseMaker, clean: np.ndarray, kind: str, snr: float, rng: random.Random,
          detail: Optional[str] = None) -> Tuple[np.ndarray, np.ndarray, str]:
    nz, det = noise.make(kind, clean.size, rng, detail)
    noisy = mix_at_snr(clean, nz, snr)
    g = rng.uniform(0.5, 0.9) / max(float(np.max(np.abs(noisy))), 1e-6)
    return (clean * g).astype(np.float32), (noisy * g).astype(np.float32), det


def noise_pairs(ctx: Context) -> Rows:
    """``denoise`` (noisy source -> clean target) and ``fewshot_denoise`` (one demo pair with the same noise).

    Clean: espeak-ng (en/cmn/yue, same-split sentences) or, for train only, FSDD digit sequences. Noise:
    white/pink/brown, babble of 3-5 espeak talkers, or a sound effect (train classes in train rows), SNR 0-15 dB.
    """
    need_espeak()
    need_pinyin()
    fsdd = _fsdd(ctx)
    root = Path(str(ctx.options.get("tuxpaint_dir", TUXPAINT_DIR)))
    classes = all_classes(root, verbose=False)
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        sounds = [c for c in classes if not c.held_out] if split == "train" else classes
        noise = NoiseMaker(ctx, split, sounds)
        rows = out.setdefault(split, [])

        def clean_clip() -> Tuple[np.ndarray, str, str, str, str]:
            if split == "train" and fsdd is not None and rng.random() < 0.25:
                x, text, spk = fsdd.sample(rng)
                return crop(x, 5.5), text, "en", spk, "fsdd"
            x, text, lang, spk = _espeak_clean(rng, split)
            return x, text, lang, spk, "espeak"

        for task, base in (("denoise", 220), ("fewshot_denoise", 120)):
            for i in range(ctx.count(base if split == "train" else 40)):
                kind = rng.choice(NOISE_TYPES)
                snr = round(rng.uniform(0.0, 15.0), 1)
                x, text, lang, spk, origin = clean_clip()
                clean, noisy, det = _pair(noise, x, kind, snr, rng)
                row = {"task": task, "recipe": ctx.recipe, "audio": ctx.save(clean, split, f"{task}_{i:05d}"),
                       "source": ctx.save(noisy, split, f"{task}_{i:05d}_noisy"), "noise": kind,
                       "noise_detail": det, "snr_db": snr, "transcript": text, "language": lang, "speaker": spk,
                       "clean_origin": origin}
                if task == "fewshot_denoise":
                    dx, dtext, _l, _s, _o = clean_clip()
                    dsnr = round(min(15.0, max(0.0, snr + rng.uniform(-3.0, 3.0))), 1)
                    dclean, dnoisy, _ = _pair(noise, dx, kind, dsnr, rng, det if kind == "sound" else None)
                    row["demos"] = [{"source": ctx.save(dnoisy, split, f"{task}_{i:05d}_demo_noisy"),
                                     "audio": ctx.save(dclean, split, f"{task}_{i:05d}_demo"),
                                     "snr_db": dsnr, "transcript": dtext}]
                rows.append(row)
    return out


# ------------------------------------------------------------------------------------ voice conversion
def _voice_pair(rng: random.Random, lang: str) -> Tuple[Voice, Voice]:
    a = random_voice(rng, lang, rate=(140, 210), plain=True)
    for _ in range(50):
        b = random_voice(rng, lang, rate=(a.rate, a.rate), plain=True)
        if b.variant != a.variant and (b.gender != a.gender or abs(b.pitch - a.pitch) >= 20):
            return a, b
    raise RecipeError("could not find two distinct voices")


def vc_pairs(ctx: Context) -> Rows:
    """``fewshot_vc``: demo (voice A -> voice B on text 1) + query (A on text 2) -> target (B on text 2)."""
    need_espeak()
    need_pinyin()
    out: Rows = {}
    for split in ("train", "test"):
        rng = ctx.rng(split)
        rows = out.setdefault(split, [])
        for i in range(ctx.count(150 if split == "train" else 40)):
            lang = rng.choices(("en", "cmn", "yue"), (0.7, 0.15, 0.15))[0]
            a, b = _voice_pair(rng, lang)
            pool = sentences(lang, split)
            for _ in range(20):
                t1, t2 = rng.sample(pool, 2)
                clips = [speak(t, v) for t, v in ((t1, a), (t1, b), (t2, a), (t2, b))]
                if max(c.size for c in clips) <= 6.0 * SR:
                    break
            else:
                raise RecipeError("voice conversion clips do not fit into 6 s")
            names = ("demo_src", "demo", "src", "")
            paths = [ctx.save(c, split, f"{i:05d}" + (f"_{n}" if n else "")) for c, n in zip(clips, names)]
            rows.append({"task": "fewshot_vc", "recipe": ctx.recipe, "audio": paths[3], "source": paths[2],
                         "demos": [{"source": paths[0], "audio": paths[1], "transcript": t1}],
                         "transcript": t2, "language": lang, "source_speaker": a.name, "target_speaker": b.name,
                         "style": b.style(), "source_style": a.style()})
    return out
