"""The fixed file header of the ``.rc`` format and the format's constants.

Header block (all integers little-endian)::

    magic         4s   b"RCDC"
    version       u16  1, or 2 when coding_mode is 2 (see RcHeader.format_version)
    body_len      u32  length of the body that follows
    body:
      model_id_len u16, model_id (utf-8, model_id_len bytes)
      weights_hash 32s
      sample_rate u32, channels u16, num_samples u64, original_sample_rate u32
      reasoning_frame_rate num u32, den u32
      recon_frame_rate num u32, den u32
      reasoning_codebook_size u32, recon_codebook_size u32
      num_reasoning_codebooks u16, num_recon_codebooks u16, model_recon_codebooks u16
      chunk_samples u32, coding_mode u8, table_hash 32s, loudness_gain_db f32 (NaN = none)
    header_crc    u32  CRC32 of everything above (magic included)

Coding modes: 0 bit-packs every chunk; 1 rANS-codes every chunk with the tables whose hash is in the
header; 2 (format version 2) codes each chunk with rANS where that is strictly smaller than bit-packing
and bit-packs it otherwise, so a chunk's payload length says which (see ``chunk.py``). Files of modes 0
and 1 are written as version 1, which readers of version 1 read.
"""

from __future__ import annotations

import math
import struct
import zlib
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any

import numpy as np

from ..errors import BitstreamError

__all__ = [
    "MAGIC",
    "FORMAT_VERSION",
    "SUPPORTED_VERSIONS",
    "CODING_PACKED",
    "CODING_RANS",
    "CODING_ADAPTIVE",
    "RcHeader",
    "MAX_HEADER_SIZE",
]

MAGIC = b"RCDC"
FORMAT_VERSION = 2  # the newest version written (only by coding mode 2; modes 0 and 1 are written as version 1)
SUPPORTED_VERSIONS: tuple[int, ...] = (1, 2)
CODING_PACKED = 0  # fixed-width bit-packing
CODING_RANS = 1  # rANS with static per-codebook tables (EntropyTables)
CODING_ADAPTIVE = 2  # per chunk: rANS where strictly smaller than bit-packing, else bit-packed (version 2)

_PREFIX = struct.Struct("<4sHI")  # magic, version, body_len
_FIXED = struct.Struct("<32sIHQIIIIIIIHHHIB32sf")
_CRC = struct.Struct("<I")
PREFIX_SIZE = _PREFIX.size  # 10
MAX_MODEL_ID_BYTES = 1024
MAX_SAMPLE_RATE = 1 << 22
MAX_CHANNELS = 256
MAX_CODEBOOKS = 1024
MAX_CODEBOOK_SIZE = 1 << 24
MAX_GAIN_DB = 1000.0
MAX_HEADER_SIZE = PREFIX_SIZE + 2 + MAX_MODEL_ID_BYTES + _FIXED.size + _CRC.size


def _as_rate(value: Any, name: str) -> Fraction:
    """Normalise a frame rate (int, float or Fraction) to a Fraction with uint32 numerator/denominator."""
    try:
        if isinstance(value, float):
            if not math.isfinite(value):
                raise BitstreamError(f"{name} must be finite, got {value}")
            fr = Fraction(value).limit_denominator(1_000_000)
        else:
            fr = Fraction(value)
    except (TypeError, ValueError, ZeroDivisionError):
        raise BitstreamError(f"{name} must be a positive number, got {value!r}") from None
    if fr <= 0 or fr.numerator >= 1 << 32 or fr.denominator >= 1 << 32:
        raise BitstreamError(f"{name} must be a positive rational with uint32 num/den, got {value!r}")
    return fr


def _check_int(name: str, value: Any, lo: int, hi: int) -> int:
    if isinstance(value, (bool, float)) or not isinstance(value, (int, np.integer)):
        raise BitstreamError(f"header field {name} must be an int, got {type(value).__name__}")
    v = int(value)
    if not lo <= v <= hi:
        raise BitstreamError(f"header field {name}={v} is outside {lo}..{hi}")
    return v


