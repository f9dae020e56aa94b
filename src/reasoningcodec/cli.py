"""The ``rcodec`` command line: compress, decompress, info, tokens.

Every expected failure prints one line on stderr and exits non-zero; outputs are written to a temp
file in the target folder and renamed into place only when complete.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


class CliError(Exception):
    """A user-facing problem found by the CLI itself (existing output, bad option...)."""


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: unwinds like KeyboardInterrupt, so every temp file is removed."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def check_output(path: Path, force: bool) -> None:
    """Refuse an output that exists (without ``force``), is a folder, or has no folder to go into."""
    if path.is_dir():
        raise CliError(f"{path} is a directory")
    if path.exists() and not force:
        raise CliError(f"{path} exists; use -f to overwrite")
    parent = path.resolve().parent
    if not parent.is_dir():
        raise CliError(f"output folder {parent} does not exist")


@contextlib.contextmanager
def atomic_output(path: Path, force: bool) -> Iterator[Path]:
    """Yield a temp path next to ``path``; rename it onto ``path`` only if the block succeeds.

    The temp file gets ``0o666 & ~umask``, as a plain ``open()`` would; it is removed on any exception,
    Ctrl-C and SIGTERM/SIGHUP included (see :func:`main`). Only SIGKILL leaves it behind.
    """
    from .atomic import temp_next_to

    check_output(path, force)
    tmp = temp_next_to(path, ".part" + path.suffix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    """Turn SIGTERM/SIGHUP into :class:`Terminated` while the block runs (main thread only), so that
    ``finally`` blocks remove temp files; a second signal during that clean-up is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        for s in names:
            signal.signal(s, signal.SIG_IGN)
        raise Terminated(signum)

    names = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    old = {s: signal.signal(s, handler) for s in names}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _load_model(spec: str | None, device: str) -> Any:
    from .model import ReasoningCodec, load

    return load(device) if spec is None else ReasoningCodec.from_pretrained(spec, device)


