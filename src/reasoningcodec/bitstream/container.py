"""Streaming writer and seeking reader of ``.rc`` files.

File layout::

    header block      (see header.py; ends with its CRC32)
    chunk record 0    (see chunk.py; ends with its CRC32)
    ...
    chunk record n-1
    index             n entries of (start_sample u64, num_samples u32, byte_offset u64), 20 bytes each
    footer            index_offset u64, num_chunks u32, index_crc u32, footer_crc u32, b"RCIX"  (24 bytes)

Byte offsets are relative to the first byte of the header. Chunks are contiguous and in order:
chunk 0 starts at sample 0, chunk i+1 starts where chunk i ends and the last ends at
``header.num_samples``; every chunk but the last holds exactly ``header.chunk_samples`` samples, so
there are ``ceil(num_samples / chunk_samples)`` of them. Records tile the file exactly between the
header and the index.
"""

from __future__ import annotations

import io
import struct
import zlib
from bisect import bisect_left, bisect_right
from typing import BinaryIO, Callable, Iterable, Iterator, NamedTuple, Union

import numpy as np

from ..errors import BitstreamError
from .chunk import CHUNK_OVERHEAD, RcChunk, check_record, decode_chunk, encode_chunk
from .entropy import EntropyTables
from .header import CODING_PACKED, MAX_HEADER_SIZE, RcHeader

__all__ = [
    "ChunkInfo",
    "RcWriter",
    "RcReader",
    "TablesProvider",
    "write_bytes",
    "read_all",
    "FOOTER_MAGIC",
    "FOOTER_SIZE",
    "INDEX_ENTRY_SIZE",
]

FOOTER_MAGIC = b"RCIX"
_FOOTER = struct.Struct("<QIII4s")
_INDEX_DTYPE = np.dtype([("start", "<u8"), ("num", "<u4"), ("offset", "<u8")])
FOOTER_SIZE = _FOOTER.size  # 24
INDEX_ENTRY_SIZE = _INDEX_DTYPE.itemsize  # 20

TablesProvider = Union[EntropyTables, Callable[[bytes], Union[EntropyTables, None]], None]


class ChunkInfo(NamedTuple):
    """Index entry of one chunk: samples ``[start_sample, start_sample + num_samples)`` at ``offset``."""

    start_sample: int
    num_samples: int
    offset: int


def _check_tables_for_writing(header: RcHeader, tables: EntropyTables | None) -> None:
    if header.coding_mode == CODING_PACKED:
        if tables is not None:
            raise BitstreamError(
                "entropy tables given but header.coding_mode is 0 (bit-packed); "
                "use header.replace(coding_mode=2, table_hash=tables.hash())"
            )
        return
    if tables is None:
        raise BitstreamError(f"header.coding_mode is {header.coding_mode} (rANS) but no entropy tables were given")
    if tables.hash() != header.table_hash:
        raise BitstreamError("entropy tables do not match header.table_hash")
    tables.check_compatible(
        header.num_reasoning_codebooks, header.reasoning_codebook_size,
        header.num_recon_codebooks, header.recon_codebook_size,
    )  # fmt: skip


