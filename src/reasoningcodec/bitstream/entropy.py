"""Static-table rANS entropy coder for reasoning and reconstruction tokens.

The coder is a byte-exact, pure-Python rANS (range asymmetric numeral system) with a 64-bit state
and 32-bit renormalisation words:

* state ``x`` lives in ``[L, L * 2**32)`` with ``L = 2**32``;
* every table has frequencies summing to ``M = 2**prob_bits`` and every symbol has frequency >= 1;
* a coded block is ``final_state (uint64 LE) || words (uint32 LE ...)``; the decoder starts from the
  final state and must end exactly at ``L`` having consumed every word (a built-in integrity check).

One :class:`EntropyTables` holds one frequency table per codebook of each stream ("reasoning" and
"recon"). A file records :meth:`EntropyTables.hash` in its header, so it can only be decoded with the
very same quantised tables.
"""

from __future__ import annotations

import array
import hashlib
import math
import os
from bisect import bisect_right
from typing import Sequence

import numpy as np

from ..errors import BitstreamError

__all__ = ["EntropyTables", "DEFAULT_PROB_BITS", "rans_encode", "rans_decode", "CodingTable"]

DEFAULT_PROB_BITS = 16
MIN_PROB_BITS = 8
MAX_PROB_BITS = 24
RANS_L = 1 << 32
_WORD_MASK = 0xFFFFFFFF
_LUT_MAX_BITS = 20  # above this the decoder bisects the cumulative table instead of a slot lookup
_TABLES_FORMAT = "reasoningcodec-entropy-tables-v1"


class CodingTable:
    """Precomputed Python-level views of one quantised frequency table (``N`` symbols).

    Attributes:
        size: number of symbols ``N``.
        freq: list ``[N]`` of frequencies (>= 1, summing to ``2**prob_bits``).
        cum: list ``[N]`` of cumulative frequencies (exclusive prefix sums).
        xmax: list ``[N]`` of encoder renormalisation thresholds ``freq << (64 - prob_bits)``.
        lut: slot -> symbol table ``[2**prob_bits]`` (or ``None`` when bisecting ``cum``).
        min_bits: a lower bound on the bits any symbol of this table adds to a rANS block.
    """

    __slots__ = ("size", "prob_bits", "freq", "cum", "xmax", "lut", "min_bits")

    def __init__(self, freqs: np.ndarray, prob_bits: int) -> None:
        f = np.asarray(freqs, dtype=np.int64)
        self.size = int(f.shape[0])
        self.prob_bits = prob_bits
        self.freq: list[int] = f.tolist()
        cum = np.zeros_like(f)
        np.cumsum(f[:-1], out=cum[1:])
        self.cum: list[int] = cum.tolist()
        shift = 64 - prob_bits
        self.xmax: list[int] = [v << shift for v in self.freq]
        # encoding s multiplies the state by >= (M / f) * (1 - 2**(prob_bits - 32)); keep a safety margin
        self.min_bits = max(0.0, math.log2((1 << prob_bits) / max(self.freq)) - 2.0 ** (prob_bits - 30))
        self.lut: array.array | None = None
        if prob_bits <= _LUT_MAX_BITS:
            code = "H" if self.size <= 1 << 16 else "I"
            self.lut = array.array(code, np.repeat(np.arange(self.size), f).astype(np.uint32).tolist())


