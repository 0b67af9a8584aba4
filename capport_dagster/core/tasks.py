"""The built-in tasks of SPEC 4: `noop` and `transform` here, the file tasks (`load_csv`,
`save_csv`, `load_json`, ... ) in `core/files/`.

They are registered in the default registry exactly as a user's task would be. Each works on
LazyFrames (a DataFrame's `.lazy()` is free), so one code path serves every mode and lazy runs
stay lazy: `load_csv` scans, `transform` builds a plan and only `save_csv` executes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from capport_dagster.core.files import FileFrame, FileFrames, raw_names, register_file_tasks
from capport_dagster.core.lineage import ColumnSource
from capport_dagster.core.registry import (
    BindContext,
    Frame,
    RunContext,
    SchemaContext,
    TaskRegistry,
    validate_model,
)
from capport_dagster.core.transforms import Transform
from capport_dagster.errors import ConfigError, ValidationError

__all__ = [
    "FileFrame",
    "FileFrames",
    "TransformArgs",
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


def _transform_lineage(
    args: TransformArgs, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
) -> dict[str, dict[str, tuple[ColumnSource, ...]]]:
    """The transform's own lineage (`Transform.lineage`), its input frame named: a column it
    cannot tell is left out, so it falls back to the whole input, and so does every column
    when a frame it reads is not given."""
    names = _transform_reads(args)
    if not args.transform.steps or any(name not in inputs for name in names):
        return {}
    found = args.transform.lineage(inputs[args.input], inputs)
    return {
        args.save_df: {
            column: tuple((args.input if frame is None else frame, name) for frame, name in sources)
            for column, sources in found.items()
            if sources is not None
        }
    }


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
    register_file_tasks(registry)
    registry.register(
        TaskSpec(
            "transform",
            _run_transform,
            reads=_transform_reads,
            writes=lambda a: (a.save_df,),
            parse=_parse_transform,
            salvage_reads=lambda raw: raw_names(raw, "input"),
            output_schemas=_transform_schemas,
            lineage=_transform_lineage,
            description="Apply a named transform (select, filter, join, sql, ...) to a frame.",
        )
    )
    return registry