class RcWriter:
    """Write an ``.rc`` stream chunk by chunk with bounded memory (20 bytes of index per chunk).

    Works on non-seekable outputs (pipes): offsets are counted, not queried. The file object is not
    closed by :meth:`close`.

    Args:
        fileobj: binary file object opened for writing.
        header: the file header; ``coding_mode`` 1 or 2 needs ``tables`` with ``hash() == header.table_hash``.
        tables: entropy tables for coding modes 1 and 2, else None.

    Raises:
        BitstreamError: header/tables mismatch, or (later) chunks that do not fit the header.
    """

    def __init__(self, fileobj: BinaryIO, header: RcHeader, tables: EntropyTables | None = None) -> None:
        if not isinstance(header, RcHeader):
            raise BitstreamError(f"header must be an RcHeader, got {type(header).__name__}")
        _check_tables_for_writing(header, tables)
        self._f = fileobj
        self.header = header
        self.tables = tables
        self._index = bytearray()
        self._num_chunks = 0
        self._next_start = 0
        self._closed = False
        self._failed = False
        self._pos = 0
        self._write(header.to_bytes())

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._pos += len(data)

    @property
    def bytes_written(self) -> int:
        """Bytes written so far."""
        return self._pos

    @property
    def num_chunks(self) -> int:
        return self._num_chunks

    def write_chunk(self, chunk: RcChunk) -> int:
        """Append one chunk; it must start where the previous one ended (0 for the first).

        Returns:
            the size of the chunk record in bytes.
        """
        if self._closed:
            raise BitstreamError("write_chunk on a closed RcWriter")
        if not isinstance(chunk, RcChunk):
            raise BitstreamError(f"expected an RcChunk, got {type(chunk).__name__}")
        if chunk.start_sample != self._next_start:
            raise BitstreamError(f"chunk starts at sample {chunk.start_sample}; expected {self._next_start}")
        if chunk.end_sample > self.header.num_samples:
            raise BitstreamError(
                f"chunk ends at sample {chunk.end_sample}, past header.num_samples={self.header.num_samples}"
            )
        if chunk.num_samples != self.header.chunk_samples and chunk.end_sample != self.header.num_samples:
            raise BitstreamError(
                f"chunk {self._num_chunks} holds {chunk.num_samples} samples; every chunk but the last must hold "
                f"header.chunk_samples={self.header.chunk_samples}"
            )
        if self._num_chunks >= (1 << 32) - 1:
            raise BitstreamError("too many chunks for one .rc file")
        record = encode_chunk(chunk, self.header, self.tables)
        offset = self._pos
        self._write(record)
        self._index += np.array([(chunk.start_sample, chunk.num_samples, offset)], dtype=_INDEX_DTYPE).tobytes()
        self._num_chunks += 1
        self._next_start = chunk.end_sample
        return len(record)

    def close(self) -> None:
        """Write the index and footer (once). The chunks must cover ``[0, header.num_samples)``."""
        if self._closed:
            return
        if self._next_start != self.header.num_samples:
            raise BitstreamError(
                f"chunks cover {self._next_start} samples but header.num_samples is {self.header.num_samples}"
            )
        self._closed = True
        index_offset = self._pos
        index = bytes(self._index)
        self._write(index)
        head = struct.pack("<QII", index_offset, self._num_chunks, zlib.crc32(index))
        self._write(_FOOTER.pack(index_offset, self._num_chunks, zlib.crc32(index), zlib.crc32(head), FOOTER_MAGIC))
        flush = getattr(self._f, "flush", None)
        if flush is not None:
            flush()

    def __enter__(self) -> "RcWriter":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.close()
        else:  # leave the (incomplete) file without an index: readers will reject it
            self._closed = True


