"""The ``rcodec`` subcommands (``compress``, ``decompress``, ``info``, ``tokens``), one function each,
taking the parsed arguments; :mod:`reasoningcodec.cli` parses them and reports errors."""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from .cli_io import CliError, atomic_output, check_binary_stdout, check_output, stdin_bytes, write_stdout


def load_model(spec: str | None, device: str) -> Any:
    """The ``--model`` (a folder or Hub id; None: the embedded default) on ``device``."""
    from .model import ReasoningCodec, load

    return load(device) if spec is None else ReasoningCodec.from_pretrained(spec, device)


def progress_bar(total: float | None, desc: str, quiet: bool) -> Any:
    """A tqdm bar in seconds of audio, shown for inputs of 30 s or more (never with ``-q``)."""
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="s", disable=quiet or total is None or total < 30,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")


def cmd_compress(a: argparse.Namespace) -> None:
    from . import audio as audio_io
    from .compress import CompressOptions, compress_to

    out, to_stdout = Path(a.output), a.output == "-"
    if to_stdout:
        check_binary_stdout()
    elif out.suffix.lower() != ".rc":
        raise CliError(f"the output of compress is a .rc file: name it *.rc, got {out.name!r} "
                       f"(rcodec decompress writes audio)")
    else:
        check_output(out, a.force)
    if a.bitrate is not None and not a.bitrate > 0:  # NaN too
        raise CliError(f"--bitrate must be a positive number of bit/s, got {a.bitrate}")
    source = stdin_bytes("an audio file") if a.input == "-" else a.input
    meta = audio_io.info(source)
    codec = load_model(a.model, a.device)
    n_q = a.recon_codebooks
    if a.bitrate is not None:
        fits = [k for k in range(1, codec.num_recon_codebooks + 1) if codec.config.bitrate_with(k) <= a.bitrate]
        if not fits:
            raise CliError(f"--bitrate {a.bitrate} is below the lowest rate ({codec.config.bitrate_with(1):.0f} bit/s)")
        n_q = fits[-1]
    if n_q is not None and not 1 <= n_q <= codec.num_recon_codebooks:
        raise CliError(f"--recon-codebooks must be in 1..{codec.num_recon_codebooks}")
    opts = CompressOptions(recon_codebooks=n_q, chunk_seconds=_chunk_seconds(codec, a.chunk_seconds, a.quiet),
                           coding="packed" if a.packed else "auto", normalize=a.normalize)
    with progress_bar(meta.duration, "compress", a.quiet) as bar:
        if to_stdout:  # an .rc is small (≈ 2 kbit/s): built in memory, written only when complete
            buf = io.BytesIO()
            header = compress_to(buf, codec, source, options=opts, progress=bar)
            write_stdout(buf.getvalue())
            size = len(buf.getvalue())
        else:
            with atomic_output(out, a.force) as tmp, open(tmp, "wb") as f:
                header = compress_to(f, codec, source, options=opts, progress=bar)
            size = out.stat().st_size
    if not a.quiet:
        secs = header.num_samples / header.sample_rate
        print(f"{a.input} → {a.output}: {secs:.2f} s, {header.channels} ch, {size} bytes, "
              f"{8 * size / max(secs, 1e-9) / 1000:.3f} kbit/s", file=sys.stderr)


def _chunk_seconds(codec: Any, seconds: float, quiet: bool) -> float:
    """``--chunk-seconds`` as the file will hold it; says so when it was rounded to the frame step."""
    from .compress import chunk_samples
    from .errors import OptionError

    try:
        n = chunk_samples(codec, seconds)
    except OptionError as e:
        raise CliError(f"--{e}".replace("chunk_seconds", "chunk-seconds", 1)) from None
    got = n / codec.sample_rate
    if not quiet and not math.isclose(got, seconds, rel_tol=1e-9):
        c = codec.config
        step = math.lcm(c.recon_hop, c.reasoning_hop) / c.sample_rate
        print(f"rcodec: note: --chunk-seconds {seconds:g} rounded to {got:g} s (chunks are whole multiples of "
              f"{step:g} s, the step both token streams share)", file=sys.stderr)
    return got


def cmd_decompress(a: argparse.Namespace) -> None:
    from .seek import open_reader, sample_span
    from .errors import OptionError

    out, to_stdout = Path(a.output), a.output == "-"
    ext = ".wav" if to_stdout else out.suffix.lower()
    if ext not in (".wav", ".flac"):
        raise CliError(f"output must be .wav or .flac (or - for WAV on stdout), got {out.name!r}")
    if to_stdout:
        check_binary_stdout()
    else:
        check_output(out, a.force)
    codec = load_model(a.model, a.device)
    with (stdin_bytes("a .rc file") if a.input == "-" else open(a.input, "rb")) as f:
        reader = open_reader(f, codec)
        h = reader.header
        try:
            start, end = sample_span(h, 0.0 if a.start is None else a.start, a.duration)
        except OptionError as e:
            raise CliError(f"--{e}") from None
        out_sr = h.sample_rate if a.model_rate else h.original_sample_rate
        fmt = "WAV" if ext == ".wav" else "FLAC"
        with progress_bar((end - start) / h.sample_rate, "decompress", a.quiet) as bar:
            if to_stdout:  # WAV needs its length in the header: built in memory, written when complete
                buf = io.BytesIO()
                _write_audio(buf, fmt, reader, codec, (start, end), out_sr, a.subtype, bar)
                write_stdout(buf.getvalue())
            else:
                with atomic_output(out, a.force) as tmp:
                    _write_audio(str(tmp), fmt, reader, codec, (start, end), out_sr, a.subtype, bar)


