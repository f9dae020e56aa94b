"""Fast tests of the .rc file format (reasoningcodec.bitstream)."""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from fractions import Fraction

import numpy as np
import pytest

from reasoningcodec.bitstream import (
    CHUNK_OVERHEAD,
    CODING_ADAPTIVE,
    CODING_PACKED,
    CODING_RANS,
    FOOTER_SIZE,
    INDEX_ENTRY_SIZE,
    EntropyTables,
    RcChunk,
    RcHeader,
    RcReader,
    RcWriter,
    bits_for,
    coded_size_report,
    count_tokens,
    pack_tokens,
    read_all,
    unpack_tokens,
    write_bytes,
)
from reasoningcodec.bitstream.chunk import decode_chunk, encode_chunk
from reasoningcodec.bitstream.entropy import rans_decode, rans_encode
from reasoningcodec.errors import BitstreamError

NR, NQ, KR, KQ_MODEL = 64, 32, 1, 4


def make_header(
    channels: int = 1,
    kq: int = 2,
    num_samples: int = 8000,
    chunk_samples: int = 3200,
    tables: EntropyTables | None = None,
    **kw: object,
) -> RcHeader:
    args: dict[str, object] = dict(
        model_id="rc-test-v1",
        weights_hash=hashlib.sha256(b"weights").digest(),
        sample_rate=16000,
        channels=channels,
        num_samples=num_samples,
        original_sample_rate=44100,
        reasoning_frame_rate=5,
        recon_frame_rate=12.5,
        reasoning_codebook_size=NR,
        recon_codebook_size=NQ,
        num_reasoning_codebooks=KR,
        num_recon_codebooks=kq,
        model_recon_codebooks=KQ_MODEL,
        chunk_samples=chunk_samples,
        loudness_gain_db=-3.3,
    )
    if tables is not None:
        args.update(coding_mode=CODING_RANS, table_hash=tables.hash())
    args.update(kw)
    return RcHeader(**args)  # type: ignore[arg-type]


def skewed(rng: np.random.Generator, n: int, shape: tuple[int, ...]) -> np.ndarray:
    """Zipf-like tokens in [0, n)."""
    p = 1.0 / np.arange(1, n + 1) ** 1.3
    return rng.choice(n, size=shape, p=p / p.sum())


def make_chunks(header: RcHeader, seed: int = 0) -> list[RcChunk]:
    rng = np.random.default_rng(seed)
    chunks, start = [], 0
    while start < header.num_samples:
        n = min(header.chunk_samples, header.num_samples - start)
        tr = header.expected_frames(n, "reasoning")
        tq = header.expected_frames(n, "recon")
        c = header.channels
        r = skewed(rng, header.reasoning_codebook_size, (c, header.num_reasoning_codebooks, tr))
        q = skewed(rng, header.recon_codebook_size, (c, header.num_recon_codebooks, tq))
        chunks.append(RcChunk(start, n, r, q))
        start += n
    return chunks


def make_tables(seed: int = 1) -> EntropyTables:
    rng = np.random.default_rng(seed)
    r = skewed(rng, NR, (KR, 4000))
    q = skewed(rng, NQ, (KQ_MODEL, 4000))
    return EntropyTables.from_counts(*count_tokens(r, q, NR, NQ))


TABLES = make_tables()


def test_header_round_trip_and_normalisation() -> None:
    h = make_header(channels=2)
    assert h.recon_frame_rate == Fraction(25, 2) and h.reasoning_frame_rate == 5
    assert h.loudness_gain_db == float(np.float32(-3.3))
    data = h.to_bytes()
    assert len(data) == h.size
    h2, size = RcHeader.parse(data + b"trailing")
    assert h2 == h and size == len(data)
    h3 = RcHeader.from_bytes(make_header(loudness_gain_db=None).to_bytes())
    assert h3.loudness_gain_db is None


@pytest.mark.parametrize(
    "field,value",
    [("num_recon_codebooks", 5), ("channels", 0), ("recon_frame_rate", 0), ("coding_mode", 3), ("weights_hash", b"x")],
)
def test_header_rejects_invalid_fields(field: str, value: object) -> None:
    with pytest.raises(BitstreamError):
        make_header(**{field: value})