class RcReader:
    """Random access to an ``.rc`` stream; everything is validated, every problem is a BitstreamError.

    The stream spans from the file object's current position to its end. The file must be seekable.

    Args:
        fileobj: binary file object opened for reading.
        tables_provider: for entropy-coded files, an :class:`EntropyTables`, or a callable mapping the
            header's ``table_hash`` to tables (or None). Tables are checked against the header hash here;
            missing tables are reported by :meth:`read_chunk`.
    """

    def __init__(self, fileobj: BinaryIO, tables_provider: TablesProvider = None) -> None:
        self._f = fileobj
        try:
            self._base = fileobj.tell()
            end = fileobj.seek(0, io.SEEK_END)
        except (OSError, AttributeError, ValueError) as exc:
            raise BitstreamError(f"RcReader needs a seekable binary file ({type(exc).__name__})") from None
        self.file_size = end - self._base
        header, hsize = RcHeader.parse(self._read_at(0, min(self.file_size, MAX_HEADER_SIZE), exact=False))
        self.header = header
        self.header_size = hsize
        if self.file_size < hsize + FOOTER_SIZE:
            raise BitstreamError(f"truncated .rc file: {self.file_size} bytes, no room for the index footer")
        index_offset, n = self._read_footer()
        index = self._read_at(index_offset, n * INDEX_ENTRY_SIZE)
        self._index_offset = index_offset
        self._entries = self._parse_index(index, index_offset, n)
        self._starts = [e.start_sample for e in self._entries]
        self.tables = self._resolve_tables(tables_provider)

    # -- low level --------------------------------------------------------------------------------

    def _read_at(self, offset: int, size: int, exact: bool = True) -> bytes:
        if offset < 0 or size < 0 or offset + size > self.file_size:
            raise BitstreamError(f"corrupt .rc file: read of {size} bytes at {offset} is outside the file")
        self._f.seek(self._base + offset)
        data = self._f.read(size)
        if exact and len(data) != size:
            raise BitstreamError(f"truncated .rc file: wanted {size} bytes at offset {offset}, got {len(data)}")
        return data

    def _read_footer(self) -> tuple[int, int]:
        raw = self._read_at(self.file_size - FOOTER_SIZE, FOOTER_SIZE)
        index_offset, n, index_crc, footer_crc, magic = _FOOTER.unpack(raw)
        if magic != FOOTER_MAGIC:
            raise BitstreamError("truncated or corrupt .rc file: index footer magic missing (file incomplete?)")
        if zlib.crc32(raw[:16]) != footer_crc:
            raise BitstreamError("corrupt .rc file: footer CRC32 mismatch")
        if index_offset < self.header_size or index_offset + n * INDEX_ENTRY_SIZE + FOOTER_SIZE != self.file_size:
            raise BitstreamError(
                f"corrupt .rc file: index of {n} chunks at offset {index_offset} does not fit a {self.file_size}-byte file"
            )
        self._index_crc = index_crc
        return index_offset, n

    def _parse_index(self, index: bytes, index_offset: int, n: int) -> list[ChunkInfo]:
        if zlib.crc32(index) != self._index_crc:
            raise BitstreamError("corrupt .rc file: index CRC32 mismatch")
        h = self.header
        if n == 0:
            if index_offset != self.header_size or h.num_samples != 0:
                raise BitstreamError("corrupt .rc file: no chunks but the file has data or samples")
            return []
        want = -(-h.num_samples // h.chunk_samples)
        if n != want:
            raise BitstreamError(f"corrupt .rc file: the index lists {n} chunks, but {h.num_samples} samples in "
                                 f"chunks of {h.chunk_samples} need {want}")
        arr = np.frombuffer(index, dtype=_INDEX_DTYPE)
        starts = arr["start"].astype(object)
        nums = arr["num"].astype(np.int64)
        offsets = arr["offset"].astype(object)
        if nums.min() < 1 or nums.max() > h.chunk_samples:
            raise BitstreamError(f"corrupt .rc index: chunk sizes outside 1..chunk_samples={h.chunk_samples}")
        if np.any(nums[:-1] != h.chunk_samples):
            raise BitstreamError(f"corrupt .rc index: a chunk before the last holds fewer than "
                                 f"chunk_samples={h.chunk_samples} samples")
        ends = starts + nums.astype(object)
        if starts[0] != 0 or np.any(starts[1:] != ends[:-1]) or ends[-1] != h.num_samples:
            raise BitstreamError(f"corrupt .rc index: chunks do not tile samples 0..{h.num_samples} in order")
        spans = np.append(offsets[1:], index_offset) - offsets
        if offsets[0] != self.header_size or np.any(spans < CHUNK_OVERHEAD):
            raise BitstreamError("corrupt .rc index: chunk offsets are not increasing records after the header")
        return [ChunkInfo(int(s), int(m), int(o)) for s, m, o in zip(starts, nums, offsets)]

    def _resolve_tables(self, provider: TablesProvider) -> EntropyTables | None:
        if self.header.coding_mode == CODING_PACKED or provider is None:
            return None
        tables = provider if isinstance(provider, EntropyTables) else provider(self.header.table_hash)
        if tables is None:
            return None
        if not isinstance(tables, EntropyTables):
            raise BitstreamError(f"tables_provider returned {type(tables).__name__}, not EntropyTables")
        if tables.hash() != self.header.table_hash:
            raise BitstreamError(
                f"entropy tables {tables.hash().hex()[:16]}... do not match the file's {self.header.table_hash.hex()[:16]}..."
            )
        h = self.header
        tables.check_compatible(
            h.num_reasoning_codebooks, h.reasoning_codebook_size, h.num_recon_codebooks, h.recon_codebook_size
        )
        return tables

    # -- public -----------------------------------------------------------------------------------

    @property
    def num_chunks(self) -> int:
        return len(self._entries)

    def chunk_info(self, i: int) -> ChunkInfo:
        """Index entry of chunk ``i`` (IndexError if ``i`` is not in ``range(num_chunks)``)."""
        if not 0 <= i < len(self._entries):
            raise IndexError(f"chunk {i} out of range (file has {len(self._entries)} chunks)")
        return self._entries[i]

    def chunks_for_range(self, start_sample: int, end_sample: int) -> list[int]:
        """Indices of the chunks overlapping samples ``[start_sample, end_sample)``, in order."""
        if end_sample <= start_sample or not self._entries:
            return []
        first = max(bisect_right(self._starts, start_sample) - 1, 0)
        last = bisect_left(self._starts, end_sample)
        e = self._entries
        return [i for i in range(first, last) if e[i].start_sample + e[i].num_samples > start_sample]

    def record_size(self, i: int) -> int:
        """Bytes taken by chunk ``i``'s record."""
        info = self.chunk_info(i)
        nxt = self._entries[i + 1].offset if i + 1 < len(self._entries) else self._index_offset
        return nxt - info.offset

    def read_chunk(self, i: int) -> RcChunk:
        """Read, check (CRC, shapes, frame counts, token ranges, index agreement) and decode chunk ``i``."""
        info = self.chunk_info(i)
        record = self._read_at(info.offset, self.record_size(i))
        chunk = decode_chunk(record, self.header, self.tables, where=f"chunk {i}")
        self._check_agrees(i, chunk.start_sample, chunk.num_samples, info)
        return chunk

    def check_chunk(self, i: int) -> None:
        """Check chunk ``i``'s record (CRC, frame counts, payload length, index agreement) without decoding
        its tokens, so without entropy tables; decoding (:meth:`read_chunk`) checks the tokens too."""
        info = self.chunk_info(i)
        start, num, _, _, _ = check_record(self._read_at(info.offset, self.record_size(i)), self.header,
                                           where=f"chunk {i}")
        self._check_agrees(i, start, num, info)

    def _check_agrees(self, i: int, start: int, num: int, info: ChunkInfo) -> None:
        if (start, num) != (info.start_sample, info.num_samples):
            raise BitstreamError(
                f"chunk {i}: covers samples {start}+{num} but the index says {info.start_sample}+{info.num_samples}"
            )

    def iter_chunks(self) -> Iterator[RcChunk]:
        """Every chunk in order."""
        for i in range(len(self._entries)):
            yield self.read_chunk(i)

    def __enter__(self) -> "RcReader":
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        return None


def write_bytes(header: RcHeader, chunks: Iterable[RcChunk], tables: EntropyTables | None = None) -> bytes:
    """A complete ``.rc`` file in memory."""
    buf = io.BytesIO()
    with RcWriter(buf, header, tables) as w:
        for chunk in chunks:
            w.write_chunk(chunk)
    return buf.getvalue()


def read_all(data: bytes, tables: TablesProvider = None) -> tuple[RcHeader, list[RcChunk]]:
    """Parse and fully validate a complete ``.rc`` file held in memory."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BitstreamError(f"read_all needs bytes, got {type(data).__name__}")
    reader = RcReader(io.BytesIO(bytes(data)), tables)
    return reader.header, list(reader.iter_chunks())
