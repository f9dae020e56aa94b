"""Labelled sound classes: Tux Paint stamp sound effects and simple synthetic classes.

Tux Paint (Debian ``tuxpaint-stamps-default``) ships one short recording per stamp; each stamp (a few
near-duplicates merged) is one class labelled with our own words. A recording becomes many distinct
examples by augmentation (speed/pitch, gain, crop, tilt, faint noise floor). Stamps whose sound may be
speech (road signs, dreidel letters, the Apollo lander, the memorial roll call) are left out.

Synthetic classes (tones, chirps, clicks, noise bursts...) are drawn with fresh random parameters for
every example. Both kinds are split into train and held-out classes by a seed-independent hash;
held-out classes never appear in any train row of any recipe.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from reasoningcodec.data.audio import decode, resample, trim_silence

from .common import SR, crop, fade, lowpass, peak_norm, speed, stable_hash

TUXPAINT_DIR = Path("/usr/share/tuxpaint/stamps")
HELD_OUT_PERCENT = 20

# stamp path (relative, no extension) -> (class label, caption phrase, category)
TUXPAINT: Dict[str, Tuple[str, str, str]] = {
    "animals/amphibians/frog": ("frog", "a frog croaking", "amphibian"),
    "animals/birds/blackbird": ("blackbird", "a blackbird singing", "bird"),
    "animals/birds/crow": ("crow", "a crow cawing", "bird"),
    "animals/birds/cuckoo": ("cuckoo", "a cuckoo calling", "bird"),
    "animals/birds/drake": ("duck", "a duck quacking", "bird"),
    "animals/birds/duck": ("duck", "a duck quacking", "bird"),
    "animals/birds/gander": ("goose", "a goose honking", "bird"),
    "animals/birds/hen": ("hen", "a hen clucking", "bird"),
    "animals/birds/heron_greatblue_flying": ("heron", "the call of a heron", "bird"),
    "animals/birds/lark": ("lark", "a lark singing", "bird"),
    "animals/birds/nandou": ("rhea", "the call of a rhea", "bird"),
    "animals/birds/owl": ("owl", "an owl hooting", "bird"),
    "animals/birds/penguin": ("penguin", "the call of a penguin", "bird"),
    "animals/birds/quetzal": ("quetzal", "the call of a quetzal", "bird"),
    "animals/birds/rooster": ("rooster", "a rooster crowing", "bird"),
    "animals/birds/seagull": ("seagull", "a seagull crying", "bird"),
    "animals/birds/tucan": ("toucan", "the call of a toucan", "bird"),
    "animals/birds/turkey": ("turkey", "a turkey gobbling", "bird"),
    "animals/birds/vulture": ("vulture", "the call of a vulture", "bird"),
    "animals/insects/bee": ("bee", "a bee buzzing", "insect"),
    "animals/insects/grasshopper": ("grasshopper", "a grasshopper chirping", "insect"),
    "animals/insects/hornet": ("hornet", "a hornet buzzing", "insect"),
    "animals/insects/mosquito": ("mosquito", "a mosquito whining", "insect"),
    "animals/insects/xanthia": ("moth", "the sound of a moth", "insect"),
    "animals/lizards/iguana": ("iguana", "the sound of an iguana", "reptile"),
    "animals/mammals/apes/chimp": ("chimpanzee", "a chimpanzee calling", "mammal"),
    "animals/mammals/apes/gorilla": ("gorilla", "the sound of a gorilla", "mammal"),
    "animals/mammals/aquatic/dolphin": ("dolphin", "a dolphin clicking and whistling", "mammal"),
    "animals/mammals/aquatic/orca": ("orca", "the call of an orca", "mammal"),
    "animals/mammals/aquatic/sea_lion": ("sea lion", "a sea lion barking", "mammal"),
    "animals/mammals/aquatic/whale": ("whale", "a whale singing", "mammal"),
    "animals/mammals/badger": ("badger", "the sound of a badger", "mammal"),
    "animals/mammals/bears/bear": ("bear", "a bear growling", "mammal"),
    "animals/mammals/bovines/bison": ("bison", "the sound of a bison", "mammal"),
    "animals/mammals/bovines/bull": ("bull", "a bull bellowing", "mammal"),
    "animals/mammals/bovines/cow": ("cow", "a cow mooing", "mammal"),
    "animals/mammals/bovines/cow_white": ("cow", "a cow mooing", "mammal"),
    "animals/mammals/bovines/goat": ("goat", "a goat bleating", "mammal"),
    "animals/mammals/bovines/mountaingoat": ("goat", "a goat bleating", "mammal"),
    "animals/mammals/bovines/ram": ("goat", "a goat bleating", "mammal"),
    "animals/mammals/bovines/sheep": ("sheep", "a sheep bleating", "mammal"),
    "animals/mammals/bovines/sheep_lamb": ("sheep", "a lamb bleating", "mammal"),
    "animals/mammals/camel/camel": ("camel", "the sound of a camel", "mammal"),
    "animals/mammals/camel/dromedary": ("camel", "the sound of a camel", "mammal"),
    "animals/mammals/cats/lion": ("lion", "a lion roaring", "mammal"),
    "animals/mammals/cats/tiger": ("tiger", "a tiger growling", "mammal"),
    "animals/mammals/deer/caribou": ("caribou", "the sound of a caribou", "mammal"),
    "animals/mammals/deer/deer": ("deer", "the call of a deer", "mammal"),
    "animals/mammals/deer/doe": ("deer", "the call of a deer", "mammal"),
    "animals/mammals/dogs/dog": ("dog", "a dog barking", "mammal"),
    "animals/mammals/dogs/fox": ("fox", "the call of a fox", "mammal"),
    "animals/mammals/elephant": ("elephant", "an elephant trumpeting", "mammal"),
    "animals/mammals/equines/donkey": ("donkey", "a donkey braying", "mammal"),
    "animals/mammals/equines/horse": ("horse", "a horse neighing", "mammal"),
    "animals/mammals/equines/zebra": ("zebra", "the call of a zebra", "mammal"),
    "animals/mammals/ferret": ("ferret", "the sound of a ferret", "mammal"),
    "animals/mammals/giraffe": ("giraffe", "the sound of a giraffe", "mammal"),
    "animals/mammals/hippopotamus": ("hippopotamus", "the sound of a hippopotamus", "mammal"),
    "animals/mammals/pig": ("pig", "a pig grunting", "mammal"),
    "animals/mammals/pig_golden": ("pig", "a pig grunting", "mammal"),
    "animals/mammals/pig_golden2": ("pig", "a pig grunting", "mammal"),
    "animals/mammals/rodents/beaver": ("beaver", "the sound of a beaver", "mammal"),
    "animals/mammals/rodents/mouse": ("mouse", "a mouse squeaking", "mammal"),
    "animals/mammals/rodents/rabbit": ("rabbit", "the sound of a rabbit", "mammal"),
    "animals/mammals/rodents/squirrel": ("squirrel", "the sound of a squirrel", "mammal"),
    "animals/marsupials/koala": ("koala", "the call of a koala", "mammal"),
    "animals/marsupials/wombat": ("wombat", "the sound of a wombat", "mammal"),
    "food/fruit/apple_red": ("apple", "a sound effect for an apple", "object"),
    "hobbies/camera_35mm": ("camera", "a camera shutter", "object"),
    "hobbies/music/percussion/cymbal_crash": ("cymbal", "a crash cymbal", "instrument"),
    "hobbies/music/percussion/drum_tomtom_floor": ("tom drum", "a floor tom drum", "instrument"),
    "hobbies/music/percussion/drumkit": ("drum kit", "a drum kit playing", "instrument"),
    "hobbies/music/string/cello": ("cello", "a cello playing", "instrument"),
    "hobbies/music/string/violin": ("violin", "a violin playing", "instrument"),
    "hobbies/music/wind/bassoon": ("bassoon", "a bassoon playing", "instrument"),
    "household/Washing-machine": ("washing machine", "a washing machine", "machine"),
    "household/arttools/scissors_small_closed": ("scissors", "a pair of scissors", "object"),
    "household/arttools/scissors_small_open": ("scissors", "a pair of scissors", "object"),
    "household/dishes/bottle": ("bottle", "a sound effect for a bottle", "object"),
    "household/dishes/glass": ("glass", "a sound effect for a glass of water", "object"),
    "household/kettle": ("kettle", "an electric kettle", "machine"),
    "household/rubberduck": ("rubber duck", "a rubber duck squeaking", "object"),
    "household/toilet": ("toilet", "a toilet flushing", "object"),
    "household/tools/hammer": ("hammer", "a hammer blow", "tool"),
    "household/tools/mallet_metal": ("mallet", "a metal mallet blow", "tool"),
    "household/tools/saw": ("saw", "a hand saw", "tool"),
    "household/vacuum_cleaner": ("vacuum cleaner", "a vacuum cleaner", "machine"),
    "naturalforces/lightningbolt": ("thunder", "a lightning strike and thunder", "weather"),
    "seasonal/christmas/gift": ("gift", "a sound effect for a gift", "object"),
    "seasonal/christmas/hard_candy": ("candy", "a sound effect for hard candy", "object"),
    "seasonal/christmas/santahat": ("christmas hat", "a sound effect for a Christmas hat", "object"),
    "seasonal/halloween/bat_left": ("bat", "the sound of a bat", "mammal"),
    "seasonal/halloween/blackcat": ("cat", "a cat", "mammal"),
    "seasonal/halloween/ghost": ("ghost", "a spooky ghost sound effect", "object"),
    "seasonal/halloween/spider": ("spider", "a sound effect for a spider", "object"),
    "seasonal/newyears/fireworks": ("fireworks", "fireworks exploding", "object"),
    "town/flags/checkeredflag": ("racing flag", "a sound effect for a checkered racing flag", "object"),
    "vehicles/emergency/firetruck": ("fire truck", "a fire truck", "vehicle"),
    "vehicles/ship/cartoon/bathyscape": ("submarine", "a sound effect for a deep-sea submarine", "vehicle"),
}
ANIMALS = ("bird", "mammal", "insect", "amphibian", "reptile")
KIND_WORDS = {"bird": "a bird", "mammal": "a mammal", "insect": "an insect", "amphibian": "an amphibian",
              "reptile": "a reptile", "instrument": "a musical instrument", "machine": "a machine",
              "tool": "a tool", "object": "an everyday object or sound effect", "vehicle": "a vehicle",
              "weather": "weather", "synthetic": "a synthetic electronic sound"}


# ------------------------------------------------------------------------------------ synthetic classes
def _t(n: int) -> np.ndarray:
    return np.arange(n, dtype=np.float64) / SR


def _env(n: int, attack: float = 0.01, release: float = 0.05) -> np.ndarray:
    e = np.ones(n)
    a, r = max(1, int(attack * SR)), max(1, int(release * SR))
    e[:a] = np.linspace(0, 1, a)
    e[-r:] = np.minimum(e[-r:], np.linspace(1, 0, r))
    return e


def _chirp(rng: np.random.Generator, rising: bool) -> np.ndarray:
    n = int(rng.uniform(0.6, 2.5) * SR)
    f0, f1 = sorted((rng.uniform(200, 600), rng.uniform(900, 3000)))
    if not rising:
        f0, f1 = f1, f0
    f = np.geomspace(f0, f1, n)
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * _env(n)


def _tone(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.0, 3.0) * SR)
    f = rng.uniform(200, 1200)
    t = _t(n)
    return (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)) * _env(n, 0.02, 0.1)


def _clicks(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.0, 3.0) * SR)
    rate = rng.uniform(4, 20)
    x = np.zeros(n)
    click = np.exp(-np.arange(int(0.004 * SR)) / (0.0008 * SR)) * rng.choice((-1, 1))
    for s in np.arange(0, n - click.size, SR / rate).astype(int):
        x[s: s + click.size] += click
    return x


def _bursts(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.0, 3.0) * SR)
    x = np.zeros(n)
    k = int(rng.integers(2, 6))
    for s in np.sort(rng.integers(0, n - int(0.2 * SR), k)):
        m = int(rng.uniform(0.05, 0.2) * SR)
        x[s: s + m] += rng.standard_normal(m) * _env(m, 0.003, 0.03)
    return x


def _beeps(rng: np.random.Generator) -> np.ndarray:
    f = rng.uniform(600, 2000)
    on, off = rng.uniform(0.08, 0.2), rng.uniform(0.06, 0.2)
    k = int(rng.integers(3, 8))
    m = int(on * SR)
    beep = np.sin(2 * np.pi * f * _t(m)) * _env(m, 0.005, 0.01)
    return np.concatenate([np.concatenate([beep, np.zeros(int(off * SR))]) for _ in range(k)])


def _siren(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.5, 3.5) * SR)
    lo = rng.uniform(400, 800)
    hi = lo * rng.uniform(1.25, 1.5)
    period = rng.uniform(0.3, 0.7)
    f = np.where((_t(n) // period) % 2 == 0, lo, hi)
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * _env(n)


def _bell(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.2, 3.0) * SR)
    f = rng.uniform(300, 1200)
    t = _t(n)
    x = sum(a * np.sin(2 * np.pi * f * r * t) * np.exp(-t / (d * rng.uniform(0.5, 1.5)))
            for r, a, d in ((1.0, 1.0, 0.8), (2.76, 0.5, 0.4), (5.40, 0.25, 0.2), (8.93, 0.12, 0.1)))
    return x * _env(n, 0.001, 0.05)


def _buzz(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.0, 2.5) * SR)
    f = rng.uniform(70, 220)
    return np.sign(np.sin(2 * np.pi * f * _t(n))) * 0.5 * _env(n)


def _trill(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(0.8, 2.5) * SR)
    f1 = rng.uniform(1500, 4000)
    f2 = f1 * rng.uniform(1.1, 1.3)
    period = rng.uniform(0.03, 0.08)
    f = np.where((_t(n) // period) % 2 == 0, f1, f2)
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * _env(n)


def _thump(rng: np.random.Generator) -> np.ndarray:
    k = int(rng.integers(1, 4))
    out = []
    for _ in range(k):
        m = int(rng.uniform(0.3, 0.6) * SR)
        t = _t(m)
        f = rng.uniform(50, 110) * (1 + 1.5 * np.exp(-t / 0.02))
        out.append(np.sin(2 * np.pi * np.cumsum(f) / SR) * np.exp(-t / rng.uniform(0.08, 0.2)))
    return np.concatenate(out)


def _wind(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.5, 3.5) * SR)
    x = lowpass(rng.standard_normal(n).astype(np.float32), float(rng.uniform(400, 1500)))
    return x * (0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.3, 1.0) * _t(n) + rng.uniform(0, 6)))


def _warble(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.0, 3.0) * SR)
    f = rng.uniform(400, 1200) * (1 + 0.08 * np.sin(2 * np.pi * rng.uniform(5, 12) * _t(n)))
    return np.sin(2 * np.pi * np.cumsum(f) / SR) * _env(n)


def _crackle(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.uniform(1.0, 3.0) * SR)
    x = np.zeros(n)
    idx = rng.integers(0, n - 50, int(rng.uniform(20, 80) * n / SR))
    x[idx] = rng.uniform(-1, 1, idx.size)
    return np.convolve(x, np.exp(-np.arange(40) / 6.0), mode="same")


SYNTHETIC: Dict[str, Tuple[str, Callable[[np.random.Generator], np.ndarray]]] = {
    "rising chirp": ("a tone sweeping upwards in pitch", lambda r: _chirp(r, True)),
    "falling chirp": ("a tone sweeping downwards in pitch", lambda r: _chirp(r, False)),
    "steady tone": ("a steady electronic tone", _tone),
    "clicks": ("a train of sharp clicks", _clicks),
    "noise bursts": ("short bursts of hissing noise", _bursts),
    "beeping": ("a series of electronic beeps", _beeps),
    "two-tone siren": ("a two-tone siren alternating between two pitches", _siren),
    "bell": ("a struck bell ringing out", _bell),
    "buzz": ("a low electric buzz", _buzz),
    "trill": ("a fast high-pitched trill", _trill),
    "thump": ("deep, dull thumps", _thump),
    "wind noise": ("soft wind-like rushing noise", _wind),
    "warble": ("a warbling tone with vibrato", _warble),
    "crackle": ("a crackling sound like a fire", _crackle),
}


# ------------------------------------------------------------------------------------ class table
@dataclass
class SoundClass:
    label: str
    kind: str                      # a category of KIND_WORDS
    phrases: List[str]
    sources: List[Path]            # tuxpaint recordings (empty for synthetic classes)
    synth: Optional[Callable[[np.random.Generator], np.ndarray]] = None
    held_out: bool = False

    @property
    def is_animal(self) -> bool:
        return self.kind in ANIMALS

    @property
    def origin(self) -> str:
        return "synthetic" if self.synth is not None else "tuxpaint"


def held_out(label: str) -> bool:
    """Seed-independent choice of the held-out (test-only) sound classes."""
    return stable_hash(f"soundclass|{label}") % 100 < HELD_OUT_PERCENT


def tuxpaint_classes(root: Path = TUXPAINT_DIR) -> List[SoundClass]:
    """Classes from the installed Tux Paint stamps (empty if the package is missing)."""
    by_label: Dict[str, SoundClass] = {}
    if not root.is_dir():
        return []
    for rel, (label, phrase, kind) in sorted(TUXPAINT.items()):
        path = next((p for p in (root / f"{rel}.ogg", root / f"{rel}.wav") if p.exists()), None)
        if path is None:
            continue
        c = by_label.setdefault(label, SoundClass(label, kind, [], [], held_out=held_out(label)))
        c.sources.append(path)
        if phrase not in c.phrases:
            c.phrases.append(phrase)
    return [by_label[k] for k in sorted(by_label)]


def synthetic_classes() -> List[SoundClass]:
    return [SoundClass(label, "synthetic", [phrase], [], fn, held_out(label))
            for label, (phrase, fn) in sorted(SYNTHETIC.items())]


def all_classes(root: Path = TUXPAINT_DIR, synthetic: bool = True, verbose: bool = True) -> List[SoundClass]:
    classes = tuxpaint_classes(root)
    if not classes and verbose:
        print(f"[recipes] Tux Paint sounds not found under {root} (apt-get install tuxpaint-stamps-default): "
              "using synthetic sound classes only", file=sys.stderr)
    return classes + (synthetic_classes() if synthetic else [])


_DECODED: Dict[Path, np.ndarray] = {}


def load_sound(path: Path) -> np.ndarray:
    """A Tux Paint recording at 24 kHz, trimmed (cached)."""
    if path not in _DECODED:
        x, sr = decode(path)
        _DECODED[path] = trim_silence(resample(x, sr), threshold_dbfs=-50.0)
    return _DECODED[path]


SYNTHETIC_RECORDINGS = 16
"""Recording ids per synthetic class (every synthetic example is a fresh synthesis, a recording of its own;
the ids only let few-shot episodes keep their query apart from their demonstrations)."""


def recordings(c: SoundClass) -> Dict[str, Optional[Path]]:
    """Recording id -> its source file (``tuxpaint:<file name>``), or -> ``None`` for a synthetic class."""
    if c.synth is not None:
        return {f"synthetic:{c.label}:{k}": None for k in range(SYNTHETIC_RECORDINGS)}
    return {f"tuxpaint:{p.name}": p for p in c.sources}


def example(c: SoundClass, rng: random.Random, max_s: float = 5.0, source: Optional[Path] = None
            ) -> Tuple[np.ndarray, Dict[str, object]]:
    """One distinct example of class ``c`` (augmented recording or fresh synthesis), peak 0.3-0.9; a Tux
    Paint class uses ``source`` (one of ``c.sources``) when given, else a random one of its recordings."""
    nrng = np.random.default_rng(rng.getrandbits(63))
    facts: Dict[str, object] = {}
    if c.synth is not None:
        x = np.asarray(c.synth(nrng), dtype=np.float32)
    else:
        if source is not None and source not in c.sources:
            raise ValueError(f"{source} is not a recording of the class {c.label!r}")
        src = source if source is not None else rng.choice(c.sources)
        factor = rng.uniform(0.88, 1.12)
        x = speed(load_sound(src), factor)
        facts = {"file": src.name, "speed": round(factor, 3)}
        if rng.random() < 0.5:   # spectral tilt: a gentle low-pass mix
            x = (0.6 * x + 0.4 * lowpass(x, rng.uniform(1500, 5000))).astype(np.float32)
    x = crop(np.asarray(x, np.float32), max_s, rng)
    x = x + nrng.standard_normal(x.size).astype(np.float32) * float(np.max(np.abs(x)) + 1e-6) * 10 ** (
        -rng.uniform(45, 60) / 20)
    peak = rng.uniform(0.3, 0.9)
    facts["peak"] = round(peak, 3)
    return fade(peak_norm(x, peak), 5.0), facts
