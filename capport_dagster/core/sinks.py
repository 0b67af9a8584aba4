"""Writing files so that a reader never sees half of one.

Every sink writes to a temporary file beside its destination and renames it into place: the
rename is atomic on POSIX filesystems, so a failed or killed run leaves either the previous
complete file or none. Temporary names start with a dot and end in `.capport-tmp`, so a crash
leftover is easy to spot and is never mistaken for output.
"""

from __future__ import annotations

import os
import tempfile
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
    fd, name = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=TEMP_SUFFIX, dir=destination.parent
    )
    os.close(fd)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, destination)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