def test_wrong_magic_and_unknown_version() -> None:
    data = bytearray(write_bytes(make_header(), make_chunks(make_header())))
    bad = b"XXXX" + bytes(data[4:])
    with pytest.raises(BitstreamError, match="magic"):
        read_all(bad)
    data[4:6] = struct.pack("<H", 7)
    with pytest.raises(BitstreamError, match=r"version 7.*version\(s\) 1"):
        read_all(bytes(data))


@pytest.mark.parametrize("mode", [CODING_PACKED, CODING_RANS, CODING_ADAPTIVE])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip(mode: int, channels: int) -> None:
    tables = TABLES if mode != CODING_PACKED else None
    header = make_header(channels=channels, kq=2, num_samples=13000, tables=tables)  # Kq=2 < 4 model codebooks
    if mode == CODING_ADAPTIVE:
        header = header.replace(coding_mode=CODING_ADAPTIVE)
    chunks = make_chunks(header, seed=channels)
    assert len(chunks) == 5
    data = write_bytes(header, chunks, tables)
    h2, c2 = read_all(data, tables)
    assert h2 == header
    assert c2 == chunks
    assert all(c.reasoning.dtype == np.int64 and c.recon.dtype == np.int64 for c in c2)
    assert c2[0].reasoning.shape == (channels, KR, 1) and c2[0].recon.shape == (channels, 2, 3)


def test_streaming_writer_and_seeking_reader(tmp_path) -> None:
    header = make_header(channels=2, num_samples=20000, chunk_samples=3000, tables=TABLES)
    chunks = make_chunks(header)
    path = tmp_path / "x.rc"
    with open(path, "wb") as f, RcWriter(f, header, TABLES) as w:
        sizes = [w.write_chunk(c) for c in chunks]
    assert path.stat().st_size == header.size + sum(sizes) + len(chunks) * INDEX_ENTRY_SIZE + FOOTER_SIZE
    with open(path, "rb") as f:
        r = RcReader(f, tables_provider=lambda h: TABLES if h == TABLES.hash() else None)
        assert r.header == header and r.num_chunks == len(chunks) == 7
        for i in [6, 0, 3, 3, 1]:
            assert r.read_chunk(i) == chunks[i]
            info = r.chunk_info(i)
            assert (info.start_sample, info.num_samples) == (chunks[i].start_sample, chunks[i].num_samples)
        assert list(r.iter_chunks()) == chunks
        with pytest.raises(IndexError):
            r.chunk_info(7)


def test_reader_respects_start_position() -> None:
    header = make_header()
    data = write_bytes(header, make_chunks(header))
    buf = io.BytesIO(b"prefix" + data)
    buf.seek(6)
    assert RcReader(buf).read_chunk(1) == make_chunks(header)[1]


def test_empty_file_round_trip() -> None:
    header = make_header(num_samples=0)
    assert read_all(write_bytes(header, [])) == (header, [])


def test_chunks_for_range_matches_brute_force() -> None:
    header = make_header(num_samples=10000, chunk_samples=3000)
    r = RcReader(io.BytesIO(write_bytes(header, make_chunks(header))))
    spans = [(c.start_sample, c.start_sample + c.num_samples) for c in map(r.chunk_info, range(r.num_chunks))]
    points = sorted({-5, 0, 1, 2999, 3000, 3001, 5999, 6000, 8999, 9000, 9999, 10000, 12000})
    for a in points:
        for b in points:
            want = [i for i, (s, e) in enumerate(spans) if s < b and e > a and a < b]
            assert r.chunks_for_range(a, b) == want, (a, b)


