"""Chunks: independently decodable pieces of the token streams, and their on-disk records.

Chunk record (little-endian)::

    start_sample        u64
    num_samples         u32   1..header.chunk_samples
    n_reasoning_frames  u32   Tr = header.expected_frames(num_samples, "reasoning"), exactly
    n_recon_frames      u32   Tq = header.expected_frames(num_samples, "recon"), exactly
    payload_len         u32
    payload             payload_len bytes
    crc32               u32   over all of the above

The payload codes, for mode 0 (bit-packed), ``pack(reasoning [C, Kr, Tr])`` then
``pack(recon [C, Kq, Tq])`` (each byte-aligned); for mode 1 (rANS), one block from
:meth:`EntropyTables.encode_tokens`; for mode 2 (adaptive), the rANS block when it is strictly shorter
than the bit-packed payload, else the bit-packed payload: a payload exactly as long as bit-packing is
bit-packed, a shorter one is rANS, a longer one is corrupt.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BitstreamError
from .entropy import EntropyTables
from .header import CODING_ADAPTIVE, CODING_PACKED, RcHeader
from .packing import bits_for, pack_tokens, packed_size, unpack_tokens

__all__ = [
    "RcChunk", "CHUNK_HEAD_SIZE", "CHUNK_OVERHEAD", "MAX_TOKENS_PER_CHUNK", "encode_chunk", "check_record", "decode_chunk",
]

_HEAD = struct.Struct("<QIIII")
_CRC = struct.Struct("<I")
CHUNK_HEAD_SIZE = _HEAD.size  # 24
CHUNK_OVERHEAD = _HEAD.size + _CRC.size  # 28 bytes per chunk besides the payload
MAX_TOKENS_PER_CHUNK = 1 << 26


def _as_tokens(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 3:
        raise BitstreamError(f"{name} tokens must have shape [C, K, T], got {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise BitstreamError(f"{name} tokens must be an integer array, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


@dataclass(eq=False)
class RcChunk:
    """The tokens of one chunk for every channel.

    Attributes:
        start_sample: first sample (per channel, at the model rate) the chunk covers.
        num_samples: number of samples it covers (>= 1).
        reasoning: int64 ``[C, Kr, Tr]`` reasoning tokens.
        recon: int64 ``[C, Kq, Tq]`` reconstruction tokens.
    """

    start_sample: int
    num_samples: int
    reasoning: np.ndarray
    recon: np.ndarray

    def __post_init__(self) -> None:
        for name in ("start_sample", "num_samples"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise BitstreamError(f"chunk {name} must be an int, got {type(v).__name__}")
            setattr(self, name, int(v))
        self.reasoning = _as_tokens(self.reasoning, "reasoning")
        self.recon = _as_tokens(self.recon, "recon")

    @property
    def end_sample(self) -> int:
        """One past the last sample covered."""
        return self.start_sample + self.num_samples

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RcChunk):
            return NotImplemented
        return (
            self.start_sample == other.start_sample
            and self.num_samples == other.num_samples
            and self.reasoning.shape == other.reasoning.shape
            and self.recon.shape == other.recon.shape
            and bool(np.array_equal(self.reasoning, other.reasoning))
            and bool(np.array_equal(self.recon, other.recon))
        )

    def __repr__(self) -> str:
        return (
            f"RcChunk(start_sample={self.start_sample}, num_samples={self.num_samples}, "
            f"reasoning={tuple(self.reasoning.shape)}, recon={tuple(self.recon.shape)})"
        )


def _check_frames(header: RcHeader, num_samples: int, tr: int, tq: int, where: str) -> None:
    if not 1 <= num_samples <= header.chunk_samples:
        raise BitstreamError(f"{where}: num_samples={num_samples} outside 1..chunk_samples={header.chunk_samples}")
    for stream, t in (("reasoning", tr), ("recon", tq)):
        want = header.expected_frames(num_samples, stream)
        if t != want:
            raise BitstreamError(f"{where}: {t} {stream} frames for {num_samples} samples; the header's frame "
                                 f"rate needs exactly {want}")
    c = header.channels
    tokens = c * (header.num_reasoning_codebooks * tr + header.num_recon_codebooks * tq)
    if tokens > MAX_TOKENS_PER_CHUNK:
        raise BitstreamError(f"{where}: {tokens} tokens in one chunk (at most {MAX_TOKENS_PER_CHUNK})")


def _check_values(arr: np.ndarray, size: int, name: str, where: str) -> None:
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= size):
        raise BitstreamError(
            f"{where}: {name} token values span {int(arr.min())}..{int(arr.max())}, codebook size is {size}"
        )


def validate_chunk(chunk: RcChunk, header: RcHeader, where: str = "chunk") -> None:
    """Check shapes, frame counts and token ranges of ``chunk`` against ``header``.

    Raises:
        BitstreamError: on any inconsistency.
    """
    c, kr, tr = chunk.reasoning.shape
    c2, kq, tq = chunk.recon.shape
    want_r = (header.channels, header.num_reasoning_codebooks)
    want_q = (header.channels, header.num_recon_codebooks)
    if (c, kr) != want_r or (c2, kq) != want_q:
        raise BitstreamError(
            f"{where}: token shapes reasoning {chunk.reasoning.shape} / recon {chunk.recon.shape} do not match "
            f"the header ([{want_r[0]}, {want_r[1]}, Tr] / [{want_q[0]}, {want_q[1]}, Tq])"
        )
    _check_frames(header, chunk.num_samples, tr, tq, where)
    _check_values(chunk.reasoning, header.reasoning_codebook_size, "reasoning", where)
    _check_values(chunk.recon, header.recon_codebook_size, "recon", where)


def _packed_payload_size(header: RcHeader, tr: int, tq: int) -> int:
    c = header.channels
    return packed_size(c * header.num_reasoning_codebooks * tr, bits_for(header.reasoning_codebook_size)) + packed_size(
        c * header.num_recon_codebooks * tq, bits_for(header.recon_codebook_size)
    )


def _pack_payload(chunk: RcChunk, header: RcHeader) -> bytes:
    return pack_tokens(chunk.reasoning, bits_for(header.reasoning_codebook_size)) + pack_tokens(
        chunk.recon, bits_for(header.recon_codebook_size)
    )


def encode_chunk(chunk: RcChunk, header: RcHeader, tables: EntropyTables | None = None) -> bytes:
    """Serialise one chunk record (validated against ``header``).

    Args:
        chunk: the tokens.
        header: the file header (coding mode, shapes, codebook sizes).
        tables: required for coding modes 1 and 2; must have ``hash() == header.table_hash``.

    Returns:
        ``CHUNK_OVERHEAD + payload_len`` bytes.
    """
    validate_chunk(chunk, header)
    if header.coding_mode == CODING_PACKED:
        payload = _pack_payload(chunk, header)
    else:
        if tables is None or tables.hash() != header.table_hash:
            raise BitstreamError(f"coding mode {header.coding_mode} needs the entropy tables whose hash is in the header")
        payload = tables.encode_tokens(chunk.reasoning, chunk.recon)
        if header.coding_mode == CODING_ADAPTIVE and len(payload) >= _packed_payload_size(
            header, chunk.reasoning.shape[2], chunk.recon.shape[2]
        ):
            payload = _pack_payload(chunk, header)
    if len(payload) >= 1 << 32:
        raise BitstreamError(f"chunk payload of {len(payload)} bytes does not fit a uint32 length")
    head = _HEAD.pack(
        chunk.start_sample, chunk.num_samples, chunk.reasoning.shape[2], chunk.recon.shape[2], len(payload)
    )
    body = head + payload
    return body + _CRC.pack(zlib.crc32(body))


def decode_chunk_head(head: bytes) -> tuple[int, int, int, int, int]:
    """``(start_sample, num_samples, tr, tq, payload_len)`` from the first ``CHUNK_HEAD_SIZE`` bytes."""
    if len(head) < CHUNK_HEAD_SIZE:
        raise BitstreamError(f"truncated chunk record: {len(head)} bytes, need at least {CHUNK_OVERHEAD}")
    start, num, tr, tq, plen = _HEAD.unpack_from(head)
    return int(start), int(num), int(tr), int(tq), int(plen)


def check_record(record: bytes, header: RcHeader, where: str = "chunk") -> tuple[int, int, int, int, int]:
    """Check one chunk record without decoding its tokens: size, CRC32, frame counts against the sample
    count, and the payload length its coding mode allows. No entropy tables needed.

    Returns:
        ``(start_sample, num_samples, tr, tq, payload_len)``.

    Raises:
        BitstreamError: naming the first problem found.
    """
    if len(record) < CHUNK_OVERHEAD:
        raise BitstreamError(f"{where}: truncated record of {len(record)} bytes (at least {CHUNK_OVERHEAD})")
    start, num, tr, tq, plen = decode_chunk_head(record)
    if plen != len(record) - CHUNK_OVERHEAD:
        raise BitstreamError(f"{where}: payload length {plen} does not match the record size {len(record)}")
    (crc,) = _CRC.unpack_from(record, len(record) - _CRC.size)
    if zlib.crc32(memoryview(record)[: len(record) - _CRC.size]) != crc:
        raise BitstreamError(f"{where}: CRC32 mismatch (corrupt data)")
    _check_frames(header, num, tr, tq, where)
    packed_len = _packed_payload_size(header, tr, tq)
    if header.coding_mode == CODING_PACKED and plen != packed_len:
        raise BitstreamError(f"{where}: packed payload is {plen} bytes, expected {packed_len}")
    if header.coding_mode == CODING_ADAPTIVE and plen > packed_len:
        raise BitstreamError(
            f"{where}: payload of {plen} bytes is longer than bit-packing ({packed_len}); an adaptive "
            "file never stores that"
        )
    return start, num, tr, tq, plen


def decode_chunk(record: bytes, header: RcHeader, tables: EntropyTables | None = None, where: str = "chunk") -> RcChunk:
    """Parse and validate one complete chunk record (exactly the record's bytes).

    Raises:
        BitstreamError: truncated or corrupt record (CRC), inconsistent lengths or shapes, values out of
            range, or missing/mismatching entropy tables.
    """
    start, num, tr, tq, plen = check_record(record, header, where)
    payload = bytes(record[CHUNK_HEAD_SIZE : CHUNK_HEAD_SIZE + plen])
    c, kr, kq = header.channels, header.num_reasoning_codebooks, header.num_recon_codebooks
    packed_len = _packed_payload_size(header, tr, tq)
    if header.coding_mode == CODING_PACKED or (header.coding_mode == CODING_ADAPTIVE and plen == packed_len):
        nr = packed_size(c * kr * tr, bits_for(header.reasoning_codebook_size))
        reasoning = unpack_tokens(payload[:nr], c * kr * tr, bits_for(header.reasoning_codebook_size))
        recon = unpack_tokens(payload[nr:], c * kq * tq, bits_for(header.recon_codebook_size))
        reasoning, recon = reasoning.reshape(c, kr, tr), recon.reshape(c, kq, tq)
    else:
        if tables is None:
            raise BitstreamError(
                f"{where}: the file is entropy-coded with tables {header.table_hash.hex()[:16]}...; none were given"
            )
        if tables.hash() != header.table_hash:
            raise BitstreamError(
                f"{where}: entropy tables {tables.hash().hex()[:16]}... do not match the file's "
                f"{header.table_hash.hex()[:16]}..."
            )
        tables.check_compatible(kr, header.reasoning_codebook_size, kq, header.recon_codebook_size)
        reasoning, recon = tables.decode_tokens(payload, c, kr, tr, kq, tq)
    chunk = RcChunk(start, num, reasoning, recon)
    _check_values(chunk.reasoning, header.reasoning_codebook_size, "reasoning", where)
    _check_values(chunk.recon, header.recon_codebook_size, "recon", where)
    return chunk
