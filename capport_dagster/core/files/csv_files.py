"""`load_csv` and `save_csv`, with the CSV options users need (SPEC 4).

`load_csv` scans (`pl.scan_csv`): in lazy modes nothing is read until a sink needs it. Its options
are `separator`, `has_header`, `null_values`, `encoding` and `quote_char`; `save_csv`'s are
`separator`, `null_value` and `include_header`. They are checked when the config is validated
(a separator is one byte), never first at run time.
"""

from __future__ import annotations

import csv
import io
import re
import shutil
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import field_validator
from pydantic_core import PydanticCustomError

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
from capport_dagster.core.models import reshape
from capport_dagster.core.object_store import open_input
from capport_dagster.core.paths import escape_name
from capport_dagster.core.registry import Frame, RunContext
from capport_dagster.core.sinkpass import mark_source
from capport_dagster.core.uris import PathOrUri

__all__ = [
    "INFER_ROWS",
    "CsvLoadEntry",
    "CsvSaveEntry",
    "csv_schema",
    "run_load_csv",
    "run_save_csv",
]


def _one_byte(value: str | None, what: str) -> str | None:
    if value is not None and len(value.encode()) != 1:
        raise PydanticCustomError(
            "one_byte",
            "{what} must be one byte (a single ASCII character such as ',' or ';'), got {value}",
            {"what": what, "value": repr(value)},
        )
    return value


def _not_yaml_null(value: object) -> object:
    """`null_value: NULL` is YAML's null, not the text NULL: say so rather than 'not a string'."""
    if value is None:
        raise PydanticCustomError(
            "yaml_null",
            "YAML reads NULL, Null, null and ~ as no value: quote the text ('NULL')",
        )
    return value


class CsvLoadEntry(LoadEntry):
    separator: str = ","
    has_header: bool = True
    null_values: str | list[str] | None = None
    encoding: Literal["utf8", "utf8-lossy"] = "utf8"
    quote_char: str | None = '"'

    @field_validator("separator")
    @classmethod
    def _separator(cls, value: str) -> str:
        return _one_byte(value, "a separator") or value

    @field_validator("null_values", mode="before")
    @classmethod
    def _null_values(cls, value: object) -> object:
        for item in value if isinstance(value, list) else [value]:
            _not_yaml_null(item)
        return value

    @field_validator("quote_char")
    @classmethod
    def _quote(cls, value: str | None) -> str | None:
        return _one_byte(value, "a quote_char (null: no quoting)")


class CsvSaveEntry(SaveEntry):
    separator: str = ","
    null_value: str = ""
    include_header: bool = True

    @field_validator("null_value", mode="before")
    @classmethod
    def _null_value(cls, value: object) -> object:
        return _not_yaml_null(value)

    @field_validator("separator")
    @classmethod
    def _separator(cls, value: str) -> str:
        return _one_byte(value, "a separator") or value


# --- load_csv -------------------------------------------------------------------------------