def test_writer_rejects_bad_chunks() -> None:
    header = make_header(num_samples=6400)
    good = make_chunks(header)
    bad_value = RcChunk(0, 3200, good[0].reasoning, np.full_like(good[0].recon, NQ))
    bad_shape = RcChunk(0, 3200, good[0].reasoning, good[0].recon[:, :1])
    too_many_frames = RcChunk(0, 3200, good[0].reasoning, np.zeros((1, 2, 100), np.int64))
    for chunk in (bad_value, bad_shape, too_many_frames, good[1]):
        w = RcWriter(io.BytesIO(), header)
        with pytest.raises(BitstreamError):
            w.write_chunk(chunk)
    w = RcWriter(io.BytesIO(), header)
    w.write_chunk(good[0])
    with pytest.raises(BitstreamError, match="cover"):
        w.close()
    with pytest.raises(BitstreamError):
        RcChunk(0, 1, np.zeros((1, 1, 1), np.float32), np.zeros((1, 1, 1), np.int64))


def test_writer_table_checks() -> None:
    with pytest.raises(BitstreamError):
        RcWriter(io.BytesIO(), make_header(), TABLES)  # packed header + tables
    with pytest.raises(BitstreamError):
        RcWriter(io.BytesIO(), make_header(tables=TABLES), None)
    with pytest.raises(BitstreamError):
        RcWriter(io.BytesIO(), make_header(tables=TABLES), make_tables(seed=5))


def test_missing_or_mismatching_tables() -> None:
    header = make_header(tables=TABLES)
    data = write_bytes(header, make_chunks(header), TABLES)
    with pytest.raises(BitstreamError, match="none were given"):
        read_all(data)
    with pytest.raises(BitstreamError, match="do not match"):
        read_all(data, make_tables(seed=9))
    reader = RcReader(io.BytesIO(data), tables_provider=lambda h: None)
    assert reader.header == header  # header readable without tables
    with pytest.raises(BitstreamError):
        reader.read_chunk(0)


def test_tables_save_load(tmp_path) -> None:
    path = tmp_path / "tables.safetensors"
    TABLES.save(path)
    loaded = EntropyTables.load(path)
    assert loaded.hash() == TABLES.hash() and loaded == TABLES
    header = make_header(kq=1, tables=loaded)  # fewer recon codebooks than the tables have
    chunks = make_chunks(header)
    assert read_all(write_bytes(header, chunks, TABLES), loaded)[1] == chunks
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(BitstreamError):
        EntropyTables.load(path)
    with pytest.raises(BitstreamError):
        EntropyTables.load(tmp_path / "missing.safetensors")


def test_table_quantisation() -> None:
    counts = np.array([[0, 0, 1_000_000, 3], [5, 5, 5, 5]])
    t = EntropyTables.from_counts(counts[:1], counts, prob_bits=12)
    assert t.recon.sum(axis=1).tolist() == [4096, 4096] and t.recon.min() >= 1
    assert t.recon[1].tolist() == [1024] * 4
    assert t.recon[0].argmax() == 2


@pytest.mark.parametrize("prob_bits", [12, 16, 22])
def test_rans_random_and_skewed(prob_bits: int) -> None:
    rng = np.random.default_rng(prob_bits)
    n = 300
    uniform = rng.integers(0, n, size=(3, 2000))
    skew = skewed(rng, n, (3, 2000))
    counts = np.stack([np.bincount(s, minlength=n) for s in skew])
    tables = EntropyTables.from_counts(np.zeros((0, n)), counts, prob_bits=prob_bits)
    tabs = [tables.coding_table("recon", k) for k in range(3)]
    for data in (uniform, skew, skew[:, :0], skew[:, :1]):
        block = rans_encode([(row.tolist(), t) for row, t in zip(data, tabs)], prob_bits)
        out = rans_decode(block, [(len(row), t) for row, t in zip(data, tabs)], prob_bits)
        assert all(np.array_equal(a, b) for a, b in zip(out, data))
    coded = len(rans_encode([(row.tolist(), t) for row, t in zip(skew, tabs)], prob_bits))
    packed = len(pack_tokens(skew, bits_for(n)))
    assert coded < 0.8 * packed


def test_rans_rejects_bad_blocks() -> None:
    tab = TABLES.coding_table("recon", 0)
    block = rans_encode([([1, 2, 3] * 50, tab)], 16)
    for bad in (block[:7], block[:-1], block[:-4], block + bytes(4), bytes(8)):
        with pytest.raises(BitstreamError):
            rans_decode(bad, [(150, tab)], 16)


