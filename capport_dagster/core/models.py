"""Models: the typed shape a dataframe must have, and the reshaping that enforces it.

A model is a contract at the edge of a pipeline (after `load_csv`, before `save_csv`), so a bad
value must stop the run with the model, the column, the dtype and the value in the message, not
flow on as a silent null or a silently different value. Decisions a user of the YAML sees:

- **Precision**: `datetime_utc` and `datetime_nyt` are both millisecond datetimes (finer input
  is truncated), with time zones `UTC` and `America/New_York`.
- **Text to dates and times** is ISO 8601 unless the column gives a `format` (strftime, as
  Polars reads it; only for date, time, datetime_utc and datetime_nyt, checked when the config
  loads): dates `YYYY-MM-DD`; datetimes `YYYY-MM-DD`, then `T` or a space, `HH:MM`, optional
  `:SS` and fraction, optional offset (`Z`, `+02`, `+0200`, `+02:00`); times `HH:MM[:SS[.fff]]`.
  Anything else is a cast failure: `03/10/2024` is never guessed as day- or month-first.
- **Wall times and instants**: a datetime without an offset (text, or a naive datetime) is a
  wall-clock time *in the model's zone* (`2024-01-02 09:30` in a `datetime_nyt` column is 9:30
  in New York); one with an offset, or zoned, keeps its instant. Each value is read on its own,
  so one column may mix both. A wall time a daylight-saving change skips or repeats fails.
- **Numbers to dates and datetimes** are Unix epoch *seconds* (not Polars' milliseconds or
  days): 1700000000 is 2023-11-14 22:13:20 UTC; a date is that instant's UTC date. Fractions
  are kept to the millisecond; values outside years 1..9999 (and NaN) fail. A number into
  `time` is refused when the plan is built.
- **Floats**: a finite value that would become infinity (`1e40` into `float`, `1e400` from
  text) fails; text that spells infinity (`inf`) is infinity.
- **Other text**: booleans from `true`/`false`/`1`/`0` in any case. Other casts are Polars
  strict casts: overflow, `NaN` to an integer and unparsable text fail; a float is truncated
  to an integer (1.9 -> 1).
- **char** is stored as a string; a value longer than one character fails like any bad cast.
- **Reading text files**: `load_csv` reads each model column as `Model.reading_dtypes` says
  (integers as themselves, floats as f64, the rest as text for the rules above), never as the
  first rows suggest.
- **Failures**: on a DataFrame, :func:`reshape` raises :class:`ModelCastError` itself. A
  LazyFrame stays lazy, so its failure surfaces at collect time as a Polars error that
  :func:`explain_cast_failure` turns into the same message (values the CSV reader refused
  included). Checks Polars has no strict form of are expressions too (`_refusing`), so a lazy
  plan stays in the streaming engine.
- **Constraints**: `not_null`; `unique` (nulls allowed, as in SQL); `primary` (unique and not
  null). Other names are kept as metadata and not checked. Checking them on data is
  `core/constraints.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from types import MappingProxyType
from typing import NamedTuple, TypeVar

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
    "FORMAT_DTYPES",
    "Model",
    "ModelColumn",
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

_COLUMN_KEYS = ("dtype", "constraints", "format")
#: dtypes whose text values a column's `format` may describe (strftime, as Polars reads it).
FORMAT_DTYPES: tuple[str, ...] = ("date", "time", "datetime_utc", "datetime_nyt")
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
    format: str | None = None  # how text is read (date, time and datetime columns only)


@dataclass(frozen=True)
class Model:
    """A named, ordered set of typed columns, from one entry of the `model` section."""

    name: str
    columns: tuple[ModelColumn, ...]
    location: Location = field(default_factory=Location)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def schema(self) -> pl.Schema:
        """What `reshape` gives: exactly the model's columns, in its order, with its dtypes."""
        return pl.Schema({column.name: column.dtype for column in self.columns})

    def reading_dtypes(self) -> dict[str, pl.DataType]:
        """The dtype a text file's reader gives each column, before :func:`reshape` casts it.

        Inferred from the first rows, a column can get a dtype that loses or refuses later
        valid values (`00123` -> 123, integers then `1.5`, a u64 above the i64 range, empty
        first rows -> str). Integers are read as their own dtype (the reader's parse is the
        strict text-to-integer cast, and the fastest); floats as f64, so `reshape` can refuse
        an f32 overflow; all the model parses itself (dates, times, booleans, char, lists) as
        text, so the model's rules apply, not the reader's.
        """
        dtypes: dict[str, pl.DataType] = {}
        for column in self.columns:
            if column.dtype.is_integer():
                dtypes[column.name] = column.dtype
            elif column.dtype.is_float():
                dtypes[column.name] = pl.Float64()
            else:
                dtypes[column.name] = pl.String()
        return dtypes

    @property
    def checks(self) -> tuple[tuple[str, str], ...]:
        """(column, constraint) pairs checked on the data: one Dagster asset check each."""
        return tuple(
            (column.name, constraint)
            for column in self.columns
            for constraint in column.constraints
            if constraint in CHECKED_CONSTRAINTS
        )


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
    text_format = None
    if isinstance(spec, Mapping):
        for k in spec:
            if k not in _COLUMN_KEYS:
                messages.append(
                    f"{where}: unknown key {k!r}{did_you_mean(k, _COLUMN_KEYS)}"
                    " (a column mapping takes dtype, constraints and format)"
                )
        constraints = _parse_constraints(spec.get("constraints"), where, messages)
        if "dtype" not in spec:
            messages.append(f"{where}: dtype is required (valid dtypes: {', '.join(DTYPES)})")
            return None
        dtype_name = spec["dtype"]
        text_format = spec.get("format")
    if not isinstance(dtype_name, str):
        messages.append(
            f"{where}: dtype must be a name or a mapping with dtype, constraints and format,"
            f" got {describe(dtype_name)} (valid dtypes: {', '.join(DTYPES)})"
        )
    elif dtype_name not in DTYPES:
        messages.append(
            f"{where}: unknown dtype {dtype_name!r}{did_you_mean(dtype_name, DTYPES)}"
            f" (valid dtypes: {', '.join(DTYPES)})"
        )
    elif text_format is not None:
        _check_format(text_format, dtype_name, where, messages)
    if len(messages) > errors or not isinstance(dtype_name, str):
        return None
    return ModelColumn(name, dtype_name, DTYPES[dtype_name], optional, constraints, text_format)


