"""Models: the typed shape a dataframe must have, and the reshaping that enforces it.

A model is a contract at the edge of a pipeline (after `load_csv`, before `save_csv`), so a bad
value must stop the run with the model, the column, the dtype and the value in the message, not
flow on as a silent null. Decisions a user of the YAML sees:

- **Precision**: `datetime_utc` and `datetime_nyt` are both millisecond datetimes (finer input
  is truncated), with time zones `UTC` and `America/New_York`.
- **Naive datetimes** (no zone) are wall-clock times *in the model's zone*
  (`replace_time_zone`): for `datetime_utc` that means naive is UTC, and `2024-01-02 09:30`
  in a `datetime_nyt` column is 9:30 in New York, as a CSV exported from a desk there means.
  Zoned input keeps its instant (`convert_time_zone`); strings with an offset are converted too.
  A wall time a daylight-saving change skips or repeats is a cast failure (casts are strict).
- **Strings** become dates and datetimes with `str.to_date` / `str.to_datetime` (format inferred
  from the first non-null value: use ISO 8601), times from `HH:MM:SS[.fff]` or `HH:MM`, booleans
  from `true`/`false`/`1`/`0` in any case. Other casts are Polars strict casts: overflow, `NaN`
  to an integer and unparsable text fail; a float is truncated to an integer (1.9 -> 1).
- **char** is stored as a string; a value longer than one character fails like any bad cast.
- **Failures**: on a DataFrame, :func:`reshape` raises :class:`ModelCastError` itself. A
  LazyFrame stays lazy, so its failure surfaces at collect time as a Polars error that
  :func:`explain_cast_failure` turns into the same :class:`ModelCastError`.
- **Constraints**: `not_null`; `unique` (nulls allowed, as in SQL); `primary` (unique and not
  null). Other names are kept as metadata and not checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

import polars as pl

from capport_dagster.core.config import Entry
from capport_dagster.core.yaml_source import describe, location_at
from capport_dagster.errors import (
    CapportError,
    ConfigError,
    Location,
    ModelCastError,
    Problem,
    TaskError,
    ValidationError,
    did_you_mean,
)

__all__ = [
    "CHECKED_CONSTRAINTS",
    "DTYPES",
    "Model",
    "ModelColumn",
    "Violation",
    "constraint_violations",
    "explain_cast_failure",
    "parse_model",
    "reshape",
]

_NEW_YORK = "America/New_York"

#: Every dtype name a model may use, in the order the docs and error messages list them.
DTYPES: Mapping[str, pl.DataType] = MappingProxyType(
    {
        "int": pl.Int64(),
        "int8": pl.Int8(),
        "int16": pl.Int16(),
        "int32": pl.Int32(),
        "int64": pl.Int64(),
        "uint8": pl.UInt8(),
        "uint16": pl.UInt16(),
        "uint32": pl.UInt32(),
        "uint64": pl.UInt64(),
        "float": pl.Float32(),
        "double": pl.Float64(),
        "str": pl.String(),
        "char": pl.String(),
        "bool": pl.Boolean(),
        "time": pl.Time(),
        "date": pl.Date(),
        "datetime_utc": pl.Datetime("ms", "UTC"),
        "datetime_nyt": pl.Datetime("ms", _NEW_YORK),
        "list[str]": pl.List(pl.String()),
        "list[int]": pl.List(pl.Int64()),
        "list[double]": pl.List(pl.Float64()),
    }
)

#: Constraints checked on the data; any other name is accepted and kept as metadata.
CHECKED_CONSTRAINTS: tuple[str, ...] = ("primary", "unique", "not_null")

_COLUMN_KEYS = ("dtype", "constraints")
_TIME_FORMATS = ("%H:%M:%S%.f", "%H:%M")
_BOOLEANS = {"true": True, "false": False, "1": True, "0": False}

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


@dataclass(frozen=True)
class ModelColumn:
    """One column of a model; `optional` columns may be missing from the data (-> nulls)."""

    name: str
    dtype_name: str
    dtype: pl.DataType
    optional: bool = False
    constraints: tuple[str, ...] = ()


@dataclass(frozen=True)
class Model:
    """A named, ordered set of typed columns, from one entry of the `model` section."""

    name: str
    columns: tuple[ModelColumn, ...]
    location: Location = field(default_factory=Location)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    @property
    def checks(self) -> tuple[tuple[str, str], ...]:
        """(column, constraint) pairs checked on the data: one Dagster asset check each."""
        return tuple(
            (column.name, constraint)
            for column in self.columns
            for constraint in column.constraints
            if constraint in CHECKED_CONSTRAINTS
        )


@dataclass(frozen=True)
class Violation:
    """A checked constraint that the data breaks; `examples` are distinct offending values."""

    column: str
    constraint: str
    count: int
    examples: tuple[Any, ...] = ()

    def __str__(self) -> str:
        rows = f"{self.count} row{'s' if self.count != 1 else ''}"
        text = f"column '{self.column}' breaks '{self.constraint}' in {rows}"
        if self.examples:
            text += f" (e.g. {', '.join(_show(value) for value in self.examples)})"
        return text


# -- parsing -------------------------------------------------------------------------------------


def parse_model(entry: Entry) -> Model:
    """Read one `model` entry; every bad column is reported at once, not just the first."""
    location = entry.location
    body = entry.body
    if not isinstance(body, Mapping):
        raise ConfigError(
            f"a model is a mapping of column name -> dtype, got {describe(body)}", location
        )
    if not body:
        raise ConfigError("a model needs at least one column", location)
    columns: list[ModelColumn] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for key, spec in body.items():
        messages: list[str] = []
        column = _parse_column(key, spec, messages)
        if column is not None and column.name in seen:
            messages.append(f"column '{column.name}' is defined twice")
        if column is not None:
            seen.add(column.name)
            columns.append(column)
        where = location_at(location, body, key)
        problems += [Problem(where, message) for message in messages]
    ValidationError.raise_if_any(problems)
    return Model(entry.name, tuple(columns), location)


def _parse_column(key: object, spec: object, messages: list[str]) -> ModelColumn | None:
    if not isinstance(key, str) or key.rstrip("?") == "":
        messages.append(f"column name {key!r} must be a non-empty string")
        return None
    optional = key.endswith("?")
    name = key[:-1] if optional else key
    where = f"column '{name}'"
    errors = len(messages)
    constraints: tuple[str, ...] = ()
    dtype_name = spec
    if isinstance(spec, Mapping):
        for k in spec:
            if k not in _COLUMN_KEYS:
                messages.append(
                    f"{where}: unknown key {k!r}{did_you_mean(k, _COLUMN_KEYS)}"
                    " (a column mapping takes dtype and constraints)"
                )
        constraints = _parse_constraints(spec.get("constraints"), where, messages)
        if "dtype" not in spec:
            messages.append(f"{where}: dtype is required (valid dtypes: {', '.join(DTYPES)})")
            return None
        dtype_name = spec["dtype"]
    if not isinstance(dtype_name, str):
        messages.append(
            f"{where}: dtype must be a name or a mapping with dtype and constraints,"
            f" got {describe(dtype_name)} (valid dtypes: {', '.join(DTYPES)})"
        )
    elif dtype_name not in DTYPES:
        messages.append(
            f"{where}: unknown dtype {dtype_name!r}{did_you_mean(dtype_name, DTYPES)}"
            f" (valid dtypes: {', '.join(DTYPES)})"
        )
    if len(messages) > errors or not isinstance(dtype_name, str):
        return None
    return ModelColumn(name, dtype_name, DTYPES[dtype_name], optional, constraints)


def _parse_constraints(value: object, where: str, messages: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        messages.append(
            f"{where}: constraints must be a list of names such as"
            f" [{', '.join(CHECKED_CONSTRAINTS)}], got {describe(value)}"
        )
        return ()
    return tuple(dict.fromkeys(items))


# -- reshaping -----------------------------------------------------------------------------------


def reshape(frame: FrameT, model: Model, *, location: Location | None = None) -> FrameT:
    """Select exactly the model's columns, in model order, cast strictly to the model's dtypes.

    A LazyFrame stays lazy: only its schema is resolved, no data is read here.
    """
    location = location or Location()
    schema = frame.lazy().collect_schema()
    plan = _plan(schema, model, location)
    exprs = [strict for _, strict, _ in plan]
    if isinstance(frame, pl.LazyFrame):
        return frame.select(exprs)
    try:
        return frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise _diagnose(frame, model, plan, exc, location) from exc


_Plan = list[tuple[ModelColumn, pl.Expr, pl.Expr | None]]  # column, strict, failed mask


def _plan(schema: pl.Schema, model: Model, location: Location) -> _Plan:
    """Per column: the strict expression, and a mask of the rows it rejects (None: it can't)."""
    missing = [c.name for c in model.columns if c.name not in schema and not c.optional]
    if missing:
        raise TaskError(_missing_message(model, missing, list(schema)), location)
    plan: _Plan = []
    for column in model.columns:
        if column.name not in schema:
            plan.append((column, pl.lit(None, dtype=column.dtype).alias(column.name), None))
            continue
        source = schema[column.name]
        src = pl.col(column.name)
        strict, lenient = _conversion(src, source, column, model, location)
        plan.append((column, strict.alias(column.name), _failed(src, lenient, column.dtype)))
    return plan


def _missing_message(model: Model, missing: list[str], present: list[str]) -> str:
    shown = ", ".join(present[:20]) + (", ..." if len(present) > 20 else "")
    if len(missing) == 1:
        hint = did_you_mean(missing[0], present)
        return (
            f"model '{model.name}': required column '{missing[0]}' is missing{hint}"
            f" (the data has columns: {shown})"
        )
    names = ", ".join(f"'{name}'" for name in missing)
    return (
        f"model '{model.name}': required columns {names} are missing"
        f" (the data has columns: {shown})"
    )


def _conversion(
    src: pl.Expr, source: pl.DataType, column: ModelColumn, model: Model, location: Location
) -> tuple[pl.Expr, pl.Expr | None]:
    """The strict expression, and a lenient twin (null where strict fails) to find bad values."""
    target = column.dtype
    if column.dtype_name == "char":
        text = src.cast(pl.String)
        lenient = pl.when(text.str.len_chars() <= 1).then(text)
        return _checked(lenient, text), lenient
    if source == target or isinstance(source, pl.Null):
        return src.cast(target), None
    if _nested(source) != _nested(target):
        raise ModelCastError(
            f"model '{model.name}', column '{column.name}': cannot cast a column of type"
            f" {_label(source)} to {column.dtype_name}",
            location,
        )
    if isinstance(source, pl.String):
        if isinstance(target, pl.Boolean):
            lenient = src.str.to_lowercase().replace_strict(
                _BOOLEANS, default=None, return_dtype=pl.Boolean
            )
            return _checked(lenient, src), lenient
        if isinstance(target, pl.Time):
            lenient = pl.coalesce([src.str.to_time(f, strict=False) for f in _TIME_FORMATS])
            return _checked(lenient, src), lenient
        if isinstance(target, pl.Date):
            return src.str.to_date(strict=True), src.str.to_date(strict=False)
        if isinstance(target, pl.Datetime):
            zone = target.time_zone
            strict = src.str.to_datetime(time_unit="ms", time_zone=zone, strict=True)
            lenient = src.str.to_datetime(
                time_unit="ms", time_zone=zone, strict=False, ambiguous="null"
            )
            return strict, lenient
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime | pl.Date):
        return _zoned(src, source, target, lenient=False), _zoned(src, source, target, True)
    if isinstance(source, pl.Datetime) and isinstance(target, pl.Date | pl.Time):
        converted = src.dt.date() if isinstance(target, pl.Date) else src.dt.time()
        return converted, None
    return src.cast(target, strict=True), src.cast(target, strict=False)


