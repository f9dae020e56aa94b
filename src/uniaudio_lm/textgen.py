"""A deterministic generator of short English sentences for synthetic speech data.

The shipped sentence lists hold a few hundred lines, too few for an ASR or TTS model to learn words
rather than memorise sentences. This grammar combines ~700 common words in a dozen sentence shapes,
so that held-out sentences are new word combinations over a shared vocabulary. Everything here is
written for this project (no external text).

    >>> from uniaudio_lm.textgen import sentences
    >>> sentences(3, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import random

NAMES = ("Anna", "Ben", "Clara", "David", "Emma", "Frank", "Grace", "Henry", "Iris", "Jack", "Kate", "Leo",
         "Maria", "Nick", "Olivia", "Peter", "Rosa", "Sam", "Tina", "Victor", "Wendy", "Zoe", "Omar", "Lucy")
NOUNS = ("dog", "cat", "horse", "bird", "fish", "cow", "sheep", "rabbit", "mouse", "duck", "car", "bus",
         "train", "boat", "plane", "bike", "truck", "house", "garden", "kitchen", "window", "door", "table",
         "chair", "bed", "lamp", "clock", "phone", "radio", "book", "letter", "paper", "pencil", "bottle",
         "glass", "cup", "plate", "spoon", "knife", "box", "bag", "coat", "hat", "shoe", "shirt", "ball",
         "game", "song", "story", "picture", "river", "lake", "sea", "beach", "hill", "mountain", "forest",
         "tree", "flower", "grass", "stone", "road", "street", "bridge", "city", "town", "village", "school",
         "market", "shop", "bank", "office", "church", "park", "farm", "field", "island", "station",
         "doctor", "teacher", "farmer", "driver", "baker", "singer", "child", "baby", "friend", "neighbour",
         "brother", "sister", "mother", "father", "uncle", "aunt", "king", "queen", "soldier", "captain",
         "apple", "orange", "banana", "bread", "cheese", "cake", "soup", "milk", "coffee", "tea", "water",
         "rice", "egg", "sugar", "salt", "honey", "pizza", "lemon", "tomato", "potato", "carrot", "onion",
         "key", "map", "ticket", "wallet", "camera", "guitar", "piano", "drum", "violin", "candle", "mirror",
         "basket", "blanket", "pillow", "towel", "ladder", "hammer", "rope", "bucket", "wheel", "engine")
ADJECTIVES = ("big", "small", "old", "new", "young", "red", "blue", "green", "yellow", "black", "white",
              "brown", "happy", "sad", "quiet", "loud", "warm", "cold", "hot", "soft", "hard", "heavy",
              "light", "dark", "bright", "clean", "dirty", "empty", "full", "fast", "slow", "long", "short",
              "tall", "wide", "narrow", "sweet", "bitter", "fresh", "strange", "famous", "friendly", "angry",
              "tired", "busy", "lazy", "clever", "brave", "gentle", "wild", "rich", "poor", "cheap", "broken")
VERBS_T = (("see", "saw"), ("find", "found"), ("take", "took"), ("bring", "brought"), ("buy", "bought"),
           ("sell", "sold"), ("paint", "painted"), ("clean", "cleaned"), ("open", "opened"),
           ("close", "closed"), ("carry", "carried"), ("wash", "washed"), ("fix", "fixed"),
           ("push", "pushed"), ("pull", "pulled"), ("drop", "dropped"), ("hide", "hid"), ("draw", "drew"),
           ("like", "liked"), ("want", "wanted"), ("need", "needed"), ("watch", "watched"),
           ("follow", "followed"), ("visit", "visited"), ("cook", "cooked"), ("eat", "ate"),
           ("lose", "lost"), ("keep", "kept"), ("hold", "held"), ("throw", "threw"), ("catch", "caught"),
           ("move", "moved"), ("check", "checked"), ("count", "counted"), ("lift", "lifted"))
VERBS_I = (("run", "ran"), ("walk", "walked"), ("sleep", "slept"), ("sing", "sang"), ("dance", "danced"),
           ("laugh", "laughed"), ("cry", "cried"), ("wait", "waited"), ("swim", "swam"), ("jump", "jumped"),
           ("sit", "sat"), ("stand", "stood"), ("smile", "smiled"), ("work", "worked"), ("play", "played"),
           ("rest", "rested"), ("shout", "shouted"), ("travel", "travelled"), ("arrive", "arrived"),
           ("leave", "left"), ("return", "returned"), ("listen", "listened"), ("study", "studied"))
PLACES = ("in the garden", "near the river", "at the station", "on the table", "under the bed",
          "behind the door", "in the kitchen", "at school", "in the park", "on the beach", "by the window",
          "in the city", "at the market", "on the hill", "in the forest", "at home", "in the car",
          "on the bridge", "at the office", "next to the lamp", "in the box", "on the road", "at the farm")
TIMES = ("today", "yesterday", "this morning", "last night", "every day", "on Monday", "on Friday",
         "in the evening", "after lunch", "before dinner", "at noon", "last week", "next year", "tonight",
         "in the summer", "in the winter", "at midnight", "on Sunday", "early", "later")
NUMBERS = ("two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "twelve", "twenty")
QUESTIONS = ("where", "when", "why", "how")


def _np(rng: random.Random, plural: bool = False) -> str:
    noun = rng.choice(NOUNS)
    if plural:
        n = rng.choice(NUMBERS)
        noun = noun + ("es" if noun.endswith(("s", "sh", "ch", "x", "o")) else "s")
        return f"{n} {rng.choice(ADJECTIVES)} {noun}" if rng.random() < 0.4 else f"{n} {noun}"
    det = rng.choice(("the", "the", "a", "my", "your", "our", "this", "that"))
    if det == "a" and (rng.random() < 0.5):
        adj = rng.choice(ADJECTIVES)
        det = "an" if adj[0] in "aeiou" else "a"
        return f"{det} {adj} {noun}"
    if det == "a" and noun[0] in "aeiou":
        det = "an"
    return f"{det} {rng.choice(ADJECTIVES)} {noun}" if rng.random() < 0.35 else f"{det} {noun}"


def _subject(rng: random.Random) -> str:
    return rng.choice(NAMES) if rng.random() < 0.5 else _np(rng).capitalize()


def sentence(rng: random.Random) -> str:
    """One sentence (4–10 words), ending with a full stop or a question mark."""
    shape = rng.randrange(12)
    vt, vi = rng.choice(VERBS_T), rng.choice(VERBS_I)
    if shape == 0:
        s = f"{_subject(rng)} {vt[1]} {_np(rng)} {rng.choice(TIMES)}."
    elif shape == 1:
        s = f"{_subject(rng)} {vi[1]} {rng.choice(PLACES)}."
    elif shape == 2:
        s = f"{_np(rng).capitalize()} is {rng.choice(ADJECTIVES)} {rng.choice(TIMES)}."
    elif shape == 3:
        s = f"Please {vt[0]} {_np(rng)} {rng.choice(PLACES)}."
    elif shape == 4:
        s = f"{rng.choice(QUESTIONS).capitalize()} did {rng.choice(NAMES)} {vt[0]} {_np(rng)}?"
    elif shape == 5:
        s = f"{rng.choice(NAMES)} has {_np(rng, plural=True)}."
    elif shape == 6:
        s = f"There is {_np(rng)} {rng.choice(PLACES)}."
    elif shape == 7:
        s = f"{rng.choice(NAMES)} wants to {vi[0]} {rng.choice(TIMES)}."
    elif shape == 8:
        s = f"Do not {vt[0]} {_np(rng)}."
    elif shape == 9:
        s = f"{_subject(rng)} and {rng.choice(NAMES)} {vi[1]} {rng.choice(TIMES)}."
    elif shape == 10:
        s = f"I think {_np(rng)} is {rng.choice(ADJECTIVES)}."
    else:
        s = f"We will {vt[0]} {_np(rng)} {rng.choice(TIMES)}."
    return s[0].upper() + s[1:]


def sentences(n: int, seed: int = 0, exclude: set[str] | None = None) -> list[str]:
    """``n`` distinct sentences, deterministic for ``seed``; ``exclude`` (e.g. a test set) is skipped."""
    rng = random.Random(seed)
    out: list[str] = []
    seen = set(exclude or ())
    tries = 0
    while len(out) < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise RuntimeError(f"could not draw {n} distinct sentences (got {len(out)})")
        s = sentence(rng)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