# A moment each field of which writes differently (no field is 0 or 1, hour != month...).
_SAMPLE = datetime(2001, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)


def _check_format(value: object, dtype_name: str, where: str, messages: list[str]) -> None:
    """A format must suit the dtype, and read back the date (or hour) of a value written with
    it: Polars reads a pattern that lacks a field as all nulls or fills it in (`%Y-%m` reads no
    date, `%Y` reads 1 January), which would fail or corrupt every row of a run instead."""
    if dtype_name not in FORMAT_DTYPES:
        messages.append(
            f"{where}: format is for {', '.join(FORMAT_DTYPES[:-1])} and {FORMAT_DTYPES[-1]}"
            f" columns (how their text is read), not {dtype_name}"
        )
        return
    if not isinstance(value, str) or not value:
        messages.append(
            f"{where}: format must be a strftime pattern such as '%m/%d/%Y', got {describe(value)}"
        )
        return
    column = ModelColumn("c", dtype_name, DTYPES[dtype_name], format=value)
    try:
        sample = pl.Series([_SAMPLE], dtype=pl.Datetime("ms", "UTC"))
        # Polars reads %#z (minutes optional) but cannot write it.
        written = sample.dt.strftime(value.replace("%#z", "%:z")).item()
        cast = _text_conversion(pl.lit(written, dtype=pl.String), column)
        read = pl.select(cast.lenient).item()
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        messages.append(
            f"{where}: format {value!r} is not a strftime pattern Polars knows ({_first_line(exc)})"
        )
        return
    if isinstance(read, datetime):
        kept = read.astimezone(UTC).date() == _SAMPLE.date()
    elif isinstance(read, time):
        kept = read.hour == _SAMPLE.hour
    else:
        kept = read == _SAMPLE.date()
    if not kept:
        what = "a time of day" if dtype_name == "time" else "a whole date"
        messages.append(
            f"{where}: format {value!r} does not read {what}: {written!r}, a value written"
            f" with it, reads back as {_show(read)}"
        )


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
    exprs = [step.strict for step in plan]
    if isinstance(frame, pl.LazyFrame):
        return frame.select(exprs)
    try:
        return frame.select(exprs)
    except pl.exceptions.PolarsError as exc:
        raise _diagnose(frame, model, plan, exc, location) from exc


@dataclass(frozen=True)
class _Step:
    """One column of a reshape: how it is cast, and how an eager failure finds its bad value."""

    column: ModelColumn
    strict: pl.Expr  # the column as the model wants it; fails the query on a bad value
    failed: pl.Expr | None  # rows `strict` rejects; None: it rejects none
    shown: pl.Expr  # the values as a lazy failure quotes them


