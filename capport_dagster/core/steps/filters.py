"""`filter`: keep the rows a condition holds for, as one `LazyFrame.filter` (pushed down to scans).

    condition := SQL                        a SQL boolean expression: "age >= 18 AND team = 'EDM'"
               | {KEY: ..., KEY: ...}       every key must hold (AND), in YAML order
    KEY       := and: [condition, ...]      all of them
               | or: [condition, ...]       any of them
               | not: condition             not it
               | PATH: {OP: VALUE, ...}     a column's tests; several ops must all hold (AND)
    OP VALUE  := eq|ne|gt|ge|lt|le: EXPR    a plain YAML scalar is a literal, {col: name} a column
               | in|not_in: [LITERAL, ...]  literals of one type ({date: ...} too)
               | is_null|not_null: true
               | contains|starts_with: EXPR a string (a literal substring, not a regex)

Nulls follow SQL and Polars: a test on a null value is null, not true, so the row is dropped
(`ne: 5` drops the nulls too, and `not` of a null test is null); only `is_null`/`not_null` see
nulls. Types are checked against the schema before Polars runs, so comparing a string column
with a number is our error naming both, not a Polars error at collect time.
"""

from __future__ import annotations

import datetime
import functools
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import polars as pl

from capport_dagster.core.expressions import Expr, Lit, output_dtype, parse_expr
from capport_dagster.core.paths import split_path
from capport_dagster.core.selects import Findings
from capport_dagster.core.steps.base import Schema, StepKind, StepLineage, identity
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import did_you_mean

__all__ = ["KINDS", "OPERATORS", "ORDERED", "FilterStep", "dtype_of", "family", "show"]

