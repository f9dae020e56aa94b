"""Slow hypothesis fuzzing of the .rc reader: nothing but BitstreamError may ever come out.

Run with ``pytest -m slow tests/test_bitstream_fuzz.py``.
"""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from reasoningcodec.bitstream import (  # noqa: E402
    FOOTER_SIZE,
    INDEX_ENTRY_SIZE,
    RcChunk,
    RcHeader,
    RcReader,
    read_all,
    write_bytes,
)
from reasoningcodec.bitstream.header import MAGIC, PREFIX_SIZE  # noqa: E402
from reasoningcodec.errors import BitstreamError  # noqa: E402

from .test_bitstream import TABLES, make_chunks, make_header  # noqa: E402

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))


def _file(mode: int) -> tuple[bytes, object]:
    tables = TABLES if mode else None
    header = make_header(channels=2, kq=2, num_samples=7000, chunk_samples=3200, tables=tables)
    if mode == 2:  # adaptive: rANS or bit-packed per chunk; make the last chunk uniform so both occur
        header = header.replace(coding_mode=2)
    chunks = make_chunks(header, seed=5)
    if mode == 2:
        rng = np.random.default_rng(0)
        chunks[-1].reasoning = rng.integers(0, header.reasoning_codebook_size, chunks[-1].reasoning.shape)
        chunks[-1].recon = rng.integers(0, header.recon_codebook_size, chunks[-1].recon.shape)
    return write_bytes(header, chunks, tables), (header, chunks)


MODES = (0, 1, 2)
FILES = {mode: _file(mode) for mode in MODES}
LAYOUT = {mode: RcReader(io.BytesIO(FILES[mode][0]), TABLES) for mode in MODES}


def _exercise(data: bytes, tables: object) -> object:
    """Use every reader entry point; return read_all's result or None on BitstreamError."""
    try:
        r = RcReader(io.BytesIO(data), tables)  # type: ignore[arg-type]
        r.chunks_for_range(0, 10**6)
        r.chunks_for_range(1234, 2345)
        for i in range(r.num_chunks):
            r.read_chunk(i)
        return read_all(data, tables)  # type: ignore[arg-type]
    except BitstreamError as exc:
        assert str(exc) and "\n" not in str(exc)
        return None


def _fix_crcs(data: bytearray, mode: int) -> None:
    """Recompute every CRC at the positions of the original layout so that mutations reach the
    semantic checks behind the CRCs."""
    r = LAYOUT[mode]
    spans = [(0, r.header_size)] + [(r.chunk_info(i).offset, r.record_size(i)) for i in range(r.num_chunks)]
    for off, size in spans:
        if off + size <= len(data):
            data[off + size - 4 : off + size] = struct.pack("<I", zlib.crc32(bytes(data[off : off + size - 4])))
    if len(data) >= FOOTER_SIZE:
        f = len(data) - FOOTER_SIZE
        index_offset, n = struct.unpack_from("<QI", data, f)
        if index_offset <= f and n * INDEX_ENTRY_SIZE <= f:
            crc = zlib.crc32(bytes(data[index_offset : index_offset + n * INDEX_ENTRY_SIZE]))
            data[f + 12 : f + 16] = struct.pack("<I", crc)
        data[f + 16 : f + 20] = struct.pack("<I", zlib.crc32(bytes(data[f : f + 16])))


@FUZZ
@given(st.binary(max_size=1500), st.sampled_from(MODES))
def test_random_bytes(blob: bytes, mode: int) -> None:
    tables = TABLES if mode else None
    assert _exercise(blob, tables) is None
    # with a valid prefix the parser gets further
    prefix = MAGIC + struct.pack("<H", 2 if mode == 2 else 1) + blob[:4].ljust(4, b"\0")
    assert _exercise(prefix + blob[4:], tables) is None


mutation = st.one_of(
    st.tuples(st.just("set"), st.integers(0, 10**4), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("del"), st.integers(0, 10**4), st.integers(1, 64)),
    st.tuples(st.just("ins"), st.integers(0, 10**4), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("cut"), st.integers(0, 10**4), st.just(0)),
)


@FUZZ
@given(st.sampled_from(MODES), st.lists(mutation, min_size=1, max_size=4), st.booleans(), st.booleans())
def test_mutated_files(mode: int, mutations: list, fix_crcs: bool, with_tables: bool) -> None:
    original, expected = FILES[mode]
    data = bytearray(original)
    for kind, pos, arg in mutations:
        pos %= len(data) + 1
        if kind == "set":
            data[pos : pos + len(arg)] = bytes(a ^ b for a, b in zip(arg, data[pos : pos + len(arg)].ljust(len(arg), b"\0")))
        elif kind == "del":
            del data[pos : pos + arg]
        elif kind == "ins":
            data[pos:pos] = arg
        else:
            del data[pos:]
    if fix_crcs:
        _fix_crcs(data, mode)
    tables = TABLES if with_tables else None
    result = _exercise(bytes(data), tables)
    if not fix_crcs and result is not None:
        assert result == expected