_Plan = list[_Step]


def _plan(schema: pl.Schema, model: Model, location: Location) -> _Plan:
    """Per column: the strict expression, and a mask of the rows it rejects (None: it can't)."""
    missing = [c.name for c in model.columns if c.name not in schema and not c.optional]
    if missing:
        raise TaskError(_missing_message(model, missing, list(schema)), location)
    plan: _Plan = []
    for column in model.columns:
        src = pl.col(column.name)
        if column.name not in schema:
            none = pl.lit(None, dtype=column.dtype).alias(column.name)
            plan.append(_Step(column, none, None, src))
            continue
        cast = _conversion(src, schema[column.name], column, model, location)
        failed = _failed(src, cast.lenient, column.dtype)
        shown = src if cast.shown is None else cast.shown
        plan.append(_Step(column, cast.strict.alias(column.name), failed, shown))
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


class _Cast(NamedTuple):
    strict: pl.Expr
    lenient: pl.Expr | None  # null where `strict` fails; None: `strict` cannot fail
    shown: pl.Expr | None = None  # what a failure quotes, when not the source value itself


def _conversion(
    src: pl.Expr, source: pl.DataType, column: ModelColumn, model: Model, location: Location
) -> _Cast:
    """The strict expression, and a lenient twin (null where strict fails) to find bad values."""
    target = column.dtype
    if column.dtype_name == "char":
        text = src.cast(pl.String)
        lenient = pl.when(text.str.len_chars() <= 1).then(text)
        return _Cast(_checked(lenient, text), lenient, text)
    if source == target or isinstance(source, pl.Null):
        return _Cast(src.cast(target), None)
    if _nested(source) != _nested(target) or (source.is_numeric() and isinstance(target, pl.Time)):
        # A number is no time of day: Polars would read it as nanoseconds since midnight.
        raise ModelCastError(
            f"model '{model.name}', column '{column.name}': cannot cast a column of type"
            f" {_label(source)} to {column.dtype_name}",
            location,
        )
    if isinstance(source, pl.String) and isinstance(
        target, pl.Boolean | pl.Time | pl.Date | pl.Datetime
    ):
        return _text_conversion(src, column)
    if target.is_float() and isinstance(source, pl.String | pl.Float64):
        return _float_conversion(src, source, target)
    if isinstance(target, pl.Datetime | pl.Date) and source.is_numeric():
        return _epoch_conversion(src, source, target)
    if isinstance(target, pl.Datetime) and isinstance(source, pl.Datetime | pl.Date):
        return _Cast(_zoned(src, source, target, lenient=False), _zoned(src, source, target, True))
    if isinstance(source, pl.Datetime) and isinstance(target, pl.Date | pl.Time):
        return _Cast(src.dt.date() if isinstance(target, pl.Date) else src.dt.time(), None)
    return _Cast(src.cast(target, strict=True), src.cast(target, strict=False))


def _text_conversion(text: pl.Expr, column: ModelColumn) -> _Cast:
    """Booleans, times, dates and datetimes from text: the model's own rules, never Polars'
    format inference (which takes `03/10/2024` day-first and one format for the whole column)."""
    target = column.dtype
    if isinstance(target, pl.Boolean):
        lenient = text.str.to_lowercase().replace_strict(
            _BOOLEANS, default=None, return_dtype=pl.Boolean
        )
        return _Cast(_checked(lenient, text), lenient)
    if isinstance(target, pl.Time):
        if column.format is not None:
            return _Cast(
                text.str.to_time(column.format, strict=True),
                text.str.to_time(column.format, strict=False),
            )
        lenient = pl.coalesce([text.str.to_time(f, strict=False) for f in _TIME_FORMATS])
        return _Cast(_checked(lenient, text), lenient)
    if isinstance(target, pl.Date):
        pattern = column.format or "%Y-%m-%d"
        return _Cast(
            text.str.to_date(pattern, strict=True), text.str.to_date(pattern, strict=False)
        )
    assert isinstance(target, pl.Datetime)
    return _datetime_from_text(text, column.format, target.time_zone or "UTC")


# ISO 8601 text after `T` that ends in an offset: Z, +hh, +hhmm or +hh:mm.
_ISO_OFFSET = r"T.*(?:Z|[+-]\d{2}(?::?\d{2})?)$"


