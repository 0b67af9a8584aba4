"""Model constraints checked on the data: `primary`, `unique` and `not_null`.

Wherever a model shapes a frame (a load, a save) its constraints are checked in the same run,
in jobs and asset jobs alike, and at a sink *before* the file is renamed into place, so data that
breaks them never lands (see `core/sinkpass.py`). Checks are lazy queries, so a sink runs them
in the same streaming pass that writes the file (`pl.collect_all`): the plan upstream of the
sink is executed once. They are written to stay streamable: duplicates are found with a
`group_by` (an `is_duplicated` window made a 5M-row sink pass 2.5x slower and 2.8x bigger).

A violation names the rows that break it by their keys where the model has a `primary` key
(`player_id=8471214`), else by their row number in the frame (`row 7`, from 1), and the
duplicated values of `unique`/`primary` columns themselves (`event_id=5`); examples are the
smallest values, so every run shows the same ones.

- `not_null`: nulls are violations.
- `unique`: values that occur more than once; nulls may repeat, as in SQL.
- `primary`: unique and not null.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from capport_dagster.core.models import Model
from capport_dagster.errors import Location, TaskError

__all__ = [
    "ConstraintCheck",
    "ConstraintError",
    "Violation",
    "check_constraints",
    "constraint_check",
]

EXAMPLES = 5


@dataclass(frozen=True)
class Violation:
    """A checked constraint the data breaks: how many rows, and a few of them by key."""

    column: str
    constraint: str
    count: int
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        rows = f"{self.count} row{'s' if self.count != 1 else ''}"
        text = f"column '{self.column}' breaks '{self.constraint}' in {rows}"
        return f"{text} (e.g. {', '.join(self.examples)})" if self.examples else text


class ConstraintError(TaskError):
    """Raised when a frame a model shapes breaks the model's constraints; names every one."""

    def __init__(
        self,
        message: str,
        location: Location | None = None,
        violations: tuple[Violation, ...] = (),
        frame: str | None = None,
        model: str | None = None,
    ) -> None:
        super().__init__(message, location)
        self.violations = violations
        self.frame = frame
        self.model = model

    def __reduce__(self):  # picklable across Dagster's process boundaries, violations included
        args = (self.message, self.location, self.violations, self.frame, self.model)
        return (self.__class__, args)


@dataclass(frozen=True)
class ConstraintCheck:
    """The queries checking one model's constraints on one frame, to run in any pass."""

    model: Model
    frame: str
    queries: tuple[pl.LazyFrame, ...]
    #: Per query, how to read its one row: (column, constraint, part) with part "count",
    #: "values" (duplicated values) or "rows" (keys or row numbers of null rows).
    _reads: tuple[tuple[str, str, str], ...] = field(default=())

    def violations(self, results: Sequence[pl.DataFrame]) -> list[Violation]:
        counts: dict[tuple[str, str], int] = {}
        examples: dict[tuple[str, str], list[str]] = {}
        for (column, constraint, part), result in zip(self._reads, results, strict=True):
            key = (column, constraint)
            row = result.row(0) if result.height else (0, [])
            counts[key] = counts.get(key, 0) + int(row[0] or 0)
            examples.setdefault(key, []).extend(_shown(part, column, row[1]))
        return [
            Violation(column, constraint, counts[(column, constraint)],
                      tuple(examples[(column, constraint)][:EXAMPLES]))
            for column, constraint in self.model.checks
            if counts.get((column, constraint))
        ]  # fmt: skip

    def raise_if_broken(self, results: Sequence[pl.DataFrame], location: Location) -> None:
        found = self.violations(results)
        if found:
            raise ConstraintError(
                f"model '{self.model.name}': frame '{self.frame}' breaks its constraints: "
                + "; ".join(str(v) for v in found),
                location,
                tuple(found),
                self.frame,
                self.model.name,
            )


def constraint_check(
    frame: pl.LazyFrame | pl.DataFrame, model: Model, name: str
) -> ConstraintCheck:
    """The queries checking `model`'s constraints on `frame` (already shaped by the model)."""
    lazy = frame.lazy()
    keys = [c for c, constraint in model.checks if constraint == "primary"]
    queries: list[pl.LazyFrame] = []
    reads: list[tuple[str, str, str]] = []
    for column, constraint in model.checks:
        col = pl.col(column)
        if constraint in ("primary", "unique"):
            groups = lazy.group_by(column).agg(pl.len().alias("n"))
            repeated = groups.filter((pl.col("n") > 1) & col.is_not_null())
            queries.append(
                repeated.select(pl.col("n").sum(), col.bottom_k(EXAMPLES).sort().implode())
            )
            reads.append((column, constraint, "values"))
        if constraint in ("primary", "not_null"):
            others = [k for k in keys if k != column]
            if others:
                found = pl.struct(others).filter(col.is_null()).head(EXAMPLES).implode()
                queries.append(lazy.select(col.null_count(), found))
            else:  # row numbers, from 1 (an expression: `with_row_index` in a query sharing
                # its plan with others lost its column, Polars 1.44)
                number = pl.int_range(1, pl.len() + 1, dtype=pl.UInt64)
                found = number.filter(col.is_null()).head(EXAMPLES).implode()
                queries.append(lazy.select(col.null_count(), found))
            reads.append((column, constraint, "rows"))
    return ConstraintCheck(model, name, tuple(queries), tuple(reads))


def check_constraints(
    frame: pl.LazyFrame | pl.DataFrame, model: Model, name: str, location: Location
) -> None:
    """Run the checks now (in their own pass) and raise `ConstraintError` if any breaks."""
    check = constraint_check(frame, model, name)
    if check.queries:
        check.raise_if_broken(pl.collect_all(list(check.queries), engine="streaming"), location)


def _shown(part: str, column: str, values: list[Any]) -> list[str]:
    if part == "values":
        return [f"{column}={_value(v)}" for v in values]
    if values and isinstance(values[0], dict):
        return [", ".join(f"{k}={_value(v)}" for k, v in key.items()) for key in values]
    return [f"row {v}" for v in values]


def _value(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)