@pytest.mark.parametrize("size", [2, 3, 32, 1000, 1024, 1025, 70000])
def test_packing_round_trip(size: int) -> None:
    rng = np.random.default_rng(size)
    v = rng.integers(0, size, size=(2, 3, 7))
    b = bits_for(size)
    data = pack_tokens(v, b)
    assert len(data) == (v.size * b + 7) // 8
    assert np.array_equal(unpack_tokens(data, v.size, b).reshape(v.shape), v)
    with pytest.raises(BitstreamError):
        unpack_tokens(data + b"\0", v.size, b)
    if (v.size * b) % 8:
        with pytest.raises(BitstreamError, match="padding"):
            unpack_tokens(data[:-1] + bytes([data[-1] | 1]), v.size, b)


def test_size_report_and_entropy_saving() -> None:
    header = make_header(channels=2, kq=4, num_samples=160000, chunk_samples=32000)
    chunks = make_chunks(header, seed=3)
    rep = coded_size_report(header, chunks, TABLES)
    assert rep.packed_file_bytes == len(write_bytes(header, chunks))
    coded_header = header.replace(coding_mode=CODING_RANS, table_hash=TABLES.hash())
    assert rep.coded_file_bytes == len(write_bytes(coded_header, chunks, TABLES))
    assert rep.framing_bytes == 5 * (CHUNK_OVERHEAD + INDEX_ENTRY_SIZE) + FOOTER_SIZE
    assert rep.coded_payload_bytes is not None and rep.coded_payload_bytes < rep.packed_payload_bytes
    assert rep.payload_saving is not None and rep.payload_saving > 0.15
    assert "rANS" in rep.summary()


def _outcome(data: bytes, tables: EntropyTables | None) -> tuple[RcHeader, list[RcChunk]] | None:
    try:
        return read_all(data, tables)
    except BitstreamError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg
        return None


@pytest.mark.parametrize("mode", [CODING_PACKED, CODING_RANS, CODING_ADAPTIVE])
def test_every_flip_and_truncation_is_detected(mode: int) -> None:
    tables = TABLES if mode != CODING_PACKED else None
    header = make_header(channels=2, kq=2, num_samples=7000, chunk_samples=3200, tables=tables)
    if mode == CODING_ADAPTIVE:
        header = header.replace(coding_mode=CODING_ADAPTIVE)
    chunks = make_chunks(header, seed=11)
    data = write_bytes(header, chunks, tables)
    assert 250 < len(data) < 600
    original = (header, chunks)
    assert _outcome(data, tables) == original
    for pos in range(len(data)):
        for mask in (0xFF, 0x01):
            bad = bytearray(data)
            bad[pos] ^= mask
            assert _outcome(bytes(bad), tables) in (None, original), (pos, mask)
    for n in range(len(data)):
        assert _outcome(data[:n], tables) is None, n


def _recrc_chunk(data: bytearray, offset: int, record_size: int) -> None:
    body = bytes(data[offset : offset + record_size - 4])
    data[offset + record_size - 4 : offset + record_size] = struct.pack("<I", zlib.crc32(body))


def test_crafted_absurd_values_with_valid_crcs() -> None:
    header = make_header(tables=TABLES)
    data = write_bytes(header, make_chunks(header), TABLES)
    r = RcReader(io.BytesIO(data), TABLES)
    off, size = r.chunk_info(0).offset, r.record_size(0)
    for field_off, value in ((16, 0xFFFFFFFF), (20, 0xFFFFFFFF), (12, 0), (8, 5)):  # frames, frames, num, num
        bad = bytearray(data)
        bad[off + field_off : off + field_off + 4] = struct.pack("<I", value)
        _recrc_chunk(bad, off, size)
        with pytest.raises(BitstreamError):
            read_all(bytes(bad), TABLES)
    # index pointing outside the file, with a valid index CRC and footer CRC
    n = r.num_chunks
    index_off = len(data) - FOOTER_SIZE - n * INDEX_ENTRY_SIZE
    bad = bytearray(data)
    bad[index_off + 12 : index_off + 20] = struct.pack("<Q", 10**12)
    crc = zlib.crc32(bytes(bad[index_off : index_off + n * INDEX_ENTRY_SIZE]))
    head = struct.pack("<QII", index_off, n, crc)
    bad[-FOOTER_SIZE:] = head + struct.pack("<I", zlib.crc32(head)) + b"RCIX"
    with pytest.raises(BitstreamError):
        read_all(bytes(bad), TABLES)


