"""The built-in tasks of SPEC 4: `noop`, `load_csv`, `save_csv` and `transform`.

They are registered in the default registry exactly as a user's task would be. Each works on
LazyFrames (a DataFrame's `.lazy()` is free), so one code path serves every mode and lazy runs
stay lazy: `load_csv` scans, `transform` builds a plan and only `save_csv` executes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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
from capport_dagster.core.sinks import atomic_path
from capport_dagster.core.transforms import Transform
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
            model = ctx.model(entry.model) if entry.model is not None else None
            files.append(FileFrame(ctx.check_path(entry.filepath), entry.df_name, model))
        return FileFrames(tuple(files))

    return parse


def _run_load_csv(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    loaded: dict[str, Frame] = {}
    for file in args.files:
        path = ctx.path(file.filepath)
        if not path.is_file():
            raise TaskError(f"load_csv: no such file {path}", ctx.location)
        if file.model is None:
            loaded[file.df_name] = pl.scan_csv(path)
            continue
        # Every model column is read as the model says, not as the first 100 rows suggest:
        # inferred, 00123 became 123, a double column of whole numbers failed on a later 1.5,
        # and a u64 above the i64 range or an int column with empty first rows did not load.
        frame = pl.scan_csv(path, schema_overrides=file.model.reading_dtypes())
        loaded[file.df_name] = reshape(frame, file.model, location=ctx.location)
    return loaded


def _run_save_csv(args: FileFrames, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    for file in args.files:
        source = frames[file.df_name]
        shaped = reshape(source, file.model, location=ctx.location) if file.model else source
        model = file.model
        checks = [constraint_check(shaped, model, file.df_name)] if model and model.checks else []
        path = ctx.path(file.filepath)
        with atomic_path(path) as temporary:
            # One streaming pass: the file, the model's constraint checks (a failure leaves the
            # previous file in place) and the preview of the frame when the run wants it.
            ctx.sink_pass.execute(
                [shaped.lazy().sink_csv(temporary, lazy=True)],
                sources={file.df_name: (source, shaped.lazy())},
                checks=checks,
                location=ctx.location,
            )
        ctx.log.info(f"save_csv: wrote {file.df_name} to {path}")
    return {}


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
            description="Apply a named transform (select, join, drop) to a frame.",
        )
    )
    return registry


register_builtin_tasks(DEFAULT_REGISTRY)
