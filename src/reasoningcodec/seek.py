"""Reading ``.rc`` files: check that a file is the loaded model's, and decode any span of it exactly as a
full decode gives it, also resampled to another rate.

Decoding a range starts the decoder :func:`decoder_context_frames` frames before the first needed chunk,
reading the tail of the previous chunk as warm-up, so that a seek decodes exactly the same audio as a full
decode (see :class:`DecodeStats`). The file-level API is :func:`reasoningcodec.compress.decompress`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

import numpy as np
import torch

from . import audio as audio_io
from .bitstream import RcChunk, RcHeader, RcReader
from .errors import BitstreamError, OptionError
from .streaming import DecoderState


@dataclass
class DecodeStats:
    """What a (partial) decode touched: chunks decoded for output, and extra chunks read for context."""

    chunks_decoded: list[int]
    context_chunks: list[int]


def decoder_context_frames(codec: Any) -> int:
    """Reconstruction frames of history that fully determine the decoder state (its receptive field)."""
    c = codec.config
    per = c.recon_stride // c.stem_stride
    latent = c.dec_latent_blocks * (c.latent_kernel - 1)
    dec = math.ceil(c.dec_blocks * (c.dec_kernel - 1) / per)
    overlap = math.ceil((c.n_fft - c.hop_length) / c.recon_hop)
    # a harmonic source is fixed by the frames since its latest restart: run through one
    restart = math.ceil(c.harmonic_reset_frames / c.recon_stride) if c.harmonic_source else 0
    return latent + dec + overlap + 1 + restart


def sample_span(header: RcHeader, start: float = 0.0, duration: float | None = None) -> tuple[int, int]:
    """``start``/``duration`` in seconds → samples ``[a, b)`` at the model rate inside the file.

    Raises:
        OptionError: ``start`` is not a finite time inside the file, or ``duration`` is not finite and > 0.
    """
    sr, n = header.sample_rate, header.num_samples
    length = f"the file is {n / sr:.3f} s long"
    if not _is_real(start) or not 0 <= start < n / sr:  # NaN and inf fail too
        raise OptionError(f"start must be a time in seconds from 0 to below the end ({length}), got {start!r}")
    a = min(int(round(start * sr)), n - 1)
    if duration is None:
        return a, n
    if not _is_real(duration) or not 0 < duration < math.inf:
        raise OptionError(f"duration must be a positive, finite number of seconds, got {duration!r}")
    return a, min(n, a + max(1, int(round(duration * sr))))


def _is_real(x: Any) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float, np.integer, np.floating))


def open_reader(fileobj: BinaryIO, codec: Any) -> RcReader:
    """Open an ``.rc`` stream and check that ``codec`` is the model that wrote it."""
    reader = RcReader(fileobj, getattr(codec, "entropy_tables", None) or None)
    h = reader.header
    if h.weights_hash != codec.weights_hash():
        raise BitstreamError(f"this file was written by model {h.model_id!r} (weights {h.weights_hash.hex()[:12]}), "
                             f"but the loaded model is {codec.config.model_id!r} "
                             f"(weights {codec.weights_hash().hex()[:12]}); pass the right --model")
    _check_header_fits(h, codec)
    return reader


def _check_header_fits(h: RcHeader, codec: Any) -> None:
    """Header fields that must equal the model's (a file with the right weights hash can still lie)."""
    c = codec.config
    fields = {
        "sample_rate": (h.sample_rate, c.sample_rate),
        "reasoning_frame_rate": (h.reasoning_frame_rate, codec.reasoning_frame_rate),
        "recon_frame_rate": (h.recon_frame_rate, codec.recon_frame_rate),
        "reasoning_codebook_size": (h.reasoning_codebook_size, c.reasoning_codebook_size),
        "recon_codebook_size": (h.recon_codebook_size, c.recon_codebook_size),
        "num_reasoning_codebooks": (h.num_reasoning_codebooks, c.num_reasoning_codebooks),
        "model_recon_codebooks": (h.model_recon_codebooks, c.num_recon_codebooks),
    }
    for name, (got, want) in fields.items():
        if got != want:
            raise BitstreamError(f"file header says {name}={got}, but the model has {want}")
    unit = math.lcm(c.recon_hop, c.reasoning_hop)
    if h.chunk_samples % unit:
        raise BitstreamError(f"file header says chunk_samples={h.chunk_samples}, not a multiple of the model's "
                             f"{unit}-sample frame step: its chunks would not cut the token streams cleanly")