def run_load_csv(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    loaded: dict[str, Frame] = {}
    for file in args.files:
        path = loadable_path("load_csv", "a CSV file", file.filepath, ctx)
        options = _options(file)
        reading = _reading(options)
        if file.model is None:
            frame = pl.scan_csv(path, infer_schema_length=INFER_ROWS, **reading)
        elif not options.has_header:
            # No header: the model's columns name the file's, in order.
            scan = pl.scan_csv(path, schema=file.model.reading_dtypes(), **reading)
            frame = reshape(scan, file.model, location=ctx.location)
        else:
            # Every model column is read as the model says, not as the first 100 rows suggest:
            # inferred, 00123 became 123, a double column of whole numbers failed on a later
            # 1.5, and a u64 above the i64 range or an int column with empty first rows did not
            # load.
            scan = pl.scan_csv(path, schema_overrides=file.model.reading_dtypes(), **reading)
            frame = reshape(scan, file.model, location=ctx.location)
        # A bad file fails wherever the plan first runs (a sink, stages later in lazy modes):
        # the mark lets that failure be blamed on this stage and this file.
        loaded[file.df_name] = mark_source(
            frame,
            ctx.location,
            f"load_csv: {path}",
            models=() if file.model is None else (file.model,),
            reason=_csv_failure(path, options),
        )
    return loaded


def _options(file: FileFrame) -> CsvLoadEntry:
    if isinstance(file.options, CsvLoadEntry):
        return file.options
    return CsvLoadEntry(filepath=file.filepath, df_name=file.df_name)


def _reading(options: CsvLoadEntry) -> dict[str, Any]:
    return {
        "separator": options.separator,
        "has_header": options.has_header,
        "null_values": options.null_values,
        "encoding": options.encoding,
        "quote_char": options.quote_char,
    }


def csv_schema(file: FileFrame, path: Path) -> pl.Schema:
    """The columns a `load_csv` without model gives, as Polars infers them from the header and
    the first `INFER_ROWS` rows (the rest of the file is not read), for `validate`."""
    options = _reading(_options(file))
    return pl.scan_csv(path, infer_schema_length=INFER_ROWS, **options).collect_schema()


#: The rows `pl.scan_csv` infers a column's type from (its default), when no model says it.
INFER_ROWS = 100

#: Polars' CSV errors we say more about (Polars 1.x wording; anything else is shown as it is).
_EMPTY = "empty CSV"
_RAGGED = "found more fields than defined in 'Schema'"
_INVALID_UTF8 = "invalid utf-8 sequence"
_UNPARSED = re.compile(
    r"could not parse `(?P<value>.*?)` as dtype `(?P<dtype>[^`]*)` at column '(?P<column>.*?)'"
    r" \(column number (?P<number>\d+)\)",
    re.DOTALL,
)


def _csv_failure(path: PathOrUri, options: CsvLoadEntry) -> Callable[[Exception], str | None]:
    """Why reading `path` failed, with the line: Polars gives a byte offset of the chunk it was
    parsing, not of the row, so the line is found by reading the file (or object) again
    (failures only)."""

    def reason(exc: Exception) -> str | None:
        gone = file_gone(exc)
        if gone is not None:
            return gone
        text = str(exc)
        if text.startswith(_EMPTY):
            return "the file is empty (a CSV file needs at least its header line)"
        if _RAGGED in text:
            found = _first_long_row(path, options)
            where = f"line {found[0]} has {found[1]} fields" if found else "a row has more fields"
            return (
                f"{where} but the header has {found[2] if found else 'fewer'} (quote a field "
                "that holds a comma, or fix the row)"
            )
        if _INVALID_UTF8 in text:
            line = _first_invalid_utf8_line(path)
            where = f"line {line}" if line else "the file"
            return (
                f"{where} is not valid UTF-8 (save the file as UTF-8, or load it with "
                "encoding: utf8-lossy to read bad bytes as \ufffd)"
            )
        if match := _UNPARSED.search(text):
            value = _unquoted(match["value"])
            line = _line_of_value(path, int(match["number"]) - 1, value, options)
            where = f"line {line}: " if line else ""
            return (
                f"{where}column '{match['column']}' holds {value!r}, which does not parse as "
                f"{match['dtype']}, the type inferred from the first {INFER_ROWS} rows (give "
                "the file a model that says the column's type)"
            )
        return None

    return reason


def _records(path: PathOrUri, options: CsvLoadEntry) -> Iterator[tuple[int, list[str]]]:
    """The file's records with the line each ends on, as the CSV module reads them."""
    quoting: dict[str, Any] = (
        {"quotechar": options.quote_char} if options.quote_char else {"quoting": csv.QUOTE_NONE}
    )
    with open_input(path) as raw:
        handle = io.TextIOWrapper(raw, newline="", encoding="utf-8", errors="replace")
        reader = csv.reader(handle, delimiter=options.separator, **quoting)
        for record in reader:
            yield reader.line_num, record


def _first_long_row(path: PathOrUri, options: CsvLoadEntry) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first row longer than the header."""
    header: int | None = None
    for line, record in _records(path, options):
        if header is None:
            header = len(record)
        elif len(record) > header:
            return line, len(record), header
    return None


def _first_invalid_utf8_line(path: PathOrUri) -> int | None:
    with open_input(path) as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _line_of_value(path: PathOrUri, column: int, value: str, options: CsvLoadEntry) -> int | None:
    """The line of the first data row holding `value` in `column` (the value Polars refused:
    the first row holding it is the first that fails)."""
    first = 2 if options.has_header else 1
    for line, record in _records(path, options):
        if line >= first and column < len(record) and record[column] == value:
            return line
    return None


def _unquoted(raw: str) -> str:
    """A field as Polars quotes it in its error, as the file means it."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('""', '"')
    return raw


# --- save_csv -------------------------------------------------------------------------------


def run_save_csv(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    def explain(name: str, path: PathOrUri, frame: Frame) -> str | None:
        nested = _nested_columns(frame)
        return f"save_csv: cannot write frame '{name}' to {path}: {nested}" if nested else None

    return save_files("save_csv", args, frames, ctx, _write_csv, explain=explain)


def _write_csv(
    file: FileFrame,
    frame: pl.LazyFrame,
    temporary: Path,
    existing: Existing | None,
    run: RunPass,
) -> None:
    options = file.options if isinstance(file.options, CsvSaveEntry) else None
    writing = {
        "separator": options.separator if options else ",",
        "null_value": options.null_value if options else "",
    }
    header = options.include_header if options else True
    if existing is None or existing.path.stat().st_size == 0:
        run([frame.sink_csv(temporary, include_header=header, lazy=True, **writing)])
        return
    columns, first = sink_columns(frame), _header(existing.path, writing["separator"])
    if header:
        problem = column_mismatch("save_csv", file.df_name, existing.shown, columns, first)
        if problem:
            raise WriteRefused(problem)
    elif len(first) != len(columns):  # no header to compare names with: the count, at least
        raise WriteRefused(
            f"save_csv: cannot append frame '{file.df_name}' to {existing.shown}: its "
            f"{len(columns)} columns ({', '.join(columns)}) do not fit the file's lines of "
            f"{len(first)} fields (give the frame the file's columns, or save with mode: "
            "replace or make_next)"
        )
    shutil.copyfile(existing.path, temporary)
    with open(temporary, "rb+") as handle:
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":  # a last line without its newline gets one
            handle.write(b"\n")
    with open(temporary, "ab") as handle:
        run([frame.sink_csv(handle, include_header=False, lazy=True, **writing)])


def _header(path: Path, separator: str) -> list[str]:
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        return next(csv.reader(handle, delimiter=separator), [])


def _nested_columns(frame: Frame) -> str | None:
    """What to say when a frame has columns CSV cannot hold (structs, lists); None otherwise.
    Asked only after a write failed: the schema is planning work, but none on success."""
    try:
        schema = frame.lazy().collect_schema()
    except pl.exceptions.PolarsError:
        return None
    nested = {name: dtype for name, dtype in schema.items() if dtype.is_nested()}
    if not nested:
        return None
    name, dtype = next(iter(nested.items()))
    others = f" (and {', '.join(repr(n) for n in list(nested)[1:])})" if len(nested) > 1 else ""
    if isinstance(dtype, pl.Struct):
        fields = [field.name for field in dtype.fields]
        paths = ", ".join(f"{escape_name(name)}.{escape_name(field)}" for field in fields)
        what = f"a struct (fields: {', '.join(fields)})"
        advice = (
            f"select its fields as columns of their own ({paths}), or join them into one text"
            " column with a select's 'format' or 'concat' action"
        )
    else:
        what = f"a list ({dtype})"
        advice = "drop it, or turn it into text in a task of your own"
    return f"column '{name}'{others} is {what}, and a CSV file holds no nested values: {advice}"
