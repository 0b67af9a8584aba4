"""The built-in tasks of SPEC 4: `noop`, `load_csv`, `save_csv` and `transform`.

They are registered in the default registry exactly as a user's task would be. Each works on
LazyFrames (a DataFrame's `.lazy()` is free), so one code path serves every mode and lazy runs
stay lazy: `load_csv` scans, `transform` builds a plan and only `save_csv` executes it.
"""

from __future__ import annotations

import csv
import errno
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from capport_dagster.core.constraints import constraint_check
from capport_dagster.core.models import Model, reshape
from capport_dagster.core.registry import (
    DEFAULT_REGISTRY,
    BindContext,
    Frame,
    RunContext,
    TaskRegistry,
    validate_model,
)
from capport_dagster.core.sinkpass import mark_source
from capport_dagster.core.sinks import DestinationError, atomic_path
from capport_dagster.core.transforms import Transform
from capport_dagster.core.variables import expand
from capport_dagster.errors import ConfigError, TaskError

__all__ = ["FileFrame", "FileFrames", "TransformArgs", "register_builtin_tasks"]


# --- noop -----------------------------------------------------------------------------------


def _parse_noop(raw: Any, ctx: BindContext) -> None:
    if raw not in (None, {}, []):
        raise ConfigError(f"task 'noop' takes no args, got {raw!r}", ctx.location)


def _run_noop(args: None, frames: Mapping[str, Frame], ctx: RunContext) -> dict[str, Frame]:
    return {}


# --- load_csv / save_csv --------------------------------------------------------------------


class _LoadEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    filepath: str
    df_name: str = Field(validation_alias=AliasChoices("df_name", "save_df"))
    model: str | None = None


class _SaveEntry(_LoadEntry):
    df_name: str = Field(validation_alias=AliasChoices("df_name", "from_df"))


@dataclass(frozen=True)
class FileFrame:
    """One file and the frame it becomes (load) or comes from (save), optionally reshaped."""

    filepath: str
    df_name: str
    model: Model | None


@dataclass(frozen=True)
class FileFrames:
    files: tuple[FileFrame, ...]

    def names(self) -> tuple[str, ...]:
        return tuple(f.df_name for f in self.files)

    def paths(self) -> tuple[str, ...]:
        return tuple(f.filepath for f in self.files)

    def model_frames(self) -> tuple[tuple[str, Model], ...]:
        return tuple((f.df_name, f.model) for f in self.files if f.model is not None)


def _file_frames_parser(entry_model: type[_LoadEntry], task: str, alias: str):
    def parse(raw: Any, ctx: BindContext) -> FileFrames:
        items = [raw] if isinstance(raw, Mapping) else raw
        # Each item must be a mapping too: pydantic would call anything else "an instance of
        # _LoadEntry", and would read a null item as an empty mapping.
        if (
            not isinstance(items, list)
            or not items
            or not all(isinstance(i, Mapping) for i in items)
        ):
            raise ConfigError(
                f"task '{task}' takes a mapping or a non-empty list of "
                f"{{filepath, df_name, model?}} ({alias} is an alias of df_name), got {raw!r}",
                ctx.location,
            )
        files = []
        for item in items:
            if isinstance(item, Mapping) and "df_name" in item and alias in item:
                raise ConfigError(f"task '{task}': give df_name or {alias}, not both", ctx.location)
            entry = validate_model(entry_model, item, ctx.location, f"args for task '{task}'")
            assert isinstance(entry, _LoadEntry)
            if _names_a_directory(entry.filepath):
                raise ConfigError(f"task '{task}': {_directory_path(entry.filepath)}", ctx.location)
            model = ctx.model(entry.model) if entry.model is not None else None
            files.append(FileFrame(ctx.check_path(entry.filepath), entry.df_name, model))
        return FileFrames(tuple(files))

    return parse


def _names_a_directory(path: str) -> bool:
    """`out/`, `out/.`, `..`: a path naming a directory, which `Path` would quietly read as the
    file `out` (it drops a trailing slash)."""
    return path.endswith(("/", "/.", "/..")) or path in ("", ".", "..")


def _directory_path(path: str, expanded: str | None = None) -> str:
    example = f"{path.rstrip('/')}/name.csv"
    value = f" ('{expanded}')" if expanded not in (None, path) else ""
    return (
        f"filepath '{path}'{value} names a directory, not a file (add the file's name: '{example}')"
    )


def _file_path(task: str, template: str, ctx: RunContext) -> Path:
    """The file a path template names in this run; a variable ending in `/` cannot make it a
    directory (checked here: validation saw only the template)."""
    expanded = expand(template, ctx.variables, ctx.location)
    if _names_a_directory(expanded):
        raise TaskError(f"{task}: {_directory_path(template, expanded)}", ctx.location)
    return ctx.path(template)