_COMPARE: dict[str, Callable[[pl.Expr, pl.Expr], pl.Expr]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_TEXT = ("contains", "starts_with")
_NULLS = ("is_null", "not_null")
_MEMBERS = ("in", "not_in")
OPERATORS: tuple[str, ...] = (*_COMPARE, *_MEMBERS, *_NULLS, *_TEXT)
#: What other tools call our operators (for the hint only).
_ALIASES = {
    "=": "eq", "==": "eq", "!=": "ne", "<>": "ne", ">": "gt", ">=": "ge", "gte": "ge",
    "<": "lt", "<=": "le", "lte": "le", "is_in": "in",
    "is_not_null": "not_null", "startswith": "starts_with",
}  # fmt: skip


# -- dtypes: shared with the fill_null and group_by checks ----------------------------------------


def family(dtype: pl.DataType) -> str:
    """The kind of value a dtype holds, as far as comparing two of them goes."""
    if dtype.is_numeric():
        return "number"
    if isinstance(dtype, (pl.String, pl.Categorical, pl.Enum)):
        return "string"
    if isinstance(dtype, pl.Boolean):
        return "bool"
    if isinstance(dtype, (pl.Date, pl.Datetime)):
        return "date"
    if isinstance(dtype, pl.Time):
        return "time"
    if isinstance(dtype, pl.Duration):
        return "duration"
    if isinstance(dtype, pl.Null):
        return "null"
    return str(dtype)


def dtype_of(expr: Expr, schema: Schema) -> pl.DataType | None:
    """The dtype `expr` gives in a frame of this schema; None where it is not known (a column of
    unknown dtype, or an expression that does not fit, which its own check reports)."""
    known = {name: dtype for name, dtype in schema.items() if dtype is not None}
    if any(split_path(path)[0] not in known for path in expr.paths()):
        return None
    try:
        return output_dtype(expr, known)
    except (pl.exceptions.PolarsError, KeyError, TypeError, ValueError):
        return None


def show(raw: Any) -> str:
    """A YAML value as a message quotes it: `18`, `'EDM'`, `true`, `column 'other'`."""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if raw is None:
        return "null"
    if isinstance(raw, Mapping) and list(raw) == ["col"] and isinstance(raw["col"], str):
        return f"column '{raw['col']}'"
    if isinstance(raw, Mapping):
        return "{" + ", ".join(f"{key}: {show(value)}" for key, value in raw.items()) + "}"
    if isinstance(raw, list):
        return "[" + ", ".join(show(value) for value in raw) + "]"
    return repr(raw)


#: The families whose values have an order (what gt, ge, lt and le need).
ORDERED = ("number", "string", "bool", "date", "time", "duration", "null")


def _fits(left: pl.DataType, right: pl.DataType) -> bool:
    """Polars compares the two: same family (or a null), and datetimes in one time zone."""
    one, other = family(left), family(right)
    if isinstance(left, pl.Datetime) and isinstance(right, pl.Datetime):
        return left.time_zone == right.time_zone
    return one == other or "null" in (one, other)


# -- the condition tree ---------------------------------------------------------------------------


class Condition(Protocol):
    """A node of the condition: a column's test, and/or of conditions, not, or SQL."""

    def polars(self) -> pl.Expr: ...

    def check(self, schema: Schema) -> list[str]: ...


@dataclass(frozen=True)
class ColumnTest:
    """One `PATH: {OP: VALUE}` test; `where` locates it inside the filter (`or item 2: `)."""

    where: str
    key: str
    column: Expr
    op: str
    value: Expr | None = None
    shown: str = ""
    members: tuple[Any, ...] = ()

    def series(self) -> pl.Series:
        """The `in` values (ints and floats together are floats)."""
        return pl.Series(list(self.members), strict=False)

    def polars(self) -> pl.Expr:
        column = self.column.polars()
        if self.op in _COMPARE:
            assert self.value is not None
            return _COMPARE[self.op](column, self.value.polars())
        if self.op == "is_null":
            return column.is_null()
        if self.op == "not_null":
            return column.is_not_null()
        if self.op in _MEMBERS:
            member = column.is_in(self.series().implode())
            return member if self.op == "in" else ~member
        assert self.value is not None
        if self.op == "contains":
            return column.str.contains(self.value.polars(), literal=True)
        return column.str.starts_with(self.value.polars())

    def check(self, schema: Schema) -> list[str]:
        problems = self.column.check(schema)
        if self.value is not None:
            problems += self.value.check(schema)
        if problems:
            return [f"{self.where}{problem}" for problem in dict.fromkeys(problems)]
        dtype = dtype_of(self.column, schema)
        if dtype is None or self.op in _NULLS:
            return []
        head = f"{self.where}column '{self.key}' is {dtype}"
        if self.op in _TEXT and not isinstance(dtype, (pl.String, pl.Null)):
            return [f"{head}, but {self.op} needs a string column"]
        if self.op in ("gt", "ge", "lt", "le") and family(dtype) not in ORDERED:
            return [
                f"{head}, whose values have no order: {self.op} compares numbers, text,"
                " booleans, dates, times or durations"
            ]
        if self.op in _MEMBERS:
            values = self.series().dtype
            if not _fits(dtype, values):
                hint = _hint(dtype, members=True)
                return [f"{head} and cannot be compared with {self.shown} ({values}){hint}"]
            return []
        assert self.value is not None
        value = dtype_of(self.value, schema)
        if value is None:
            return []
        if self.op in _TEXT and not isinstance(value, (pl.String, pl.Null)):
            return [
                f"{self.where}column '{self.key}': {self.op} needs a string to look for,"
                f" got {self.shown} ({value})"
            ]
        if self.op in ("gt", "ge", "lt", "le") and family(value) not in ORDERED:
            return [
                f"{self.where}column '{self.key}': {self.op} compares with {self.shown}"
                f" ({value}), whose values have no order"
            ]
        if self.op in _COMPARE and not _fits(dtype, value):
            return [f"{head} and cannot be compared with {self.shown} ({value}){_hint(dtype)}"]
        return []


def _hint(dtype: pl.DataType, *, members: bool = False) -> str:
    if isinstance(dtype, (pl.Date, pl.Datetime)):
        name = "date" if isinstance(dtype, pl.Date) else "datetime"
        example = f"{{{name}: '2024-01-31'}}"
        if members:
            return f": write typed literals, e.g. [{example}]"
        return f": write a typed literal, e.g. {example}"
    if family(dtype) == "string":
        return ": quote the value to compare text"
    return ""


@dataclass(frozen=True)
class Combined:
    """`and`/`or` of conditions (a mapping's keys are an `and` too)."""

    any: bool
    parts: tuple[Condition, ...]

    def polars(self) -> pl.Expr:
        join = operator.or_ if self.any else operator.and_
        return functools.reduce(join, (part.polars() for part in self.parts))

    def check(self, schema: Schema) -> list[str]:
        return [problem for part in self.parts for problem in part.check(schema)]


@dataclass(frozen=True)
class Negated:
    part: Condition

    def polars(self) -> pl.Expr:
        return ~self.part.polars()

    def check(self, schema: Schema) -> list[str]:
        return self.part.check(schema)


@dataclass(frozen=True)
class SqlCondition:
    """A SQL condition; its types are checked on one all-null row of the schema (no data)."""

    where: str
    text: str
    expr: Expr

    def polars(self) -> pl.Expr:
        return self.expr.polars()

    def check(self, schema: Schema) -> list[str]:
        problems = self.expr.check(schema)
        if problems:
            return [f"{self.where}{problem}{self._quoted(problem)}" for problem in problems]
        gives = dtype_of(self.expr, schema)
        if gives is not None and not isinstance(gives, (pl.Boolean, pl.Null)):
            return [
                f"{self.where}sql {self.text!r} gives {gives}, not true or false: a filter keeps"
                " the rows its condition is true for"
            ]
        if any(dtype is None for dtype in schema.values()):
            return []
        try:
            row = pl.DataFrame(schema=dict(schema)).clear(1).lazy()
        except (pl.exceptions.PolarsError, TypeError, ValueError):
            return []  # a dtype with no null row: Polars will say at run time
        try:
            row.filter(self.expr.polars()).collect()
        except pl.exceptions.PolarsError as exc:
            detail = str(exc).split("\n\n")[0].strip()
            return [f"{self.where}sql {self.text!r} does not fit the frame: {detail}"]
        return []

    def _quoted(self, problem: str) -> str:
        """`team = "EDM"`: a double-quoted word is a column in SQL, most likely meant as text."""
        for name in self.expr.polars().meta.root_names():
            if f"column '{name}' not found" in problem and f'"{name}"' in self.text:
                return f"; in SQL, \"{name}\" names a column: write '{name}' for text"
        return ""


@dataclass(frozen=True)
class FilterStep:
    """`filter`: one `LazyFrame.filter` of the whole condition, so Polars pushes it down."""

    kind: ClassVar[str] = "filter"
    condition: Condition

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        return list(dict.fromkeys(self.condition.check(schema)))

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.filter(self.condition.polars())

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Rows go, columns stay as they are: the condition's columns choose rows, they are
        not the source of any value."""
        return identity(schema)


# -- parsing -------------------------------------------------------------------------------------


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> FilterStep | None:
    errors = len(found.errors)
    condition = _condition(step["filter"], context, "", found)
    if condition is None or len(found.errors) > errors:
        return None
    return FilterStep(condition)


def _condition(raw: Any, context: str, where: str, found: Findings) -> Condition | None:
    if isinstance(raw, str):
        return _sql(raw, context, where, found)
    if not isinstance(raw, Mapping) or not raw:
        got = "an empty mapping" if isinstance(raw, Mapping) else describe(raw)
        found.errors.append(
            f"{context}: {where}a condition is a mapping of column -> {{operator: value}}"
            f" (or and, or, not), or a SQL string, got {got}"
        )
        return None
    parts: list[Condition | None] = []
    for key, value in raw.items():
        if key in ("and", "or"):
            parts.append(_combined(key, value, context, where, found))
        elif key == "not":
            part = _condition(value, context, f"{where}not: ", found)
            parts.append(None if part is None else Negated(part))
        elif isinstance(key, (str, int)) and not isinstance(key, bool) and str(key):
            parts.append(_tests(str(key), value, context, where, found))  # 2024: a CSV header
        else:
            found.errors.append(f"{context}: {where}column name {key!r} must be a non-empty string")
            parts.append(None)
    good = [part for part in parts if part is not None]
    if len(good) < len(parts):
        return None
    return good[0] if len(good) == 1 else Combined(False, tuple(good))


def _sql(text: str, context: str, where: str, found: Findings) -> Condition | None:
    if not text.strip():
        found.errors.append(f"{context}: {where}a SQL condition is empty")
        return None
    expr = parse_expr({"sql": text}, f"{context}: {where}".removesuffix(": "), found)
    return None if expr is None else SqlCondition(where, text, expr)


def _combined(key: str, value: Any, context: str, where: str, found: Findings) -> Condition | None:
    if not isinstance(value, list) or not value:
        got = "an empty list" if isinstance(value, list) else describe(value)
        found.errors.append(
            f"{context}: {where}{key} takes a non-empty list of conditions, got {got}"
        )
        return None
    parts = [
        _condition(item, context, f"{where}{key} item {number}: ", found)
        for number, item in enumerate(value, 1)
    ]
    good = tuple(part for part in parts if part is not None)
    if len(good) < len(parts):
        return None
    return good[0] if len(good) == 1 else Combined(key == "or", good)


def _tests(key: str, ops: Any, context: str, where: str, found: Findings) -> Condition | None:
    here = f"{context}: {where}column '{key}'"
    column = parse_expr(key, here, found, scalars="path")
    if not isinstance(ops, Mapping) or not ops:
        got = "an empty mapping" if isinstance(ops, Mapping) else describe(ops)
        hint = f" (e.g. {{eq: {show(ops)}}})" if isinstance(ops, (str, int, float)) else ""
        found.errors.append(
            f"{here}: expected a mapping of operator -> value{hint}, got {got}"
            f" (operators: {', '.join(OPERATORS)})"
        )
        return None
    if column is None:
        return None
    tests: list[Condition | None] = [
        _test(key, column, str(op), value, context, where, found) for op, value in ops.items()
    ]
    good = tuple(test for test in tests if test is not None)
    if len(good) < len(tests):
        return None
    return good[0] if len(good) == 1 else Combined(False, good)


def _test(
    key: str, column: Expr, op: str, value: Any, context: str, where: str, found: Findings
) -> Condition | None:
    here = f"{context}: {where}column '{key}': {op}"
    if op not in OPERATORS:
        hint = (
            f" - did you mean '{_ALIASES[op]}'?" if op in _ALIASES else did_you_mean(op, OPERATORS)
        )
        found.errors.append(
            f"{context}: {where}column '{key}': unknown operator {op!r}{hint}"
            f" (operators: {', '.join(OPERATORS)})"
        )
        return None
    if op in _NULLS:
        if value is not None and value is not True:
            other = "not_null" if op == "is_null" else "is_null"
            found.errors.append(
                f"{here} takes true (or no value), got {show(value)}"
                f"{f'; for the opposite write {other}: true' if value is False else ''}"
            )
            return None
        return ColumnTest(where, key, column, op)
    if op in _MEMBERS:
        members = _members(value, here, found)
        return (
            None
            if members is None
            else ColumnTest(where, key, column, op, None, show(value), members)
        )
    if value is None:
        instead = {"eq": "is_null: true", "ne": "not_null: true"}.get(op)
        found.errors.append(
            f"{here} null is never true (a comparison with null is null)"
            + (f": write {instead}" if instead else ": compare with a value")
        )
        return None
    parsed = parse_expr(value, here, found, scalars="literal")
    return None if parsed is None else ColumnTest(where, key, column, op, parsed, show(value))


def _members(value: Any, here: str, found: Findings) -> tuple[Any, ...] | None:
    if not isinstance(value, list) or not value:
        got = "an empty list" if isinstance(value, list) else describe(value)
        found.errors.append(f"{here} takes a non-empty list of values, got {got}")
        return None
    values: list[Any] = []
    for item in value:
        literal = _literal(item, here, found) if isinstance(item, Mapping) else item
        if literal is _REPORTED:
            return None
        if _scalar_kind(literal) is None:
            what = (
                "null never matches (write is_null: true)"
                if literal is None
                else "it is not a literal (a plain value, or a typed one such as {date: ...})"
            )
            found.errors.append(f"{here}: {show(item)} cannot be a value: {what}")
            return None
        values.append(literal)
    kinds = {_scalar_kind(item) for item in values}
    if len(kinds) > 1:
        found.errors.append(
            f"{here}: the values {show(value)} mix {' and '.join(sorted(map(str, kinds)))};"
            " give values of one type"
        )
        return None
    return tuple(values)


_REPORTED = object()


def _literal(item: Mapping, here: str, found: Findings) -> Any:
    """The Python value of a typed literal (`{date: "2024-01-31"}`); `_REPORTED` when it is
    not an expression (reported), itself when it is another expression (for the caller)."""
    expr = parse_expr(item, here, found, scalars="literal")
    if expr is None:
        return _REPORTED
    return pl.select(expr.polars()).item() if isinstance(expr, Lit) else item


def _scalar_kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "booleans"
    if isinstance(value, (int, float)):
        return "numbers"
    if isinstance(value, str):
        return "strings"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return "dates"
    return None


KINDS = (StepKind("filter", ("filter",), _parse),)
