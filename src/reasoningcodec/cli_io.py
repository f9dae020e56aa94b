"""Where the ``rcodec`` command's bytes go: outputs written to a temp file next to the target and renamed
into place only when complete (never over an existing file without ``-f``; removed on any failure, Ctrl-C,
SIGTERM and SIGHUP included), stdin and stdout as files, and the :class:`CliError` of a user's mistake."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Iterator


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
    Ctrl-C and SIGTERM/SIGHUP included (see :func:`terminate_cleanly`). Only SIGKILL leaves it behind.
    """
    from .atomic import temp_file_next_to

    check_output(path, force)
    with temp_file_next_to(path, ".part" + path.suffix) as tmp:
        yield tmp
        os.replace(tmp, path)


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
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


def stdin_bytes(what: str) -> io.BytesIO:
    """All of stdin in memory (for input ``-``), named ``<stdin>`` in messages."""
    if sys.stdin is None or sys.stdin.isatty():
        raise CliError(f"input - reads {what} from stdin, but stdin is a terminal: pipe or redirect a file into it")
    buf = io.BytesIO(sys.stdin.buffer.read())
    buf.name = "<stdin>"
    return buf


def check_binary_stdout() -> None:
    if sys.stdout.isatty():
        raise CliError("output - writes binary data to stdout, but stdout is a terminal: redirect it to a file "
                       "or a pipe")


def write_stdout(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
