"""Byte-level BPE text tokenizer for the UniAudio language model.

The tokenizer is trained with the `tokenizers` library on a small English / Mandarin / Cantonese
corpus shipped in ``uniaudio_lm/data/tokenizer_corpus.txt`` and saved as JSON in
``uniaudio_lm/data/tokenizer.json``. Rebuild it with::

    python -m uniaudio_lm.tokenizer train [--corpus FILE ...] [--vocab-size 4096] [--out PATH]

Byte-level BPE round-trips every string exactly (``decode(encode(s)) == s``). Decoding joins the tokens'
bytes and reads them as UTF-8, so any id sequence gives valid text: bytes that are not UTF-8 (a model
can emit half a character) become U+FFFD, or are dropped with ``errors="ignore"``. Special-token strings
that appear inside user text are *not* turned into special tokens: :meth:`TextTokenizer.encode` treats
all input as plain text, and special tokens are only ever inserted by id (see :mod:`uniaudio_lm.sentence`).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Sequence

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

#: Field tags of an auditory sentence (each has an opening and a closing special token).
FIELD_TAGS: tuple[str, ...] = ("transcription", "lyric", "caption", "answer")

#: Special tokens, in id order (``<pad>`` is id 0). ``<audio>`` is the text-head symbol that means
#: "the next position is an audio frame"; it also fills ``text_ids`` at audio positions.
SPECIAL_TOKENS: tuple[str, ...] = (
    "<pad>", "<eot>", "<audio>", "<task>", "</task>",
    *[t for tag in FIELD_TAGS for t in (f"<{tag}>", f"</{tag}>")],
)

DEFAULT_VOCAB_SIZE = 4096


def _bytes_to_unicode() -> dict[int, str]:
    """The byte-level alphabet (GPT-2's): every byte as one printable character."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = {b: chr(b) for b in keep}, 0
    for b in range(256):
        if b not in chars:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


#: Character of the byte-level alphabet → the byte it stands for.
BYTE_OF_CHAR: dict[str, int] = {c: b for b, c in _bytes_to_unicode().items()}


def _data_path(name: str) -> Path:
    return Path(str(resources.files("uniaudio_lm") / "data" / name))


def default_tokenizer_path() -> Path:
    """Path of the shipped ``tokenizer.json``."""
    return _data_path("tokenizer.json")


def default_corpus_path() -> Path:
    """Path of the shipped training corpus."""
    return _data_path("tokenizer_corpus.txt")


@dataclass(frozen=True)
class SpecialIds:
    """Ids of the special tokens."""

    pad: int
    eot: int
    audio: int
    task_open: int
    task_close: int


class TextTokenizer:
    """Byte-level BPE tokenizer with the auditory-sentence special tokens.

    Args:
        tokenizer: a trained :class:`tokenizers.Tokenizer` holding every token of
            :data:`SPECIAL_TOKENS`.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self._tok = tokenizer
        self._tok.encode_special_tokens = True  # user text never produces special tokens
        missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
        if missing:
            raise ValueError(f"tokenizer lacks the special tokens {missing}")
        i = tokenizer.token_to_id
        self.special = SpecialIds(i("<pad>"), i("<eot>"), i("<audio>"), i("<task>"), i("</task>"))
        self._tag_ids = {tag: (i(f"<{tag}>"), i(f"</{tag}>")) for tag in FIELD_TAGS}
        self._special_set = frozenset(i(t) for t in SPECIAL_TOKENS)
        self._bytes: list[bytes] | None = None

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, path: str | Path | None = None) -> "TextTokenizer":
        """Load a ``tokenizer.json`` (default: the one shipped with the package)."""
        p = Path(path) if path is not None else default_tokenizer_path()
        if not p.is_file():
            raise FileNotFoundError(f"no tokenizer at {p}; build it with `python -m uniaudio_lm.tokenizer train`")
        return cls(Tokenizer.from_file(str(p)))

    @classmethod
    def train(cls, corpus: Sequence[str | Path], vocab_size: int = DEFAULT_VOCAB_SIZE,
              min_frequency: int = 1) -> "TextTokenizer":
        """Train a byte-level BPE tokenizer on text files (one sentence per line)."""
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
        tok.train([str(p) for p in corpus], trainer)
        return cls(tok)

    def save(self, path: str | Path) -> None:
        """Write the tokenizer as JSON."""
        self._tok.save(str(path), pretty=False)

    # ------------------------------------------------------------------ use
    @property
    def vocab_size(self) -> int:
        """Number of text ids (special tokens included)."""
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    @property
    def pad_id(self) -> int:
        return self.special.pad

    @property
    def eot_id(self) -> int:
        return self.special.eot

    @property
    def audio_id(self) -> int:
        return self.special.audio

    def tag_ids(self, tag: str) -> tuple[int, int]:
        """``(open_id, close_id)`` of a field tag in :data:`FIELD_TAGS`."""
        if tag not in self._tag_ids:
            raise ValueError(f"unknown field tag {tag!r}; expected one of {FIELD_TAGS}")
        return self._tag_ids[tag]

    def tag_of(self, token_id: int) -> tuple[str, bool] | None:
        """``(tag, is_open)`` if ``token_id`` is a field tag, else ``None``."""
        for tag, (o, c) in self._tag_ids.items():
            if token_id == o:
                return tag, True
            if token_id == c:
                return tag, False
        return None

    def is_special(self, token_id: int) -> bool:
        return token_id in self._special_set

    def encode(self, text: str) -> list[int]:
        """Plain text → ids (never special tokens)."""
        return list(self._tok.encode(text, add_special_tokens=False).ids)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes one id stands for (a special token: its string in UTF-8; an unknown id: ``b""``)."""
        if self._bytes is None:
            self._bytes = [self._bytes_of(i) for i in range(self.vocab_size)]
        return self._bytes[token_id] if 0 <= token_id < len(self._bytes) else b""

    def _bytes_of(self, token_id: int) -> bytes:
        s = self._tok.id_to_token(token_id)
        if s is None:
            return b""
        if token_id in self._special_set or any(c not in BYTE_OF_CHAR for c in s):
            return s.encode("utf-8")
        return bytes(BYTE_OF_CHAR[c] for c in s)

    def decode(self, ids: Sequence[int], errors: str = "replace") -> str:
        """Ids → text; special tokens are written out as their strings, unknown ids are skipped.

        The result is always valid text: byte sequences that are not UTF-8 become U+FFFD
        (``errors="replace"``) or are left out (``errors="ignore"``)."""
        return b"".join(self.token_bytes(int(i)) for i in ids).decode("utf-8", errors=errors)

    def token(self, token_id: int) -> str:
        """The token string of one id."""
        s = self._tok.id_to_token(token_id)
        if s is None:
            raise ValueError(f"id {token_id} is outside the vocabulary (size {self.vocab_size})")
        return s


_DEFAULT: TextTokenizer | None = None


def default_tokenizer() -> TextTokenizer:
    """The shipped tokenizer (loaded once)."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = TextTokenizer.load()
    return _DEFAULT


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: ``train`` rebuilds ``tokenizer.json``; ``encode TEXT`` shows the tokens of a string."""
    ap = argparse.ArgumentParser(prog="python -m uniaudio_lm.tokenizer")
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train the byte-level BPE tokenizer")
    tr.add_argument("--corpus", nargs="*", default=None, help="text files (default: the shipped corpus)")
    tr.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE)
    tr.add_argument("--min-frequency", type=int, default=1)
    tr.add_argument("--out", default=None, help="output JSON (default: the packaged tokenizer.json)")
    en = sub.add_parser("encode", help="print the tokens of a string")
    en.add_argument("text")
    en.add_argument("--tokenizer", default=None)
    a = ap.parse_args(argv)
    if a.cmd == "train":
        corpus = a.corpus or [default_corpus_path()]
        tok = TextTokenizer.train(corpus, a.vocab_size, a.min_frequency)
        out = Path(a.out) if a.out else default_tokenizer_path()
        tok.save(out)
        print(f"wrote {out} (vocab {tok.vocab_size}, {len(SPECIAL_TOKENS)} special tokens)")
    else:
        tok = TextTokenizer.load(a.tokenizer)
        ids = tok.encode(a.text)
        print(len(ids), [tok.token(i) for i in ids])
        print(ids)
    return 0


if __name__ == "__main__":
    sys.exit(main())
