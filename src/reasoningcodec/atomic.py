"""Temp files for atomic outputs: written next to the target, renamed onto it when complete.

``tempfile.mkstemp`` makes 0600 files, so an output renamed from one would be private whatever the
umask says. :func:`temp_next_to` creates the temp file the way a plain ``open(path, "w")`` creates a
file (mode 0666 less the process umask, applied by the kernel at creation), so the renamed output has
the permissions a user expects.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from typing import Callable, Iterator

__all__ = ["temp_dir_next_to", "temp_next_to", "temp_file_next_to", "write_keeping_mode"]


def temp_next_to(path: str | os.PathLike, suffix: str = ".part") -> Path:
    """Create an empty hidden file ``.NAME.<random><suffix>`` in ``path``'s folder and return its path.

    Its mode is ``0o666 & ~umask``, as for ``open(path, "w")``. The caller renames it onto ``path``
    (``os.replace``) or deletes it.
    """
    p = Path(path)
    folder = p.resolve().parent
    for _ in range(100):
        tmp = folder / f".{p.name}.{secrets.token_hex(4)}{suffix}"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp
    raise FileExistsError(f"no free temp file name next to {p} after 100 tries")


@contextlib.contextmanager
def _termination_held() -> Iterator[None]:
    """SIGTERM and SIGHUP wait while the block runs (main thread only; elsewhere a no-op).

    Their Python handlers are swapped for one that only notes the signal; when the block ends the old
    handlers come back and a noted signal is raised again, to them. A thread signal mask would not do: the
    kernel hands a process-directed signal to any thread that does not block it, and Python then runs the
    handler in the main thread at once."""
    sigs = [s for s in (getattr(signal, "SIGTERM", None), getattr(signal, "SIGHUP", None)) if s is not None]
    if not sigs or threading.current_thread() is not threading.main_thread() or \
            any(signal.getsignal(s) is None for s in sigs):      # a handler not set from Python: leave it
        yield
        return
    noted: list[int] = []
    old = {s: signal.signal(s, lambda signum, frame: noted.append(signum)) for s in sigs}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        if noted:
            signal.raise_signal(noted[0])


@contextlib.contextmanager
def temp_file_next_to(path: str | os.PathLike, suffix: str = ".part") -> Iterator[Path]:
    """:func:`temp_next_to` as a block: the temp file is removed when the block ends, however it ends.

    SIGTERM and SIGHUP are held back while the file is created and its name recorded, so a signal turned
    into an exception (as the command-line tools do) cannot land between the two and leave it behind."""
    tmp: Path | None = None
    try:
        with _termination_held():
            tmp = temp_next_to(path, suffix)
        yield tmp
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def temp_dir_next_to(path: str | os.PathLike) -> Iterator[Path]:
    """A new hidden folder ``.NAME.<random>`` in ``path``'s folder, removed with its contents when the block
    ends unless it was renamed away (onto ``path``). Like :func:`temp_file_next_to`, SIGTERM and SIGHUP wait
    while it is created and its name recorded."""
    p = Path(path)
    tmp: Path | None = None
    try:
        with _termination_held():
            tmp = Path(tempfile.mkdtemp(prefix=f".{p.name}.", dir=str(p.resolve().parent)))
        yield tmp
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def write_keeping_mode(tmp: str | os.PathLike, write: Callable[[str], object]) -> None:
    """``write(str(tmp))``, then give ``tmp`` back the mode it was created with: some writers replace the
    file with one of their own (safetensors' ``save_file`` makes it 0600)."""
    mode = os.stat(tmp).st_mode & 0o7777
    write(str(tmp))
    os.chmod(tmp, mode)
