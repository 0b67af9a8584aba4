"""Acceptance test for `every:` (SPEC 9): each phrase judged by when it fires, not by its cron.

Starts sit in UTC and in America/New_York around 2026's DST changes: clocks spring forward on
Sunday 2026-03-08 at 02:00 (to 03:00, EST -05:00 to EDT -04:00) and fall back on Sunday
2026-11-01 at 02:00 (to 01:00). 2026-03-06 is a Friday, 2026-03-07 a Saturday.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import islice

import pytest
from dagster._utils.schedules import schedule_execution_time_iterator

from capport_dagster.core.every import CronTrigger, IntervalTrigger, parse_every, translate
from capport_dagster.errors import ScheduleParseError
from capport_dagster.translate import ticks as ticks_module
from capport_dagster.translate.ticks import next_ticks

UTC = "UTC"
NY = "America/New_York"


@dataclass(frozen=True)
class Rejected:
    """The phrase is refused with this reason (the first line of the error)."""

    reason: str


TABLE: list[tuple[str, str, str, tuple[str, ...] | Rejected]] = [
    # --- sub-minute and uneven intervals: sensors, real seconds from the start
    ("10s", UTC, "2026-03-07T12:00:00+00:00", (
        "2026-03-07T12:00:10+00:00",
        "2026-03-07T12:00:20+00:00",
        "2026-03-07T12:00:30+00:00",
    )),
    ("10s", NY, "2026-03-08T01:59:50-05:00", (  # 10 real seconds later the clock reads 03:00
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:00:10-04:00",
        "2026-03-08T03:00:20-04:00",
    )),
    ("10m30s", UTC, "2026-03-07T12:00:00+00:00", (
        "2026-03-07T12:10:30+00:00",
        "2026-03-07T12:21:00+00:00",
        "2026-03-07T12:31:30+00:00",
    )),
    ("10m30s", NY, "2026-03-08T01:55:00-05:00", (
        "2026-03-08T03:05:30-04:00",
        "2026-03-08T03:16:00-04:00",
        "2026-03-08T03:26:30-04:00",
    )),
    ("7m", UTC, "2026-03-07T12:00:00+00:00", (
        "2026-03-07T12:07:00+00:00",
        "2026-03-07T12:14:00+00:00",
        "2026-03-07T12:21:00+00:00",
    )),
    ("7m", NY, "2026-11-01T01:55:00-04:00", (  # 7 real minutes after 01:55 EDT is 01:02 EST
        "2026-11-01T01:02:00-05:00",
        "2026-11-01T01:09:00-05:00",
        "2026-11-01T01:16:00-05:00",
    )),
    ("2d", UTC, "2026-03-07T12:00:00+00:00", (
        "2026-03-09T12:00:00+00:00",
        "2026-03-11T12:00:00+00:00",
    )),
    # --- intervals that divide a day: cron aligned to 00:00, wall-clock times
    ("1d", UTC, "2026-03-07T00:00:00+00:00", (
        "2026-03-08T00:00:00+00:00",
        "2026-03-09T00:00:00+00:00",
        "2026-03-10T00:00:00+00:00",
    )),
    ("1d", NY, "2026-03-07T00:00:00-05:00", (
        "2026-03-08T00:00:00-05:00",
        "2026-03-09T00:00:00-04:00",
        "2026-03-10T00:00:00-04:00",
    )),
    ("24h", NY, "2026-10-31T12:00:00-04:00", (
        "2026-11-01T00:00:00-04:00",
        "2026-11-02T00:00:00-05:00",
        "2026-11-03T00:00:00-05:00",
    )),
    ("2h", UTC, "2026-03-07T21:00:00+00:00", (
        "2026-03-07T22:00:00+00:00",
        "2026-03-08T00:00:00+00:00",
        "2026-03-08T02:00:00+00:00",
    )),
    ("90m", UTC, "2026-03-07T22:00:00+00:00", (
        "2026-03-07T22:30:00+00:00",
        "2026-03-08T00:00:00+00:00",
        "2026-03-08T01:30:00+00:00",
        "2026-03-08T03:00:00+00:00",
    )),
    ("90m", NY, "2026-03-07T22:00:00-05:00", (  # 01:30 to 03:00 is only 30 real minutes
        "2026-03-07T22:30:00-05:00",
        "2026-03-08T00:00:00-05:00",
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T04:30:00-04:00",
    )),
    ("90m", NY, "2026-10-31T23:00:00-04:00", (  # the repeated 01:30 fires once, the later one
        "2026-11-01T00:00:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T03:00:00-05:00",
        "2026-11-01T04:30:00-05:00",
    )),
    ("15m", NY, "2026-03-08T01:30:00-05:00", (  # hour field '*': the missing 02:xx are skipped
        "2026-03-08T01:45:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-08T03:15:00-04:00",
    )),
    ("15m", NY, "2026-11-01T01:30:00-04:00", (  # hour field '*': the repeated 01:xx fire twice
        "2026-11-01T01:45:00-04:00",
        "2026-11-01T01:00:00-05:00",
        "2026-11-01T01:15:00-05:00",
        "2026-11-01T01:30:00-05:00",
    )),
    # --- weeks, months, years
    ("1w", UTC, "2026-03-07T00:00:00+00:00", (
        "2026-03-09T00:00:00+00:00",
        "2026-03-16T00:00:00+00:00",
    )),
    ("1w", NY, "2026-10-31T12:00:00-04:00", (
        "2026-11-02T00:00:00-05:00",
        "2026-11-09T00:00:00-05:00",
    )),
    ("7d", UTC, "2026-03-09T10:20:00+00:00", (  # a sensor: from the start, not aligned
        "2026-03-16T10:20:00+00:00",
        "2026-03-23T10:20:00+00:00",
    )),
    ("2M", UTC, "2026-03-07T00:00:00+00:00", (
        "2026-05-01T00:00:00+00:00",
        "2026-07-01T00:00:00+00:00",
        "2026-09-01T00:00:00+00:00",
    )),
    ("2M", NY, "2026-10-15T00:00:00-04:00", (
        "2026-11-01T00:00:00-04:00",
        "2027-01-01T00:00:00-05:00",
        "2027-03-01T00:00:00-05:00",
    )),
    ("5M", UTC, "2026-01-01T00:00:00+00:00", (  # 5 does not divide 12: every 150 days
        "2026-05-31T00:00:00+00:00",
        "2026-10-28T00:00:00+00:00",
    )),
    ("1Y", UTC, "2026-03-07T00:00:00+00:00", (
        "2027-01-01T00:00:00+00:00",
        "2028-01-01T00:00:00+00:00",
    )),
    ("1Y", NY, "2026-12-31T23:59:59-05:00", (
        "2027-01-01T00:00:00-05:00",
        "2028-01-01T00:00:00-05:00",
    )),
    # --- day and time
    ("Monday at 15:00", UTC, "2026-03-07T00:00:00+00:00", (
        "2026-03-09T15:00:00+00:00",
        "2026-03-16T15:00:00+00:00",
    )),
    ("Monday at 15:00", NY, "2026-03-07T00:00:00-05:00", (
        "2026-03-09T15:00:00-04:00",
        "2026-03-16T15:00:00-04:00",
    )),
    ("monday", UTC, "2026-03-09T00:00:00+00:00", (
        "2026-03-16T00:00:00+00:00",
        "2026-03-23T00:00:00+00:00",
    )),
    ("at 09:30", UTC, "2026-03-07T09:30:00+00:00", (
        "2026-03-08T09:30:00+00:00",
        "2026-03-09T09:30:00+00:00",
    )),
    ("at 09:30", NY, "2026-03-07T00:00:00-05:00", (
        "2026-03-07T09:30:00-05:00",
        "2026-03-08T09:30:00-04:00",
        "2026-03-09T09:30:00-04:00",
    )),
    ("15:00", NY, "2026-10-31T16:00:00-04:00", (
        "2026-11-01T15:00:00-05:00",
        "2026-11-02T15:00:00-05:00",
    )),
    ("weekday at 09:30", UTC, "2026-03-06T10:00:00+00:00", (  # Friday after 09:30: Monday next
        "2026-03-09T09:30:00+00:00",
        "2026-03-10T09:30:00+00:00",
        "2026-03-11T09:30:00+00:00",
    )),
    ("weekday at 09:30", NY, "2026-10-30T12:00:00-04:00", (
        "2026-11-02T09:30:00-05:00",
        "2026-11-03T09:30:00-05:00",
        "2026-11-04T09:30:00-05:00",
    )),
    ("at 02:30", NY, "2026-03-07T00:00:00-05:00", (  # skipped 02:30 fires at the gap's end
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    )),
    ("at 01:30", NY, "2026-10-31T00:00:00-04:00", (  # repeated 01:30 fires once, the later one
        "2026-10-31T01:30:00-04:00",
        "2026-11-01T01:30:00-05:00",
        "2026-11-02T01:30:00-05:00",
    )),
    # --- repeats
    ("Monday at 15:00 repeating every 30m times 6", UTC, "2026-03-07T00:00:00+00:00", (
        "2026-03-09T15:00:00+00:00",
        "2026-03-09T15:30:00+00:00",
        "2026-03-09T16:00:00+00:00",
        "2026-03-09T16:30:00+00:00",
        "2026-03-09T17:00:00+00:00",
        "2026-03-09T17:30:00+00:00",
        "2026-03-16T15:00:00+00:00",
    )),
    ("weekday at 23:00 repeating every 30m times 4", UTC, "2026-03-06T22:00:00+00:00", (
        "2026-03-06T23:00:00+00:00",  # Friday's ticks run into Saturday
        "2026-03-06T23:30:00+00:00",
        "2026-03-07T00:00:00+00:00",
        "2026-03-07T00:30:00+00:00",
        "2026-03-09T23:00:00+00:00",  # nothing on Sunday night, nor early Monday
        "2026-03-09T23:30:00+00:00",
    )),
    ("Sunday at 23:30 repeating every 30m times 2", UTC, "2026-03-07T00:00:00+00:00", (
        "2026-03-08T23:30:00+00:00",
        "2026-03-09T00:00:00+00:00",  # past Sunday: Monday
        "2026-03-15T23:30:00+00:00",
    )),
    ("at 22:00 repeating every 90m times 3", NY, "2026-03-07T21:00:00-05:00", (
        "2026-03-07T22:00:00-05:00",
        "2026-03-07T23:30:00-05:00",
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T22:00:00-04:00",
    )),
    ("Sunday at 01:00 repeating every 30m times 6", NY, "2026-03-07T00:00:00-05:00", (
        "2026-03-08T01:00:00-05:00",
        "2026-03-08T01:30:00-05:00",
        "2026-03-08T03:00:00-04:00",  # 02:00 and 02:30 do not exist: both fold into 03:00
        "2026-03-08T03:30:00-04:00",
        "2026-03-15T01:00:00-04:00",
    )),
    ("Sunday at 01:00 repeating every 30m times 6", NY, "2026-10-31T00:00:00-04:00", (
        "2026-11-01T01:00:00-05:00",  # the later 01:00 and 01:30 only
        "2026-11-01T01:30:00-05:00",
        "2026-11-01T02:00:00-05:00",
        "2026-11-01T02:30:00-05:00",
        "2026-11-01T03:00:00-05:00",
        "2026-11-01T03:30:00-05:00",
        "2026-11-08T01:00:00-05:00",
    )),
    # --- refused
    ("", UTC, "2026-03-07T00:00:00+00:00", Rejected("the phrase is empty")),
    ("Monday at 25:00", UTC, "2026-03-07T00:00:00+00:00", Rejected("hours go from 00 to 23")),
    ("Mondy at 15:00", NY, "2026-03-07T00:00:00-05:00", Rejected("did you mean 'Monday'?")),
    ("10x", UTC, "2026-03-07T00:00:00+00:00", Rejected("unknown unit 'x'")),
    ("10S", UTC, "2026-03-07T00:00:00+00:00", Rejected("did you mean 's'?")),
    ("0m", UTC, "2026-03-07T00:00:00+00:00", Rejected("a count must be at least 1")),
    ("1m2m", UTC, "2026-03-07T00:00:00+00:00", Rejected("the unit 'm' is already given")),
    ("at 09:30 repeating every 30m times 0", UTC, "2026-03-07T00:00:00+00:00",
     Rejected("times must be at least 1")),
    ("at 09:30 repeating every 90s times 2", UTC, "2026-03-07T00:00:00+00:00",
     Rejected("ticks repeat in whole minutes")),
    ("1d please", UTC, "2026-03-07T00:00:00+00:00", Rejected("found 'please'")),
]  # fmt: skip


def _id(row: tuple) -> str:
    phrase, timezone, start, _ = row
    return f"{phrase or '<empty>'} | {timezone} | {start}"


def test_table_covers_the_brief():
    phrases = {row[0] for row in TABLE}
    assert len(phrases) >= 30
    for phrase in ("10s", "1d", "1w", "2M", "1Y", "10m30s", "7m", "90m", "Monday at 15:00"):
        assert phrase in phrases
    assert {"at 09:30", "weekday at 09:30"} <= phrases
    assert any(isinstance(row[3], Rejected) for row in TABLE)


@pytest.mark.parametrize("row", TABLE, ids=[_id(row) for row in TABLE])
def test_next_fire_times(row):
    phrase, timezone, start, expected = row
    if isinstance(expected, Rejected):
        with pytest.raises(ScheduleParseError) as info:
            parse_every(phrase)
        assert expected.reason in str(info.value).splitlines()[0]
        return
    trigger = translate(parse_every(phrase))
    ticks = next_ticks(trigger, timezone, datetime.fromisoformat(start), len(expected))
    assert tuple(tick.isoformat() for tick in ticks) == expected


CRON_ROWS = [row for row in TABLE if not isinstance(row[3], Rejected)]


@pytest.mark.parametrize("row", CRON_ROWS, ids=[_id(row) for row in CRON_ROWS])
def test_merge_agrees_with_the_daemon(row):
    """Dagster's daemon merges a list of cron lines itself; our merge gives the same moments."""
    phrase, timezone, start, expected = row
    trigger = translate(parse_every(phrase))
    if not isinstance(trigger, CronTrigger):
        return
    moment = datetime.fromisoformat(start).timestamp()
    daemon = schedule_execution_time_iterator(moment, list(trigger.crons), timezone)
    later = [tick for tick in islice(daemon, len(expected) + 1) if tick.timestamp() > moment]
    assert [tick.timestamp() for tick in later[: len(expected)]] == [
        datetime.fromisoformat(tick).timestamp() for tick in expected
    ]


def test_public_api():
    assert ticks_module.__all__ == ["next_ticks"]


def test_lines_naming_the_same_moment_fire_once():
    trigger = CronTrigger(("0 * * * *", "0 */2 * * *"))
    ticks = next_ticks(trigger, UTC, datetime.fromisoformat("2026-03-07T00:00:00+00:00"), 3)
    assert [tick.isoformat() for tick in ticks] == [
        "2026-03-07T01:00:00+00:00",
        "2026-03-07T02:00:00+00:00",
        "2026-03-07T03:00:00+00:00",
    ]


def test_ticks_come_back_in_the_runner_timezone():
    start = datetime.fromisoformat("2026-03-07T12:00:00+00:00")
    ticks = next_ticks(IntervalTrigger(60), NY, start, 1)
    assert ticks[0].isoformat() == "2026-03-07T07:01:00-05:00"


def test_next_ticks_needs_an_aware_start():
    with pytest.raises(ValueError, match="aware"):
        next_ticks(IntervalTrigger(60), UTC, datetime(2026, 3, 7), 1)


def test_zero_ticks():
    start = datetime.fromisoformat("2026-03-07T12:00:00+00:00")
    assert next_ticks(CronTrigger(("0 0 * * *",)), UTC, start, 0) == []