@FUZZ
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**32 - 1), st.sampled_from(MODES))
def test_absurd_footer(index_offset: int, n: int, mode: int) -> None:
    original, _ = FILES[mode]
    head = struct.pack("<QII", index_offset, n, 0)
    data = original[:-FOOTER_SIZE] + head + struct.pack("<I", zlib.crc32(head)) + b"RCIX"
    assert _exercise(data, TABLES) is None


@FUZZ
@given(st.sampled_from(MODES), st.integers(0, 200), st.binary(min_size=1, max_size=4))
def test_header_fields_behind_valid_crc(mode: int, pos: int, blob: bytes) -> None:
    original, _ = FILES[mode]
    data = bytearray(original)
    pos = PREFIX_SIZE + pos % (LAYOUT[mode].header_size - PREFIX_SIZE - 4)
    data[pos : pos + len(blob)] = blob
    _fix_crcs(data, mode)
    _exercise(bytes(data), TABLES)  # may decode to another valid file; must not raise anything else


# -- structure-aware mutations: files written by the library's own writer, under a header that differs
# from the one put in front of them, and/or with chunks whose frame counts the writer was told not to
# check. Every CRC is valid; the reader must either refuse (BitstreamError) or return a file whose
# structure agrees with its header in every respect.

HEADER_CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "num_samples": st.integers(1, 20000),
        "chunk_samples": st.sampled_from([640, 1280, 1600, 3200, 4000, 6400, 7001]),
        "recon_frame_rate": st.sampled_from([Fraction(25, 4), Fraction(25, 2), 25, Fraction(50, 3)]),
        "reasoning_frame_rate": st.sampled_from([Fraction(5, 2), 5, 10]),
        "channels": st.integers(1, 3),
        "num_recon_codebooks": st.integers(1, 4),
        "sample_rate": st.sampled_from([8000, 16000, 24000]),
    },
)
FRAME_EDITS = st.lists(st.tuples(st.integers(0, 30), st.sampled_from(["reasoning", "recon"]), st.integers(-4, 3)),
                       max_size=3)


def _edit_frames(chunk: RcChunk, stream: str, delta: int) -> None:
    arr = getattr(chunk, stream)
    t = max(0, arr.shape[-1] + delta)
    pad = np.zeros(arr.shape[:-1] + (max(0, t - arr.shape[-1]),), dtype=arr.dtype)
    setattr(chunk, stream, np.concatenate([arr[..., :t], pad], axis=-1))


def _assert_consistent(header: RcHeader, chunks: list[RcChunk]) -> None:
    """What a reader that accepted a file promises about its structure."""
    cs, n = header.chunk_samples, header.num_samples
    assert len(chunks) == -(-n // cs), "chunk count disagrees with num_samples / chunk_samples"
    assert sum(c.num_samples for c in chunks) == n, "chunks do not cover num_samples"
    for i, c in enumerate(chunks):
        assert c.start_sample == i * cs and (c.num_samples == cs or i == len(chunks) - 1), (i, c)
        assert c.reasoning.shape == (header.channels, header.num_reasoning_codebooks,
                                     header.expected_frames(c.num_samples, "reasoning")), (i, c)
        assert c.recon.shape == (header.channels, header.num_recon_codebooks,
                                 header.expected_frames(c.num_samples, "recon")), (i, c)


@FUZZ
@given(st.sampled_from(MODES), HEADER_CHANGES, st.booleans(), FRAME_EDITS, st.integers(0, 3))
def test_structural_mutations_through_the_writer(mode: int, changes: dict, swap: bool, edits: list, seed: int) -> None:
    base = FILES[mode][1][0]
    try:
        other = base.replace(**changes)
    except BitstreamError:
        return  # not a header the writer could hold (e.g. a frame rate above the sample rate)
    written, front = (other, base) if swap else (base, other)
    chunks = make_chunks(written, seed=seed)
    for i, stream, delta in edits:
        _edit_frames(chunks[i % len(chunks)], stream, delta)
    tables = TABLES if mode else None
    try:
        with mock.patch("reasoningcodec.bitstream.chunk._check_frames", lambda *a: None):
            data = write_bytes(written, chunks, tables)
    except BitstreamError:
        return  # the writer refused the chunk list for another reason (too many tokens...)
    data = front.to_bytes() + data[written.size :]
    result = _exercise(data, TABLES)
    if result is not None:
        _assert_consistent(*result)  # type: ignore[misc]
    if front == written and not edits:
        assert result == (written, chunks)