def _write_audio(target: Any, fmt: str, reader: Any, codec: Any, span: tuple[int, int], out_sr: int,
                 subtype: str, bar: Any) -> None:
    """Decode model-rate samples ``span`` of ``reader`` at ``out_sr`` (exactly the same span of a full
    decode) into an audio file, the loudness gain undone and samples clipped to [-1, 1]."""
    import soundfile as sf

    from .seek import decode_range_at

    h = reader.header
    gain = 1.0 if h.loudness_gain_db is None else 10 ** (-h.loudness_gain_db / 20)
    with sf.SoundFile(target, "w", out_sr, h.channels, subtype=subtype, format=fmt) as w:
        for y in decode_range_at(reader, codec, out_sr, *span):
            w.write(np.clip(y * gain, -1, 1).T)
            bar.update(y.shape[1] / out_sr)


def cmd_info(a: argparse.Namespace) -> None:
    from .bitstream import RcReader

    with open(a.input, "rb") as f:
        r = RcReader(f)
        for i in range(r.num_chunks):  # CRC and structure of every chunk; the tokens need the model's tables
            r.check_chunk(i)
        h = r.header
        size = os.fstat(f.fileno()).st_size
        secs = h.num_samples / h.sample_rate
        d = {
            "file": str(a.input), "bytes": size, "duration_s": round(secs, 3),
            "kbit_per_s": round(8 * size / max(secs, 1e-9) / 1000, 4),
            "model_id": h.model_id, "weights_hash": h.weights_hash.hex(), "sample_rate": h.sample_rate,
            "original_sample_rate": h.original_sample_rate, "channels": h.channels, "num_samples": h.num_samples,
            "reasoning_frame_rate": float(h.reasoning_frame_rate), "recon_frame_rate": float(h.recon_frame_rate),
            "reasoning_codebooks": h.num_reasoning_codebooks, "reasoning_codebook_size": h.reasoning_codebook_size,
            "recon_codebooks": h.num_recon_codebooks, "model_recon_codebooks": h.model_recon_codebooks,
            "recon_codebook_size": h.recon_codebook_size,
            "coding": ("packed", "rans", "adaptive")[h.coding_mode],
            "chunks": r.num_chunks, "chunk_seconds": h.chunk_samples / h.sample_rate,
            "loudness_gain_db": h.loudness_gain_db,
        }
    if a.json:
        print(json.dumps(d, indent=2))
    else:
        w = max(len(k) for k in d)
        for k, v in d.items():
            print(f"{k:<{w}}  {v}")


def cmd_tokens(a: argparse.Namespace) -> None:
    from . import audio as audio_io
    from .tokens import LIST_EXTENSION, file_tokens, save_tokens

    src = Path(a.input)
    if a.merge or src.is_dir() or src.suffix.lower() == LIST_EXTENSION:
        return _tokens_dataset(a)
    out = Path(a.output)
    if out.suffix.lower() not in (".npz", ".json"):
        raise CliError(f"output must be .npz or .json, got {out.name!r} (a folder or {LIST_EXTENSION} list "
                       f"of inputs writes a folder)")
    check_output(out, a.force)  # before the (long) encode, not after
    meta = audio_io.info(a.input)
    audio_io.check_sample_rate(meta.samplerate)
    if meta.frames <= 0:
        raise CliError(f"{a.input} has no samples")
    codec = load_model(a.model, a.device)
    with progress_bar(meta.duration, "tokens", a.quiet) as bar:
        tokens = file_tokens(codec, Path(a.input), bar)
    with atomic_output(out, a.force) as tmp:
        save_tokens(tmp, tokens, out.suffix.lower())


def _tokens_dataset(a: argparse.Namespace) -> None:
    from tqdm import tqdm

    from .tokens import tokenize_dataset

    out = Path(a.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"{out} is a file, but tokens over a folder or list writes a folder (of .npz files and an "
                       f"index.json)")
    tokenize_dataset(Path(a.input), out, lambda device: load_model(a.model, device), device=a.device,
                     force=a.force, merge=a.merge, quiet=a.quiet,
                     log=lambda m: tqdm.write(f"rcodec: {m}", file=sys.stderr))