def decode_range(reader: RcReader, codec: Any, start: int = 0, end: int | None = None,
                 stats: DecodeStats | None = None) -> Iterator[np.ndarray]:
    """Yield decoded ``[C, n]`` blocks (model rate) covering samples ``[start, end)``."""
    h = reader.header
    c = codec.config
    end = h.num_samples if end is None else min(end, h.num_samples)
    if not 0 <= start < end:
        raise OptionError(f"samples [{start}, {end}) are not a non-empty range inside the file's "
                          f"{h.num_samples} samples")
    stats = stats if stats is not None else DecodeStats([], [])
    needed = reader.chunks_for_range(start, end)
    first = needed[0]
    state = None
    if first > 0:  # warm the decoder up on the frames just before the first needed chunk
        need = decoder_context_frames(codec)
        tails: list[RcChunk] = []
        j = first - 1
        while j >= 0 and sum(t.recon.shape[-1] for t in tails) < need:  # short chunks: go further back
            stats.context_chunks.insert(0, j)
            tails.insert(0, reader.read_chunk(j))
            j -= 1
        recon = np.concatenate([t.recon for t in tails], axis=-1)
        n = min(need, recon.shape[-1])
        reasoning = None
        j0 = tails[0].start_sample // c.recon_hop + recon.shape[-1] - n  # global index of the first warm frame
        state = DecoderState(start_frame=j0)
        if codec.dec_film is not None:  # the warm frames' reasoning windows, and where both streams stand
            k0 = codec.frame_window(j0)  # the window it is conditioned on
            w0 = tails[0].start_sample // c.reasoning_hop
            reasoning = np.concatenate([t.reasoning for t in tails], axis=-1)
            if 0 <= k0 < w0:  # that window closes the chunk before the tails
                stats.context_chunks.insert(0, j)
                reasoning = np.concatenate([reader.read_chunk(j).reasoning[..., k0 - w0:], reasoning], axis=-1)
                w0 = k0
            state = DecoderState(recon_done=j0, win_start=w0, conditioned=True, start_frame=j0)
            reasoning = torch.from_numpy(reasoning).to(codec.device)
        warm = torch.from_numpy(recon[..., -n:]).to(codec.device)
        with torch.no_grad():
            _, state = codec.decode_frames(warm, state, reasoning)
    overlap = c.n_fft - c.hop_length
    cur = 0  # model-rate sample where the next decoded output starts
    for n, i in enumerate(needed):
        stats.chunks_decoded.append(i)
        ch = reader.read_chunk(i)
        with torch.no_grad():
            y, state = codec.decode_frames(torch.from_numpy(ch.recon).to(codec.device), state,
                                           torch.from_numpy(ch.reasoning).to(codec.device))
        if first > 0 and n == 0:
            # the warm-up output (and the overlap held back) ends at this chunk's start − overlap
            cur = ch.start_sample - overlap
        yield from _clip(y, cur, start, end)
        cur += y.shape[1]
    last = needed[-1]
    if cur < end:
        if last + 1 < reader.num_chunks:  # complete the overlap with the next chunk's first frame
            stats.context_chunks.append(last + 1)
            nxt = reader.read_chunk(last + 1)
            with torch.no_grad():
                y, state = codec.decode_frames(torch.from_numpy(nxt.recon[..., :1]).to(codec.device), state)
        else:
            y = codec.flush(state)
        yield from _clip(y, cur, start, end)


def _clip(y: torch.Tensor, pos: int, start: int, end: int) -> Iterator[np.ndarray]:
    a, b = max(start, pos), min(end, pos + y.shape[1])
    if b > a:
        yield y[:, a - pos:b - pos].float().cpu().numpy()


def decode_range_at(reader: RcReader, codec: Any, sample_rate: int, start: int = 0, end: int | None = None,
                    stats: DecodeStats | None = None) -> Iterator[np.ndarray]:
    """Yield decoded ``[C, n]`` blocks resampled to ``sample_rate``: the output samples
    ``[resampled_length(start), resampled_length(end))`` of the whole file decoded and resampled in one
    stream, for model-rate samples ``[start, end)`` (loudness gain not undone).

    A span is the same span of a full decode, also at another rate: the model-rate audio is decoded from
    :func:`audio.resampling_context` samples before ``start`` (rounded down to where both rates' sample
    grids meet) to as many after ``end``, resampled, and cut. The result equals the full decode's samples
    up to float rounding inside the resampler (≈ 1e-7).
    """
    h = reader.header
    sr, n = h.sample_rate, h.num_samples
    end = n if end is None else min(end, n)
    if sample_rate == sr or not 0 <= start < end:  # (decode_range refuses an empty span)
        yield from decode_range(reader, codec, start, end, stats)
        return
    g = math.gcd(sr, sample_rate)
    grid = sr // g  # model-rate samples between two instants that fall on both sample grids
    ctx = audio_io.resampling_context(sr, sample_rate)
    s0 = max(0, (start - ctx) // grid * grid)
    e1 = min(n, end + ctx)
    oa, ob = audio_io.resampled_length(start, sr, sample_rate), audio_io.resampled_length(end, sr, sample_rate)
    pos = s0 // grid * (sample_rate // g)  # output sample where the resampled stream starts
    for y in _resampled(decode_range(reader, codec, s0, e1, stats), sr, sample_rate, h.channels):
        a, b = max(oa, pos), min(ob, pos + y.shape[1])
        if b > a:
            yield y[:, a - pos:b - pos]
        pos += y.shape[1]
    if pos < ob:  # soxr's last output can fall a sample short of the rounded length
        yield np.zeros((h.channels, ob - max(oa, pos)), dtype=np.float32)


def _resampled(blocks: Iterator[np.ndarray], sr: int, sample_rate: int, channels: int) -> Iterator[np.ndarray]:
    rs = audio_io.StreamResampler(sr, sample_rate, channels)
    for block in blocks:
        yield rs(block)
    yield rs(np.zeros((channels, 0), dtype=np.float32), last=True)
