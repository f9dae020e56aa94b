"""Decoding the audio encoder's CTC output with a character language model (English speech recognition).

Greedy decoding takes the best symbol of every slot on its own; :func:`beam_search` keeps the ``beam``
best spellings (CTC prefix beam search: a spelling's score sums over the alignments that produce it) and
adds ``lm_weight`` × a character n-gram's log-probability plus ``char_bonus`` per character, so spellings
that look like English win over ones that only sound like it.

:class:`CharNgram` is an interpolated Witten-Bell character model (order 6 by default) over
:data:`uniaudio_lm.audio_encoder.CHARS`, counted from text lines; :func:`default_lm` counts the English
sentences of the model's training speech shipped with the package (``data/asr_text_en.txt``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import torch

from .audio_encoder import CHARS, spell

if TYPE_CHECKING:
    from .pipeline import Pipeline

#: Index of the sentence end in :class:`CharNgram` (after the characters).
_END = len(CHARS)
_BOS = -1


class CharNgram:
    """Interpolated Witten-Bell character n-gram over :data:`CHARS` plus a sentence end.

    ``P(c | h) = (C(h c) + N(h) P(c | h')) / (C(h) + N(h))`` with ``h'`` the history without its first
    character, ``N(h)`` the number of distinct characters seen after ``h``, down to add-one unigrams."""

    def __init__(self, lines: Iterable[str], order: int = 6) -> None:
        if order < 1:
            raise ValueError(f"order must be >= 1, got {order}")
        self.order = order
        self.counts: list[dict[tuple[int, ...], dict[int, int]]] = [defaultdict(dict) for _ in range(order)]
        n = 0
        for line in lines:
            ids = spell(line)
            if ids is None:
                continue
            n += 1
            seq = [_BOS] * (order - 1) + ids + [_END]
            for i in range(order - 1, len(seq)):
                for k in range(order):
                    h = tuple(seq[i - k : i])
                    d = self.counts[k][h]
                    d[seq[i]] = d.get(seq[i], 0) + 1
        if n == 0:
            raise ValueError("CharNgram needs at least one line with English letters")
        self.totals = [{h: (sum(d.values()), len(d)) for h, d in c.items()} for c in self.counts]
        self._cache: dict[tuple[int, ...], list[float]] = {}

    def log_probs(self, history: Sequence[int]) -> list[float]:
        """Natural-log probabilities of every next symbol (:data:`CHARS`, then the end) after ``history``
        (character ids, the sentence start implied before them)."""
        h = tuple(([_BOS] * (self.order - 1) + list(history))[-(self.order - 1):]) if self.order > 1 else ()
        hit = self._cache.get(h)
        if hit is not None:
            return hit
        v = len(CHARS) + 1
        p = [1.0 / v] * v
        for k in range(self.order):
            ctx = h[len(h) - k:] if k else ()
            tot = self.totals[k].get(ctx)
            if tot is None:
                continue
            c, types = tot
            d = self.counts[k][ctx]
            p = [(d.get(i, 0) + types * p[i]) / (c + types) for i in range(v)]
        out = [math.log(x) for x in p]
        if len(self._cache) < 500_000:
            self._cache[h] = out
        return out


@lru_cache(maxsize=1)
def default_lm() -> CharNgram:
    """The character model of the shipped English training sentences (counted once per process)."""
    text = resources.files("uniaudio_lm").joinpath("data/asr_text_en.txt").read_text(encoding="utf-8")
    return CharNgram(text.splitlines())


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_search(log_probs: torch.Tensor, lm: CharNgram | None = None, beam: int = 16, lm_weight: float = 0.5,
                char_bonus: float = 1.0, prune: float = -8.0) -> str:
    """CTC prefix beam search over ``log_probs [T, len(CHARS) + 1]`` (blank last) → the best spelling.

    ``lm`` (with ``lm_weight`` and ``char_bonus``) scores each added character and the end of the
    sentence; symbols below ``prune`` (log-probability) at a slot are not expanded."""
    if log_probs.dim() != 2 or log_probs.shape[1] != len(CHARS) + 1:
        raise ValueError(f"log_probs must be [T, {len(CHARS) + 1}], got {tuple(log_probs.shape)}")
    blank = len(CHARS)
    lp = log_probs.double().tolist()
    # prefix → (log P ending in blank, log P ending in its last character, LM + bonus score)
    beams: dict[tuple[int, ...], tuple[float, float, float]] = {(): (0.0, -math.inf, 0.0)}
    for row in lp:
        cand = [i for i in range(blank) if row[i] > prune]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], pb: float, pnb: float, extra: float) -> None:
            e = nxt.get(prefix)
            if e is None:
                nxt[prefix] = [pb, pnb, extra]
            else:
                e[0], e[1] = _logaddexp(e[0], pb), _logaddexp(e[1], pnb)

        for prefix, (pb, pnb, extra) in beams.items():
            total = _logaddexp(pb, pnb)
            add(prefix, total + row[blank], -math.inf, extra)                     # a blank
            if prefix:                                                            # the last character repeated
                add(prefix, -math.inf, pnb + row[prefix[-1]], extra)
            lm_lp = lm.log_probs(prefix) if lm is not None else None
            for c in cand:
                new = prefix + (c,)
                gain = (lm_weight * lm_lp[c] if lm_lp is not None else 0.0) + char_bonus
                if prefix and prefix[-1] == c:                                    # needs a blank between
                    add(new, -math.inf, pb + row[c], extra + gain)
                else:
                    add(new, -math.inf, total + row[c], extra + gain)
        beams = dict(sorted(((k, (v[0], v[1], v[2])) for k, v in nxt.items()),
                            key=lambda kv: _logaddexp(kv[1][0], kv[1][1]) + kv[1][2], reverse=True)[:beam])

    def final(kv: tuple[tuple[int, ...], tuple[float, float, float]]) -> float:
        prefix, (pb, pnb, extra) = kv
        end = lm_weight * lm.log_probs(prefix)[_END] if lm is not None else 0.0
        return _logaddexp(pb, pnb) + extra + end

    best = max(beams.items(), key=final)[0]
    return " ".join("".join(CHARS[i] for i in best).split())


@torch.no_grad()
def ctc_transcript(pipe: "Pipeline", codes: Any, lm: CharNgram | None = None) -> str:
    """The audio encoder's CTC spelling of one clip's codes (``(reasoning, reconstruction)`` as
    :meth:`uniaudio_lm.Pipeline.encode` gives them, read as in the ASR task's sentence): :func:`beam_search`
    with a character model (``lm``; default: :func:`default_lm`). Only the encoder runs."""
    from . import registry
    from .sentence import build, collate

    m = pipe.model
    segs = registry.get("asr").prompt(audio=codes).segments
    batch = collate([build(segs, pipe.tokenizer, m.vocab, eot=False)], pipe.tokenizer, m.vocab).to(pipe.device)
    h, q_ok = m.encoder_states(batch)
    return beam_search(m.audio_encoder.log_probs(h[0, q_ok[0]]), lm or default_lm())
