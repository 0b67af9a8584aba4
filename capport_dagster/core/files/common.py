"""What the file tasks share: their args (`filepath`, `df_name`, `model`, a format's options),
the path checks, and the save routine that writes atomically in every write mode.

A `filepath` is a local path or an object-store URI (`s3://bucket/key`, `core/uris.py`): the
run resolves it to an absolute `Path` or a URI string (`PathOrUri`), and every format reads
and writes both. A save always writes a local temporary file; for an object, it is then
uploaded in one write of the store (`core/sinks.py`)."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import polars as pl
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from capport_dagster.core.constraints import constraint_check
from capport_dagster.core.files.write_modes import WriteMode, next_names, next_uris, parse_mode
from capport_dagster.core.models import Model, reshape
from capport_dagster.core.object_store import (
    CONDITIONAL_SCHEMES,
    NoSuchBucket,
    ObjectChanged,
    ObjectStore,
    ObjectStoreError,
    polars_reason,
    store_for,
)
from capport_dagster.core.registry import BindContext, Frame, RunContext, validate_model
from capport_dagster.core.sinks import (
    DestinationError,
    atomic_new_file,
    atomic_new_object,
    atomic_object,
    atomic_path,
    staged_copy,
)
from capport_dagster.core.uris import PathOrUri, is_uri, key_of, scheme_of
from capport_dagster.core.variables import expand
from capport_dagster.errors import ConfigError, TaskError

__all__ = [
    "Existing",
    "FileFrame",
    "FileFrames",
    "LoadEntry",
    "SaveEntry",
    "WriteRefused",
    "Writer",
    "file_frames_parser",
    "loadable_path",
    "raw_names",
    "save_files",
]


class LoadEntry(BaseModel):
    """One file a load reads; a format adds its options as fields of a subclass."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    filepath: str
    df_name: str = Field(validation_alias=AliasChoices("df_name", "save_df"))
    model: str | None = None