def test_non_seekable_and_non_bytes_inputs() -> None:
    class Pipe(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def seek(self, *a: object) -> int:
            raise io.UnsupportedOperation("not seekable")

        def tell(self) -> int:
            raise io.UnsupportedOperation("not seekable")

    with pytest.raises(BitstreamError, match="seekable"):
        RcReader(Pipe())  # type: ignore[arg-type]
    with pytest.raises(BitstreamError):
        read_all("not bytes")  # type: ignore[arg-type]


def test_rans_refuses_impossible_symbol_counts() -> None:
    tab = TABLES.coding_table("recon", 0)
    assert tab.min_bits > 0
    block = rans_encode([([0] * 100, tab)], 16)
    with pytest.raises(BitstreamError, match="too short"):
        rans_decode(block, [(10**8, tab)], 16)


def _mixed_chunks(header: RcHeader) -> list[RcChunk]:
    """Chunks whose tokens alternate between skewed (rANS wins) and uniform (bit-packing wins)."""
    rng = np.random.default_rng(5)
    chunks = make_chunks(header, seed=5)
    for i, c in enumerate(chunks):
        if i % 2:
            c.reasoning = rng.integers(0, NR, c.reasoning.shape)
            c.recon = rng.integers(0, NQ, c.recon.shape)
    return chunks


def test_adaptive_mode_takes_the_smaller_coding_per_chunk() -> None:
    base = make_header(channels=2, kq=4, num_samples=64000, chunk_samples=8000)
    chunks = _mixed_chunks(base)
    adaptive = base.replace(coding_mode=CODING_ADAPTIVE, table_hash=TABLES.hash())
    rans = base.replace(coding_mode=CODING_RANS, table_hash=TABLES.hash())
    data = write_bytes(adaptive, chunks, TABLES)
    assert struct.unpack_from("<H", data, 4)[0] == 2  # written as format version 2
    assert struct.unpack_from("<H", write_bytes(rans, chunks, TABLES), 4)[0] == 1  # modes 0 and 1 stay version 1
    h2, c2 = read_all(data, TABLES)
    assert h2 == adaptive and c2 == chunks
    per_chunk = {name: [len(encode_chunk(c, h, TABLES if name != "packed" else None)) for c in chunks]
                 for name, h in (("packed", base), ("rans", rans), ("adaptive", adaptive))}
    assert per_chunk["adaptive"] == [min(p, r) for p, r in zip(per_chunk["packed"], per_chunk["rans"])]
    assert any(r < p for p, r in zip(per_chunk["packed"], per_chunk["rans"]))  # both kinds occur
    assert any(r > p for p, r in zip(per_chunk["packed"], per_chunk["rans"]))
    rep = coded_size_report(base, chunks, TABLES)
    assert rep.adaptive_file_bytes == len(data) < min(rep.packed_file_bytes, rep.coded_file_bytes)
    assert rep.adaptive_rans_chunks == sum(r < p for p, r in zip(per_chunk["packed"], per_chunk["rans"]))
    assert "adaptive" in rep.summary()
    with pytest.raises(BitstreamError, match="none were given"):  # its rANS chunks need the tables
        read_all(data)


def test_adaptive_mode_rejects_a_version_1_header_and_overlong_payloads() -> None:
    base = make_header(channels=1, kq=4, num_samples=16000, chunk_samples=8000)
    adaptive = base.replace(coding_mode=CODING_ADAPTIVE, table_hash=TABLES.hash())
    data = bytearray(write_bytes(adaptive, _mixed_chunks(base), TABLES))
    size = adaptive.size
    bad = bytearray(data)
    bad[4:6] = struct.pack("<H", 1)
    bad[size - 4 : size] = struct.pack("<I", zlib.crc32(bytes(bad[: size - 4])))
    with pytest.raises(BitstreamError, match="coding mode 2 is written as format version 2, not 1"):
        read_all(bytes(bad), TABLES)
    # a rANS payload longer than bit-packing (uniform tokens, every chunk rANS) is never written in mode 2
    rans = base.replace(coding_mode=CODING_RANS, table_hash=TABLES.hash())
    chunks = _mixed_chunks(base)
    record = encode_chunk(chunks[1], rans, TABLES)
    assert len(record) > len(encode_chunk(chunks[1], base))
    with pytest.raises(BitstreamError, match="longer than bit-packing"):
        decode_chunk(record, adaptive, TABLES)
    assert decode_chunk(record, rans, TABLES) == chunks[1]


def _with_header(header: RcHeader, data: bytes) -> bytes:
    """``data`` (written by the library's writer under another header of the same size) with ``header``
    in front: CRCs all valid, but the chunks were cut for the other header."""
    head = header.to_bytes()
    assert len(head) == RcHeader.from_bytes(data).size
    return head + data[len(head) :]


def test_chunk_frames_must_equal_what_the_sample_count_needs(monkeypatch) -> None:
    header = make_header(num_samples=8000, chunk_samples=3200)  # 12.5 Hz: 3 recon frames per 3200 samples
    slower = header.replace(recon_frame_rate=Fraction(25, 4))  # the same chunks with half the recon frames
    data = _with_header(header, write_bytes(slower, make_chunks(slower)))
    with pytest.raises(BitstreamError, match=r"chunk 0: 2 recon frames for 3200 samples; .* needs exactly 3"):
        read_all(data)
    with pytest.raises(BitstreamError, match="exactly"):
        RcWriter(io.BytesIO(), header).write_chunk(make_chunks(slower)[0])  # the writer refuses it too
    # a chunk with no frames at all (written with the frame check switched off)
    chunks = make_chunks(header)
    chunks[1].recon = chunks[1].recon[..., :0]
    monkeypatch.setattr("reasoningcodec.bitstream.chunk._check_frames", lambda *a: None)
    data = write_bytes(header, chunks)
    monkeypatch.undo()
    with pytest.raises(BitstreamError, match=r"chunk 1: 0 recon frames for 3200 samples"):
        read_all(data)


def test_chunk_count_and_sizes_must_follow_the_header() -> None:
    header = make_header(num_samples=8000, chunk_samples=3200)  # 3 chunks: 3200 + 3200 + 1600
    finer = header.replace(chunk_samples=1600)  # 5 chunks of 1600, each with valid frame counts
    with pytest.raises(BitstreamError, match=r"index lists 5 chunks, but 8000 samples in chunks of 3200 need 3"):
        read_all(_with_header(header, write_bytes(finer, make_chunks(finer))))
    longer = header.replace(num_samples=9000)
    with pytest.raises(BitstreamError, match="do not tile samples 0..8000"):
        read_all(_with_header(header, write_bytes(longer, make_chunks(longer))))
    # a short chunk may only come last: the writer refuses one in the middle
    short = make_chunks(finer)[0]
    w = RcWriter(io.BytesIO(), header)
    with pytest.raises(BitstreamError, match="every chunk but the last must hold header.chunk_samples=3200"):
        w.write_chunk(short)


def test_check_chunk_finds_a_bad_crc_without_tables() -> None:
    header = make_header(tables=TABLES)
    data = bytearray(write_bytes(header, make_chunks(header), TABLES))
    r = RcReader(io.BytesIO(bytes(data)))  # no tables: the tokens cannot be decoded, the records can be checked
    for i in range(r.num_chunks):
        r.check_chunk(i)
    data[r.chunk_info(1).offset + CHUNK_OVERHEAD - 2] ^= 0x10  # inside chunk 1's payload
    r = RcReader(io.BytesIO(bytes(data)))
    r.check_chunk(0)
    with pytest.raises(BitstreamError, match="chunk 1: CRC32 mismatch"):
        r.check_chunk(1)