def _datetime_from_text(text: pl.Expr, pattern: str | None, zone: str) -> _Cast:
    """Each value on its own: wall-clock text is a time in `zone`, text with an offset (or epoch
    seconds, `%s`) an instant, so one column may mix both.

    Without a pattern, ISO 8601 (`T` or a space between date and time, minutes, seconds and a
    fraction optional, then an optional offset). `YYYY-MM-DD HH:MM:SS`, the common shape, is
    read first, by Polars' fast path; each other value is routed (`when`) to the one format its
    shape needs, so no value is parsed against every format (that was 3x slower).
    """
    walls: list[pl.Expr] = []  # naive datetimes
    instants: list[pl.Expr] = []  # UTC datetimes
    if pattern is None:
        iso = text.str.replace(" ", "T", literal=True)
        common = _to_datetime(iso, "%Y-%m-%dT%H:%M:%S")
        rest = pl.when(common.is_null()).then(iso)
        timed = rest.str.contains("T", literal=True)
        offset = rest.str.contains(_ISO_OFFSET)
        seconds = rest.str.contains(r"T\d{2}:\d{2}:")
        walls += [
            common,
            _to_datetime(pl.when(~timed).then(rest), "%Y-%m-%d"),
            _to_datetime(pl.when(timed & ~offset & ~seconds).then(rest), "%Y-%m-%dT%H:%M"),
            _to_datetime(pl.when(~offset & seconds).then(rest), "%Y-%m-%dT%H:%M:%S%.f"),
        ]
        instants += [
            _to_datetime(pl.when(offset & ~seconds).then(rest), "%Y-%m-%dT%H:%M%#z"),
            _to_datetime(pl.when(offset & seconds).then(rest), "%Y-%m-%dT%H:%M:%S%.f%#z"),
        ]
    else:
        parsed = _to_datetime(text, pattern)
        if _reads_offsets(pattern):
            instants.append(parsed)
        elif "%s" in pattern:  # seconds since the epoch name an instant, in UTC
            instants.append(parsed.dt.replace_time_zone("UTC"))
        else:
            walls.append(parsed)
    moments = [instant.dt.convert_time_zone(zone) for instant in instants]
    strict, lenient = list(moments), list(moments)
    if walls:
        wall = pl.coalesce(walls)
        strict.append(wall.dt.replace_time_zone(zone))  # a skipped or repeated wall time fails
        lenient.append(wall.dt.replace_time_zone(zone, ambiguous="null", non_existent="null"))
    parsed_any = pl.any_horizontal([value.is_not_null() for value in walls + instants])
    refused = _refusing(text.is_not_null() & ~parsed_any, text, pl.coalesce(strict))
    return _Cast(refused, pl.coalesce(lenient))


def _to_datetime(text: pl.Expr, pattern: str) -> pl.Expr:
    return text.str.to_datetime(pattern, time_unit="ms", strict=False)


def _reads_offsets(pattern: str) -> bool:
    """Whether Polars reads this pattern as instants (it names an offset) or as wall times."""
    empty = pl.LazyFrame(schema={"c": pl.String})
    dtype = empty.select(_to_datetime(pl.col("c"), pattern)).collect_schema()["c"]
    return isinstance(dtype, pl.Datetime) and dtype.time_zone is not None


def _float_conversion(src: pl.Expr, source: pl.DataType, target: pl.DataType) -> _Cast:
    """A finite number too large for the float type would become infinity: refused instead.
    Text that spells infinity (`inf`, `-Infinity`) stays infinite, as Polars reads it."""
    value = src.cast(target, strict=False)
    if isinstance(source, pl.String):
        text, infinite = src, src.str.contains(r"(?i)^[+-]?inf(inity)?$")
    else:
        text, infinite = src.cast(pl.String), src.is_infinite()
    overflow = value.is_infinite() & ~infinite
    strict = _refusing(overflow, text, src.cast(target, strict=True))
    return _Cast(strict, pl.when(~overflow).then(value), text)


# Epoch seconds that name a time between 0001-01-01 and 9999-12-31 (UTC), as Python can hold.
_EPOCH_SECONDS = (-62_135_596_800, 253_402_300_799)


def _epoch_conversion(src: pl.Expr, source: pl.DataType, target: pl.DataType) -> _Cast:
    """Numbers are seconds since 1970-01-01 UTC (Unix time), not Polars' milliseconds (an
    integer cast to a datetime), so 1700000000 is 2023-11-14 22:13:20 UTC, not 1970-01-20;
    a date is that instant's date in UTC. Fractions are kept to the millisecond."""
    inside = src.cast(pl.Float64).is_between(*_EPOCH_SECONDS)  # NaN and inf are not
    if source.is_integer():
        millis = src.cast(pl.Int64, strict=False) * 1000
    else:
        millis = (src.cast(pl.Float64) * 1000).floor()
    instant = pl.when(inside).then(millis).cast(pl.Int64).cast(pl.Datetime("ms"))
    utc = instant.dt.replace_time_zone("UTC")
    if isinstance(target, pl.Datetime):
        value = utc.dt.convert_time_zone(target.time_zone or "UTC")
    else:
        value = utc.dt.date()
    text = src.cast(pl.String)
    return _Cast(_refusing(src.is_not_null() & ~inside, text, value), value, text)


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
    """Make a lenient parse strict for checks Polars has no strict form of (char, bool, time)."""
    return _refusing(text.is_not_null() & lenient.is_null(), text, lenient)


