"""Writing files so that a reader never sees half of one.

Every sink writes to a temporary file beside its destination and renames it into place: the
rename is atomic on POSIX filesystems, so a failed or killed run leaves either the previous
complete file or none. Temporary names start with a dot and end in `.capport-tmp`, so a crash
leftover is easy to spot and is never mistaken for output.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "atomic_path"]

TEMP_SUFFIX = ".capport-tmp"


@contextmanager
def atomic_path(destination: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `destination` in one rename.

    Parent directories are created. On any failure the temporary file is removed and the
    destination is left untouched.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary(destination)
    try:
        yield temporary
        if destination.exists():  # an overwrite keeps the file's permissions, as a plain write
            shutil.copymode(destination, temporary)
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _create_temporary(destination: Path) -> Path:
    """A new empty file beside `destination`, with the permissions a plain write would give.

    Not `tempfile.mkstemp`: it creates files readable by their owner only (0600), which the
    rename would hand on to the output. `os.open` with 0666 lets the umask decide, as `open` does.
    """
    while True:
        name = f".{destination.name}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
        temporary = destination.with_name(name)
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return temporary
