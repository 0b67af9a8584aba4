"""`fill_null: {column: value}`: each null of the column replaced, as one `with_columns`.

A value is an expression whose plain YAML scalars are literals (`0`, `'unknown'`), or
`{col: other}` for another column's value on that row (a typed literal, `{sql: ...}`, ... too).
The column keeps its place; its dtype is the common dtype of column and value, as in Polars
(an Int64 column filled with 0.5 becomes Float64). A value that cannot share a column's dtype
(text into a number column) is an error before anything runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.expressions import Expr, columns_read, parse_expr
from capport_dagster.core.selects import Findings
from capport_dagster.core.steps.base import (
    Schema,
    StepKind,
    StepLineage,
    identity,
    missing_columns,
    sources_of,
)
from capport_dagster.core.steps.filters import dtype_of, family, show
from capport_dagster.core.yaml_source import describe

__all__ = ["KINDS", "Fill", "FillNullStep"]


@dataclass(frozen=True)
class Fill:
    column: str
    value: Expr
    shown: str


@dataclass(frozen=True)
class FillNullStep:
    """`fill_null`: the columns in YAML order."""

    kind: ClassVar[str] = "fill_null"
    fills: tuple[Fill, ...]

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        problems: list[str] = []
        for fill in self.fills:
            if fill.column not in schema:
                problems += missing_columns([fill.column], schema)
                continue
            found = fill.value.check(schema)
            problems += [f"column '{fill.column}': {problem}" for problem in found]
            dtype, value = schema[fill.column], dtype_of(fill.value, schema)
            if found or dtype is None or value is None:
                continue
            if family(dtype) != family(value) and "null" not in (family(dtype), family(value)):
                problems.append(
                    f"column '{fill.column}' is {dtype} and cannot be filled with {fill.shown}"
                    f" ({value}): give a value of the column's type"
                )
        return problems

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.with_columns(
            pl.col(fill.column).fill_null(fill.value.polars()) for fill in self.fills
        )

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Each filled column in its place, from itself and what its value reads (another
        column, for `{col: other}`; nothing more for a literal)."""
        found = identity(schema)
        for fill in self.fills:
            value = columns_read(fill.value, schema)
            found[fill.column] = sources_of(None if value is None else (fill.column, *value))
        return found


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> FillNullStep | None:
    args = step["fill_null"]
    if not isinstance(args, Mapping) or not args:
        got = "an empty mapping" if isinstance(args, Mapping) else describe(args)
        found.errors.append(f"{context}: expected a mapping of column -> value, got {got}")
        return None
    errors = len(found.errors)
    fills: list[Fill] = []
    for column, raw in args.items():
        where = f"{context}: column '{column}'"
        if raw is None:
            found.errors.append(f"{where}: filling nulls with null changes nothing; give a value")
            continue
        value = parse_expr(raw, where, found, scalars="literal")
        if value is not None:
            fills.append(Fill(str(column), value, show(raw)))
    if len(found.errors) > errors:
        return None
    return FillNullStep(tuple(fills))


KINDS = (StepKind("fill_null", ("fill_null",), _parse),)