class SaveEntry(BaseModel):
    """One file a save writes, and how it meets a file already there (`write_modes.py`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    filepath: str
    df_name: str = Field(validation_alias=AliasChoices("df_name", "from_df"))
    model: str | None = None
    mode: Literal["replace", "append", "insert", "make_next"] = Field(
        "replace", validation_alias=AliasChoices("mode", "merge_type")
    )


@dataclass(frozen=True)
class FileFrame:
    """One file and the frame it becomes (load) or comes from (save), optionally reshaped.
    `options` is the entry as validated (a format's own options are its fields)."""

    filepath: str
    df_name: str
    model: Model | None
    options: Any = None
    mode: WriteMode = WriteMode.REPLACE


@dataclass(frozen=True)
class FileFrames:
    files: tuple[FileFrame, ...]

    def names(self) -> tuple[str, ...]:
        return tuple(f.df_name for f in self.files)

    def paths(self) -> tuple[str, ...]:
        return tuple(f.filepath for f in self.files)

    def model_frames(self) -> tuple[tuple[str, Model], ...]:
        return tuple((f.df_name, f.model) for f in self.files if f.model is not None)


#: Pairs of keys meaning the same thing, of which an entry may give only one.
_ALIASES = (("df_name", "save_df"), ("df_name", "from_df"), ("mode", "merge_type"))


def file_frames_parser(
    entry_model: type[LoadEntry] | type[SaveEntry], task: str, alias: str
) -> Callable[[Any, BindContext], FileFrames]:
    def parse(raw: Any, ctx: BindContext) -> FileFrames:
        items = [raw] if isinstance(raw, Mapping) else raw
        # Each item must be a mapping too: pydantic would call anything else "an instance of
        # LoadEntry", and would read a null item as an empty mapping.
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
            for key, other in _ALIASES:
                if key in item and other in item and other in _aliases(entry_model):
                    raise ConfigError(
                        f"task '{task}': give {key} or {other}, not both", ctx.location
                    )
            entry = validate_model(entry_model, item, ctx.location, f"args for task '{task}'")
            assert isinstance(entry, LoadEntry | SaveEntry)
            if names_a_directory(entry.filepath):
                raise ConfigError(f"task '{task}': {directory_path(entry.filepath)}", ctx.location)
            if names_a_bucket(entry.filepath):
                raise ConfigError(f"task '{task}': {bucket_path(entry.filepath)}", ctx.location)
            model = ctx.model(entry.model) if entry.model is not None else None
            mode = parse_mode(entry.mode) if isinstance(entry, SaveEntry) else WriteMode.REPLACE
            if mode is WriteMode.APPEND and not appendable(entry.filepath):
                raise ConfigError(f"task '{task}': {no_append(entry.filepath)}", ctx.location)
            files.append(
                FileFrame(ctx.check_path(entry.filepath), entry.df_name, model, entry, mode)
            )
        return FileFrames(tuple(files))

    return parse


def _aliases(model: type[BaseModel]) -> set[str]:
    return {
        alias
        for info in model.model_fields.values()
        for alias in getattr(info.validation_alias, "choices", ())
        if isinstance(alias, str)
    }


def names_a_directory(path: str) -> bool:
    """`out/`, `out/.`, `..`: a path naming a directory, which `Path` would quietly read as the
    file `out` (it drops a trailing slash)."""
    return path.endswith(("/", "/.", "/..")) or path in ("", ".", "..")


def directory_path(path: str, expanded: str | None = None) -> str:
    example = f"{path.rstrip('/')}/name.csv"
    value = f" ('{expanded}')" if expanded not in (None, path) else ""
    return (
        f"filepath '{path}'{value} names a directory, not a file (add the file's name: '{example}')"
    )


def names_a_bucket(path: str) -> bool:
    """`s3://bucket`: a URI with no key names a bucket, not an object."""
    return is_uri(path) and not key_of(path)


def bucket_path(path: str, expanded: str | None = None) -> str:
    value = f" ('{expanded}')" if expanded not in (None, path) else ""
    return (
        f"filepath '{path}'{value} names a bucket, not an object (add the object's key: "
        f"'{path.rstrip('/')}/name.csv')"
    )


def appendable(path: str) -> bool:
    """Whether `mode: append` may write `path`: a local file, or an object of a store with
    conditional writes (S3): elsewhere a concurrent writer's rows could be lost."""
    return not is_uri(path) or scheme_of(path) in CONDITIONAL_SCHEMES


def no_append(path: str) -> str:
    return (
        f"mode: append cannot write {path}: appending to an object needs a store with "
        "conditional writes (s3://), and on this one a concurrent writer's rows could be lost "
        "(save with mode: replace or make_next)"
    )


def file_path(task: str, template: str, ctx: RunContext) -> PathOrUri:
    """The file (a `Path`) or object (a URI) a path template names in this run; a variable
    ending in `/` cannot make it a directory (checked here: validation saw only the template)."""
    expanded = expand(template, ctx.variables, ctx.location)
    if names_a_directory(expanded):
        raise TaskError(f"{task}: {directory_path(template, expanded)}", ctx.location)
    if names_a_bucket(expanded):
        raise TaskError(f"{task}: {bucket_path(template, expanded)}", ctx.location)
    return ctx.resolve(template)


def loadable_path(task: str, kind: str, template: str, ctx: RunContext) -> PathOrUri:
    """The file a load reads, which must be a file (`kind` names its format: 'a CSV file'), or
    the object, which must be there (looked at with one request, in every mode: a lazy scan
    would fail only where a later stage executes it)."""
    path = file_path(task, template, ctx)
    if isinstance(path, str):
        _check_object(task, path, ctx)
        return path
    if path.is_dir():
        raise TaskError(
            f"{task}: {path} is a directory, not {kind} (give the file's path)", ctx.location
        )
    if not path.is_file():
        raise TaskError(f"{task}: no such file {path}", ctx.location)
    return path


def _check_object(task: str, uri: str, ctx: RunContext) -> None:
    try:
        store = store_for(uri)
        found = store.stat(uri)
    except ObjectStoreError as exc:
        raise TaskError(f"{task}: cannot read {uri}: {exc.strerror}", ctx.location) from exc
    if found is None:
        folder = store.is_prefix(uri)
        hint = " (objects lie under it: give the key of an object)" if folder else ""
        raise TaskError(f"{task}: no such object {uri}{hint}", ctx.location)


def file_gone(exc: Exception) -> str | None:
    """The reason of a lazy load whose file (or object) went away before a sink read it, or
    that the store refused."""
    if isinstance(exc, FileNotFoundError):
        return (
            "the file is gone: it was removed after this stage, and lazy modes read a file "
            "only when a later stage needs its data (keep it until the run ends)"
        )
    return polars_reason(exc)


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


# --- saving ---------------------------------------------------------------------------------


class WriteRefused(Exception):
    """Raised by a format's write when the file there cannot take the frame (an append whose
    columns differ); its message is the whole error, located at the stage by `save_files`."""


@dataclass(frozen=True)
class Existing:
    """What an append adds to: `path`, a local file to read (the file itself, or a local copy of
    the object), and `shown`, how messages name it (the file, or the object's URI)."""

    path: Path
    shown: PathOrUri


#: Runs the queries of a write in the stage's sink pass (with its checks and previews).
RunPass = Callable[[list[pl.LazyFrame]], None]

#: A format's write: `(file, frame, temporary, existing, run_pass)` writes `frame` to the
#: temporary file through `run_pass`; `existing` is what to append to (None: a new file).
Writer = Callable[[FileFrame, pl.LazyFrame, Path, "Existing | None", RunPass], None]

_DESTINATION_ADVICE = {
    errno.EISDIR: " (give filepath the file's name too)",
    errno.ENOTDIR: " (give a filepath in a directory)",
    errno.EACCES: " (choose another directory, or let capport's user write there)",
    errno.EPERM: " (choose another directory, or let capport's user write there)",
    errno.EROFS: " (choose a directory on a writable filesystem)",
}


def save_files(
    task: str,
    args: FileFrames,
    frames: Mapping[str, Frame],
    ctx: RunContext,
    write: Writer,
    *,
    explain: Callable[[str, PathOrUri, Frame], str | None] = lambda name, path, frame: None,
) -> dict[str, Frame]:
    """Write each file of a save atomically in its mode. One streaming pass per file writes it,
    runs the model's constraint checks (a failure leaves the previous file in place) and takes
    the run's preview of the frame. `explain` turns a Polars failure of the write into the
    words to say (None: Polars' own error stands)."""
    for file in args.files:
        source = frames[file.df_name]
        shaped = reshape(source, file.model, location=ctx.location) if file.model else source
        model = file.model
        checks = [constraint_check(shaped, model, file.df_name)] if model and model.checks else []
        path = file_path(task, file.filepath, ctx)

        def run_pass(queries: list[pl.LazyFrame]) -> None:
            ctx.sink_pass.execute(
                queries,
                sources={file.df_name: (source, shaped.lazy())},  # noqa: B023 (called at once)
                checks=checks,  # noqa: B023
                location=ctx.location,
            )

        def write_to(temporary: Path, existing: Existing | None) -> None:
            write(file, shaped.lazy(), temporary, existing, run_pass)  # noqa: B023

        try:
            if isinstance(path, str):
                written: PathOrUri = _save_object(task, file.mode, path, write_to)
            else:
                written = _save_file(file.mode, path, write_to)
        except DestinationError as exc:
            advice = _DESTINATION_ADVICE.get(exc.errno or 0, "")
            raise TaskError(
                f"{task}: cannot write {exc.filename}: {exc.strerror}{advice}", ctx.location
            ) from exc
        except ObjectStoreError as exc:
            raise TaskError(_object_failure(task, file, path, exc), ctx.location) from exc
        except WriteRefused as exc:
            raise TaskError(str(exc), ctx.location) from None
        except pl.exceptions.PolarsError as exc:
            said = explain(file.df_name, path, shaped)
            if said is None:
                raise
            raise TaskError(said, ctx.location) from exc
        verb = "appended" if file.mode is WriteMode.APPEND else "wrote"
        ctx.log.info(f"{task}: {verb} {file.df_name} to {written}")
    return {}


#: Writes the frame to a temporary file, after `existing`'s rows when appending.
WriteTo = Callable[[Path, "Existing | None"], None]


def _save_file(mode: WriteMode, path: Path, write_to: WriteTo) -> Path:
    """A local file: written beside `path`, renamed (or hard-linked) into place."""
    if mode is WriteMode.MAKE_NEXT:
        with atomic_new_file(next_names(path)) as new:
            write_to(new.temporary, None)
        assert isinstance(new.path, Path)
        return new.path
    with atomic_path(path) as temporary:
        append = mode is WriteMode.APPEND and path.is_file()
        write_to(temporary, Existing(path, path) if append else None)
    return path


def _save_object(task: str, mode: WriteMode, uri: str, write_to: WriteTo) -> str:
    """An object: written to a local temporary file, uploaded in one write of the store.
    `append` reads the object, writes it with the new rows, and replaces it only if no other
    writer changed it meanwhile (`If-Match` on its version): otherwise nothing is written."""
    if mode is WriteMode.MAKE_NEXT:
        with atomic_new_object(next_uris(uri)) as new:
            write_to(new.temporary, None)
        assert isinstance(new.path, str)
        return new.path
    if mode is WriteMode.REPLACE:
        with atomic_object(uri) as temporary:
            write_to(temporary, None)
        return uri
    if not appendable(uri):  # said first: no store to reach for a refusal
        raise WriteRefused(f"{task}: {no_append(uri)}")
    store = store_for(uri)
    found = store.stat(uri)
    if found is None:
        with atomic_object(uri, store=store, if_absent=True) as temporary:
            write_to(temporary, None)
        return uri
    with (
        _copy(uri, store, found.size) as copy,
        atomic_object(uri, store=store, if_match=found.etag) as temporary,
    ):
        write_to(temporary, None if copy is None else Existing(copy, uri))
    return uri


@contextmanager
def _copy(uri: str, store: ObjectStore, size: int) -> Iterator[Path | None]:
    """A local copy of the object to append to; None for an empty one (a new file)."""
    if size == 0:
        yield None
        return
    with staged_copy(uri, store) as copy:
        yield copy


def _object_failure(task: str, file: FileFrame, uri: PathOrUri, exc: ObjectStoreError) -> str:
    """What a save says when the store refused, or failed, its write to `uri` (the object
    configured: a `make_next` failure names it, not the new name it tried)."""
    if isinstance(exc, ObjectChanged):
        return (
            f"{task}: cannot append frame '{file.df_name}' to {uri}: another writer changed the "
            "object while this append ran, and nothing was written (run the save again)"
        )
    advice = " (create it, or give a filepath in an existing bucket)"
    return f"{task}: cannot write {uri}: {exc.strerror}" + (
        advice if isinstance(exc, NoSuchBucket) else ""
    )


def sink_columns(frame: pl.LazyFrame) -> list[str]:
    """The columns a frame writes (planning only, no data read)."""
    return frame.collect_schema().names()
