"""`group_by`: one row per group of key values, as one `group_by(...).agg(...)`.

    group_by := {by: COLUMNS, agg: {ALIAS: {FUNCTION: EXPR}, ...}}
    FUNCTION := sum | mean | min | max | count | n_unique | first | last | list

The output has the keys (each named by its path's last part: `team.name` gives `name`), then
each alias in YAML order. Groups come in the order their first row comes (`maintain_order`),
the same in every run mode; null keys make a group of their own (Polars). The functions are
Polars' own: `count` counts the non-null values, `n_unique` counts null as a value, `first`,
`last` and `list` keep nulls, and `sum`, `mean`, `min`, `max` skip them (a group of only nulls
sums to 0 and has a null mean).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.expressions import Expr, columns_read, parse_expr
from capport_dagster.core.paths import split_path
from capport_dagster.core.selects import Findings, column_list, unknown_keys
from capport_dagster.core.steps.base import Schema, StepKind, StepLineage, sources_of
from capport_dagster.core.steps.filters import ORDERED, dtype_of, family, show
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import count, did_you_mean

__all__ = ["FUNCTIONS", "KINDS", "Aggregation", "GroupByStep"]

FUNCTIONS: tuple[str, ...] = (
    "sum", "mean", "min", "max", "count", "n_unique", "first", "last", "list",
)  # fmt: skip
#: What other tools call our functions (for the hint only).
_ALIASES = {
    "avg": "mean", "average": "mean", "len": "count", "nunique": "n_unique",
    "count_distinct": "n_unique", "implode": "list", "collect": "list", "agg_list": "list",
}  # fmt: skip
#: The value families each function takes, where it does not take every dtype.
_TAKES = {
    "sum": ("number", "bool", "duration", "null"),
    "mean": ("number", "bool", "date", "time", "duration", "null"),
    "min": ORDERED,
    "max": ORDERED,
}
_NEEDS = {
    "sum": "a numeric column",
    "mean": "a numeric or temporal column",
    "min": "a column whose values are ordered (numbers, text, booleans, dates, times, durations)",
    "max": "a column whose values are ordered (numbers, text, booleans, dates, times, durations)",
}


@dataclass(frozen=True)
class Aggregation:
    """`ALIAS: {FUNCTION: EXPR}`; `source` is the EXPR as written, for messages."""

    alias: str
    function: str
    expr: Expr
    source: str

    def polars(self) -> pl.Expr:
        expr = self.expr.polars()
        built = expr.implode() if self.function == "list" else getattr(expr, self.function)()
        return built.alias(self.alias)

    def check(self, schema: Schema) -> list[str]:
        problems = [f"agg '{self.alias}': {p}" for p in self.expr.check(schema)]
        if problems or self.function not in _TAKES:
            return problems
        dtype = dtype_of(self.expr, schema)
        if dtype is None or family(dtype) in _TAKES[self.function]:
            return []
        return [
            f"agg '{self.alias}': {self.function} needs {_NEEDS[self.function]},"
            f" but '{self.source}' is {dtype}"
        ]


@dataclass(frozen=True)
class GroupByStep:
    """`group_by`: the keys' names are fixed here, so the output's columns never depend on
    whether an optional key column is present."""

    kind: ClassVar[str] = "group_by"
    by: tuple[Expr, ...]
    names: tuple[str, ...]
    aggs: tuple[Aggregation, ...]

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        problems = [f"by: {p}" for key in self.by for p in key.check(schema)]
        problems += [p for agg in self.aggs for p in agg.check(schema)]
        return list(dict.fromkeys(problems))

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        keys = [key.polars().alias(name) for key, name in zip(self.by, self.names, strict=True)]
        return frame.group_by(keys, maintain_order=True).agg([agg.polars() for agg in self.aggs])

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """The keys (by their names), each from what its path reads, then each aggregation
        from what its expression reads (a count too: it counts that column's values)."""
        found: StepLineage = {
            name: sources_of(columns_read(key, schema))
            for key, name in zip(self.by, self.names, strict=True)
        }
        for agg in self.aggs:
            found[agg.alias] = sources_of(columns_read(agg.expr, schema))
        return found


# -- parsing -------------------------------------------------------------------------------------


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> GroupByStep | None:
    args = step["group_by"]
    if not isinstance(args, Mapping):
        found.errors.append(
            f"{context}: expected a mapping with by (the key columns) and agg"
            f" ({{alias: {{function: column}}}}), got {describe(args)}"
        )
        return None
    errors = len(found.errors)
    unknown_keys(args, ("by", "agg"), context, found.errors, "group_by")
    paths = column_list(args.get("by"), "by", context, found.errors, required=True, paths=True)
    by = [parse_expr(path, f"{context}: by", found) for path in paths or ()]
    names = tuple(_key_name(path) for path in paths or ())
    for name in dict.fromkeys(name for name in names if names.count(name) > 1):
        found.errors.append(
            f"{context}: by: {count(names.count(name), 'key')} are named '{name}'; a group_by"
            " key is named by its path's last part, so give one of them another name in a"
            " select first"
        )
    aggs = _aggregations(args.get("agg"), names, context, found)
    if len(found.errors) > errors:
        return None
    return GroupByStep(tuple(key for key in by if key is not None), names, aggs)


def _key_name(path: str) -> str:
    """`team.name` -> `name`; `^team$` -> `team` (an optional column keeps its name)."""
    segments = split_path(path)
    if len(segments) == 1 and len(path) > 2 and path.startswith("^") and path.endswith("$"):
        return path[1:-1]
    return segments[-1]


def _aggregations(
    raw: Any, names: tuple[str, ...], context: str, found: Findings
) -> tuple[Aggregation, ...]:
    if not isinstance(raw, Mapping) or not raw:
        got = "an empty mapping" if isinstance(raw, Mapping) else describe(raw)
        found.errors.append(
            f"{context}: agg is required: a mapping of alias -> {{function: column}}"
            f" ({', '.join(FUNCTIONS)}), got {got} (for the distinct keys alone, use distinct)"
        )
        return ()
    aggs: list[Aggregation] = []
    for alias, spec in raw.items():
        where = f"{context}: agg '{alias}'"
        if not isinstance(alias, str) or not alias:
            found.errors.append(f"{context}: agg: alias {alias!r} must be a non-empty string")
            continue
        if alias in names:
            found.errors.append(
                f"{where}: '{alias}' is also a group_by key; give the aggregation another name"
            )
            continue
        if not isinstance(spec, Mapping) or len(spec) != 1:
            got = describe(spec) if not isinstance(spec, Mapping) else count(len(spec), "key")
            example = f"{{count: {spec}}}" if isinstance(spec, str) else "{sum: price}"
            found.errors.append(
                f"{where}: expected one {{function: column}}, e.g. {example}, got {got}"
                f" (functions: {', '.join(FUNCTIONS)})"
            )
            continue
        ((function, source),) = spec.items()
        if function not in FUNCTIONS:
            hint = (
                f" - did you mean '{_ALIASES[function]}'?"
                if function in _ALIASES
                else did_you_mean(function, FUNCTIONS)
            )
            found.errors.append(
                f"{where}: unknown function {function!r}{hint} (functions: {', '.join(FUNCTIONS)})"
            )
            continue
        expr = parse_expr(source, f"{where} ({function})", found)
        if expr is not None:
            shown = source if isinstance(source, str) else show(source)
            aggs.append(Aggregation(alias, function, expr, shown))
    return tuple(aggs)


KINDS = (StepKind("group_by", ("group_by",), _parse),)
