"""Size accounting: compare bit-packed, entropy-coded and adaptive files for the same tokens, and count
tokens to build :class:`EntropyTables`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import BitstreamError
from .chunk import CHUNK_OVERHEAD, RcChunk, encode_chunk
from .container import FOOTER_SIZE, INDEX_ENTRY_SIZE, write_bytes
from .entropy import EntropyTables
from .header import CODING_ADAPTIVE, CODING_PACKED, CODING_RANS, RcHeader

__all__ = ["SizeReport", "coded_size_report", "count_tokens"]


@dataclass(frozen=True)
class SizeReport:
    """Sizes (bytes) of the same tokens written bit-packed and, if tables were given, rANS-coded and
    adaptive (each chunk rANS or bit-packed, whichever is smaller: what ``coding="auto"`` writes).

    Attributes:
        duration_s: audio duration covered by the chunks.
        num_chunks: number of chunks.
        reasoning_tokens: total reasoning tokens (all channels).
        recon_tokens: total reconstruction tokens (all channels).
        header_bytes: size of the header block.
        framing_bytes: per-chunk record overhead + index + footer (``28 n + 20 n + 24``).
        packed_payload_bytes: token payload bytes, bit-packed.
        packed_file_bytes: total file size, bit-packed.
        coded_payload_bytes: token payload bytes, rANS-coded (None without tables).
        coded_file_bytes: total file size, rANS-coded (None without tables).
        adaptive_file_bytes: total file size in coding mode 2 (None without tables).
        adaptive_rans_chunks: how many of its chunks are rANS-coded (None without tables).
    """

    duration_s: float
    num_chunks: int
    reasoning_tokens: int
    recon_tokens: int
    header_bytes: int
    framing_bytes: int
    packed_payload_bytes: int
    packed_file_bytes: int
    coded_payload_bytes: int | None = None
    coded_file_bytes: int | None = None
    adaptive_file_bytes: int | None = None
    adaptive_rans_chunks: int | None = None

    def kbps(self, num_bytes: int) -> float:
        """``num_bytes`` over the duration, in kbit/s (0 for an empty file)."""
        return 8 * num_bytes / self.duration_s / 1000 if self.duration_s > 0 else 0.0

    @property
    def packed_kbps(self) -> float:
        return self.kbps(self.packed_file_bytes)

    @property
    def coded_kbps(self) -> float | None:
        return None if self.coded_file_bytes is None else self.kbps(self.coded_file_bytes)

    @property
    def payload_saving(self) -> float | None:
        """``1 - coded_payload / packed_payload`` (e.g. 0.2 = 20 % smaller), None without tables."""
        if self.coded_payload_bytes is None or self.packed_payload_bytes == 0:
            return None
        return 1.0 - self.coded_payload_bytes / self.packed_payload_bytes

    def summary(self) -> str:
        """One line for logs."""
        line = (
            f"{self.num_chunks} chunks, {self.duration_s:.2f} s: packed {self.packed_file_bytes} B "
            f"({self.packed_kbps:.3f} kbps)"
        )
        if self.coded_file_bytes is not None:
            line += (
                f", rANS {self.coded_file_bytes} B ({self.coded_kbps:.3f} kbps, payload "
                f"{100 * (self.payload_saving or 0.0):.1f}% smaller)"
            )
        if self.adaptive_file_bytes is not None:
            line += (
                f", adaptive {self.adaptive_file_bytes} B ({self.kbps(self.adaptive_file_bytes):.3f} kbps, "
                f"{self.adaptive_rans_chunks} of {self.num_chunks} chunks rANS)"
            )
        return line


def coded_size_report(
    header: RcHeader, chunks: Sequence[RcChunk], tables: EntropyTables | None = None
) -> SizeReport:
    """Write ``chunks`` in memory bit-packed and (with ``tables``) rANS-coded, and report both sizes.

    ``header.coding_mode``/``table_hash`` are ignored (both variants are derived from ``header``).
    """
    chunks = list(chunks)
    n = len(chunks)
    framing = n * (CHUNK_OVERHEAD + INDEX_ENTRY_SIZE) + FOOTER_SIZE
    packed_header = header.replace(coding_mode=CODING_PACKED, table_hash=bytes(32))
    packed = len(write_bytes(packed_header, chunks))
    coded = coded_payload = adaptive = adaptive_rans = None
    if tables is not None:
        rans_header = header.replace(coding_mode=CODING_RANS, table_hash=tables.hash())
        coded = len(write_bytes(rans_header, chunks, tables))
        coded_payload = coded - rans_header.size - framing
        adaptive_header = header.replace(coding_mode=CODING_ADAPTIVE, table_hash=tables.hash())
        adaptive_chunks = [len(encode_chunk(c, adaptive_header, tables)) for c in chunks]
        adaptive = adaptive_header.size + framing + sum(n - CHUNK_OVERHEAD for n in adaptive_chunks)
        adaptive_rans = sum(n < len(encode_chunk(c, packed_header)) for n, c in zip(adaptive_chunks, chunks))
    return SizeReport(
        duration_s=header.duration_s,
        num_chunks=n,
        reasoning_tokens=int(sum(c.reasoning.size for c in chunks)),
        recon_tokens=int(sum(c.recon.size for c in chunks)),
        header_bytes=header.size,
        framing_bytes=framing,
        packed_payload_bytes=packed - header.size - framing,
        packed_file_bytes=packed,
        coded_payload_bytes=coded_payload,
        coded_file_bytes=coded,
        adaptive_file_bytes=adaptive,
        adaptive_rans_chunks=adaptive_rans,
    )


def count_tokens(
    reasoning: np.ndarray, recon: np.ndarray, reasoning_codebook_size: int, recon_codebook_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per-codebook histograms for :meth:`EntropyTables.from_counts`.

    Args:
        reasoning: int tokens ``[..., Kr, Tr]`` (any leading dims, e.g. ``[B, Kr, Tr]``).
        recon: int tokens ``[..., Kq, Tq]``.
        reasoning_codebook_size: Nr.
        recon_codebook_size: Nq.

    Returns:
        int64 counts ``[Kr, Nr]`` and ``[Kq, Nq]``; add them up over a corpus.
    """
    out = []
    for name, tokens, size in (
        ("reasoning", reasoning, reasoning_codebook_size),
        ("recon", recon, recon_codebook_size),
    ):
        t = np.asarray(tokens)
        if t.ndim < 2 or t.dtype.kind not in "iu":
            raise BitstreamError(f"{name} tokens must be an integer array [..., K, T], got {t.dtype} {t.shape}")
        k = t.shape[-2]
        flat = np.moveaxis(t, -2, 0).reshape(k, -1).astype(np.int64)
        if flat.size and (flat.min() < 0 or flat.max() >= size):
            raise BitstreamError(f"{name} tokens out of range 0..{size - 1}")
        counts = np.zeros((k, size), dtype=np.int64)
        for i in range(k):
            counts[i] = np.bincount(flat[i], minlength=size)
        out.append(counts)
    return out[0], out[1]
