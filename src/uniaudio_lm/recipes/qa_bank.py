"""Templated spoken questions with deterministic answers (written for this project).

Each :class:`QA` has the question, a short answer (the text target of ``spoken_qa``) and a full answer
sentence (spoken as the audio target of ``spoken_qa_speech``). The bank is split into train and test by
a hash of the question, independent of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List

from .common import number_words, stable_hash

TEST_PERCENT = 20


@dataclass(frozen=True)
class QA:
    family: str
    question: str
    answer: str
    answer_sentence: str


CAPITALS = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid", "Japan": "Tokyo",
    "China": "Beijing", "Egypt": "Cairo", "Canada": "Ottawa", "Russia": "Moscow", "Portugal": "Lisbon",
    "Greece": "Athens", "Norway": "Oslo", "Sweden": "Stockholm", "Poland": "Warsaw", "Ireland": "Dublin",
    "Austria": "Vienna", "Kenya": "Nairobi", "Peru": "Lima", "Argentina": "Buenos Aires",
    "Thailand": "Bangkok", "India": "New Delhi", "Australia": "Canberra", "Mexico": "Mexico City",
    "Turkey": "Ankara", "Finland": "Helsinki", "Denmark": "Copenhagen", "Hungary": "Budapest",
    "Belgium": "Brussels", "the Netherlands": "Amsterdam", "South Korea": "Seoul", "Cuba": "Havana",
    "Chile": "Santiago", "Vietnam": "Hanoi", "Iceland": "Reykjavik", "Scotland": "Edinburgh",
    "Wales": "Cardiff", "England": "London", "Switzerland": "Bern", "Nepal": "Kathmandu", "Ghana": "Accra",
}
COLOUR_FACTS = (
    ("What colour is the sky on a clear day?", "blue", "The sky on a clear day is blue."),
    ("What colour is fresh grass?", "green", "Fresh grass is green."),
    ("What colour is snow?", "white", "Snow is white."),
    ("What colour is a ripe banana?", "yellow", "A ripe banana is yellow."),
    ("What colour is coal?", "black", "Coal is black."),
    ("What colour is a ripe tomato?", "red", "A ripe tomato is red."),
    ("What colour is milk?", "white", "Milk is white."),
    ("What colour is a carrot?", "orange", "A carrot is orange."),
    ("What colour are most leaves in summer?", "green", "Most leaves are green in summer."),
    ("What colour is the sun in a child's drawing?", "yellow", "The sun is usually drawn yellow."),
)
MIXES = (("blue", "yellow", "green"), ("red", "yellow", "orange"), ("red", "blue", "purple"),
         ("red", "white", "pink"), ("black", "white", "grey"), ("blue", "white", "light blue"))
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
OPPOSITES = {"hot": "cold", "big": "small", "up": "down", "fast": "slow", "day": "night", "open": "closed",
             "light": "dark", "happy": "sad", "early": "late", "full": "empty", "old": "young", "wet": "dry",
             "loud": "quiet", "left": "right", "high": "low", "hard": "soft", "long": "short", "heavy": "light",
             "inside": "outside", "first": "last"}
LEGS = {"a spider": 8, "a dog": 4, "a bird": 2, "an ant": 6, "a horse": 4, "a duck": 2, "a beetle": 6,
        "a cat": 4, "an octopus": 8, "a chicken": 2}
COUNTS = (("How many days are there in a week?", 7, "There are seven days in a week."),
          ("How many months are there in a year?", 12, "There are twelve months in a year."),
          ("How many hours are there in a day?", 24, "There are twenty-four hours in a day."),
          ("How many minutes are there in an hour?", 60, "There are sixty minutes in an hour."),
          ("How many sides does a triangle have?", 3, "A triangle has three sides."),
          ("How many sides does a square have?", 4, "A square has four sides."),
          ("How many wheels does a bicycle have?", 2, "A bicycle has two wheels."),
          ("How many seconds are there in a minute?", 60, "There are sixty seconds in a minute."))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def build_bank() -> List[QA]:
    """All questions, in a fixed order."""
    out: List[QA] = []
    for a in range(1, 13):
        for b in range(1, 13):
            wa, wb = number_words(a), number_words(b)
            out.append(QA("arithmetic", f"What is {wa} plus {wb}?", number_words(a + b),
                          f"{_cap(wa)} plus {wb} is {number_words(a + b)}."))
            if a > b:
                out.append(QA("arithmetic", f"What is {wa} minus {wb}?", number_words(a - b),
                              f"{_cap(wa)} minus {wb} is {number_words(a - b)}."))
            if a <= 10 and b <= 10:
                out.append(QA("arithmetic", f"What is {wa} times {wb}?", number_words(a * b),
                              f"{_cap(wa)} times {wb} is {number_words(a * b)}."))
    for country, city in CAPITALS.items():
        out.append(QA("capital", f"What is the capital of {country}?", city,
                      f"The capital of {country} is {city}."))
    for q, a, s in COLOUR_FACTS:
        out.append(QA("colour", q, a, s))
    for c1, c2, mix in MIXES:
        out.append(QA("colour", f"What colour do you get when you mix {c1} and {c2}?", mix,
                      f"Mixing {c1} and {c2} gives {mix}."))
    for i, d in enumerate(DAYS):
        nxt, prev = DAYS[(i + 1) % 7], DAYS[(i - 1) % 7]
        out.append(QA("day", f"What day comes after {d}?", nxt, f"{nxt} comes after {d}."))
        out.append(QA("day", f"What day comes before {d}?", prev, f"{prev} comes before {d}."))
        for k in (2, 3):
            later = DAYS[(i + k) % 7]
            out.append(QA("day", f"If today is {d}, what day will it be in {number_words(k)} days?", later,
                          f"In {number_words(k)} days it will be {later}."))
    for i, m in enumerate(MONTHS):
        nxt = MONTHS[(i + 1) % 12]
        out.append(QA("month", f"Which month comes after {m}?", nxt, f"{nxt} comes after {m}."))
    for w, o in OPPOSITES.items():
        out.append(QA("opposite", f"What is the opposite of {w}?", o, f"The opposite of {w} is {o}."))
    for animal, n in LEGS.items():
        out.append(QA("count", f"How many legs does {animal} have?", number_words(n),
                      f"{_cap(animal)} has {number_words(n)} legs."))
    for q, n, s in COUNTS:
        out.append(QA("count", q, number_words(n), s))
    for a in range(3, 40, 3):
        b = a + 1 + (a * 7) % 9
        big = max(a, b)
        out.append(QA("compare", f"Which is bigger, {number_words(a)} or {number_words(b)}?", number_words(big),
                      f"{_cap(number_words(big))} is bigger."))
    for n in range(1, 60, 4):
        out.append(QA("sequence", f"What number comes after {number_words(n)}?", number_words(n + 1),
                      f"{_cap(number_words(n + 1))} comes after {number_words(n)}."))
    return out


def split_of(qa: QA) -> str:
    return "test" if stable_hash(f"qa|{qa.question}") % 100 < TEST_PERCENT else "train"


def bank(split: str) -> List[QA]:
    return [q for q in build_bank() if split_of(q) == split]


def families(split: str) -> Dict[str, List[QA]]:
    out: Dict[str, List[QA]] = {}
    for q in bank(split):
        out.setdefault(q.family, []).append(q)
    return out