def rans_encode(streams: Sequence[tuple[Sequence[int], CodingTable]], prob_bits: int) -> bytes:
    """Code several symbol streams, each with its own table, into one rANS block.

    Args:
        streams: ``(symbols, table)`` pairs in decode order; ``symbols`` is a 1-D sequence of ints in
            ``[0, table.size)`` (validated by the caller).
        prob_bits: log2 of every table's total frequency.

    Returns:
        ``uint64 final state || uint32 words``, little-endian; ``8 + 4 * n_words`` bytes.
    """
    x = RANS_L
    words: list[int] = []
    emit = words.append
    mask = _WORD_MASK
    pb = prob_bits
    for symbols, table in reversed(streams):
        freq, cum, xmax = table.freq, table.cum, table.xmax
        for s in reversed(symbols):
            f = freq[s]
            if x >= xmax[s]:
                emit(x & mask)
                x >>= 32
            x = ((x // f) << pb) + (x % f) + cum[s]
    words.reverse()
    return x.to_bytes(8, "little") + np.asarray(words, dtype="<u4").tobytes()


def rans_decode(data: bytes, streams: Sequence[tuple[int, CodingTable]], prob_bits: int) -> list[np.ndarray]:
    """Inverse of :func:`rans_encode`.

    Args:
        data: the coded block.
        streams: ``(count, table)`` pairs in decode order.
        prob_bits: log2 of every table's total frequency.

    Returns:
        one int64 array ``[count]`` per stream.

    Raises:
        BitstreamError: malformed block (bad length or state, words missing or left over).
    """
    if len(data) < 8 or (len(data) - 8) % 4:
        raise BitstreamError(f"entropy-coded payload has invalid length {len(data)} (want 8 + 4*k bytes)")
    x = int.from_bytes(data[:8], "little")
    if x < RANS_L:
        raise BitstreamError("entropy-coded payload has an invalid initial state")
    n_words = (len(data) - 8) // 4
    # every symbol costs at least min_bits: refuse symbol counts the block cannot possibly hold (no long loops)
    need = sum(count * table.min_bits for count, table in streams)
    if need > 64 + 33 * n_words:
        raise BitstreamError(f"entropy-coded payload of {len(data)} bytes is too short for the token counts")
    words: list[int] = np.frombuffer(data, dtype="<u4", offset=8).tolist()
    pos = 0
    mask = (1 << prob_bits) - 1
    pb = prob_bits
    low = RANS_L
    out: list[np.ndarray] = []
    for count, table in streams:
        freq, cum, lut = table.freq, table.cum, table.lut
        syms = [0] * count
        if lut is not None:
            for i in range(count):
                slot = x & mask
                s = lut[slot]
                x = freq[s] * (x >> pb) + slot - cum[s]
                if x < low:
                    if pos >= n_words:
                        raise BitstreamError("entropy-coded payload ends before all tokens are decoded")
                    x = (x << 32) | words[pos]
                    pos += 1
                syms[i] = s
        else:
            for i in range(count):
                slot = x & mask
                s = bisect_right(cum, slot) - 1
                x = freq[s] * (x >> pb) + slot - cum[s]
                if x < low:
                    if pos >= n_words:
                        raise BitstreamError("entropy-coded payload ends before all tokens are decoded")
                    x = (x << 32) | words[pos]
                    pos += 1
                syms[i] = s
        out.append(np.asarray(syms, dtype=np.int64))
    if x != RANS_L or pos != n_words:
        raise BitstreamError(
            f"entropy-coded payload is inconsistent (final state {'ok' if x == RANS_L else 'wrong'}, "
            f"{n_words - pos} unused words)"
        )
    return out


def _quantise(counts: np.ndarray, prob_bits: int) -> np.ndarray:
    """Add-one smoothing, then quantise each row of ``counts [K, N]`` to sum exactly ``2**prob_bits``.

    Every symbol gets frequency >= 1. Returns int64 ``[K, N]``.
    """
    total = 1 << prob_bits
    c = np.asarray(counts, dtype=np.float64) + 1.0
    out = np.empty(c.shape, dtype=np.int64)
    for k in range(c.shape[0]):
        p = c[k] / c[k].sum()
        exact = p * total
        f = np.maximum(np.floor(exact).astype(np.int64), 1)
        diff = total - int(f.sum())
        if diff > 0:  # give the remainder to the largest fractional parts
            order = np.argsort(-(exact - np.floor(exact)), kind="stable")
            f[order[:diff]] += 1
        while diff < 0:  # take back from the most frequent symbols (cheapest in bits)
            movable = np.flatnonzero(f > 1)
            take = movable[np.argsort(-f[movable], kind="stable")][: -diff]
            f[take] -= 1
            diff += len(take)
        out[k] = f
    return out


class EntropyTables:
    """Static per-codebook frequency tables for the "reasoning" and "recon" token streams.

    Args:
        reasoning: quantised frequencies ``[Kr, Nr]`` (int, every entry >= 1, rows sum to ``2**prob_bits``).
        recon: quantised frequencies ``[Kq, Nq]``.
        prob_bits: log2 of the total frequency of every row (8..24).

    Raises:
        BitstreamError: the tables are not valid quantised tables.
    """

    def __init__(self, reasoning: np.ndarray, recon: np.ndarray, prob_bits: int = DEFAULT_PROB_BITS) -> None:
        if not MIN_PROB_BITS <= int(prob_bits) <= MAX_PROB_BITS:
            raise BitstreamError(f"entropy tables: prob_bits must be in {MIN_PROB_BITS}..{MAX_PROB_BITS}, got {prob_bits}")
        self.prob_bits = int(prob_bits)
        self.reasoning = self._check(reasoning, "reasoning")
        self.recon = self._check(recon, "recon")
        self._hash: bytes | None = None
        self._coding: dict[tuple[str, int], CodingTable] = {}

    def _check(self, table: np.ndarray, name: str) -> np.ndarray:
        t = np.asarray(table)
        if t.ndim != 2 or t.dtype.kind not in "iu":
            raise BitstreamError(f"entropy tables: {name} must be an integer array [K, N], got {t.dtype} {t.shape}")
        total = 1 << self.prob_bits
        if t.shape[1] < 2 or t.shape[1] > total:
            raise BitstreamError(f"entropy tables: {name} codebook size {t.shape[1]} not in 2..{total}")
        t = t.astype(np.int64)
        if t.size and (t.min() < 1 or np.any(t.sum(axis=1) != total)):
            raise BitstreamError(f"entropy tables: every {name} frequency must be >= 1 and rows must sum to {total}")
        return t

    @classmethod
    def from_counts(
        cls, reasoning_counts: np.ndarray, recon_counts: np.ndarray, prob_bits: int = DEFAULT_PROB_BITS
    ) -> "EntropyTables":
        """Build tables from token counts (add-one smoothing, quantised to ``2**prob_bits``).

        Args:
            reasoning_counts: non-negative counts ``[Kr, Nr]``; row k is codebook k's histogram.
            recon_counts: non-negative counts ``[Kq, Nq]``.
            prob_bits: log2 of the quantised total (default 16).
        """
        arrays = []
        for name, counts in (("reasoning", reasoning_counts), ("recon", recon_counts)):
            c = np.asarray(counts)
            if c.ndim != 2 or c.dtype.kind not in "iuf" or (c.size and (not np.all(np.isfinite(c)) or c.min() < 0)):
                raise BitstreamError(f"entropy tables: {name}_counts must be finite non-negative [K, N], got {c.shape}")
            if not 2 <= c.shape[1] <= 1 << int(prob_bits):
                raise BitstreamError(f"entropy tables: {name} codebook size {c.shape[1]} not in 2..{1 << int(prob_bits)}")
            arrays.append(_quantise(c, int(prob_bits)) if c.shape[0] else np.ones((0, c.shape[1]), np.int64))
        return cls(arrays[0], arrays[1], prob_bits)

    @property
    def num_reasoning_codebooks(self) -> int:
        return int(self.reasoning.shape[0])

    @property
    def num_recon_codebooks(self) -> int:
        return int(self.recon.shape[0])

    @property
    def reasoning_codebook_size(self) -> int:
        return int(self.reasoning.shape[1])

    @property
    def recon_codebook_size(self) -> int:
        return int(self.recon.shape[1])

    def hash(self) -> bytes:
        """sha256 (32 bytes) of the quantised tables, their shapes and ``prob_bits``."""
        if self._hash is None:
            h = hashlib.sha256(_TABLES_FORMAT.encode())
            h.update(self.prob_bits.to_bytes(1, "little"))
            for t in (self.reasoning, self.recon):
                h.update(np.asarray(t.shape, dtype="<u8").tobytes())
                h.update(t.astype("<u4").tobytes())
            self._hash = h.digest()
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, EntropyTables) and self.hash() == other.hash()

    def __hash__(self) -> int:
        return hash(self.hash())

    def __repr__(self) -> str:
        return (
            f"EntropyTables(reasoning={tuple(self.reasoning.shape)}, recon={tuple(self.recon.shape)}, "
            f"prob_bits={self.prob_bits}, hash={self.hash().hex()[:12]})"
        )

    def check_compatible(self, kr: int, nr: int, kq: int, nq: int) -> None:
        """Raise BitstreamError unless these tables can code ``kr`` reasoning codebooks of ``nr`` symbols
        and ``kq`` recon codebooks of ``nq`` symbols (the first ``kr`` / ``kq`` tables are used)."""
        if kr > self.num_reasoning_codebooks or (kr and nr != self.reasoning_codebook_size):
            raise BitstreamError(
                f"entropy tables have {self.num_reasoning_codebooks} reasoning codebooks of "
                f"{self.reasoning_codebook_size} symbols; the stream has {kr} of {nr}"
            )
        if kq > self.num_recon_codebooks or (kq and nq != self.recon_codebook_size):
            raise BitstreamError(
                f"entropy tables have {self.num_recon_codebooks} recon codebooks of {self.recon_codebook_size} "
                f"symbols; the stream has {kq} of {nq}"
            )

    def coding_table(self, stream: str, k: int) -> CodingTable:
        """The (cached) :class:`CodingTable` of codebook ``k`` of ``stream`` ("reasoning" or "recon")."""
        key = (stream, k)
        tab = self._coding.get(key)
        if tab is None:
            src = self.reasoning if stream == "reasoning" else self.recon
            tab = CodingTable(src[k], self.prob_bits)
            self._coding[key] = tab
        return tab

    def _layout(self, c: int, kr: int, kq: int) -> list[CodingTable]:
        tabs_r = [self.coding_table("reasoning", k) for k in range(kr)]
        tabs_q = [self.coding_table("recon", k) for k in range(kq)]
        return (tabs_r + tabs_q) * c

    def encode_tokens(self, reasoning: np.ndarray, recon: np.ndarray) -> bytes:
        """Code tokens into one rANS block.

        Args:
            reasoning: int ``[C, Kr, Tr]`` with values in ``[0, Nr)``.
            recon: int ``[C, Kq, Tq]`` with values in ``[0, Nq)``, ``Kq <= num_recon_codebooks``.

        Returns:
            the coded bytes (see module docstring); decode order is channel-major, then reasoning
            codebooks, then recon codebooks, each over time.
        """
        c, kr, _ = reasoning.shape
        kq = recon.shape[1]
        self.check_compatible(kr, self.reasoning_codebook_size, kq, self.recon_codebook_size)
        rows: list[list[int]] = []
        for ch in range(c):
            rows.extend(reasoning[ch].tolist())
            rows.extend(recon[ch].tolist())
        return rans_encode(list(zip(rows, self._layout(c, kr, kq))), self.prob_bits)

    def decode_tokens(self, data: bytes, c: int, kr: int, tr: int, kq: int, tq: int) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`encode_tokens`; returns int64 ``reasoning [C, Kr, Tr]`` and ``recon [C, Kq, Tq]``."""
        self.check_compatible(kr, self.reasoning_codebook_size, kq, self.recon_codebook_size)
        layout = self._layout(c, kr, kq)
        counts = ([tr] * kr + [tq] * kq) * c
        rows = rans_decode(data, list(zip(counts, layout)), self.prob_bits)
        reasoning = np.zeros((c, kr, tr), dtype=np.int64)
        recon = np.zeros((c, kq, tq), dtype=np.int64)
        i = 0
        for ch in range(c):
            for k in range(kr):
                reasoning[ch, k] = rows[i]
                i += 1
            for k in range(kq):
                recon[ch, k] = rows[i]
                i += 1
        return reasoning, recon

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the tables as safetensors (``reasoning`` and ``recon`` uint32 tensors + metadata)."""
        from safetensors.numpy import save_file

        save_file(
            {"reasoning": self.reasoning.astype(np.uint32), "recon": self.recon.astype(np.uint32)},
            str(path),
            metadata={"format": _TABLES_FORMAT, "prob_bits": str(self.prob_bits), "sha256": self.hash().hex()},
        )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "EntropyTables":
        """Read tables written by :meth:`save`.

        Raises:
            BitstreamError: missing or unreadable file, wrong format, or a stored hash that does not match.
        """
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="np") as f:
                meta = f.metadata() or {}
                keys = set(f.keys())
                if meta.get("format") != _TABLES_FORMAT or keys != {"reasoning", "recon"}:
                    raise BitstreamError(f"{path}: not a reasoningcodec entropy-tables file")
                reasoning, recon = f.get_tensor("reasoning"), f.get_tensor("recon")
        except BitstreamError:
            raise
        except Exception as exc:  # safetensors raises several types for unreadable files
            raise BitstreamError(f"cannot read entropy tables {path}: {type(exc).__name__}: {exc}") from None
        try:
            prob_bits = int(meta.get("prob_bits", ""))
        except ValueError:
            raise BitstreamError(f"{path}: entropy tables have an invalid prob_bits entry") from None
        tables = cls(reasoning, recon, prob_bits)
        if "sha256" in meta and meta["sha256"] != tables.hash().hex():
            raise BitstreamError(f"{path}: entropy tables do not match their stored sha256")
        return tables
