"""The `time` step: text columns parsed by a format, capport's special formats included."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps.times import target_of
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import ConfigError, Location, TaskError
from tests.conftest import run_transform

LOC = Location(file="t.yml", section="transform", name="t")
MODES = pytest.mark.parametrize("mode", list(RunMode))


def parse_error(steps: list) -> str:
    with pytest.raises(ConfigError) as info:
        parse_transform("t", steps, LOC)
    return info.value.message


def check_error(steps: list, frame: pl.LazyFrame) -> str:
    with pytest.raises(TaskError) as info:
        parse_transform("t", steps, LOC).apply(frame, {})
    return info.value.message


def time_step(include: Any, into: str) -> list:
    return [{"time": {"include": include, "into": into}}]


@MODES
def test_iso_utc_is_a_utc_datetime_in_ns_and_a_value_of_another_shape_is_null(
    tmp_path: Any, mode: RunMode
) -> None:
    """capport casts these (non-strict); an offset it would drop silently is null here."""
    values = [
        "2024-01-02T03:04:05Z",
        "2024-01-02T03:04:05.123Z",
        None,
        "not a time",
        "2024-01-02T03:04:05+01:00",
        "2024-01-02 03:04:05",
    ]
    frame = pl.DataFrame({"id": list(range(6)), "at": values, "other": values})
    got = run_transform(tmp_path, time_step(["at"], "%Y-%m-%dT%H:%M:%SZ"), {"A": frame}, mode)
    parsed = [datetime(2024, 1, 2, 3, 4, 5), datetime(2024, 1, 2, 3, 4, 5, 123000)]
    expected = frame.with_columns(
        at=pl.Series([*parsed, None, None, None, None], dtype=pl.Datetime("ns", "UTC"))
    )
    assert_frame_equal(got, expected)
    assert got.schema["at"] == pl.Datetime("ns", "UTC")


@MODES
def test_minutes_and_seconds_are_a_time_of_day_from_midnight(tmp_path: Any, mode: RunMode) -> None:
    frame = pl.DataFrame({"clock": ["12:34", "00:05", None], "period": [1, 2, 3]})
    got = run_transform(tmp_path, time_step("clock", "%M:%S"), {"A": frame}, mode)
    expected = pl.DataFrame({"clock": [time(0, 12, 34), time(0, 0, 5), None], "period": [1, 2, 3]})
    assert_frame_equal(got, expected)


@MODES
def test_a_format_with_day_and_minute_is_a_datetime_with_minute_a_time_with_day_a_date(
    tmp_path: Any, mode: RunMode
) -> None:
    frame = pl.DataFrame(
        {
            "at": ["02/01/2024 03:04", None],
            "hm": ["03:04", "23:59"],
            "day": ["2024-01-02", "2024-12-31"],
        }
    )
    steps = [
        *time_step("at", "%d/%m/%Y %H:%M"),
        *time_step("hm", "%H:%M"),
        *time_step(["day"], "%Y-%m-%d"),
    ]
    got = run_transform(tmp_path, steps, {"A": frame}, mode)
    expected = pl.DataFrame(
        {
            "at": pl.Series([datetime(2024, 1, 2, 3, 4), None], dtype=pl.Datetime("us")),
            "hm": [time(3, 4), time(23, 59)],
            "day": [date(2024, 1, 2), date(2024, 12, 31)],
        }
    )
    assert_frame_equal(got, expected)


@MODES
def test_every_included_column_is_parsed_in_place(tmp_path: Any, mode: RunMode) -> None:
    frame = pl.DataFrame({"a": ["2024-01-02"], "n": [1], "b": ["2024-02-03"]})
    got = run_transform(tmp_path, time_step("a, b", "%Y-%m-%d"), {"A": frame}, mode)
    expected = pl.DataFrame({"a": [date(2024, 1, 2)], "n": [1], "b": [date(2024, 2, 3)]})
    assert_frame_equal(got, expected)


def test_a_value_that_does_not_match_a_strict_format_fails_the_run_naming_it() -> None:
    transform = parse_transform("t", time_step("day", "%Y-%m-%d"), LOC)
    plan = transform.apply(pl.LazyFrame({"day": ["2024-01-02", "02.01.2024"]}), {})
    with pytest.raises(pl.exceptions.InvalidOperationError, match=r'values: \["02.01.2024"\]'):
        plan.collect()


@pytest.mark.parametrize(
    ("format", "target"),
    [
        ("%Y-%m-%dT%H:%M:%SZ", "datetime_utc"),
        ("%M:%S", "clock"),
        ("%Y-%m-%d %H:%M:%S", "datetime"),
        ("%F %T", "datetime"),
        ("%-d.%m.%Y %R", "datetime"),
        ("%H:%M:%S%.3f", "time"),
        ("%T", "time"),
        ("%M:%S%.f", "time"),
        ("%Y-%m-%d", "date"),
        ("%e %b %Y", "date"),
        ("%D", "date"),
        ("%Y", None),
        ("%Y-%m", None),
        ("%%d %%M", None),
        ("day", None),
    ],
)
def test_what_a_format_parses_into(format: str, target: str | None) -> None:
    assert target_of(format) == target


# -- errors --------------------------------------------------------------------------------------

FORMAT_REQUIRED = (
    "step 1 (time): into is required: a strftime format such as '%Y-%m-%d' or"
    " '%Y-%m-%dT%H:%M:%SZ', got"
)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            None,
            "step 1 (time): expected a mapping with include (the columns) and into (a format),"
            " got null",
        ),
        ({"include": "t"}, f"{FORMAT_REQUIRED} null"),
        ({"include": "t", "into": ""}, f"{FORMAT_REQUIRED} an empty string"),
        ({"include": "t", "into": 5}, f"{FORMAT_REQUIRED} int 5"),
        (
            {"include": "t", "into": "%Y"},
            "step 1 (time): into '%Y' has neither a day (%d) nor a minute (%M), so it parses"
            " neither a date nor a time (capport leaves such columns as they are): write the"
            " format of the whole value, e.g. '%Y-%m-%d' or '%H:%M'",
        ),
        ({"into": "%Y-%m-%d"}, "step 1 (time): include is required (a list of columns)"),
        (
            {"include": "t", "into": "%d", "format": "%d"},
            "step 1 (time): unknown key 'format' (time takes include, into)",
        ),
    ],
)
def test_parse_errors(args: Any, message: str) -> None:
    assert parse_error([{"time": args}]) == message


def test_check_errors() -> None:
    frame = pl.LazyFrame({"t": ["x"], "n": [1]})
    assert check_error(time_step("tt, n", "%d"), frame) == (
        "transform 't', step 1 (time): column 'tt' not found - did you mean 't'? (columns: t, n);"
        " column 'n' is Int64, not text: time parses strings (into '%d'); leave it out of"
        " include, or make it a str first"
    )


def test_a_column_listed_twice_is_parsed_once() -> None:
    transform = parse_transform("t", time_step("a, a", "%Y-%m-%d"), LOC)
    got = transform.apply(pl.LazyFrame({"a": ["2024-01-02"]}), {}).collect()
    assert_frame_equal(got, pl.DataFrame({"a": [date(2024, 1, 2)]}))
