"""Model ⇄ ``.rc`` bytes, with bounded memory for long inputs.

Encoding runs the streaming encoder over the whole signal (so the tokens in the file equal
``codec.encode`` of the whole signal exactly) and cuts the token streams into chunks of
``chunk_seconds`` (a multiple of 400 ms, so both frame rates cut cleanly). Each chunk parses and
CRC-checks on its own. Decoding a range starts the decoder ``decoder_context_frames`` frames before
the first needed chunk, reading the tail of the previous chunk as warm-up, so that a seek decodes
exactly the same audio as a full decode (see :class:`DecodeStats`).
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
from .bitstream import CODING_ADAPTIVE, CODING_PACKED, CODING_RANS, RcChunk, RcHeader, RcReader, RcWriter
from .errors import AudioError, BitstreamError, OptionError
from .inputs import as_float_tensor
from .streaming import DecoderState

BLOCK_SECONDS = 10.0
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


def _blocks_from_array(x: np.ndarray, block: int) -> Iterator[np.ndarray]:
    for i in range(0, x.shape[1], block):
        yield x[:, i:i + block]


_OVER_ADVICE = "the codec expects [-1, 1] and will distort it; scale it down or compress with normalize"
_OVER_NORMALIZED = "normalised for coding, it decodes at full scale (peak 1.0), not at its original level"


def _blocks_from_file(path: Any, sr_in: int, sr_out: int, channels: int, total: int, gain: float,
                      progress: Any = None, check_peaks: bool = True) -> Iterator[np.ndarray]:
    """File → resampled ``[C, n]`` blocks at the model rate, exactly ``total`` samples in all.

    ``check_peaks``: refuse (or warn about) float samples out of range as they are read (see
    :func:`audio.check_peak`); the warning comes once per file."""
    rs = audio_io.StreamResampler(sr_in, sr_out, channels)
    out, warned = 0, False
    for block in audio_io.iter_blocks(path, int(BLOCK_SECONDS * sr_in)):
        peak = float(np.abs(block).max()) if check_peaks and block.size else 0.0
        if peak > audio_io.MAX_PEAK or (peak > audio_io.FULL_SCALE and not warned):
            audio_io.check_peak(peak, f"audio in {audio_io.source_name(path)}", _OVER_ADVICE)
            warned = True
        if progress is not None:
            progress.update(block.shape[1] / sr_in)
        y = rs(block * gain if gain != 1.0 else block)
        y = y[:, : max(0, total - out)]
        out += y.shape[1]
        if y.shape[1]:
            yield y
    tail = rs(np.zeros((channels, 0), dtype=np.float32), last=True)[:, : max(0, total - out)]
    out += tail.shape[1]
    if tail.shape[1]:
        yield tail
    if out < total:
        yield np.zeros((channels, total - out), dtype=np.float32)


def _gains(gain_db: float, peak: float) -> tuple[float, float]:
    """``(gain applied before coding, gain the header records)`` in dB. They differ only for input that
    peaks above full scale: the header's gain is undone on decode, and undoing all of it would bring such
    input back above full scale, where a WAV clips it; the decode stops at full scale instead."""
    over = 20 * math.log10(peak) if peak > audio_io.FULL_SCALE else 0.0
    return gain_db, gain_db + over


def _file_gain(path: Any, opts: CompressOptions) -> tuple[float, float] | None:
    """Loudness normalisation of a file (read once, block by block): see :func:`_gains`; None without
    ``normalize``. Refuses (or warns about) out-of-range float samples first."""
    if not opts.normalize:
        return None
    sq, n, peak = 0.0, 0, 0.0
    for block in audio_io.iter_blocks(path, 1 << 20):
        sq += float(np.square(block, dtype=np.float64).sum())
        n += block.size
        peak = max(peak, float(np.abs(block).max()) if block.size else 0.0)
    audio_io.check_peak(peak, f"audio in {audio_io.source_name(path)}", _OVER_NORMALIZED)
    level = 10 * math.log10(sq / n) if n and sq > 0 else float("-inf")
    if not math.isfinite(level):
        return 0.0, 0.0
    gain = max(-30.0, min(30.0, opts.target_db - level))
    return _gains(min(gain, 20 * math.log10(0.99 / peak)) if peak > 0 else gain, peak)


@dataclass
class _Source:
    """Audio to compress: ``[C, n]`` blocks at the model rate, ``total`` samples per channel in all."""

    blocks: Iterator[np.ndarray]
    channels: int
    total: int
    sample_rate: int  # the input's own rate (the header's original_sample_rate)
    gain_db: float | None  # what the header records (None: not normalised)


def _file_source(codec: Any, source: Any, opts: CompressOptions, progress: Any) -> _Source:
    """A path or a seekable file object holding an audio file (read in blocks: bounded memory)."""
    c = codec.config
    meta = audio_io.info(source)
    sr_in = audio_io.check_sample_rate(meta.samplerate)
    if meta.frames <= 0:
        raise AudioError(f"audio in {audio_io.source_name(source)} is empty (0 samples)")
    channels = int(meta.channels)
    total = audio_io.resampled_length(meta.frames, sr_in, c.sample_rate)  # what encode(path) gives
    gains = _file_gain(source, opts)
    gain = 10 ** (gains[0] / 20) if gains else 1.0
    blocks = _blocks_from_file(source, sr_in, c.sample_rate, channels, total, gain, progress,
                               check_peaks=gains is None)
    return _Source(blocks, channels, total, sr_in, gains[1] if gains else None)


def _array_source(codec: Any, source: Any, sample_rate: int | None, opts: CompressOptions) -> _Source:
    """An array or tensor ``[T]`` / ``[C, T]`` (integer PCM scaled as :meth:`ReasoningCodec.encode` does)."""
    c = codec.config
    if not isinstance(source, (np.ndarray, torch.Tensor)):
        source = np.asarray(source)
    x = as_float_tensor(source, "", "a path, file object, array or tensor").detach().float().cpu().numpy()
    if x.ndim == 1:
        x = x[None]
    audio_io.check_layout(x.shape, "[C, T] (channels, samples)", "pass it transposed (x.T) or the file path")
    if x.ndim != 2:
        raise AudioError(f"expected audio of shape [T] or [C, T], got {tuple(x.shape)}")
    audio_io.check_finite(x)
    peak = float(np.abs(x).max())
    audio_io.check_peak(peak, "audio", _OVER_NORMALIZED if opts.normalize else _OVER_ADVICE)
    x = x.astype(np.float32)
    sr_in = audio_io.check_sample_rate(sample_rate or c.sample_rate)
    x = audio_io.resample(x, sr_in, c.sample_rate)
    gain_db = None
    if opts.normalize:
        applied, gain_db = _gains(audio_io.loudness_gain_db(x, opts.target_db), peak)
        x = x * 10 ** (applied / 20)
    return _Source(_blocks_from_array(x, int(BLOCK_SECONDS * c.sample_rate)), x.shape[0], x.shape[1], sr_in, gain_db)


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
        src = _file_source(codec, source, opts, progress)
    else:
        src = _array_source(codec, source, sample_rate, opts)
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