def _refusing(bad: pl.Expr, text: pl.Expr, value: pl.Expr) -> pl.Expr:
    """`value`, but the query fails on the rows where `bad` holds, quoting `text`.

    Those rows' texts are cast strictly to an enum that has none of them, so Polars itself
    raises its conversion error (column and values named) at collect time, in every engine and
    streaming too: no Python function runs per batch (one did: 40% slower on 5M rows, and
    before it was marked elementwise, it kept the whole query out of streaming).
    """
    failed = pl.when(bad).then(text)
    return pl.when(failed.cast(_NO_VALUE, strict=True).is_null()).then(value)


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
    checks = [step for step in plan if step.failed is not None]
    exprs: list[pl.Expr] = []
    for i, step in enumerate(checks):
        assert step.failed is not None
        example = step.shown.filter(step.failed).first()
        exprs += [step.failed.sum().alias(f"count_{i}"), example.alias(f"value_{i}")]
    try:  # a lenient twin can fail too (a skipped DST wall time in another column)
        row = frame.select(exprs).row(0) if exprs else ()
    except pl.exceptions.PolarsError:
        row = ()
    for i, step in enumerate(checks[: len(row) // 2]):
        count, value = row[2 * i], row[2 * i + 1]
        if count:
            return _cast_error(model, step.column, _show(value), count, frame.height, location)
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
# The CSV reader stops at the first field it cannot read as the dtype it was given.
_CSV_PARSE = re.compile(
    r"could not parse `(?P<value>.*?)` as dtype `(?P<target>[^`]*)` at column"
    r" '(?P<column>.*?)' \(column number \d+\)",
    re.DOTALL,
)
_EXPRESSION_COLUMN = re.compile(r'col\("(?P<column>(?:[^"\\]|\\.)*)"\)')
_SUBEXPRESSION_COLUMN = re.compile(
    r'col\("__POLARS_CSER_\w+"\)\.alias\("(?P<column>(?:[^"\\]|\\.)*)"\)'
)
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
        if not name or _internal(name):  # list casts, the streaming engine
            name = _expression_column(text)
        first = _FIRST_VALUE.match(match["values"])
        value = _polars_value(first.group(1)) if first else "?"
        found = _find(models, name, lambda column: match["target"] in _labels(column))
        if found is None:
            return None
        return _cast_error(*found, value, int(match["count"]), None, location)
    if match := _CSV_PARSE.search(text):  # a value the reader refused (see `reading_dtypes`)
        found = _find(models, match["column"], lambda column: match["target"] in _labels(column))
        if found is None:
            return None
        return _cast_error(*found, _show(_csv_field(match["value"])), 1, None, location)
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
    """The first user column the failing expression names (not a Polars temporary); a common
    subexpression that replaced the column is printed with its name: `col("__POLARS_CSER_1")
    .alias("c")`."""
    names = [json.loads(f'"{m["column"]}"') for m in _EXPRESSION_COLUMN.finditer(text)]
    users = [name for name in names if not _internal(name)]
    if users:
        return users[0]
    match = _SUBEXPRESSION_COLUMN.search(text)
    return json.loads(f'"{match["column"]}"') if match else None


def _internal(name: str) -> bool:
    """Polars' own names: temporaries of the streaming engine, common subexpressions."""
    return name.startswith(("_POLARS_TMP", "__POLARS_"))


def _csv_field(raw: str) -> str:
    """A field as the CSV reader quotes it in its error, unquoted as it reads it."""
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        return raw[1:-1].replace('""', '"')
    return raw


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
    labels = {column.dtype_name, _label(column.dtype), _CHECKED_LABEL}  # see `_refusing`
    if isinstance(column.dtype, pl.List):
        labels.add(_label(column.dtype.inner))
    return labels


# -- helpers -------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """A value as the messages show it: text quoted, NaN spelt as Polars spells it."""
    if isinstance(value, float) and value != value:
        return "NaN"
    return repr(value) if isinstance(value, str) or value is None else str(value)


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
