"""Fixed-width bit-packing of token arrays (coding mode 0), numpy-vectorised.

Each token takes ``bits_for(codebook_size) = max(1, ceil(log2(codebook_size)))`` bits, most
significant bit first, in C order of the array; the last byte is zero-padded.
"""

from __future__ import annotations

import numpy as np

from ..errors import BitstreamError

__all__ = ["bits_for", "packed_size", "pack_tokens", "unpack_tokens"]

MAX_BITS = 32


def bits_for(codebook_size: int) -> int:
    """Bits per token for a codebook of ``codebook_size`` (>= 2) symbols: ``ceil(log2(size))``, at least 1."""
    return max(1, (int(codebook_size) - 1).bit_length())


def packed_size(count: int, bits: int) -> int:
    """Bytes taken by ``count`` tokens of ``bits`` bits each (byte-aligned at the end)."""
    return (count * bits + 7) // 8


def pack_tokens(values: np.ndarray, bits: int) -> bytes:
    """Pack non-negative integer tokens with ``bits`` bits each.

    Args:
        values: integer array of any shape (flattened in C order); every value in ``[0, 2**bits)``
            (the caller validates the range).
        bits: bits per token, 1..32.

    Returns:
        ``packed_size(values.size, bits)`` bytes.
    """
    if not 1 <= bits <= MAX_BITS:
        raise BitstreamError(f"bits per token must be in 1..{MAX_BITS}, got {bits}")
    v = np.ascontiguousarray(values, dtype=np.int64).reshape(-1).astype(np.uint64)
    if v.size == 0:
        return b""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    bitmat = ((v[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    return np.packbits(bitmat.reshape(-1)).tobytes()


def unpack_tokens(data: bytes, count: int, bits: int) -> np.ndarray:
    """Inverse of :func:`pack_tokens`.

    Args:
        data: exactly ``packed_size(count, bits)`` bytes.
        count: number of tokens.
        bits: bits per token, 1..32.

    Returns:
        int64 array ``[count]`` (values may reach ``2**bits - 1``; range checks are the caller's).

    Raises:
        BitstreamError: wrong length or non-zero padding bits.
    """
    if not 1 <= bits <= MAX_BITS:
        raise BitstreamError(f"bits per token must be in 1..{MAX_BITS}, got {bits}")
    need = packed_size(count, bits)
    if len(data) != need:
        raise BitstreamError(f"packed token block is {len(data)} bytes, expected {need}")
    if count == 0:
        return np.zeros(0, dtype=np.int64)
    allbits = np.unpackbits(np.frombuffer(data, dtype=np.uint8))
    used = count * bits
    if allbits[used:].any():
        raise BitstreamError("packed token block has non-zero padding bits")
    bitmat = allbits[:used].reshape(count, bits).astype(np.int64)
    weights = np.left_shift(np.int64(1), np.arange(bits - 1, -1, -1, dtype=np.int64))
    return bitmat @ weights
