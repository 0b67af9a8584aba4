"""`time: {include: [COLUMN, ...], into: FORMAT}`: parse text columns into dates and times.

`into` is a strftime format (as Polars reads it), and what it parses into follows capport:

    "%Y-%m-%dT%H:%M:%SZ"   Datetime[ns, UTC]; a value not of this shape (a fraction of a second
                           is allowed) is null, as capport's non-strict cast makes it
    "%M:%S"                Time (minutes and seconds of a clock, e.g. a game clock "12:34")
    has a day and a minute Datetime (unit inferred; a zone only if the format reads one, %z)
    has a minute only      Time
    has a day only         Date

A day is `%d` (or `%e`, `%F`, `%D`); a minute is `%M` (or `%T`, `%R`), `%%` being a literal
percent. A format with neither parses nothing: capport leaves the column as it is, we refuse
it when the config is read, as such a step is a mistake. Every format but the first is strict,
as capport's (a value that does not match fails the run).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import polars as pl

from capport_dagster.core.selects import Findings, column_list, unknown_keys
from capport_dagster.core.steps.base import (
    Schema,
    StepKind,
    StepLineage,
    identity,
    missing_columns,
)
from capport_dagster.core.yaml_source import describe

__all__ = ["KINDS", "TimeStep", "target_of"]

ISO_UTC = "%Y-%m-%dT%H:%M:%SZ"
CLOCK = "%M:%S"
_KEYS = ("include", "into")
_DAY = frozenset("deFD")
_MINUTE = frozenset("MTR")
#: A strftime specifier: `%`, chrono's optional flags / width, its letter (or `%`).
_SPECIFIER = re.compile(r"%[-_0^#]?[.:]?[0-9]*(.)")

Target = Literal["datetime_utc", "clock", "datetime", "time", "date"]


def target_of(format: str) -> Target | None:
    """What `format` parses into (see the module docstring); None: neither day nor minute."""
    if format == ISO_UTC:
        return "datetime_utc"
    if format == CLOCK:
        return "clock"
    letters = {match.group(1) for match in _SPECIFIER.finditer(format)}
    day, minute = bool(letters & _DAY), bool(letters & _MINUTE)
    if day and minute:
        return "datetime"
    if minute:
        return "time"
    return "date" if day else None


@dataclass(frozen=True)
class TimeStep:
    """`time`: each included text column parsed in place by one format."""

    kind: ClassVar[str] = "time"
    include: tuple[str, ...]
    into: str
    target: Target

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        problems = missing_columns(self.include, schema)
        for name in dict.fromkeys(self.include):
            dtype = schema.get(name)
            if dtype is not None and dtype != pl.String:
                problems.append(
                    f"column '{name}' is {dtype}, not text: time parses strings (into"
                    f" {self.into!r}); leave it out of include, or make it a str first"
                )
        return problems

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        names = dict.fromkeys(self.include)  # a column listed twice is parsed once
        return frame.with_columns(self._parse(pl.col(name)).alias(name) for name in names)

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Each included column is parsed in place, from its own text."""
        return identity(schema)

    def _parse(self, text: pl.Expr) -> pl.Expr:
        if self.target == "datetime_utc":
            return text.str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ns", time_zone="UTC", strict=False
            )
        if self.target == "clock":
            return pl.format("00:{}", text).str.to_time("%H:%M:%S")
        if self.target == "datetime":
            return text.str.to_datetime(self.into)
        if self.target == "time":
            return text.str.to_time(self.into)
        return text.str.to_date(self.into)


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> TimeStep | None:
    args = step["time"]
    messages = found.errors
    if not isinstance(args, Mapping):
        messages.append(
            f"{context}: expected a mapping with include (the columns) and into (a format),"
            f" got {describe(args)}"
        )
        return None
    errors = len(messages)
    unknown_keys(args, _KEYS, context, messages, "time")
    include = column_list(args.get("include"), "include", context, messages, required=True)
    into = args.get("into")
    target = None
    if not isinstance(into, str) or not into:
        got = "an empty string" if into == "" else describe(into)
        messages.append(
            f"{context}: into is required: a strftime format such as '%Y-%m-%d' or"
            f" '{ISO_UTC}', got {got}"
        )
    else:
        target = target_of(into)
        if target is None:
            messages.append(
                f"{context}: into {into!r} has neither a day (%d) nor a minute (%M), so it"
                " parses neither a date nor a time (capport leaves such columns as they are):"
                " write the format of the whole value, e.g. '%Y-%m-%d' or '%H:%M'"
            )
    if len(messages) > errors or include is None or target is None:
        return None
    return TimeStep(include, str(into), target)


KINDS = (StepKind("time", ("time",), _parse),)
