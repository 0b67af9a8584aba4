"""`sort` and the row-count steps `limit`, `head` and `tail`: one Polars lazy operation each.

    sort  := [KEY, ...] | KEY
           | {by: [KEY, ...] | KEY, descending: BOOL, nulls_last: BOOL}
    KEY   := EXPR                        ascending (or `descending`, the default for every key)
           | {PATH: asc | desc}          this key's own direction
    limit := N    head := N    tail := N  N: a whole number >= 0

A sort is stable (`maintain_order=True`): rows with equal keys keep their input order, so the
result is the same in every run mode. Nulls come first unless `nulls_last: true` (Polars).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.expressions import EXPRESSION_KEYS, Column, Expr, parse_expr
from capport_dagster.core.selects import Findings, unknown_keys
from capport_dagster.core.steps.base import Schema, StepKind, StepLineage, StepParser, identity
from capport_dagster.core.yaml_source import describe

__all__ = ["KINDS", "HeadStep", "LimitStep", "SortStep", "TailStep"]

_SORT_KEYS = ("by", "descending", "nulls_last")
_DIRECTIONS = {"asc": False, "desc": True}


@dataclass(frozen=True)
class SortStep:
    """`sort`: one stable `LazyFrame.sort` by every key (a key that is not a column is
    computed beside it, then dropped)."""

    kind: ClassVar[str] = "sort"
    keys: tuple[Expr, ...]
    descending: tuple[bool, ...]
    nulls_last: bool = False

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        return list(dict.fromkeys(problem for key in self.keys for problem in key.check(schema)))

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        # A key that is not a column may be one value (a literal), which Polars' sort refuses:
        # it sorts as a column of that value.
        temporary = {
            f"__capport_sort_{number}": key.polars()
            for number, key in enumerate(self.keys)
            if not isinstance(key, Column)
        }
        keys = [
            pl.col(f"__capport_sort_{number}")
            if f"__capport_sort_{number}" in temporary
            else key.polars()
            for number, key in enumerate(self.keys)
        ]
        ordered = frame.with_columns(**temporary) if temporary else frame
        ordered = ordered.sort(
            keys, descending=list(self.descending), nulls_last=self.nulls_last, maintain_order=True
        )
        return ordered.drop(list(temporary)) if temporary else ordered

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Rows are reordered, values kept: each column comes from itself (the keys order
        rows, they are the source of no value)."""
        return identity(schema)


@dataclass(frozen=True)
class LimitStep:
    """`limit: N`: the first N rows (Polars' `limit`, the same as `head`)."""

    kind: ClassVar[str] = "limit"
    rows: int

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        return []

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.limit(self.rows)

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Fewer rows, the same columns (head and tail alike)."""
        return identity(schema)


@dataclass(frozen=True)
class HeadStep(LimitStep):
    """`head: N`: `limit` under Polars' other name."""

    kind: ClassVar[str] = "head"


@dataclass(frozen=True)
class TailStep(LimitStep):
    """`tail: N`: the last N rows."""

    kind: ClassVar[str] = "tail"

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.tail(self.rows)


# -- parsing -------------------------------------------------------------------------------------


def _parse_sort(step: Mapping[str, Any], context: str, found: Findings) -> SortStep | None:
    args = step["sort"]
    errors = len(found.errors)
    descending = nulls_last = False
    if isinstance(args, Mapping):
        if unknown_keys(args, _SORT_KEYS, context, found.errors, "a sort mapping"):
            return None
        descending = _flag(args, "descending", context, found)
        nulls_last = _flag(args, "nulls_last", context, found)
        if args.get("by") is None:
            found.errors.append(f"{context}: by is required (a list of sort keys)")
            return None
        args = args["by"]
    items = args if isinstance(args, list) else [args]
    if not items:
        found.errors.append(f"{context}: a sort needs at least one key")
        return None
    keys: list[Expr] = []
    directions: list[bool] = []
    for number, item in enumerate(items, 1):
        where = f"{context}: key {number}" if len(items) > 1 else context
        parsed = _key(item, descending, where, found)
        if parsed is not None:
            keys.append(parsed[0])
            directions.append(parsed[1])
    if len(found.errors) > errors:
        return None
    found.ordered = True
    return SortStep(tuple(keys), tuple(directions), nulls_last)


def _key(item: Any, default: bool, where: str, found: Findings) -> tuple[Expr, bool] | None:
    """A key and its direction: `{PATH: asc|desc}`, else an expression in `default` order."""
    if isinstance(item, Mapping) and len(item) == 1:
        ((path, direction),) = item.items()
        if isinstance(direction, str) and direction.lower() in _DIRECTIONS:
            expr = parse_expr(path, where, found)
            return None if expr is None else (expr, _DIRECTIONS[direction.lower()])
        if isinstance(path, str) and path not in EXPRESSION_KEYS:
            found.errors.append(
                f"{where}: '{path}' takes asc or desc, got {describe(direction)}"
                f" (e.g. {{{path}: desc}})"
            )
            return None
    expr = parse_expr(item, where, found)
    return None if expr is None else (expr, default)


def _flag(args: Mapping[str, Any], key: str, context: str, found: Findings) -> bool:
    value = args.get(key, False)
    if not isinstance(value, bool):
        found.errors.append(f"{context}: {key} is true or false, got {describe(value)}")
        return False
    return value


def _rows(kind: str, make: type[LimitStep]) -> StepParser:
    def parse(step: Mapping[str, Any], context: str, found: Findings) -> LimitStep | None:
        value = step[kind]
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            found.errors.append(
                f"{context}: {kind} takes a number of rows (a whole number, 0 or more),"
                f" got {describe(value)}"
            )
            return None
        return make(value)

    return parse


KINDS = (
    StepKind("sort", ("sort",), _parse_sort),
    StepKind("limit", ("limit",), _rows("limit", LimitStep)),
    StepKind("head", ("head",), _rows("head", HeadStep)),
    StepKind("tail", ("tail",), _rows("tail", TailStep)),
)
