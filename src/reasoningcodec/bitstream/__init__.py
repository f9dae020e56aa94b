"""The ``.rc`` compressed file format (pure Python + numpy).

Layout: header block (magic ``b"RCDC"``, version, fields, CRC32) | chunk records (each with CRC32) |
seek index | 24-byte footer (index offset, chunk count, index CRC32, footer CRC32, ``b"RCIX"``).

Tokens are bit-packed (coding mode 0) or rANS-coded with static per-codebook tables (mode 1,
:class:`EntropyTables`, whose sha256 is stored in the header). Every format problem raises
:class:`~reasoningcodec.errors.BitstreamError`.

Example::

    header = RcHeader(model_id="rc-v1", weights_hash=h, sample_rate=24000, channels=1, num_samples=n,
                      original_sample_rate=44100, reasoning_frame_rate=5, recon_frame_rate=12.5,
                      reasoning_codebook_size=16384, recon_codebook_size=1024,
                      num_reasoning_codebooks=1, num_recon_codebooks=8, model_recon_codebooks=8,
                      chunk_samples=240000)
    data = write_bytes(header, chunks)            # chunks: list[RcChunk]
    header2, chunks2 = read_all(data)
"""

from __future__ import annotations

from ..errors import BitstreamError
from .chunk import CHUNK_OVERHEAD, RcChunk, validate_chunk
from .container import FOOTER_SIZE, INDEX_ENTRY_SIZE, ChunkInfo, RcReader, RcWriter, read_all, write_bytes
from .entropy import DEFAULT_PROB_BITS, EntropyTables
from .header import CODING_ADAPTIVE, CODING_PACKED, CODING_RANS, FORMAT_VERSION, MAGIC, SUPPORTED_VERSIONS, RcHeader
from .packing import bits_for, pack_tokens, unpack_tokens
from .report import SizeReport, coded_size_report, count_tokens

__all__ = [
    "BitstreamError",
    "CHUNK_OVERHEAD",
    "CODING_ADAPTIVE",
    "CODING_PACKED",
    "CODING_RANS",
    "ChunkInfo",
    "DEFAULT_PROB_BITS",
    "EntropyTables",
    "FOOTER_SIZE",
    "FORMAT_VERSION",
    "INDEX_ENTRY_SIZE",
    "MAGIC",
    "RcChunk",
    "RcHeader",
    "RcReader",
    "RcWriter",
    "SUPPORTED_VERSIONS",
    "SizeReport",
    "bits_for",
    "coded_size_report",
    "count_tokens",
    "pack_tokens",
    "read_all",
    "unpack_tokens",
    "validate_chunk",
    "write_bytes",
]
