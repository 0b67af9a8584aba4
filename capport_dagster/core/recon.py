"""The `recon` task of the original capport example: the rows of one frame another disagrees with.

::

    - label: recon_player
      task: recon
      args:
        left_df: PLAYER          # what we hold
        right_df: NHL_PLAYER     # what the source of truth says
        on: [id]                 # optional: the key columns
        save_neq_rows: RECON_PLAYER

`save_neq_rows` gets the rows of `left_df` that have no identical row in `right_df`, with the
columns of `left_df` and one more, `recon` (a string):

- `missing`: no row of `right_df` has the row's key (`on`; without `on` the key is every
  column the two frames have in common, so every unmatched row is `missing`);
- `differs` (with `on` only): some rows of `right_df` have the key, but none of them agrees with
  the row on the other common columns.

Only the columns both frames have are compared; the left frame's other columns ride along. Rows
keep the left frame's order; a left row that occurs twice is reported twice. **Nulls compare
equal to nulls** (a null key matches a null key, a null value equals a null value), as a user
reconciling a table against an API expects of "the same row" (NaN equals NaN too; struct and
list columns compare by value). **Duplicate keys on the right**: a left row agrees when *any*
right row with its key is identical on the common columns (the right frame may hold several
versions of a row; one match is enough). When the frames agree the result is empty, with the
same columns.

The plan is joins only (semi/anti joins, `nulls_equal=True`): nothing is computed before a sink
reads the result. At run time, before any data is read, an `on` column missing from either frame,
a common column whose dtypes differ between the frames (cast one side with a model or transform:
`1` and `"1"` are not the same value) and a left frame already having a `recon` column are
located errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from capport_dagster.core.lineage import ColumnSource, by_name
from capport_dagster.core.registry import (
    BindContext,
    Frame,
    RunContext,
    TaskRegistry,
    TaskSpec,
    validate_model,
)
from capport_dagster.core.tasks import raw_names
from capport_dagster.errors import ConfigError, Location, TaskError

__all__ = ["DIFFERS", "MISSING", "RECON_COLUMN", "ReconArgs", "recon", "register_recon_task"]

#: The column added to the rows reported, and its two values.
RECON_COLUMN = "recon"
MISSING = "missing"
DIFFERS = "differs"


class _ReconEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    left_df: str
    right_df: str
    on: str | list[str] | None = None
    save_neq_rows: str


@dataclass(frozen=True)
class ReconArgs:
    """`on` is None to compare on every common column (then no row can be `differs`)."""

    left_df: str
    right_df: str
    save_neq_rows: str
    on: tuple[str, ...] | None = None

    def reads(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.left_df, self.right_df)))


def _parse_recon(raw: Any, ctx: BindContext) -> ReconArgs:
    entry = validate_model(_ReconEntry, raw, ctx.location, "args for task 'recon'")
    assert isinstance(entry, _ReconEntry)
    on: tuple[str, ...] | None = None
    if entry.on is not None:
        on = (entry.on,) if isinstance(entry.on, str) else tuple(entry.on)
        if not on:
            raise ConfigError(
                "task 'recon': on is empty: name the key columns, or leave on out to compare"
                " every column the frames have in common",
                ctx.location,
            )
        twice = sorted({name for name in on if on.count(name) > 1})
        if twice:
            raise ConfigError(
                f"task 'recon': on names {', '.join(repr(n) for n in twice)} more than once",
                ctx.location,
            )
    return ReconArgs(entry.left_df, entry.right_df, entry.save_neq_rows, on)


def recon(
    left: Frame,
    right: Frame,
    on: Sequence[str] | None = None,
    *,
    names: tuple[str, str] = ("left", "right"),
    location: Location | None = None,
) -> pl.LazyFrame:
    """The plan of the rows of `left` that `right` disagrees with (see the module docstring).

    `names` are the frames' names for the errors. Only the schemas are read here (planning).
    """
    left, right = left.lazy(), right.lazy()
    left_name, right_name = names
    left_schema, right_schema = left.collect_schema(), right.collect_schema()
    if RECON_COLUMN in left_schema:
        raise TaskError(
            f"recon: frame '{left_name}' already has a column '{RECON_COLUMN}', which the result"
            " adds; rename or drop it in a transform first",
            location,
        )
    common = [name for name in left_schema if name in right_schema]
    if on is None:
        if not common:
            raise TaskError(
                f"recon: frames '{left_name}' ({_columns(left_schema)}) and '{right_name}'"
                f" ({_columns(right_schema)}) have no column in common; rename columns in a"
                " transform, or give on:",
                location,
            )
        keys = common
    else:
        for frame, schema in ((left_name, left_schema), (right_name, right_schema)):
            absent = [name for name in on if name not in schema]
            if absent:
                raise TaskError(
                    f"recon: on column{'s' if len(absent) > 1 else ''}"
                    f" {', '.join(repr(n) for n in absent)} not found in frame '{frame}'"
                    f" (columns: {_columns(schema)})",
                    location,
                )
        keys = list(on)
    clashes = [
        f"'{name}' ({left_schema[name]} in '{left_name}', {right_schema[name]} in '{right_name}')"
        for name in common
        if left_schema[name] != right_schema[name]
    ]
    if clashes:
        raise TaskError(
            f"recon: the frames' types differ in column{'s' if len(clashes) > 1 else ''}"
            f" {', '.join(clashes)}; cast one side (a model or a transform) so that the values"
            " compare",
            location,
        )
    index = _unused_name("__capport_recon_row", left_schema)
    rows = left.with_row_index(index)
    right_keys = right.select(keys)
    parts = [
        rows.join(right_keys, on=keys, how="anti", nulls_equal=True).with_columns(
            pl.lit(MISSING, pl.String).alias(RECON_COLUMN)
        )
    ]
    if len(common) > len(keys):
        parts.append(
            rows.join(right_keys, on=keys, how="semi", nulls_equal=True)
            .join(right.select(common), on=common, how="anti", nulls_equal=True)
            .with_columns(pl.lit(DIFFERS, pl.String).alias(RECON_COLUMN))
        )
    result = parts[0] if len(parts) == 1 else pl.concat(parts)
    return result.sort(index).drop(index)


def _columns(schema: Mapping[str, Any]) -> str:
    return ", ".join(schema) or "none"


def _unused_name(name: str, schema: Mapping[str, Any]) -> str:
    while name in schema:
        name += "_"
    return name


def _run_recon(args: ReconArgs, frames: Mapping[str, Frame], ctx: RunContext) -> dict[str, Frame]:
    result = recon(
        frames[args.left_df],
        frames[args.right_df],
        args.on,
        names=(args.left_df, args.right_df),
        location=ctx.location,
    )
    return {args.save_neq_rows: result}


def _recon_lineage(
    args: ReconArgs, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
) -> dict[str, dict[str, tuple[ColumnSource, ...]]]:
    """The rows reported keep the left frame's columns as they are; `recon` says how the
    columns both frames have compare (the keys among them), so it comes from those, on both
    sides."""
    found = by_name(args, {args.left_df: inputs.get(args.left_df, pl.Schema())}, outputs)
    left, right = inputs.get(args.left_df, {}), inputs.get(args.right_df, {})
    common = [name for name in left if name in right]
    compared = [(args.left_df, name) for name in common] + [(args.right_df, n) for n in common]
    for columns in found.values():
        columns[RECON_COLUMN] = tuple(compared)
    return found


def register_recon_task(registry: TaskRegistry) -> TaskRegistry:
    """Register `recon` in `registry` (the default one already has it)."""
    registry.register(
        TaskSpec(
            "recon",
            _run_recon,
            reads=ReconArgs.reads,
            writes=lambda a: (a.save_neq_rows,),
            parse=_parse_recon,
            salvage_reads=lambda raw: raw_names(raw, "left_df", "right_df"),
            lineage=_recon_lineage,
            description="The rows of left_df that right_df has no identical row for.",
        )
    )
    return registry