def _zoned(src: pl.Expr, source: pl.DataType, target: pl.Datetime, lenient: bool) -> pl.Expr:
    zone = target.time_zone or "UTC"
    if isinstance(source, pl.Datetime) and source.time_zone is not None:
        return src.dt.convert_time_zone(zone).dt.cast_time_unit("ms")
    naive = src.cast(pl.Datetime("ms"))
    if lenient:
        return naive.dt.replace_time_zone(zone, ambiguous="null", non_existent="null")
    return naive.dt.replace_time_zone(zone)


def _nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, pl.List | pl.Array | pl.Struct)


def _checked(lenient: pl.Expr, text: pl.Expr) -> pl.Expr:
    """Make a lenient parse strict for checks Polars has no strict form of (char, bool, time).

    The values the lenient parse lost are cast strictly to an enum that has none of them, so
    Polars itself raises its conversion error (column and values named) at collect time, in
    every engine and streaming too: no Python function runs per batch (one did: 40% slower on
    5M rows, and before it was marked elementwise, it kept the whole query out of streaming).
    """
    failed = pl.when(text.is_not_null() & lenient.is_null()).then(text)
    return pl.when(failed.cast(_NO_VALUE, strict=True).is_null()).then(lenient)


# An enum whose only category is a text no frame holds: a checked column's failed values are
# cast to it, and fail.
_NO_VALUE = pl.Enum(["\x00capport: no value is valid here\x00"])
_CHECKED_LABEL = "enum"