def _progress(total: float | None, desc: str, quiet: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="s", disable=quiet or total is None or total < 30,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s audio [{elapsed}<{remaining}]")


def cmd_compress(a: argparse.Namespace) -> None:
    from . import audio as audio_io
    from .compress import CompressOptions, compress_to

    out, to_stdout = Path(a.output), a.output == "-"
    if to_stdout:
        _check_binary_stdout()
    elif out.suffix.lower() != ".rc":
        raise CliError(f"the output of compress is a .rc file: name it *.rc, got {out.name!r} "
                       f"(rcodec decompress writes audio)")
    else:
        check_output(out, a.force)
    if a.bitrate is not None and not a.bitrate > 0:  # NaN too
        raise CliError(f"--bitrate must be a positive number of bit/s, got {a.bitrate}")
    source = _stdin_bytes("an audio file") if a.input == "-" else a.input
    meta = audio_io.info(source)
    codec = _load_model(a.model, a.device)
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
    with _progress(meta.duration, "compress", a.quiet) as bar:
        if to_stdout:  # an .rc is small (≈ 2 kbit/s): built in memory, written only when complete
            buf = io.BytesIO()
            header = compress_to(buf, codec, source, options=opts, progress=bar)
            _write_stdout(buf.getvalue())
            size = len(buf.getvalue())
        else:
            with atomic_output(out, a.force) as tmp, open(tmp, "wb") as f:
                header = compress_to(f, codec, source, options=opts, progress=bar)
            size = out.stat().st_size
    if not a.quiet:
        secs = header.num_samples / header.sample_rate
        print(f"{a.input} → {a.output}: {secs:.2f} s, {header.channels} ch, {size} bytes, "
              f"{8 * size / max(secs, 1e-9) / 1000:.3f} kbit/s", file=sys.stderr)


def _stdin_bytes(what: str) -> io.BytesIO:
    """All of stdin in memory (for input ``-``), named ``<stdin>`` in messages."""
    if sys.stdin is None or sys.stdin.isatty():
        raise CliError(f"input - reads {what} from stdin, but stdin is a terminal: pipe or redirect a file into it")
    buf = io.BytesIO(sys.stdin.buffer.read())
    buf.name = "<stdin>"
    return buf


def _check_binary_stdout() -> None:
    if sys.stdout.isatty():
        raise CliError("output - writes binary data to stdout, but stdout is a terminal: redirect it to a file "
                       "or a pipe")


def _write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


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
    from .compress import open_reader, sample_span
    from .errors import OptionError

    out, to_stdout = Path(a.output), a.output == "-"
    ext = ".wav" if to_stdout else out.suffix.lower()
    if ext not in (".wav", ".flac"):
        raise CliError(f"output must be .wav or .flac (or - for WAV on stdout), got {out.name!r}")
    if to_stdout:
        _check_binary_stdout()
    else:
        check_output(out, a.force)
    codec = _load_model(a.model, a.device)
    with (_stdin_bytes("a .rc file") if a.input == "-" else open(a.input, "rb")) as f:
        reader = open_reader(f, codec)
        h = reader.header
        try:
            start, end = sample_span(h, 0.0 if a.start is None else a.start, a.duration)
        except OptionError as e:
            raise CliError(f"--{e}") from None
        out_sr = h.sample_rate if a.model_rate else h.original_sample_rate
        fmt = "WAV" if ext == ".wav" else "FLAC"
        with _progress((end - start) / h.sample_rate, "decompress", a.quiet) as bar:
            if to_stdout:  # WAV needs its length in the header: built in memory, written when complete
                buf = io.BytesIO()
                _write_audio(buf, fmt, reader, codec, (start, end), out_sr, a.subtype, bar)
                _write_stdout(buf.getvalue())
            else:
                with atomic_output(out, a.force) as tmp:
                    _write_audio(str(tmp), fmt, reader, codec, (start, end), out_sr, a.subtype, bar)


def _write_audio(target: Any, fmt: str, reader: Any, codec: Any, span: tuple[int, int], out_sr: int,
                 subtype: str, bar: Any) -> None:
    """Decode model-rate samples ``span`` of ``reader`` at ``out_sr`` (exactly the same span of a full
    decode) into an audio file, the loudness gain undone and samples clipped to [-1, 1]."""
    import soundfile as sf

    from .compress import decode_range_at

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
    codec = _load_model(a.model, a.device)
    with _progress(meta.duration, "tokens", a.quiet) as bar:
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
    tokenize_dataset(Path(a.input), out, lambda device: _load_model(a.model, device), device=a.device,
                     force=a.force, merge=a.merge, quiet=a.quiet,
                     log=lambda m: tqdm.write(f"rcodec: {m}", file=sys.stderr))


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="rcodec", description="ReasoningCodec: compress audio to .rc files and back.")
    p.add_argument("--version", action="version", version=f"rcodec {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser, model: bool = True) -> None:
        if model:
            sp.add_argument("--model", help="model folder or Hugging Face id (default: the embedded model)")
            sp.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
        sp.add_argument("-f", "--force", action="store_true", help="overwrite the output")
        sp.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")

    s = sub.add_parser("compress", help="audio file → .rc")
    s.add_argument("input", help="audio file, or - to read one from stdin (read whole into memory first)")
    s.add_argument("output", help=".rc file, or - to write the .rc to stdout")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--recon-codebooks", type=int, help="reconstruction codebooks to keep (fewer = lower bitrate)")
    g.add_argument("--bitrate", type=float, help="highest raw bitrate in bit/s; picks the codebook count")
    s.add_argument("--chunk-seconds", type=float, default=20.0,
                   help="seconds per independently checked chunk, rounded to a multiple of 0.4 s (default 20)")
    s.add_argument("--packed", action="store_true",
                   help="bit-pack every chunk (default: each chunk rANS-coded or bit-packed, whichever is "
                   "smaller, when the model has entropy tables)")
    s.add_argument("--normalize", action="store_true", help="normalise loudness before coding (undone on decode)")
    common(s)
    s.set_defaults(func=cmd_compress)

    s = sub.add_parser("decompress", help=".rc → audio file (.wav or .flac)")
    s.add_argument("input", help=".rc file, or - to read one from stdin")
    s.add_argument("output", help=".wav or .flac file, or - to write WAV to stdout (built in memory first)")
    s.add_argument("--start", type=float, help="start time in seconds")
    s.add_argument("--duration", type=float, help="duration in seconds")
    s.add_argument("--model-rate", action="store_true", help="write at the model rate instead of the original rate")
    s.add_argument("--subtype", default="PCM_16", help="soundfile subtype, e.g. PCM_16, PCM_24, FLOAT")
    common(s)
    s.set_defaults(func=cmd_decompress)

    s = sub.add_parser("info", help="describe an .rc file")
    s.add_argument("input")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_info)

    s = sub.add_parser("tokens", help="audio file → raw reasoning and reconstruction tokens (.npz or .json); "
                       "a folder or .txt list of audio files → a folder of .npz files and index.json",
                       description="One file: IN.wav OUT.npz|OUT.json. A dataset: IN is a folder (every audio file "
                       "under it) or a .txt list (one path per line) and OUT a folder; each input a/b.wav gets "
                       "OUT/a/b.npz, and OUT/index.json lists every input and its token file. Resumable: complete "
                       "token files are kept (-f redoes them). Scales out with torchrun (e.g. torchrun "
                       "--nproc-per-node 8 -m reasoningcodec tokens IN OUT --device cuda): each process takes "
                       "every WORLD_SIZE-th file from RANK and uses cuda:LOCAL_RANK; rank 0 writes the index "
                       "when all are done. With RANK/WORLD_SIZE set by hand, run --merge at the end.")
    s.add_argument("input", help="audio file, folder of audio files, or .txt list of audio files")
    s.add_argument("output", help=".npz or .json for one file; a folder for a folder or list")
    s.add_argument("--merge", action="store_true",
                   help="only write OUT/index.json from the token files present (after sharded runs)")
    common(s)
    s.set_defaults(func=cmd_tokens)
    return p


