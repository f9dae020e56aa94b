"""Model ⇄ ``.rc`` bytes, with bounded memory for long inputs: :func:`compress` / :func:`compress_to` and
:func:`decompress`.

Encoding runs the streaming encoder over the whole signal (so the tokens in the file equal
``codec.encode`` of the whole signal exactly) and cuts the token streams into chunks of
``chunk_seconds`` (a multiple of 400 ms, so both frame rates cut cleanly). Each chunk parses and
CRC-checks on its own. The audio comes in blocks from :mod:`reasoningcodec.sources`; reading a file back,
any span of it exactly as a full decode gives it, is :mod:`reasoningcodec.seek` (whose names are also
importable from here).
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import numpy as np
import torch

from . import audio as audio_io
from .bitstream import CODING_ADAPTIVE, CODING_PACKED, CODING_RANS, RcChunk, RcHeader, RcWriter
from .errors import BitstreamError, OptionError
from .seek import DecodeStats, decode_range, decode_range_at, decoder_context_frames, open_reader, sample_span
from .sources import BLOCK_SECONDS, array_source, file_source

__all__ = [
    "BLOCK_SECONDS", "MAX_CHUNK_SAMPLES", "CompressOptions", "DecodeStats", "chunk_samples", "compress",
    "compress_to", "decode_range", "decode_range_at", "decoder_context_frames", "decompress", "encode_chunks",
    "make_header", "open_reader", "sample_span",
]

MAX_CHUNK_SAMPLES = (1 << 32) - 1  # the header's chunk_samples is a u32


@dataclass
class CompressOptions:
    """How to compress: codebooks kept, chunk length, coding mode, loudness normalisation."""

    recon_codebooks: int | None = None
    chunk_seconds: float = 20.0  # rounded to the nearest multiple of the token streams' common step (0.4 s)
    coding: str = "auto"  # "auto": each chunk rANS or bit-packed, whichever is smaller, when the model has
    # tables (coding mode 2), else bit-packed; "rans": every chunk rANS (mode 1); "packed": bit-packed (mode 0)
    normalize: bool = False
    target_db: float = -23.0


def chunk_samples(codec: Any, seconds: float) -> int:
    """``chunk_seconds`` → samples per chunk: the nearest whole multiple of the step both token streams
    share (``lcm`` of the hops, 0.4 s for the default model), halves up.

    Raises:
        OptionError: ``seconds`` is not a number, below one step, or above what the format's 32-bit chunk
            length holds.
    """
    c = codec.config
    unit = math.lcm(c.recon_hop, c.reasoning_hop)
    most = MAX_CHUNK_SAMPLES // unit * unit
    step, top = unit / c.sample_rate, most / c.sample_rate
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float, np.integer, np.floating)):
        raise OptionError(f"chunk_seconds must be a number of seconds, got {seconds!r}")
    if not step <= seconds <= top:  # NaN fails too
        raise OptionError(f"chunk_seconds must be between {step:g} and {top:.1f} s (a multiple of {step:g} s; "
                          f"other values are rounded to the nearest), got {seconds}")
    return min(most, math.floor(seconds * c.sample_rate / unit + 0.5) * unit)


def _coding(codec: Any, mode: str) -> tuple[int, Any]:
    tables = getattr(codec, "entropy_tables", None)
    if mode == "packed" or (mode == "auto" and tables is None):
        return CODING_PACKED, None
    if mode not in ("auto", "rans"):
        raise OptionError(f"coding must be auto, rans or packed; got {mode!r}")
    if tables is None:
        raise BitstreamError("entropy coding asked for, but this model ships no entropy tables")
    return (CODING_ADAPTIVE if mode == "auto" else CODING_RANS), tables


def make_header(codec: Any, channels: int, num_samples: int, original_sr: int, n_q: int, chunk_samples: int,
                coding: int, tables: Any, gain_db: float | None) -> RcHeader:
    c = codec.config
    return RcHeader(
        model_id=c.model_id, weights_hash=codec.weights_hash(), sample_rate=c.sample_rate, channels=channels,
        num_samples=num_samples, original_sample_rate=original_sr,
        reasoning_frame_rate=codec.reasoning_frame_rate, recon_frame_rate=codec.recon_frame_rate,
        reasoning_codebook_size=c.reasoning_codebook_size, recon_codebook_size=c.recon_codebook_size,
        num_reasoning_codebooks=c.num_reasoning_codebooks, num_recon_codebooks=n_q,
        model_recon_codebooks=c.num_recon_codebooks, chunk_samples=chunk_samples, coding_mode=coding,
        table_hash=tables.hash() if tables is not None else bytes(32), loudness_gain_db=gain_db,
    )


def encode_chunks(codec: Any, blocks: Iterator[np.ndarray], num_samples: int, channels: int, chunk_samples: int,
                  n_q: int) -> Iterator[RcChunk]:
    """Stream ``[C, n]`` blocks at the model rate (``num_samples`` in all) through the encoder → chunks."""
    c = codec.config
    enc = codec.stream_encoder(batch_size=channels, n_q=n_q)
    r_per, q_per = chunk_samples // c.reasoning_hop, chunk_samples // c.recon_hop
    r_buf: list[torch.Tensor] = []
    q_buf: list[torch.Tensor] = []
    start = 0

    def cut(final: bool) -> Iterator[RcChunk]:
        nonlocal r_buf, q_buf, start
        r = torch.cat(r_buf, dim=-1) if r_buf else None
        q = torch.cat(q_buf, dim=-1) if q_buf else None
        while r is not None and q is not None:
            left = num_samples - start
            if left <= 0:
                break
            if left > chunk_samples:
                if r.shape[-1] < r_per or q.shape[-1] < q_per:
                    break
                nr, nq, ns = r_per, q_per, chunk_samples
            elif final:
                nr, nq = codec.num_frames(left)
                ns = left
            else:
                break
            yield RcChunk(start, ns, r[..., :nr].cpu().numpy(), q[..., :nq].cpu().numpy())
            r, q = r[..., nr:], q[..., nq:]
            start += ns
        r_buf = [r] if r is not None else []
        q_buf = [q] if q is not None else []

    for block in blocks:
        codes = enc.push(torch.from_numpy(block))
        r_buf.append(codes.reasoning)
        q_buf.append(codes.recon)
        yield from cut(False)
    codes = enc.finish()
    r_buf.append(codes.reasoning)
    q_buf.append(codes.recon)
    yield from cut(True)


def compress_to(fileobj: BinaryIO, codec: Any, source: Any, sample_rate: int | None = None,
                options: CompressOptions | None = None, progress: Any = None) -> RcHeader:
    """Compress a path, a seekable binary file object holding an audio file (read from its start), or a
    ``[T]`` / ``[C, T]`` array/tensor into ``fileobj``. Channels are kept.

    Raises:
        AudioError: unreadable or empty audio, a ``[T, C]`` array, float samples peaking above 1000
            (above 1.0 gives an :class:`~reasoningcodec.errors.AudioWarning`).
        OptionError: a bad option.
    """
    opts = options or CompressOptions()
    c = codec.config
    n_q = opts.recon_codebooks or c.num_recon_codebooks
    if not 1 <= n_q <= c.num_recon_codebooks:
        raise OptionError(f"recon_codebooks must be in 1..{c.num_recon_codebooks}, got {n_q}")
    coding, tables = _coding(codec, opts.coding)
    cs = chunk_samples(codec, opts.chunk_seconds)
    if isinstance(source, (str, os.PathLike)) or audio_io.is_file_object(source):
        src = file_source(codec, source, opts.normalize, opts.target_db, progress)
    else:
        src = array_source(codec, source, sample_rate, opts.normalize, opts.target_db)
    header = make_header(codec, src.channels, src.total, src.sample_rate, n_q, cs, coding, tables, src.gain_db)
    with RcWriter(fileobj, header, tables) as w:
        for chunk in encode_chunks(codec, src.blocks, src.total, src.channels, cs, n_q):
            w.write_chunk(chunk)
    return header


def compress(source: Any, codec: Any = None, sample_rate: int | None = None, **options: Any) -> bytes:
    """Compress audio (path, array or tensor ``[T]``/``[C, T]``) to ``.rc`` bytes."""
    codec = _default(codec)
    buf = io.BytesIO()
    compress_to(buf, codec, source, sample_rate, CompressOptions(**options))
    return buf.getvalue()


def decompress(data: bytes, codec: Any = None, start: float = 0.0, duration: float | None = None
               ) -> tuple[np.ndarray, int]:
    """``.rc`` bytes → ``(audio [C, T] float32 at the model rate, sample_rate)`` (loudness gain undone)."""
    codec = _default(codec)
    reader = open_reader(io.BytesIO(data), codec)
    sr = reader.header.sample_rate
    a, b = sample_span(reader.header, start, duration)
    y = np.concatenate(list(decode_range(reader, codec, a, b)), axis=1)
    g = reader.header.loudness_gain_db
    if g is not None and g != 0:
        y = y * 10 ** (-g / 20)
    return y, sr


def _default(codec: Any) -> Any:
    if codec is None:
        from .model import load

        return load()
    return codec
