"""`load_json` and `save_json`: a JSON array of objects, or NDJSON (one object a line).

NDJSON is read lazily (`pl.scan_ndjson`) and written streaming (`sink_ndjson`). Polars has no
scan for a JSON array, so `load_json` reads an array whole, at the load (`pl.read_json`), in every
mode (an object's bytes are fetched first: `pl.read_json` reads no URI). `save_json` writes an
array streaming too: the rows go out as NDJSON through a writer that turns each line break
between two objects into a comma (NDJSON escapes line breaks inside strings, so every raw one is
a separator), giving byte for byte what `write_json` gives.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import polars as pl

from capport_dagster.core.files.common import (
    Existing,
    FileFrame,
    FileFrames,
    LoadEntry,
    RunPass,
    SaveEntry,
    WriteRefused,
    file_gone,
    loadable_path,
    save_files,
    sink_columns,
)
from capport_dagster.core.files.write_modes import column_mismatch
from capport_dagster.core.models import Model, reshape
from capport_dagster.core.object_store import ObjectStoreError, open_input, polars_reason
from capport_dagster.core.registry import Frame, RunContext
from capport_dagster.core.sinkpass import mark_source
from capport_dagster.core.uris import PathOrUri
from capport_dagster.errors import TaskError

__all__ = [
    "JsonLoadEntry",
    "JsonSaveEntry",
    "ndjson_schema",
    "run_load_json",
    "run_save_json",
]


class JsonLoadEntry(LoadEntry):
    #: True: NDJSON; False: a JSON array; None: told by the file's first non-space byte.
    lines: bool | None = None


class JsonSaveEntry(SaveEntry):
    lines: bool = False


# --- load_json ------------------------------------------------------------------------------


def run_load_json(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    loaded: dict[str, Frame] = {}
    for file in args.files:
        path = loadable_path("load_json", "a JSON file", file.filepath, ctx)
        lines = file.options.lines if isinstance(file.options, JsonLoadEntry) else None
        what = f"load_json: {path}"
        dtypes = _reading_dtypes(file.model) if file.model is not None else None
        try:
            if lines is None:
                lines = _is_ndjson(path, ctx)
            if lines:
                if dtypes:
                    # Only the file's columns: a model column the file lacks (optional, or
                    # missing: `reshape` says so) would fail the scan with its bare name.
                    present = set(pl.scan_ndjson(path).collect_schema().names())
                    dtypes = {k: v for k, v in dtypes.items() if k in present}
                frame = pl.scan_ndjson(path, schema_overrides=dtypes)
            else:
                frame = _read_array(path, dtypes).lazy()
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise TaskError(f"{what}: {_reason(exc)}", ctx.location) from exc
        if file.model is not None:
            frame = reshape(frame, file.model, location=ctx.location)
        loaded[file.df_name] = mark_source(
            frame,
            ctx.location,
            what,
            models=() if file.model is None else (file.model,),
            reason=file_gone,
        )
    return loaded


def ndjson_schema(file: FileFrame, path: Path) -> pl.Schema | None:
    """The columns of an NDJSON file as Polars infers them from its first rows, for `validate`;
    None for a JSON array (Polars has no scan for one: its schema would cost reading it all)."""
    lines = file.options.lines if isinstance(file.options, JsonLoadEntry) else None
    if lines is None:
        with open(path, "rb") as handle:
            lines = handle.read(4096).lstrip()[:1] == b"{"
    if not lines:
        return None
    return pl.scan_ndjson(path).collect_schema()


def _read_array(path: PathOrUri, dtypes: dict[str, pl.DataType] | None) -> pl.DataFrame:
    """The array, its model columns read as `dtypes` says; read again without the columns the
    file lacks (optional or missing ones: `reshape` then says which) if there are any."""
    if isinstance(path, str):  # an object: its bytes, once
        with open_input(path) as handle:
            data = handle.read()
        return _read_array_from(lambda: io.BytesIO(data), dtypes)
    return _read_array_from(lambda: path, dtypes)


def _read_array_from(
    source: Callable[[], Path | io.BytesIO], dtypes: dict[str, pl.DataType] | None
) -> pl.DataFrame:
    try:
        return pl.read_json(source(), schema_overrides=dtypes)
    except pl.exceptions.SchemaFieldNotFoundError:
        assert dtypes is not None
        present = set(pl.read_json(source()).columns)
        return pl.read_json(
            source(), schema_overrides={k: v for k, v in dtypes.items() if k in present}
        )


def _reading_dtypes(model: Model) -> dict[str, pl.DataType]:
    """What the JSON reader gives each model column before `reshape` casts it: JSON's own
    types (booleans, lists) as themselves, integers and floats as `reading_dtypes` says, and
    the rest (dates, times, datetimes, text) as text for the model's rules. Polars' NDJSON
    reader has no 8- and 16-bit integers (it panics), so those are read as i64 and cast."""
    dtypes = model.reading_dtypes()
    for column in model.columns:
        if column.dtype == pl.Boolean or column.dtype.is_nested():
            dtypes[column.name] = column.dtype
        elif column.dtype in _NARROW:
            dtypes[column.name] = pl.Int64()
    return dtypes


_NARROW = (pl.Int8(), pl.Int16(), pl.UInt8(), pl.UInt16())


def _is_ndjson(path: PathOrUri, ctx: RunContext) -> bool:
    """NDJSON when the first non-space byte opens an object, an array when it opens one."""
    with open_input(path) as handle:
        while chunk := handle.read(4096):
            text = chunk.lstrip()
            if text:
                first = text[:1]
                if first == b"{":
                    return True
                if first == b"[":
                    return False
                raise TaskError(
                    f"load_json: {path} is neither a JSON array nor NDJSON: it starts with "
                    f"{first.decode('utf-8', 'replace')!r}, not '[' or '{{' (give a JSON file)",
                    ctx.location,
                )
    raise TaskError(
        f"load_json: {path}: the file is empty (an empty JSON array is '[]')", ctx.location
    )


def _reason(exc: Exception) -> str:
    if isinstance(exc, ObjectStoreError):
        return f"cannot read it: {exc.strerror}"
    if (said := polars_reason(exc)) is not None:
        return said
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).split("\n\n")[0].strip()


# --- save_json ------------------------------------------------------------------------------


def run_save_json(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    return save_files("save_json", args, frames, ctx, _write_json)


def _write_json(
    file: FileFrame, frame: pl.LazyFrame, temporary: Path, existing: Existing | None, run: RunPass
) -> None:
    lines = file.options.lines if isinstance(file.options, JsonSaveEntry) else False
    if lines:
        _write_ndjson(file, frame, temporary, existing, run)
    else:
        _write_array(file, frame, temporary, existing, run)


def _write_ndjson(
    file: FileFrame, frame: pl.LazyFrame, temporary: Path, existing: Existing | None, run: RunPass
) -> None:
    if existing is None or not _head(existing.path).strip():
        run([frame.sink_ndjson(temporary, lazy=True)])
        return
    _check_columns(file, frame, existing.shown, _first_line_keys(file, existing))
    shutil.copyfile(existing.path, temporary)
    with open(temporary, "rb+") as handle:
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            handle.write(b"\n")
    with open(temporary, "ab") as handle:
        run([frame.sink_ndjson(handle, lazy=True)])


def _write_array(
    file: FileFrame, frame: pl.LazyFrame, temporary: Path, existing: Existing | None, run: RunPass
) -> None:
    with open(temporary, "wb") as handle:
        separated = False
        if existing is not None:
            old = existing.path.read_bytes().strip()
            if old:
                if not (old.startswith(b"[") and old.endswith(b"]")):
                    raise WriteRefused(
                        f"save_json: cannot append frame '{file.df_name}' to {existing.shown}: "
                        "it is not a JSON array (append with lines: true to NDJSON, or save "
                        "with mode: replace or make_next)"
                    )
                columns = _array_columns(file, existing.shown, old)
                if columns:
                    _check_columns(file, frame, existing.shown, columns)
                handle.write(old[:-1].rstrip())
                separated = columns is not None
        if handle.tell() == 0:
            handle.write(b"[")
        writer = _ArrayWriter(handle, comma_first=separated)
        run([frame.sink_ndjson(writer, lazy=True)])
        handle.write(b"]")


def _array_columns(file: FileFrame, path: PathOrUri, text: bytes) -> list[str] | None:
    """The columns of the array in `text` (None: the array is empty)."""
    if text[1:].strip() == b"]":
        return None
    try:
        return pl.read_json(text).columns
    except pl.exceptions.PolarsError as exc:
        raise WriteRefused(
            f"save_json: cannot append frame '{file.df_name}' to {path}: it is not a valid JSON "
            f"array ({_reason(exc)}; fix the file, or save with mode: replace or make_next)"
        ) from exc


class _ArrayWriter:
    """NDJSON in, the objects of a JSON array out: every line break becomes a comma between
    two objects (the last one is held back until another object follows)."""

    def __init__(self, handle: IO[bytes], *, comma_first: bool) -> None:
        self.handle = handle
        self.pending = comma_first  # a comma owed before the next object

    def write(self, data: bytes) -> int:
        chunk = data if isinstance(data, bytes) else bytes(data)
        if not chunk:
            return 0
        if self.pending:
            self.handle.write(b",")
        self.pending = chunk.endswith(b"\n")
        body = chunk[:-1] if self.pending else chunk
        self.handle.write(body.replace(b"\n", b","))
        return len(data)

    def flush(self) -> None:
        self.handle.flush()


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(4096)


def _first_line_keys(file: FileFrame, existing: Existing) -> list[str]:
    """The keys of the file's first object: the columns an append must match."""
    path = existing.shown
    with open(existing.path, "rb") as handle:
        for line in handle:
            if line.strip():
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not isinstance(record, dict):
                    raise WriteRefused(
                        f"save_json: cannot append frame '{file.df_name}' to {path}: its first "
                        "line is not a JSON object, so it is not NDJSON (save with mode: "
                        "replace or make_next)"
                    )
                return list(record)
    return []


def _check_columns(
    file: FileFrame, frame: pl.LazyFrame, path: PathOrUri, columns: list[str]
) -> None:
    problem = column_mismatch("save_json", file.df_name, path, sink_columns(frame), columns)
    if problem:
        raise WriteRefused(problem)
