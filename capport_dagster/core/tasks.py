"""The built-in tasks of SPEC 4: `noop` and `transform` here, the file tasks (`load_csv`,
`save_csv`, `load_json`, ... ) in `core/files/`.

They are registered in the default registry exactly as a user's task would be. Each works on
LazyFrames (a DataFrame's `.lazy()` is free), so one code path serves every mode and lazy runs
stay lazy: `load_csv` scans, `transform` builds a plan and only `save_csv` executes it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from capport_dagster.core.files import FileFrame, FileFrames, raw_names, register_file_tasks
from capport_dagster.core.files.csv_files import csv_schema
from capport_dagster.core.files.json_files import ndjson_schema
from capport_dagster.core.files.parquet_files import parquet_schema
from capport_dagster.core.models import Model
from capport_dagster.core.registry import (
    DEFAULT_REGISTRY,
    BindContext,
    Frame,
    RunContext,
    SchemaContext,
    SchemaFn,
    TaskRegistry,
    validate_model,
)
from capport_dagster.core.transforms import Transform
from capport_dagster.errors import ConfigError, ValidationError

__all__ = [
    "FileFrame",
    "FileFrames",
    "TransformArgs",
    "model_schema",
    "raw_names",
    "register_builtin_tasks",
]


# --- noop -----------------------------------------------------------------------------------


def _parse_noop(raw: Any, ctx: BindContext) -> None:
    if raw not in (None, {}, []):
        raise ConfigError(f"task 'noop' takes no args, got {raw!r}", ctx.location)


def _run_noop(args: None, frames: Mapping[str, Frame], ctx: RunContext) -> dict[str, Frame]:
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


def _transform_schemas(
    args: TransformArgs, inputs: Mapping[str, pl.Schema], ctx: SchemaContext
) -> dict[str, pl.Schema]:
    """The transform applied to empty frames of its inputs' schemas: its output's schema, or
    the located problem of the step that fails (what a run would say), once per transform and
    input schemas. Unknown (nothing checked) when any input is unknown, or for the stand-in of
    a transform whose own errors are listed at its entry (it has no steps)."""
    transform = args.transform
    names = _transform_reads(args)
    if not transform.steps or any(name not in inputs for name in names):
        return {}
    key = ("transform", id(transform), tuple((n, _columns(inputs[n], ctx)) for n in names))
    schema = ctx.cached(key, lambda: _checked(transform, inputs[args.input], inputs))
    return {args.save_df: schema}


def _columns(schema: pl.Schema, ctx: SchemaContext) -> tuple[tuple[str, pl.DataType], ...]:
    """A schema as a cache key, computed once per schema object: a transform's output, cached,
    is one object read by many stages. The object is kept with it, so its id is never reused."""
    return ctx.cached(("columns", id(schema)), lambda: (schema, tuple(schema.items())))[1]


def _checked(transform: Transform, schema: pl.Schema, inputs: Mapping[str, pl.Schema]) -> pl.Schema:
    output, problem = transform.output_schema(schema, inputs)
    if problem is not None:
        raise ValidationError([problem])
    assert output is not None
    return output


def _run_transform(args: TransformArgs, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    lazy = {name: frame.lazy() for name, frame in frames.items()}
    return {args.save_df: args.transform.apply(lazy[args.input], lazy, location=ctx.location)}


# --- what loads give, for validate ---------------------------------------------------------

#: What a load's file holds when it has no model: the columns Polars would give it, read from
#: the file's header or footer (never all of it); None: not known before the run.
FileSchema = Callable[[FileFrame, Path], "pl.Schema | None"]


def _file_schemas(scan: FileSchema) -> SchemaFn:
    """A load's hook: a model's columns where it has one, else those of a file already there
    that no earlier stage writes. A file that cannot be read now is unknown, never an error: a
    run may find it mended, or made by then."""

    def output_schemas(
        args: FileFrames, inputs: Mapping[str, pl.Schema], ctx: SchemaContext
    ) -> dict[str, pl.Schema]:
        schemas: dict[str, pl.Schema] = {}
        for file in args.files:
            if file.model is not None:
                schemas[file.df_name] = model_schema(file.model)
                continue
            path = ctx.existing_file(file.filepath)
            if path is None:
                continue
            key = ("file schema", scan, str(path), repr(file.options))
            # Once per file and options: 100 pipelines loading one file scan it once.
            schema = ctx.cached(key, lambda file=file, path=path: _scanned(scan, file, path))
            if schema is not None:
                schemas[file.df_name] = schema
        return schemas

    return output_schemas


def _scanned(scan: FileSchema, file: FileFrame, path: Path) -> pl.Schema | None:
    try:
        return scan(file, path)
    except (pl.exceptions.PolarsError, OSError, ValueError):
        return None


def model_schema(model: Model) -> pl.Schema:
    """What `reshape` gives: exactly the model's columns, in its order, with its dtypes."""
    return pl.Schema({column.name: column.dtype for column in model.columns})


_FILE_SCHEMAS: Mapping[str, FileSchema] = {
    "load_csv": csv_schema,
    "load_json": ndjson_schema,
    "load_parquet": parquet_schema,
}


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
    register_file_tasks(registry)
    for name, scan in _FILE_SCHEMAS.items():
        spec = registry.get(name)
        registry.register(replace(spec, output_schemas=_file_schemas(scan)), replace=True)
    registry.register(
        TaskSpec(
            "transform",
            _run_transform,
            reads=_transform_reads,
            writes=lambda a: (a.save_df,),
            parse=_parse_transform,
            salvage_reads=lambda raw: raw_names(raw, "input"),
            output_schemas=_transform_schemas,
            description="Apply a named transform (select, join, drop) to a frame.",
        )
    )
    return registry


register_builtin_tasks(DEFAULT_REGISTRY)
