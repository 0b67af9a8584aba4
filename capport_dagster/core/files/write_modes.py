"""How a file sink meets a file that is already there: `mode: replace | append | make_next`.

- `replace` (the default): the new file replaces the old one in one rename (`atomic_path`).
- `append` (capport's `insert`): the frame's rows are added after the file's. The old file is
  copied to the temporary file, the rows are written after the copy, and the copy is renamed into
  place, so a failure or a kill leaves exactly the file that was there. That costs a copy of the
  old file per append; appending in place and truncating back on failure would be cheaper, but a
  killed run could not truncate. Columns must match the file's (the error names both lists).
- `make_next`: a new file `<stem>_<UTC time>.<ext>`, the time as `20261129T031500Z`; when that
  name is taken (two writes in one second) `_2`, `_3`, ... is added. Published with a hard
  link, which never replaces a file, so no write ever overwrites another.

On an object store (`s3://bucket/key`) the same modes hold, each object written in one upload
(`core/sinks.py`): `make_next` creates its object only if the key is free (looked at, then
written with `If-None-Match`), and `append` reads the object, writes it whole with the new rows,
and replaces it only if it is still the version read (`If-Match`): a concurrent writer makes the
append fail, never lose rows. Stores without conditional writes refuse `append`.
"""

from __future__ import annotations

import datetime as dt
import enum
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path

from capport_dagster.core.uris import PathOrUri, basename, with_basename

__all__ = ["MODE_WORDS", "WriteMode", "column_mismatch", "next_names", "next_uris", "parse_mode"]


class WriteMode(enum.Enum):
    REPLACE = "replace"
    APPEND = "append"
    MAKE_NEXT = "make_next"


#: Every word `mode:` accepts, with the mode it means (`insert` is capport's word for append).
MODE_WORDS = {
    "replace": WriteMode.REPLACE,
    "append": WriteMode.APPEND,
    "insert": WriteMode.APPEND,
    "make_next": WriteMode.MAKE_NEXT,
}


def parse_mode(word: str) -> WriteMode:
    return MODE_WORDS[word]


#: The UTC time in a `make_next` file's name: sorts as text in time order, no `:` (Windows).
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def next_names(path: Path, now: dt.datetime | None = None) -> Iterator[Path]:
    """`<stem>_<UTC time><suffix>`, then the same with `_2`, `_3`, ... (never ends)."""
    for name in _next(path.name, now):
        yield path.with_name(name)


def next_uris(uri: str, now: dt.datetime | None = None) -> Iterator[str]:
    """`next_names` for an object: the same names, beside the object's key."""
    for name in _next(basename(uri), now):
        yield with_basename(uri, name)


def _next(name: str, now: dt.datetime | None) -> Iterator[str]:
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    stamp = moment.strftime(TIMESTAMP_FORMAT)
    path = Path(name)
    stem, suffix = path.stem, path.suffix
    yield f"{stem}_{stamp}{suffix}"
    for n in itertools.count(2):
        yield f"{stem}_{stamp}_{n}{suffix}"


def column_mismatch(
    task: str, df_name: str, path: PathOrUri, frame: Sequence[str], file: Sequence[str]
) -> str | None:
    """What to say when a frame's columns are not a file's (same names, same order); None when
    they are."""
    if list(frame) == list(file):
        return None
    return (
        f"{task}: cannot append frame '{df_name}' to {path}: its columns ({', '.join(frame)}) "
        f"are not the file's ({', '.join(file)}) (give the frame the file's columns, e.g. with "
        "a model, or save with mode: replace or make_next)"
    )