@dataclass(frozen=True)
class RcHeader:
    """Everything a decoder needs before the first chunk.

    Attributes:
        model_id: model name/version string (utf-8, <= 1024 bytes).
        weights_hash: 32 bytes identifying the weights (e.g. sha256).
        sample_rate: model sample rate (Hz).
        channels: C, coded independently with the same model.
        num_samples: original length per channel at the model rate.
        original_sample_rate: the input file's sample rate (Hz).
        reasoning_frame_rate: reasoning token rate (Hz), stored exactly as a fraction (e.g. 5).
        recon_frame_rate: reconstruction token rate (Hz), e.g. Fraction(25, 2).
        reasoning_codebook_size: Nr, symbols per reasoning codebook.
        recon_codebook_size: Nq, symbols per reconstruction codebook.
        num_reasoning_codebooks: Kr in the file.
        num_recon_codebooks: Kq kept in the file (the first Kq residual stages), 1..model_recon_codebooks.
        model_recon_codebooks: the model's number of reconstruction codebooks.
        chunk_samples: nominal samples per chunk (every chunk holds 1..chunk_samples samples).
        coding_mode: CODING_PACKED (0), CODING_RANS (1) or CODING_ADAPTIVE (2: each chunk rANS or
            bit-packed, whichever is smaller).
        table_hash: EntropyTables.hash() for modes 1 and 2, 32 zero bytes for CODING_PACKED.
        loudness_gain_db: gain applied before encoding (float32 precision), or None.
    """

    model_id: str
    weights_hash: bytes
    sample_rate: int
    channels: int
    num_samples: int
    original_sample_rate: int
    reasoning_frame_rate: Fraction
    recon_frame_rate: Fraction
    reasoning_codebook_size: int
    recon_codebook_size: int
    num_reasoning_codebooks: int
    num_recon_codebooks: int
    model_recon_codebooks: int
    chunk_samples: int
    coding_mode: int = CODING_PACKED
    table_hash: bytes = bytes(32)
    loudness_gain_db: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.model_id, str):
            raise BitstreamError(f"model_id must be a str, got {type(self.model_id).__name__}")
        try:
            mid = self.model_id.encode("utf-8")
        except UnicodeEncodeError:
            raise BitstreamError("model_id is not encodable as utf-8") from None
        if len(mid) > MAX_MODEL_ID_BYTES:
            raise BitstreamError(f"model_id is {len(mid)} bytes; at most {MAX_MODEL_ID_BYTES} allowed")
        for name in ("weights_hash", "table_hash"):
            v = getattr(self, name)
            if not isinstance(v, (bytes, bytearray)) or len(v) != 32:
                raise BitstreamError(f"{name} must be 32 bytes")
            object.__setattr__(self, name, bytes(v))
        u32 = (1 << 32) - 1
        ints = {
            "sample_rate": (1, MAX_SAMPLE_RATE),
            "channels": (1, MAX_CHANNELS),
            "num_samples": (0, (1 << 64) - 1),
            "original_sample_rate": (1, MAX_SAMPLE_RATE),
            "reasoning_codebook_size": (2, MAX_CODEBOOK_SIZE),
            "recon_codebook_size": (2, MAX_CODEBOOK_SIZE),
            "num_reasoning_codebooks": (0, MAX_CODEBOOKS),
            "num_recon_codebooks": (1, MAX_CODEBOOKS),
            "model_recon_codebooks": (1, MAX_CODEBOOKS),
            "chunk_samples": (1, u32),
            "coding_mode": (CODING_PACKED, CODING_ADAPTIVE),
        }
        for name, (lo, hi) in ints.items():
            object.__setattr__(self, name, _check_int(name, getattr(self, name), lo, hi))
        if self.num_recon_codebooks > self.model_recon_codebooks:
            raise BitstreamError(
                f"num_recon_codebooks={self.num_recon_codebooks} exceeds model_recon_codebooks={self.model_recon_codebooks}"
            )
        for name in ("reasoning_frame_rate", "recon_frame_rate"):
            rate = _as_rate(getattr(self, name), name)
            if rate > self.sample_rate:
                raise BitstreamError(f"{name}={rate} exceeds sample_rate={self.sample_rate}")
            object.__setattr__(self, name, rate)
        if (self.coding_mode == CODING_PACKED) != (self.table_hash == bytes(32)):
            raise BitstreamError("table_hash must be all zero exactly when coding_mode is 0 (bit-packed)")
        g = self.loudness_gain_db
        if g is not None:
            if isinstance(g, bool) or not isinstance(g, (int, float, np.floating, np.integer)):
                raise BitstreamError(f"loudness_gain_db must be a float or None, got {type(g).__name__}")
            g = float(np.float32(g))
            if math.isnan(g):
                g = None
            elif not abs(g) <= MAX_GAIN_DB:
                raise BitstreamError(f"loudness_gain_db={g} is outside +-{MAX_GAIN_DB} dB")
            object.__setattr__(self, "loudness_gain_db", g)

    # -- derived quantities ---------------------------------------------------------------------

    def replace(self, **changes: Any) -> "RcHeader":
        """A copy with some fields changed (validated again)."""
        return replace(self, **changes)

    @property
    def format_version(self) -> int:
        """The format version this header is written with: 2 for coding mode 2, else 1."""
        return 2 if self.coding_mode == CODING_ADAPTIVE else 1

    @property
    def duration_s(self) -> float:
        """Duration of the original audio in seconds."""
        return self.num_samples / self.sample_rate

    def expected_frames(self, num_samples: int, stream: str) -> int:
        """``ceil(num_samples * rate / sample_rate)`` for stream "reasoning" or "recon": the frames a chunk of
        ``num_samples`` holds (exactly; readers and writers reject any other count)."""
        rate = self.reasoning_frame_rate if stream == "reasoning" else self.recon_frame_rate
        return -(-num_samples * rate.numerator // (rate.denominator * self.sample_rate))

    # -- serialisation --------------------------------------------------------------------------

    def to_bytes(self) -> bytes:
        """The complete header block: prefix, body and CRC32."""
        mid = self.model_id.encode("utf-8")
        gain = float("nan") if self.loudness_gain_db is None else self.loudness_gain_db
        body = struct.pack("<H", len(mid)) + mid + _FIXED.pack(
            self.weights_hash,
            self.sample_rate,
            self.channels,
            self.num_samples,
            self.original_sample_rate,
            self.reasoning_frame_rate.numerator,
            self.reasoning_frame_rate.denominator,
            self.recon_frame_rate.numerator,
            self.recon_frame_rate.denominator,
            self.reasoning_codebook_size,
            self.recon_codebook_size,
            self.num_reasoning_codebooks,
            self.num_recon_codebooks,
            self.model_recon_codebooks,
            self.chunk_samples,
            self.coding_mode,
            self.table_hash,
            gain,
        )
        head = _PREFIX.pack(MAGIC, self.format_version, len(body)) + body
        return head + _CRC.pack(zlib.crc32(head))

    @property
    def size(self) -> int:
        """Size in bytes of :meth:`to_bytes`."""
        return PREFIX_SIZE + 2 + len(self.model_id.encode("utf-8")) + _FIXED.size + _CRC.size

    @staticmethod
    def check_prefix(prefix: bytes) -> int:
        """Validate the first ``PREFIX_SIZE`` bytes; return the total header block size.

        Raises:
            BitstreamError: short data, wrong magic, unknown version or absurd body length.
        """
        if len(prefix) < PREFIX_SIZE:
            raise BitstreamError(f"not an .rc file: only {len(prefix)} bytes (header needs at least {PREFIX_SIZE})")
        magic, version, body_len = _PREFIX.unpack_from(prefix)
        if magic != MAGIC:
            raise BitstreamError(f"not an .rc file: magic {magic!r}, expected {MAGIC!r}")
        if version not in SUPPORTED_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_VERSIONS)
            raise BitstreamError(f"unsupported .rc format version {version}; this build reads version(s) {supported}")
        lo, hi = 2 + _FIXED.size, 2 + MAX_MODEL_ID_BYTES + _FIXED.size
        if not lo <= body_len <= hi:
            raise BitstreamError(f"corrupt .rc header: body length {body_len} outside {lo}..{hi}")
        return PREFIX_SIZE + body_len + _CRC.size

    @classmethod
    def parse(cls, data: bytes) -> tuple["RcHeader", int]:
        """Parse a header block at the start of ``data``; return ``(header, size_in_bytes)``.

        Raises:
            BitstreamError: for any malformed, truncated or corrupt header.
        """
        data = bytes(data[:MAX_HEADER_SIZE])
        size = cls.check_prefix(data)
        if len(data) < size:
            raise BitstreamError(f"truncated .rc header: {len(data)} of {size} bytes")
        (crc,) = _CRC.unpack_from(data, size - _CRC.size)
        if zlib.crc32(data[: size - _CRC.size]) != crc:
            raise BitstreamError("corrupt .rc header: CRC32 mismatch")
        pos = PREFIX_SIZE
        (mid_len,) = struct.unpack_from("<H", data, pos)
        pos += 2
        if pos + mid_len + _FIXED.size + _CRC.size != size:
            raise BitstreamError(f"corrupt .rc header: model_id length {mid_len} does not match body length")
        try:
            model_id = data[pos : pos + mid_len].decode("utf-8")
        except UnicodeDecodeError:
            raise BitstreamError("corrupt .rc header: model_id is not valid utf-8") from None
        f = _FIXED.unpack_from(data, pos + mid_len)
        gain = float(f[17])
        try:
            header = cls(
                model_id=model_id,
                weights_hash=f[0],
                sample_rate=f[1],
                channels=f[2],
                num_samples=f[3],
                original_sample_rate=f[4],
                reasoning_frame_rate=_stored_rate(f[5], f[6], "reasoning_frame_rate"),
                recon_frame_rate=_stored_rate(f[7], f[8], "recon_frame_rate"),
                reasoning_codebook_size=f[9],
                recon_codebook_size=f[10],
                num_reasoning_codebooks=f[11],
                num_recon_codebooks=f[12],
                model_recon_codebooks=f[13],
                chunk_samples=f[14],
                coding_mode=f[15],
                table_hash=f[16],
                loudness_gain_db=None if math.isnan(gain) else gain,
            )
        except BitstreamError as exc:
            raise BitstreamError(f"corrupt .rc header: {exc}") from None
        version = _PREFIX.unpack_from(data)[1]
        if version != header.format_version:
            raise BitstreamError(f"corrupt .rc header: coding mode {header.coding_mode} is written as format "
                                 f"version {header.format_version}, not {version}")
        if header.to_bytes() != data[:size]:  # non-canonical encodings (e.g. unreduced fractions)
            raise BitstreamError("corrupt .rc header: non-canonical field encoding")
        return header, size

    @classmethod
    def from_bytes(cls, data: bytes) -> "RcHeader":
        """Parse a header block at the start of ``data`` (trailing bytes are ignored)."""
        return cls.parse(data)[0]


def _stored_rate(num: int, den: int, name: str) -> Fraction:
    if num == 0 or den == 0:
        raise BitstreamError(f"{name} {num}/{den} is not a positive rate")
    return Fraction(num, den)
