"""Expressions: the one syntax for a value wherever a step takes one (select, with_columns,
filter, sort keys, aggregations).

STUB (issue 14, being built): the interface below is fixed; the grammar is being filled in.

    expr := PATH                      a column path: `a`, `a.b.c` (struct fields), core/paths.py
          | "^name$" ["." field]*     an optional column: all null when the frame lacks it
          | {format: ...} | {concat: ...} | {cast: ...} | {coalesce: [...]} | {fill_null: ...}
          | {int8..uint64 | float | double | bool | str | date | datetime: VALUE}  a typed literal
          | {sql: "price * qty"}      a SQL expression, parsed by Polars
          | {col: PATH}               a column where a plain scalar is a literal (filter values)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import polars as pl

from capport_dagster.core.paths import check_path, path_error, path_expr
from capport_dagster.core.selects import Findings
from capport_dagster.core.yaml_source import describe

__all__ = ["Column", "Expr", "Lit", "Schema", "output_dtype", "parse_expr"]

Schema = Mapping[str, pl.DataType | None]


class Expr(Protocol):
    """A parsed expression: immutable, reusable on any frame."""

    def polars(self) -> pl.Expr:
        """The Polars expression (not aliased)."""
        ...

    def paths(self) -> tuple[str, ...]:
        """The column paths it reads, in order (for checks and column lineage)."""
        ...

    def check(self, schema: Schema) -> list[str]:
        """Its problems in a frame of this schema (a missing column, a path into a non-struct);
        an optional column is never missing."""
        ...


@dataclass(frozen=True)
class Column:
    path: str

    def polars(self) -> pl.Expr:
        return path_expr(self.path)

    def paths(self) -> tuple[str, ...]:
        return (self.path,)

    def check(self, schema: Schema) -> list[str]:
        problem = check_path(self.path, schema)
        return [problem] if problem else []


@dataclass(frozen=True)
class Lit:
    value: Any
    dtype: pl.DataType | None = None

    def polars(self) -> pl.Expr:
        return pl.lit(self.value, dtype=self.dtype)

    def paths(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema) -> list[str]:
        return []


def parse_expr(
    raw: Any, where: str, found: Findings, *, scalars: Literal["path", "literal"] = "path"
) -> Expr | None:
    """Read one expression; None after reporting its problems to `found.errors`, each
    prefixed with `where`. `scalars`: what a plain YAML string is, a column path (select,
    with_columns, sort keys) or a literal value (a filter's comparison value)."""
    if isinstance(raw, str) and scalars == "path":
        problem = path_error(raw)
        if problem is not None:
            found.errors.append(f"{where}: {problem}")
            return None
        return Column(raw)
    if isinstance(raw, (str, int, float, bool)) and scalars == "literal":
        return Lit(raw)
    if isinstance(raw, Mapping) and set(raw) == {"col"} and isinstance(raw["col"], str):
        return parse_expr(raw["col"], where, found)
    found.errors.append(f"{where}: not an expression: {describe(raw)}")
    return None


def output_dtype(expr: Expr, schema: Mapping[str, pl.DataType]) -> pl.DataType:
    """The dtype `expr` gives in a frame of this (fully typed) schema; no data read. Raises
    Polars' error where the expression does not fit the schema."""
    frame = pl.LazyFrame(schema=dict(schema))
    return frame.select(expr.polars().alias("_")).collect_schema()["_"]
