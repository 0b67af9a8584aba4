"""The `every:` grammar (SPEC 9): parsing, normalised text, cron spelling, and exact errors."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest
from dagster._utils.schedules import is_valid_cron_string
from hypothesis import given
from hypothesis import strategies as st

from capport_dagster.core import every as every_module
from capport_dagster.core.every import (
    DAY_NAMES,
    EXAMPLES,
    CronTrigger,
    Every,
    Interval,
    IntervalTrigger,
    describe,
    longest_gap,
    parse_every,
    translate,
)
from capport_dagster.errors import ConfigError, Location, ScheduleParseError

VALID_EXAMPLES = (
    "valid examples: 10s, 1d, 10m30s, 2M, Monday at 15:00, at 09:30, weekday at 09:30, "
    "Monday at 15:00 repeating every 30m times 6"
)


def test_public_api():
    assert set(every_module.__all__) == {
        "DAY_NAMES",
        "EXAMPLES",
        "UNIT_SECONDS",
        "CronTrigger",
        "Every",
        "Interval",
        "IntervalTrigger",
        "describe",
        "longest_gap",
        "parse_every",
        "translate",
    }


def test_core_does_not_import_dagster():
    tree = ast.parse(Path(every_module.__file__).read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ]
    imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [name for name in imported if name.split(".")[0] == "dagster"]


# --- valid phrases ----------------------------------------------------------------------------


def interval(*parts: tuple[int, str]) -> Interval:
    return Interval(parts)


PARSED = [
    ("10s", Every("interval", interval((10, "s"))), "10s"),
    ("1d", Every("interval", interval((1, "d"))), "1d"),
    ("10m30s", Every("interval", interval((10, "m"), (30, "s"))), "10m30s"),
    ("10m 30s", Every("interval", interval((10, "m"), (30, "s"))), "10m30s"),
    ("30s10m", Every("interval", interval((10, "m"), (30, "s"))), "10m30s"),
    ("  1Y6M  ", Every("interval", interval((1, "Y"), (6, "M"))), "1Y6M"),
    ("2M", Every("interval", interval((2, "M"))), "2M"),
    ("007m", Every("interval", interval((7, "m"))), "7m"),
    ("Monday at 15:00", Every("time", day="Monday", hour=15), "Monday at 15:00"),
    ("monday AT 15:00", Every("time", day="Monday", hour=15), "Monday at 15:00"),
    ("SUN at 7:05", Every("time", day="Sunday", hour=7, minute=5), "Sunday at 07:05"),
    ("Monday", Every("time", day="Monday"), "Monday at 00:00"),
    ("thu", Every("time", day="Thursday"), "Thursday at 00:00"),
    ("at 09:30", Every("time", hour=9, minute=30), "at 09:30"),
    ("15:00", Every("time", hour=15), "at 15:00"),
    ("Weekday at 09:30", Every("time", day="weekday", hour=9, minute=30), "weekday at 09:30"),
    (
        "Monday at 15:00 repeating every 30m times 6",
        Every("repeat", interval((30, "m")), "Monday", 15, 0, 6),
        "Monday at 15:00 repeating every 30m times 6",
    ),
    (
        "at 23:00  Repeating EVERY 1h 30m TIMES 3",
        Every("repeat", interval((1, "h"), (30, "m")), None, 23, 0, 3),
        "at 23:00 repeating every 1h30m times 3",
    ),
    (
        "fri repeating every 1d times 3",
        Every("repeat", interval((1, "d")), "Friday", 0, 0, 3),
        "Friday at 00:00 repeating every 1d times 3",
    ),
    (
        "at\t10:00\nrepeating every 120s times 2",
        Every("repeat", interval((120, "s")), None, 10, 0, 2),
        "at 10:00 repeating every 120s times 2",
    ),
]


@pytest.mark.parametrize(("phrase", "parsed", "text"), PARSED)
def test_parse(phrase, parsed, text):
    assert parse_every(phrase) == parsed
    assert str(parse_every(phrase)) == text


@pytest.mark.parametrize(("phrase", "parsed", "text"), PARSED)
def test_normalised_text_reads_back_the_same(phrase, parsed, text):
    assert parse_every(text) == parsed


@pytest.mark.parametrize("example", EXAMPLES)
def test_examples_in_error_messages_are_valid(example):
    assert str(parse_every(example)) == example


def test_results_are_frozen():
    parsed = parse_every("1d")
    with pytest.raises(AttributeError):
        parsed.kind = "time"  # type: ignore[misc]


def test_interval_seconds():
    assert parse_every("10m30s").interval.seconds == 630
    assert parse_every("1w2d").interval.seconds == 9 * 86400
    assert parse_every("1M").interval.seconds == 30 * 86400  # a month counts 30 days
    assert parse_every("1Y").interval.seconds == 365 * 86400  # a year counts 365 days


# --- translation ------------------------------------------------------------------------------

TRANSLATED = [
    ("1m", CronTrigger(("* * * * *",))),
    ("15m", CronTrigger(("*/15 * * * *",))),
    ("20m", CronTrigger(("*/20 * * * *",))),
    ("1h", CronTrigger(("0 * * * *",))),
    ("60m", CronTrigger(("0 * * * *",))),
    ("2h", CronTrigger(("0 */2 * * *",))),
    ("90m", CronTrigger(("0 */3 * * *", "30 1,4,7,10,13,16,19,22 * * *"))),
    ("5h", IntervalTrigger(5 * 3600)),  # does not divide a day
    ("1d", CronTrigger(("0 0 * * *",))),
    ("24h", CronTrigger(("0 0 * * *",))),
    ("1w", CronTrigger(("0 0 * * 1",))),
    ("7d", IntervalTrigger(7 * 86400)),  # SPEC 9: Nd for N > 1 is a sensor, even a week
    ("1M", CronTrigger(("0 0 1 * *",))),
    ("2M", CronTrigger(("0 0 1 */2 *",))),
    ("3M", CronTrigger(("0 0 1 */3 *",))),
    ("6M", CronTrigger(("0 0 1 1,7 *",))),
    ("12M", CronTrigger(("0 0 1 1 *",))),
    ("1Y", CronTrigger(("0 0 1 1 *",))),
    ("10s", IntervalTrigger(10)),
    ("60s", CronTrigger(("* * * * *",))),
    ("10m30s", IntervalTrigger(630)),
    ("7m", IntervalTrigger(420)),
    ("2d", IntervalTrigger(2 * 86400)),
    ("2w", IntervalTrigger(14 * 86400)),
    ("5M", IntervalTrigger(150 * 86400)),
    ("1M1d", IntervalTrigger(31 * 86400)),
    ("2Y", IntervalTrigger(730 * 86400)),
    ("Monday at 15:00", CronTrigger(("0 15 * * 1",))),
    ("Sunday", CronTrigger(("0 0 * * 0",))),
    ("at 09:30", CronTrigger(("30 9 * * *",))),
    ("weekday at 09:30", CronTrigger(("30 9 * * 1-5",))),
    ("Monday at 15:00 repeating every 30m times 6", CronTrigger(("0,30 15-17 * * 1",))),
    ("Monday at 15:00 repeating every 30m times 1", CronTrigger(("0 15 * * 1",))),
    (
        "weekday at 23:00 repeating every 30m times 4",
        CronTrigger(("0,30 0 * * 2-6", "0,30 23 * * 1-5")),
    ),
    ("Sunday at 23:30 repeating every 30m times 2", CronTrigger(("0 0 * * 1", "30 23 * * 0"))),
    ("Saturday at 12:00 repeating every 1d times 3", CronTrigger(("0 12 * * 0,1,6",))),
    ("at 00:00 repeating every 1h times 1000", CronTrigger(("0 * * * *",))),
    ("at 22:00 repeating every 90m times 3", CronTrigger(("0 1,22 * * *", "30 23 * * *"))),
]


@pytest.mark.parametrize(("phrase", "trigger"), TRANSLATED)
def test_translate(phrase, trigger):
    assert translate(parse_every(phrase)) == trigger


@pytest.mark.parametrize(
    "phrase", [phrase for phrase, _ in TRANSLATED] + [phrase for phrase, _, _ in PARSED]
)
def test_every_cron_is_valid_for_dagster(phrase):
    trigger = translate(parse_every(phrase))
    for cron in getattr(trigger, "crons", ()):
        assert is_valid_cron_string(cron), cron


def test_describe():
    assert describe(translate(parse_every("Monday at 15:00"))) == "cron 0 15 * * 1"
    assert describe(translate(parse_every("90m"))) == (
        "cron [0 */3 * * *; 30 1,4,7,10,13,16,19,22 * * *]"
    )
    assert describe(translate(parse_every("10m30s"))) == "sensor every 630 s"


@given(
    day=st.sampled_from([None, "weekday", *DAY_NAMES]),
    hour=st.integers(0, 23),
    minute=st.integers(0, 59),
    step=st.integers(1, 3000),
    times=st.integers(1, 40),
)
def test_repeat_crons_are_exactly_the_ticks(day, hour, minute, step, times):
    every = Every("repeat", Interval(((step, "m"),)), day, hour, minute, times)
    assert parse_every(str(every)) == every
    days = range(7) if day is None else range(5) if day == "weekday" else [DAY_NAMES.index(day)]
    expected = {
        (d * 1440 + hour * 60 + minute + k * step) % (7 * 1440) for d in days for k in range(times)
    }
    crons = translate(every).crons
    assert all(is_valid_cron_string(cron) for cron in crons)
    assert cron_minutes_of_week(crons) == expected


def cron_minutes_of_week(crons: tuple[str, ...]) -> set[int]:
    """A small independent reader of the cron subset `translate` writes."""

    def field(text: str, low: int, high: int) -> set[int]:
        if text == "*":
            return set(range(low, high + 1))
        if text.startswith("*/"):
            return set(range(low, high + 1, int(text[2:])))
        values: set[int] = set()
        for item in text.split(","):
            first, _, last = item.partition("-")
            values.update(range(int(first), int(last or first) + 1))
        return values

    ticks = set()
    for cron in crons:
        minutes, hours, day_of_month, month, days = cron.split()
        assert (day_of_month, month) == ("*", "*")
        for cron_day in field(days, 0, 6):
            for hour in field(hours, 0, 23):
                for minute in field(minutes, 0, 59):
                    ticks.add(((cron_day - 1) % 7) * 1440 + hour * 60 + minute)
    return ticks


# --- errors -----------------------------------------------------------------------------------

ERRORS = [
    (
        "",
        "cannot read every: the phrase is empty: expected an interval like 1d or a time\n"
        "  ''\n"
        "   ^",
    ),
    (
        "Monday at 25:00",
        "cannot read every: hours go from 00 to 23\n  'Monday at 25:00'\n             ^^",
    ),
    (
        "at 09:60",
        "cannot read every: minutes are two digits from 00 to 59\n  'at 09:60'\n         ^^",
    ),
    (
        "Mondy at 15:00",
        "cannot read every: unknown word 'Mondy': expected a day (Monday to Sunday, or weekday), "
        "'at HH:MM' or an interval like 1d - did you mean 'Monday'?\n"
        "  'Mondy at 15:00'\n"
        "   ^^^^^",
    ),
    (
        "weekdays at 09:00",
        "cannot read every: unknown word 'weekdays': expected a day (Monday to Sunday, or "
        "weekday), 'at HH:MM' or an interval like 1d - did you mean 'weekday'?\n"
        "  'weekdays at 09:00'\n"
        "   ^^^^^^^^",
    ),
    (
        "10x",
        "cannot read every: unknown unit 'x': expected s, m (minute), h, d, w, M (month) or "
        "Y (year)\n"
        "  '10x'\n"
        "     ^",
    ),
    (
        "10S",
        "cannot read every: unknown unit 'S': expected s, m (minute), h, d, w, M (month) or "
        "Y (year) - units are case-sensitive: did you mean 's'?\n"
        "  '10S'\n"
        "     ^",
    ),
    (
        "5min",
        "cannot read every: unknown unit 'min': expected s, m (minute), h, d, w, M (month) or "
        "Y (year) - write 'm' for min\n"
        "  '5min'\n"
        "    ^^^",
    ),
    (
        "10 m",
        "cannot read every: write the unit right after its number: 10m\n  '10 m'\n      ^",
    ),
    (
        "15",
        "cannot read every: expected a unit right after 15: s, m (minute), h, d, w, M (month) or "
        "Y (year)\n"
        "  '15'\n"
        "     ^",
    ),
    (
        "0s",
        "cannot read every: a count must be at least 1\n  '0s'\n   ^",
    ),
    (
        "1h0m",
        "cannot read every: a count must be at least 1\n  '1h0m'\n     ^",
    ),
    (
        "1m2m",
        "cannot read every: the unit 'm' is already given\n  '1m2m'\n     ^^",
    ),
    (
        "101Y",
        "cannot read every: an interval is at most 100Y\n  '101Y'\n   ^^^^",
    ),
    (
        "1d foo",
        "cannot read every: expected another <N><unit> part or the end of the phrase, found "
        "'foo'\n"
        "  '1d foo'\n"
        "      ^^^",
    ),
    (
        "1d, 2h",
        "cannot read every: the character ',' is not allowed: write numbers, words and ':'\n"
        "  '1d, 2h'\n"
        "     ^",
    ),
    (
        "Monday 15:00",
        "cannot read every: write 'at' before the time: Monday at HH:MM\n"
        "  'Monday 15:00'\n"
        "          ^^",
    ),
    (
        "at15:00",
        "cannot read every: put a space before '15'\n  'at15:00'\n     ^^",
    ),
    (
        "Monday at",
        "cannot read every: expected a time HH:MM, like 09:30\n  'Monday at'\n            ^",
    ),
    (
        "at 9:30pm",
        "cannot read every: expected 'repeating every <interval> times <K>' or the end of the "
        "phrase, found 'pm' - times are 24-hour, like 21:30\n"
        "  'at 9:30pm'\n"
        "          ^^",
    ),
    (
        "Monday at 15:00 repeatng every 30m times 3",
        "cannot read every: expected 'repeating every <interval> times <K>' or the end of the "
        "phrase, found 'repeatng' - did you mean 'repeating'?\n"
        "  'Monday at 15:00 repeatng every 30m times 3'\n"
        "                   ^^^^^^^^",
    ),
    (
        "at 10:00 repeating evry 30m times 2",
        "cannot read every: expected 'every', found 'evry' - did you mean 'every'?\n"
        "  'at 10:00 repeating evry 30m times 2'\n"
        "                      ^^^^",
    ),
    (
        "Monday at 15:00 repeating every 30m times 0",
        "cannot read every: times must be at least 1\n"
        "  'Monday at 15:00 repeating every 30m times 0'\n"
        "                                             ^",
    ),
    (
        "at 10:00 repeating every 30s times 3",
        "cannot read every: ticks repeat in whole minutes (cron has no seconds)\n"
        "  'at 10:00 repeating every 30s times 3'\n"
        "                            ^^^",
    ),
    (
        "at 10:00 repeating every 1m30s times 3",
        "cannot read every: ticks repeat in whole minutes (cron has no seconds)\n"
        "  'at 10:00 repeating every 1m30s times 3'\n"
        "                            ^^^^^",
    ),
    (
        "at 10:00 repeating every 1M times 2",
        "cannot read every: months and years vary in length: space the ticks with m, h, d or w\n"
        "  'at 10:00 repeating every 1M times 2'\n"
        "                            ^^",
    ),
    (
        "at 10:00 repeating every 30m",
        "cannot read every: expected 'times', found the end of the phrase\n"
        "  'at 10:00 repeating every 30m'\n"
        "                               ^",
    ),
    (
        "Monday at 15:00 repeating every 30m times 6 please",
        "cannot read every: expected the end of the phrase, found 'please'\n"
        "  'Monday at 15:00 repeating every 30m times 6 please'\n"
        "                                               ^^^^^^",
    ),
]


@pytest.mark.parametrize(("phrase", "message"), ERRORS)
def test_error_message(phrase, message):
    with pytest.raises(ScheduleParseError) as info:
        parse_every(phrase)
    assert str(info.value) == f"{message}\n{VALID_EXAMPLES}"


def test_error_carries_the_location():
    location = Location(file="r.yml", line=7, section="runner", name="nightly")
    with pytest.raises(ScheduleParseError) as info:
        parse_every("Monday at 25:00", location)
    error = info.value
    assert isinstance(error, ConfigError)
    assert error.location == location
    assert str(error).splitlines()[:3] == [
        "r.yml:7, runner 'nightly': cannot read every: hours go from 00 to 23",
        "  'Monday at 25:00'",
        "             ^^",
    ]
    assert str(pickle.loads(pickle.dumps(error))) == str(error)


def test_whitespace_keeps_the_caret_aligned():
    with pytest.raises(ScheduleParseError) as info:
        parse_every("at\t25:00")
    assert str(info.value).splitlines()[1:3] == ["  'at 25:00'", "      ^^"]


def test_phrase_must_be_text():
    with pytest.raises(ScheduleParseError, match="the phrase must be text"):
        parse_every(15)  # type: ignore[arg-type]


# --- regression (issue 7, fuzzing): numbers past Python's 4,300-digit int() limit ------------


def test_numbers_of_thousands_of_digits_are_parse_errors_not_crashes():
    # int() refuses more than 4,300 digits with a ValueError; the parser used to let it escape.
    digits = "1" * 5000
    for phrase in (f"{digits}m", f"Monday at 15:00 repeating every {digits}m times 2"):
        with pytest.raises(ScheduleParseError, match="an interval is at most 100Y"):
            parse_every(phrase)
    assert parse_every("0" * 5000 + "1m") == parse_every("1m")


def test_a_huge_repeat_count_is_capped_like_any_large_one():
    huge = parse_every("Monday at 15:00 repeating every 1m times " + "9" * 5000)
    week = parse_every("Monday at 15:00 repeating every 1m times 10080")
    assert huge.times == 10**18
    assert translate(huge) == translate(week)


@pytest.mark.parametrize(
    ("phrase", "hours"),
    [
        ("1d", 24),
        ("90m", 1.5),
        ("Monday at 15:00", 7 * 24),
        ("weekday at 09:30", 3 * 24),  # Friday 09:30 to Monday 09:30
        ("at 09:30 repeating every 2h times 3", 20),  # 13:30 to 09:30 the next day
        ("Sunday at 23:00 repeating every 2h times 2", 7 * 24 - 2),  # wraps into Monday
        ("1M", 31 * 24),  # a month at its longest
        ("1Y", 366 * 24),
        ("2w", 14 * 24),
    ],
)
def test_the_longest_gap_between_two_ticks(phrase, hours):
    assert longest_gap(parse_every(phrase)) == hours * 3600