def _failed(src: pl.Expr, lenient: pl.Expr | None, target: pl.DataType) -> pl.Expr | None:
    """Rows whose value the strict cast rejects: the lenient cast lost a value there."""
    if lenient is None:
        return None
    if isinstance(target, pl.List):  # a bad element becomes a null inside the list
        kept = lenient.list.drop_nulls().list.len()
        return src.list.drop_nulls().list.len().ne_missing(kept)
    return src.is_not_null() & lenient.is_null()


def _diagnose(
    frame: pl.DataFrame, model: Model, plan: _Plan, exc: Exception, location: Location
) -> CapportError:
    """Find the first column (in model order) with a value its cast rejects, and show it."""
    explained = explain_cast_failure(exc, [model], location)
    if explained is not None and _DST.search(str(exc)):  # already says why, beyond the value
        return explained
    checks = [(column, failed) for column, _, failed in plan if failed is not None]
    exprs: list[pl.Expr] = []
    for i, (column, failed) in enumerate(checks):
        example = pl.col(column.name).filter(failed).first()
        exprs += [failed.sum().alias(f"count_{i}"), example.alias(f"value_{i}")]
    try:  # a lenient twin can fail too (a skipped DST wall time in another column)
        row = frame.select(exprs).row(0) if exprs else ()
    except pl.exceptions.PolarsError:
        row = ()
    for i, (column, _) in enumerate(checks[: len(row) // 2]):
        count, value = row[2 * i], row[2 * i + 1]
        if count:
            return _cast_error(model, column, _show(value), count, frame.height, location)
    return explained or TaskError(f"model '{model.name}': {_first_line(exc)}", location)


def _cast_error(
    model: Model,
    column: ModelColumn,
    value: str,
    count: int,
    total: int | None,
    location: Location,
) -> ModelCastError:
    """`total` is None for a lazy failure: Polars counts per batch there, so only "at least"."""
    plural = "s" if count != 1 else ""
    tally = (
        f"at least {count} value{plural} failed"
        if total is None
        else f"{count} of {total} value{'s' if total != 1 else ''} failed"
    )
    return ModelCastError(
        f"model '{model.name}', column '{column.name}': cannot cast value {value} to"
        f" {column.dtype_name} ({tally})",
        location,
    )


# -- explaining lazy failures --------------------------------------------------------------------

_CONVERSION = re.compile(
    r"conversion from `(?P<source>[^`]*)` to `(?P<target>[^`]*)` failed in column"
    r" '(?P<column>[^']*)' for (?P<count>\d+) out of (?P<total>\d+) values: \[(?P<values>.*)\]"
)
_DST = re.compile(
    r"datetime '(?P<value>[^']*)' is (?P<kind>non-existent|ambiguous)"
    r" in time zone '(?P<zone>[^']*)'"
)
_EXPRESSION_COLUMN = re.compile(r'col\("(?P<column>(?:[^"\\]|\\.)*)"\)')
_STRING = r'"(?:[^"\\]|\\.)*"'
# the first of the values Polars lists: a string, a list (older Polars) or a bare number
_FIRST_VALUE = re.compile(rf'\s*(\[(?:{_STRING}|[^\]"])*\]|{_STRING}|[^,\]]+)')


def explain_cast_failure(
    exc: Exception, models: Iterable[Model], location: Location
) -> ModelCastError | None:
    """Turn the Polars error of a lazy model cast into a ModelCastError, or None if it is not one.

    Matches the column by name and target dtype, so a failing cast of the same column name in
    a user's transform is not blamed on a model.
    """
    text = str(exc)
    if match := _CONVERSION.search(text):
        name = match["column"]
        if not name or name.startswith("_POLARS_TMP"):  # list casts, the streaming engine
            name = _expression_column(text)
        first = _FIRST_VALUE.match(match["values"])
        value = _polars_value(first.group(1)) if first else "?"
        found = _find(models, name, lambda column: match["target"] in _labels(column))
        if found is None:
            return None
        return _cast_error(*found, value, int(match["count"]), None, location)
    if match := _DST.search(text):
        zone = match["zone"]
        found = _find(models, _expression_column(text), lambda c: _zone(c.dtype) == zone)
        if found is None:
            return None
        model, column = found
        why = "skips" if match["kind"] == "non-existent" else "repeats"
        return ModelCastError(
            f"model '{model.name}', column '{column.name}': cannot cast value"
            f" '{match['value']}' to {column.dtype_name} (a daylight saving change"
            f" {why} that wall time in {zone})",
            location,
        )
    return None


def _find(
    models: Iterable[Model], name: str | None, fits: Callable[[ModelColumn], bool]
) -> tuple[Model, ModelColumn] | None:
    """The model column a failure belongs to; without a name, only an unambiguous match."""
    found = [(m, c) for m in models for c in m.columns if fits(c)]
    if name is not None:
        return next(((m, c) for m, c in found if c.name == name), None)
    return found[0] if len(found) == 1 else None


def _zone(dtype: pl.DataType) -> str | None:
    return dtype.time_zone if isinstance(dtype, pl.Datetime) else None


def _expression_column(text: str) -> str | None:
    match = _EXPRESSION_COLUMN.search(text)
    return json.loads(f'"{match["column"]}"') if match else None


def _polars_value(token: str) -> str:
    """A value from a Polars message, shown as :func:`reshape` shows values it finds itself."""
    token = token.strip()
    try:
        return _show(json.loads(token))
    except ValueError:
        return token


_SHORT_NAMES: Mapping[type, str] = {
    pl.Int8: "i8",
    pl.Int16: "i16",
    pl.Int32: "i32",
    pl.Int64: "i64",
    pl.UInt8: "u8",
    pl.UInt16: "u16",
    pl.UInt32: "u32",
    pl.UInt64: "u64",
    pl.Float32: "f32",
    pl.Float64: "f64",
    pl.String: "str",
    pl.Boolean: "bool",
    pl.Date: "date",
    pl.Time: "time",
}


def _label(dtype: pl.DataType) -> str:
    """The name Polars prints for a dtype in its errors (`u64`, `datetime[ms, UTC]`)."""
    if isinstance(dtype, pl.Datetime):
        zone = f", {dtype.time_zone}" if dtype.time_zone else ""
        return f"datetime[{dtype.time_unit}{zone}]"
    if isinstance(dtype, pl.List):
        return f"list[{_label(dtype.inner)}]"
    return _SHORT_NAMES.get(type(dtype), str(dtype))


def _labels(column: ModelColumn) -> set[str]:
    """Target names a failed cast to this column may print (a list cast names its inner dtype)."""
    labels = {column.dtype_name, _label(column.dtype)}
    if column.dtype_name == "char" or isinstance(column.dtype, pl.Boolean | pl.Time):
        labels.add(_CHECKED_LABEL)  # see `_checked`
    if isinstance(column.dtype, pl.List):
        labels.add(_label(column.dtype.inner))
    return labels


# -- constraints ---------------------------------------------------------------------------------


def constraint_violations(
    frame: pl.LazyFrame | pl.DataFrame,
    model: Model,
    examples: int = 5,
    *,
    location: Location | None = None,
) -> list[Violation]:
    """Check `primary`, `unique` and `not_null` for all columns in one query; [] when all pass."""
    checks = model.checks
    if not checks:
        return []
    lazy = frame.lazy()
    present = lazy.collect_schema()
    missing = sorted({name for name, _ in checks if name not in present})
    if missing:
        raise TaskError(_missing_message(model, missing, list(present)), location or Location())
    exprs: list[pl.Expr] = []
    for i, (name, constraint) in enumerate(checks):
        col = pl.col(name)
        if constraint == "not_null":
            bad = col.is_null()
        elif constraint == "unique":
            bad = col.is_duplicated() & col.is_not_null()
        else:
            bad = col.is_null() | col.is_duplicated()
        found = col.filter(bad).unique(maintain_order=True).head(examples).implode()
        exprs += [bad.sum().alias(f"count_{i}"), found.alias(f"examples_{i}")]
    row = lazy.select(exprs).collect().row(0)
    return [
        Violation(name, constraint, row[2 * i], tuple(row[2 * i + 1]))
        for i, (name, constraint) in enumerate(checks)
        if row[2 * i]
    ]


# -- helpers -------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as the messages show it: text quoted, NaN spelt as Polars spells it."""
    if isinstance(value, float) and value != value:
        return "NaN"
    return repr(value) if isinstance(value, str) or value is None else str(value)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
