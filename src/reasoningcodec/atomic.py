"""Temp files for atomic outputs: written next to the target, renamed onto it when complete.

``tempfile.mkstemp`` makes 0600 files, so an output renamed from one would be private whatever the
umask says. :func:`temp_next_to` creates the temp file the way a plain ``open(path, "w")`` creates a
file (mode 0666 less the process umask, applied by the kernel at creation), so the renamed output has
the permissions a user expects.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable

__all__ = ["temp_next_to", "write_keeping_mode"]


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


def write_keeping_mode(tmp: str | os.PathLike, write: Callable[[str], object]) -> None:
    """``write(str(tmp))``, then give ``tmp`` back the mode it was created with: some writers replace the
    file with one of their own (safetensors' ``save_file`` makes it 0600)."""
    mode = os.stat(tmp).st_mode & 0o7777
    write(str(tmp))
    os.chmod(tmp, mode)