def _run_load_csv(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    loaded: dict[str, Frame] = {}
    for file in args.files:
        path = _file_path("load_csv", file.filepath, ctx)
        if path.is_dir():
            raise TaskError(
                f"load_csv: {path} is a directory, not a CSV file (give the file's path)",
                ctx.location,
            )
        if not path.is_file():
            raise TaskError(f"load_csv: no such file {path}", ctx.location)
        if file.model is None:
            frame = pl.scan_csv(path, infer_schema_length=INFER_ROWS)
        else:
            # Every model column is read as the model says, not as the first 100 rows suggest:
            # inferred, 00123 became 123, a double column of whole numbers failed on a later
            # 1.5, and a u64 above the i64 range or an int column with empty first rows did not
            # load.
            scan = pl.scan_csv(path, schema_overrides=file.model.reading_dtypes())
            frame = reshape(scan, file.model, location=ctx.location)
        # A bad file fails wherever the plan first runs (a sink, stages later in lazy modes):
        # the mark lets that failure be blamed on this stage and this file.
        loaded[file.df_name] = mark_source(
            frame,
            ctx.location,
            f"load_csv: {path}",
            models=() if file.model is None else (file.model,),
            reason=_csv_failure(path),
        )
    return loaded


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


def _csv_failure(path: Path) -> Callable[[Exception], str | None]:
    """Why reading `path` failed, with the line: Polars gives a byte offset of the chunk it was
    parsing, not of the row, so the line is found by reading the file again (failures only)."""

    def reason(exc: Exception) -> str | None:
        if isinstance(exc, FileNotFoundError):
            return (
                "the file is gone: it was removed after this stage, and lazy modes read a file "
                "only when a later stage needs its data (keep it until the run ends)"
            )
        text = str(exc)
        if text.startswith(_EMPTY):
            return "the file is empty (a CSV file needs at least its header line)"
        if _RAGGED in text:
            found = _first_long_row(path)
            where = f"line {found[0]} has {found[1]} fields" if found else "a row has more fields"
            return (
                f"{where} but the header has {found[2] if found else 'fewer'} (quote a field "
                "that holds a comma, or fix the row)"
            )
        if _INVALID_UTF8 in text:
            line = _first_invalid_utf8_line(path)
            where = f"line {line}" if line else "the file"
            return f"{where} is not valid UTF-8 (save the file as UTF-8)"
        if match := _UNPARSED.search(text):
            value = _unquoted(match["value"])
            line = _line_of_value(path, int(match["number"]) - 1, value)
            where = f"line {line}: " if line else ""
            return (
                f"{where}column '{match['column']}' holds {value!r}, which does not parse as "
                f"{match['dtype']}, the type inferred from the first {INFER_ROWS} rows (give "
                "the file a model that says the column's type)"
            )
        return None

    return reason


def _records(path: Path):  # type: ignore[no-untyped-def]
    """The file's records with the line each ends on, as the CSV module reads them."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        for record in reader:
            yield reader.line_num, record


def _first_long_row(path: Path) -> tuple[int, int, int] | None:
    """(line, fields, header fields) of the first row longer than the header."""
    header: int | None = None
    for line, record in _records(path):
        if header is None:
            header = len(record)
        elif len(record) > header:
            return line, len(record), header
    return None


def _first_invalid_utf8_line(path: Path) -> int | None:
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return None


def _line_of_value(path: Path, column: int, value: str) -> int | None:
    """The line of the first data row holding `value` in `column` (the value Polars refused:
    the first row holding it is the first that fails)."""
    for line, record in _records(path):
        if line > 1 and column < len(record) and record[column] == value:
            return line
    return None


def _unquoted(raw: str) -> str:
    """A field as Polars quotes it in its error, as the file means it."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('""', '"')
    return raw


def _run_save_csv(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    for file in args.files:
        source = frames[file.df_name]
        shaped = reshape(source, file.model, location=ctx.location) if file.model else source
        model = file.model
        checks = [constraint_check(shaped, model, file.df_name)] if model and model.checks else []
        path = _file_path("save_csv", file.filepath, ctx)
        try:
            with atomic_path(path) as temporary:
                # One streaming pass: the file, the model's constraint checks (a failure leaves
                # the previous file in place) and the preview of the frame when the run wants it.
                ctx.sink_pass.execute(
                    [shaped.lazy().sink_csv(temporary, lazy=True)],
                    sources={file.df_name: (source, shaped.lazy())},
                    checks=checks,
                    location=ctx.location,
                )
        except DestinationError as exc:
            advice = _DESTINATION_ADVICE.get(exc.errno or 0, "")
            raise TaskError(
                f"save_csv: cannot write {path}: {exc.strerror}{advice}", ctx.location
            ) from exc
        except pl.exceptions.PolarsError as exc:
            nested = _nested_columns(shaped)
            if not nested:
                raise
            raise TaskError(
                f"save_csv: cannot write frame '{file.df_name}' to {path}: {nested}",
                ctx.location,
            ) from exc
        ctx.log.info(f"save_csv: wrote {file.df_name} to {path}")
    return {}


_DESTINATION_ADVICE = {
    errno.EISDIR: " (give filepath the file's name too)",
    errno.ENOTDIR: " (give a filepath in a directory)",
    errno.EACCES: " (choose another directory, or let capport's user write there)",
    errno.EPERM: " (choose another directory, or let capport's user write there)",
    errno.EROFS: " (choose a directory on a writable filesystem)",
}


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
        paths = ", ".join(f"{_path_segment(name)}.{_path_segment(field)}" for field in fields)
        what = f"a struct (fields: {', '.join(fields)})"
        advice = (
            f"select its fields as columns of their own ({paths}), or join them into one text"
            " column with a select's 'format' or 'concat' action"
        )
    else:
        what = f"a list ({dtype})"
        advice = "drop it, or turn it into text in a task of your own"
    return f"column '{name}'{others} is {what}, and a CSV file holds no nested values: {advice}"


def _path_segment(name: str) -> str:
    """A name as a column path writes it (a dot inside a name is escaped)."""
    return name.replace("\\", "\\\\").replace(".", "\\.")


# --- transform ------------------------------------------------------------------------------


class _TransformEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    input: str
    save_df: str
    kwargs: dict[str, Any] | None = None


@dataclass(frozen=True)
class TransformArgs:
    transform: Transform
    input: str
    save_df: str


def _parse_transform(raw: Any, ctx: BindContext) -> TransformArgs:
    entry = validate_model(_TransformEntry, raw, ctx.location, "args for task 'transform'")
    assert isinstance(entry, _TransformEntry)
    return TransformArgs(ctx.transform(entry.name, entry.kwargs), entry.input, entry.save_df)


def _transform_reads(args: TransformArgs) -> tuple[str, ...]:
    return (args.input, *(name for name in args.transform.reads() if name != args.input))


def _run_transform(args: TransformArgs, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    lazy = {name: frame.lazy() for name, frame in frames.items()}
    return {args.save_df: args.transform.apply(lazy[args.input], lazy, location=ctx.location)}


# --- registration ---------------------------------------------------------------------------


def raw_names(raw: Any, *keys: str) -> list[str]:
    """The names under `keys` in raw stage args (a mapping or a list of them), for
    `TaskSpec.salvage_reads`: what a stage evidently reads even though its args are malformed."""
    items = raw if isinstance(raw, list) else [raw]
    return [
        item[key]
        for item in items
        if isinstance(item, Mapping)
        for key in keys
        if isinstance(item.get(key), str)
    ]


def register_builtin_tasks(registry: TaskRegistry) -> TaskRegistry:
    """Register the built-in tasks in `registry` (the default one already has them)."""
    from capport_dagster.core.registry import TaskSpec

    registry.register(
        TaskSpec(
            "noop",
            _run_noop,
            reads=lambda a: (),
            writes=lambda a: (),
            parse=_parse_noop,
            description="Does nothing; a placeholder stage.",
        )
    )
    registry.register(
        TaskSpec(
            "load_csv",
            _run_load_csv,
            reads=lambda a: (),
            writes=FileFrames.names,
            parse=_file_frames_parser(_LoadEntry, "load_csv", "save_df"),
            model_frames=FileFrames.model_frames,
            reads_files=FileFrames.paths,
            description="Scan CSV files into frames, optionally reshaped by a model.",
        )
    )
    registry.register(
        TaskSpec(
            "save_csv",
            _run_save_csv,
            reads=FileFrames.names,
            writes=lambda a: (),
            parse=_file_frames_parser(_SaveEntry, "save_csv", "from_df"),
            salvage_reads=lambda raw: raw_names(raw, "df_name", "from_df"),
            model_frames=FileFrames.model_frames,
            writes_files=FileFrames.paths,
            description="Write frames to CSV files atomically, optionally reshaped by a model.",
        )
    )
    registry.register(
        TaskSpec(
            "transform",
            _run_transform,
            reads=_transform_reads,
            writes=lambda a: (a.save_df,),
            parse=_parse_transform,
            salvage_reads=lambda raw: raw_names(raw, "input"),
            description="Apply a named transform (select, join, drop) to a frame.",
        )
    )
    return registry


register_builtin_tasks(DEFAULT_REGISTRY)
