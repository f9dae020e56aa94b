"""The ``rcodec`` command line: compress, decompress, info, tokens.

Every expected failure prints one line on stderr and exits non-zero; outputs are written to a temp
file in the target folder and renamed into place only when complete (:mod:`reasoningcodec.cli_io`). This
module parses the arguments and reports errors; the subcommands are :mod:`reasoningcodec.cli_commands`.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import Any

from .cli_commands import cmd_compress, cmd_decompress, cmd_info, cmd_tokens
from .cli_io import CliError, Terminated, atomic_output, check_output, terminate_cleanly

__all__ = [
    "EXIT_ERROR", "EXIT_INTERNAL", "EXIT_USAGE", "CliError", "Terminated", "atomic_output", "build_parser",
    "check_output", "cmd_compress", "cmd_decompress", "cmd_info", "cmd_tokens", "main",
]

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3


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
        with warnings.catch_warnings(), terminate_cleanly():
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