def _show_audio_warnings(quiet: bool) -> None:
    """Inside ``warnings.catch_warnings()``: an :class:`AudioWarning` (audio above full scale) is one
    ``rcodec: warning:`` line on stderr (nothing with ``-q``)."""
    from .errors import AudioWarning

    if quiet:
        warnings.simplefilter("ignore", AudioWarning)
        return
    default = warnings.showwarning

    def show(message: Any, category: type, *args: Any, **kwargs: Any) -> None:
        if issubclass(category, AudioWarning):
            print(f"rcodec: warning: {message}", file=sys.stderr, flush=True)
        else:
            default(message, category, *args, **kwargs)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    from .errors import ReasoningCodecError

    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings(), _terminate_cleanly():
            _show_audio_warnings(getattr(args, "quiet", False))
            args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers below, not at interpreter exit
        return 0
    except Terminated as e:
        print(f"rcodec: terminated ({e}); no output written", file=sys.stderr)
        return 128 + e.signum  # as a shell reports a process the signal ended
    except (ReasoningCodecError, CliError, ValueError) as e:
        print(f"rcodec: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except FileNotFoundError as e:
        print(f"rcodec: error: file not found: {e.filename}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. `rcodec info x.rc | head -1`: the reader left; stop quietly, as cat does
        try:  # no second error when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 141
    except (IsADirectoryError, PermissionError, OSError) as e:
        print(f"rcodec: error: {e.strerror or e}: {getattr(e, 'filename', '') or ''}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("rcodec: interrupted; no output written", file=sys.stderr)
        return 130
    except Exception as e:  # never a traceback for users; RCODEC_DEBUG=1 shows it
        if os.environ.get("RCODEC_DEBUG"):
            raise
        print(f"rcodec: internal error: {type(e).__name__}: {e} (set RCODEC_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
