"""The `every:` phrase of a runner schedule (SPEC 9): its grammar and its translation to triggers.

Grammar (words are case-insensitive, units are case-sensitive)::

    phrase    := interval END
               | when [ repeat ] END
    interval  := part { part }                    parts may be glued or spaced: 10m30s, 10m 30s
    part      := NUMBER UNIT                      no space inside a part: 10m, not 10 m
    UNIT      := "s" | "m" | "h" | "d" | "w" | "M" | "Y"
    when      := day [ "at" time ]                Monday, Mon at 15:00, weekday at 09:30
               | [ "at" ] time                    at 09:30, 09:30 (every day)
    day       := "Monday" | ... | "Sunday"        or the 3-letter "Mon" | ... | "Sun"
               | "weekday"                        Monday to Friday
    time      := NUMBER ":" NUMBER                HH:MM, 24-hour, no spaces: 9:30 or 09:30
    repeat    := "repeating" "every" interval "times" NUMBER
    NUMBER    := ASCII digits

Rules the grammar alone does not say: every count is at least 1 and a unit appears once per
interval (``10m30s``, not ``10m5m``); the parts of an interval may come in any order and are
normalised largest first; an interval is at most 100 years; hours go from 0 to 23 and minutes
(always two digits) from 00 to 59; a repeat spacing is whole minutes without months or years
(cron has minute resolution); ``times`` is at least 1. A day without a time means 00:00.

Translation (:func:`translate`), in the runner's timezone:

* An interval of whole minutes that divides a day is aligned to 00:00 and becomes cron lines
  (``15m``: minutes 0,15,30,45 of every hour; ``90m``: 00:00, 01:30, 03:00, ... which takes two
  lines). ``1w`` is Monday 00:00 (``7d`` and ``168h`` are intervals: SPEC 9). ``NM`` with
  N dividing 12 is the 1st at 00:00 every N months from January; ``1Y`` is 1 January 00:00.
* Every other interval becomes a sensor interval (:class:`IntervalTrigger`), counting a month as
  30 days and a year as 365 days when they appear (``5M`` = 150 days, ``2Y`` = 730 days).
* A day/time is one cron line. A repeat gives K wall-clock ticks from the start, spaced by the
  interval; ticks past midnight fall on the next day (past Sunday, on Monday). The ticks of all
  the days the phrase names are merged, grouped into as few cron lines as this simple grouping
  finds (same minutes and same days share a line), and a tick named twice fires once.

Nothing here imports Dagster: the cron strings are plain 5-field strings (minute hour
day-of-month month day-of-week, Sunday = 0) that the translator hands to ``ScheduleDefinition``.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NoReturn

from capport_dagster.errors import Location, ScheduleParseError, did_you_mean

__all__ = [
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
]

#: Phrases shown in every parse error, one of each form.
EXAMPLES: tuple[str, ...] = (
    "10s",
    "1d",
    "10m30s",
    "2M",
    "Monday at 15:00",
    "at 09:30",
    "weekday at 09:30",
    "Monday at 15:00 repeating every 30m times 6",
)

#: Day names in week order (Monday first, as ISO counts them).
DAY_NAMES: tuple[str, ...] = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)

_MINUTE = 60
_DAY = 24 * 60 * _MINUTE
#: Seconds per unit; a month counts 30 days and a year 365 days where a fixed length is needed.
UNIT_SECONDS: dict[str, int] = {
    "Y": 365 * _DAY,
    "M": 30 * _DAY,
    "w": 7 * _DAY,
    "d": _DAY,
    "h": 60 * _MINUTE,
    "m": _MINUTE,
    "s": 1,
}
_UNIT_ORDER = tuple(UNIT_SECONDS)  # largest first: the order `str()` writes parts in
_UNITS_TEXT = "s, m (minute), h, d, w, M (month) or Y (year)"
_SPELLED_UNITS = {
    "sec": "s",
    "secs": "s",
    "second": "s",
    "seconds": "s",
    "min": "m",
    "mins": "m",
    "minute": "m",
    "minutes": "m",
    "hour": "h",
    "hours": "h",
    "day": "d",
    "days": "d",
    "week": "w",
    "weeks": "w",
    "month": "M",
    "months": "M",
    "year": "Y",
    "years": "Y",
}
_MAX_SECONDS = 100 * UNIT_SECONDS["Y"]
_WEEKDAY = "weekday"
_DAYS_BY_WORD = {
    **{name.lower(): name for name in DAY_NAMES},
    **{name[:3].lower(): name for name in DAY_NAMES},
    _WEEKDAY: _WEEKDAY,
}
_DAY_MINUTES = 24 * 60
_WEEK_MINUTES = 7 * _DAY_MINUTES


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A length of time written as ``<N><unit>`` parts, largest unit first: ``10m30s``."""

    parts: tuple[tuple[int, str], ...]

    def __str__(self) -> str:
        return "".join(f"{count}{unit}" for count, unit in self.parts)

    @property
    def seconds(self) -> int:
        """The length in seconds (a month is 30 days, a year 365 days)."""
        return sum(count * UNIT_SECONDS[unit] for count, unit in self.parts)

    @property
    def is_calendar(self) -> bool:
        """Whether it has months or years, whose real length varies."""
        return any(unit in "MY" for _, unit in self.parts)


@dataclass(frozen=True)
class Every:
    """A parsed `every:` phrase; ``str()`` gives the normalised phrase.

    * ``kind="interval"``: ``interval`` is the period.
    * ``kind="time"``: ``day`` (a name from :data:`DAY_NAMES`, ``"weekday"``, or ``None`` for
      every day) at ``hour:minute``.
    * ``kind="repeat"``: the same start, then ``times`` ticks spaced by ``interval``.
    """

    kind: Literal["interval", "time", "repeat"]
    interval: Interval | None = None
    day: str | None = None
    hour: int = 0
    minute: int = 0
    times: int = 1

    def __str__(self) -> str:
        if self.kind == "interval":
            return str(self.interval)
        at = f"at {self.hour:02d}:{self.minute:02d}"
        start = f"{self.day} {at}" if self.day else at
        if self.kind == "time":
            return start
        return f"{start} repeating every {self.interval} times {self.times}"


@dataclass(frozen=True)
class CronTrigger:
    """Fire at the union of some 5-field cron lines, read in the runner's timezone."""

    crons: tuple[str, ...]


@dataclass(frozen=True)
class IntervalTrigger:
    """Fire every ``seconds`` (a sensor's ``minimum_interval_seconds``), not aligned to a clock."""

    seconds: int


# --- parsing ----------------------------------------------------------------------------------


def parse_every(text: str, location: Location | None = None) -> Every:
    """Read an `every:` phrase; raises :class:`ScheduleParseError` pointing at the bad token."""
    if not isinstance(text, str):
        raise ScheduleParseError(
            _message(str(text), 0, 0, "the phrase must be text, like 1d or Monday at 15:00"),
            location,
        )
    return _Parser(text, location).phrase()


@dataclass(frozen=True)
class _Token:
    kind: Literal["number", "word", "colon", "end"]
    text: str
    start: int
    spaced: bool  # whitespace, or the start of the phrase, comes right before it

    @property
    def end(self) -> int:
        return self.start + len(self.text)


def _tokenize(text: str, location: Location | None) -> list[_Token]:
    """Numbers (ASCII digits), words (letters), colons; whitespace only sets `spaced`."""
    tokens: list[_Token] = []
    position, spaced = 0, True
    while position < len(text):
        char = text[position]
        if char.isspace():
            position, spaced = position + 1, True
            continue
        if _is_digit(char):
            kind, end = "number", _run(text, position, _is_digit)
        elif char.isalpha():
            kind, end = "word", _run(text, position, str.isalpha)
        elif char == ":":
            kind, end = "colon", position + 1
        else:
            reason = f"the character '{char}' is not allowed: write numbers, words and ':'"
            raise ScheduleParseError(_message(text, position, position + 1, reason), location)
        tokens.append(_Token(kind, text[position:end], position, spaced))  # type: ignore[arg-type]
        position, spaced = end, False
    tokens.append(_Token("end", "", len(text), True))
    return tokens


#: Digits a count keeps; a longer number is read as ``10 ** _MAX_DIGITS`` (see :func:`_number`).
_MAX_DIGITS = 18


def _number(token: _Token) -> int:
    """The value of a number token.

    Python refuses to convert more than 4,300 digits (`ValueError`), and no count needs 19: a
    longer number is read as ``10 ** 18``, which every check treats as the huge value it is (an
    interval over 100Y; ticks capped at a week's worth).
    """
    digits = token.text.lstrip("0") or "0"
    return int(digits) if len(digits) <= _MAX_DIGITS else 10**_MAX_DIGITS


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _run(text: str, start: int, accept) -> int:
    end = start
    while end < len(text) and accept(text[end]):
        end += 1
    return end


class _Parser:
    """Recursive descent over the tokens, one method per rule of the grammar."""

    def __init__(self, text: str, location: Location | None) -> None:
        self.text = text
        self.location = location
        self.tokens = _tokenize(text, location)
        self.position = 0

    # phrase := interval END | when [ repeat ] END
    def phrase(self) -> Every:
        token = self.peek()
        if token.kind == "end":
            self.fail(token, "the phrase is empty: expected an interval like 1d or a time")
        if token.kind == "number" and self.peek(1).kind != "colon":
            interval = self.interval()
            self.expect_end("another <N><unit> part or the end of the phrase")
            return Every("interval", interval=interval)
        day, hour, minute = self.when()
        if self.peek_word("repeating"):
            interval, times = self.repeat()
            self.expect_end("the end of the phrase")
            return Every("repeat", interval, day, hour, minute, times)
        self.expect_end("'repeating every <interval> times <K>' or the end of the phrase")
        return Every("time", day=day, hour=hour, minute=minute)

    # interval := part { part }
    def interval(self) -> Interval:
        first = self.peek()
        parts: dict[str, int] = {}
        while True:
            number, unit = self.part(first_part=not parts)
            if unit.text in parts:
                self.fail(number, f"the unit '{unit.text}' is already given", end=unit.end)
            parts[unit.text] = _number(number)
            if self.peek().kind != "number" or self.peek(1).kind == "colon":
                break
        ordered = sorted(parts.items(), key=lambda part: _UNIT_ORDER.index(part[0]))
        interval = Interval(tuple((count, unit) for unit, count in ordered))
        if interval.seconds > _MAX_SECONDS:
            self.fail(first, "an interval is at most 100Y", end=unit.end)
        return interval

    # part := NUMBER UNIT
    def part(self, *, first_part: bool) -> tuple[_Token, _Token]:
        number = self.take()
        if not number.spaced and first_part:
            self.fail(number, f"put a space before '{number.text}'")
        if _number(number) == 0:
            self.fail(number, "a count must be at least 1")
        unit = self.peek()
        if unit.kind != "word":
            self.fail(unit, f"expected a unit right after {number.text}: {_UNITS_TEXT}")
        if unit.spaced:
            self.fail(unit, f"write the unit right after its number: {number.text}{unit.text}")
        self.take()
        if unit.text not in UNIT_SECONDS:
            self.fail(unit, f"unknown unit '{unit.text}': expected {_UNITS_TEXT}{_unit_hint(unit)}")
        return number, unit

    # when := day [ "at" time ] | [ "at" ] time
    def when(self) -> tuple[str | None, int, int]:
        token = self.peek()
        day = None
        if token.kind == "word" and token.text.lower() in _DAYS_BY_WORD:
            day = _DAYS_BY_WORD[self.take().text.lower()]
            if self.peek().kind == "number":
                self.fail(self.peek(), f"write 'at' before the time: {day} at HH:MM")
            if not self.peek_word("at"):
                return day, 0, 0
        if self.peek_word("at"):
            self.take()
            hour, minute = self.time()
            return day, hour, minute
        if token.kind == "number":
            hour, minute = self.time()
            return day, hour, minute
        expected = "a day (Monday to Sunday, or weekday), 'at HH:MM' or an interval like 1d"
        choices = (*DAY_NAMES, _WEEKDAY, "at")
        if token.kind == "word":
            self.fail(token, f"unknown word '{token.text}': expected {expected}", choices)
        self.fail(token, f"expected {expected}, found '{token.text}'", choices)

    # time := NUMBER ":" NUMBER
    def time(self) -> tuple[int, int]:
        hour = self.peek()
        if hour.kind != "number":
            self.fail(hour, "expected a time HH:MM, like 09:30")
        if not hour.spaced:
            self.fail(hour, f"put a space before '{hour.text}'")
        self.take()
        colon, minute = self.peek(), self.peek(1)
        if colon.kind != "colon" or colon.spaced:
            self.fail(hour, "expected a time HH:MM, like 09:30", end=colon.end)
        if minute.kind != "number" or minute.spaced:
            self.fail(minute, "expected two digits of minutes after ':', like 09:30")
        self.position += 2
        if len(hour.text) > 2 or int(hour.text) > 23:
            self.fail(hour, "hours go from 00 to 23")
        if len(minute.text) != 2 or int(minute.text) > 59:
            self.fail(minute, "minutes are two digits from 00 to 59")
        return int(hour.text), int(minute.text)

    # repeat := "repeating" "every" interval "times" NUMBER
    def repeat(self) -> tuple[Interval, int]:
        self.keyword("repeating")
        self.keyword("every")
        start = self.peek()
        if start.kind != "number":
            self.fail(start, "expected the interval between ticks, like 30m")
        interval = self.interval()
        end = self.tokens[self.position - 1].end
        if interval.is_calendar:
            reason = "months and years vary in length: space the ticks with m, h, d or w"
            self.fail(start, reason, end=end)
        if interval.seconds % _MINUTE:
            reason = "ticks repeat in whole minutes (cron has no seconds)"
            self.fail(start, reason, end=end)
        self.keyword("times")
        count = self.peek()
        if count.kind != "number":
            self.fail(count, "expected how many ticks after 'times', like times 6")
        self.take()
        if _number(count) == 0:
            self.fail(count, "times must be at least 1")
        return interval, _number(count)

    # --- token helpers

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.position + ahead, len(self.tokens) - 1)]

    def take(self) -> _Token:
        token = self.peek()
        self.position += 1
        return token

    def peek_word(self, word: str) -> bool:
        token = self.peek()
        return token.kind == "word" and token.text.lower() == word

    def keyword(self, word: str) -> None:
        token = self.peek()
        if not self.peek_word(word):
            found = "the end of the phrase" if token.kind == "end" else f"'{token.text}'"
            self.fail(token, f"expected '{word}', found {found}", (word,))
        if not token.spaced:
            self.fail(token, f"put a space before '{token.text}'")
        self.take()

    def expect_end(self, expected: str) -> None:
        token = self.peek()
        if token.kind != "end":
            choices = ("repeating",) if "repeating" in expected else ()
            reason = f"expected {expected}, found '{token.text}'"
            if token.text.lower() in ("am", "pm"):
                reason += " - times are 24-hour, like 21:30"
            self.fail(token, reason, choices)

    def fail(
        self,
        token: _Token,
        reason: str,
        choices: Iterable[str] = (),
        *,
        end: int | None = None,
    ) -> NoReturn:
        """Raise the error for `token` (or the span from it to `end`), with a close word."""
        if token.kind == "word":
            reason += _close_word(token.text, choices)
        span_end = token.end if end is None else end
        message = _message(self.text, token.start, span_end, reason)
        raise ScheduleParseError(message, self.location)


def _close_word(word: str, choices: Iterable[str]) -> str:
    """Case-insensitive did-you-mean that shows the suggestion in its usual spelling."""
    usual = {choice.lower(): choice for choice in choices}
    hint = did_you_mean(word.lower(), usual)
    for lower, spelling in usual.items():
        hint = hint.replace(f"'{lower}'", f"'{spelling}'")
    return hint


def _unit_hint(unit: _Token) -> str:
    text = unit.text
    if text in _SPELLED_UNITS:
        return f" - write {_SPELLED_UNITS[text]!r} for {text}"
    if text.lower() in _SPELLED_UNITS:
        return f" - write {_SPELLED_UNITS[text.lower()]!r} for {text}"
    same_letter = [u for u in UNIT_SECONDS if u.lower() == text.lower()]
    if same_letter:
        return f" - units are case-sensitive: did you mean {' or '.join(map(repr, same_letter))}?"
    return ""


def _message(text: str, start: int, end: int, reason: str) -> str:
    """The reason, then the quoted phrase on its own line with carets under the bad span."""
    shown = "".join(" " if char.isspace() else char for char in text)
    carets = "^" * max(end - start, 1)
    return (
        f"cannot read every: {reason}\n"
        f"  '{shown}'\n"
        f"   {' ' * start}{carets}\n"
        f"valid examples: {', '.join(EXAMPLES)}"
    )


# --- translation ------------------------------------------------------------------------------


def translate(every: Every) -> CronTrigger | IntervalTrigger:
    """The trigger an `every:` phrase means (see the module docstring for the rules)."""
    if every.kind != "interval":
        return CronTrigger(_cron_lines(_phrase_ticks(every)))
    assert every.interval is not None
    parts = every.interval.parts
    if len(parts) == 1 and parts[0][1] == "M" and 12 % parts[0][0] == 0:
        months = _field(range(1, 13, parts[0][0]), 1, 12)
        return CronTrigger((f"0 0 1 {months} *",))
    if parts == ((1, "Y"),):
        return CronTrigger(("0 0 1 1 *",))
    if parts == ((1, "w"),):  # Monday 00:00; `7d` stays an interval (SPEC 9: Nd, N > 1)
        return CronTrigger(_cron_lines({0}))
    seconds = every.interval.seconds
    if not every.interval.is_calendar and seconds % _MINUTE == 0:
        minutes = seconds // _MINUTE
        if _DAY_MINUTES % minutes == 0:
            return CronTrigger(_cron_lines(_day_grid(minutes)))
    return IntervalTrigger(seconds)


def describe(trigger: CronTrigger | IntervalTrigger) -> str:
    """One line for humans: ``cron 0 15 * * 1``, ``cron [a; b]`` or ``sensor every 630 s``."""
    if isinstance(trigger, IntervalTrigger):
        return f"sensor every {trigger.seconds} s"
    if len(trigger.crons) == 1:
        return f"cron {trigger.crons[0]}"
    return f"cron [{'; '.join(trigger.crons)}]"


def longest_gap(every: Every) -> int:
    """The longest time, in seconds, between two ticks of the phrase: how long a pipeline it
    schedules may go without a run before it is late (a runner's freshness). Months and years
    count at their longest (31 and 366 days), so a short month never reads as overdue."""
    if every.kind == "interval":
        assert every.interval is not None
        longest = {"M": 31 * _DAY, "Y": 366 * _DAY}
        return sum(
            count * longest.get(unit, UNIT_SECONDS[unit]) for count, unit in every.interval.parts
        )
    ticks = sorted(_phrase_ticks(every))
    gaps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    gaps.append(ticks[0] + _WEEK_MINUTES - ticks[-1])  # from the week's last tick to its first
    return max(gaps) * _MINUTE


def _day_grid(minutes: int) -> set[int]:
    """Minutes of the week at every multiple of `minutes` from 00:00, every day."""
    return {
        day * _DAY_MINUTES + tick for day in range(7) for tick in range(0, _DAY_MINUTES, minutes)
    }


def _phrase_ticks(every: Every) -> set[int]:
    """The minutes of the week (0 = Monday 00:00) a day/time or repeat phrase fires at."""
    if every.day is None:
        days: Iterable[int] = range(7)
    elif every.day == _WEEKDAY:
        days = range(5)
    else:
        days = (DAY_NAMES.index(every.day),)
    step = every.interval.seconds // _MINUTE if every.kind == "repeat" and every.interval else 0
    # Ticks wrap around the week, so after a week's worth of minutes they only repeat.
    count = min(every.times, _WEEK_MINUTES) if every.kind == "repeat" else 1
    start = every.hour * 60 + every.minute
    return {
        (day * _DAY_MINUTES + start + k * step) % _WEEK_MINUTES
        for day in days
        for k in range(count)
    }


def _cron_lines(ticks: Iterable[int]) -> tuple[str, ...]:
    """Few cron lines whose union is exactly `ticks` (minutes of the week, Monday 00:00 = 0).

    Times of day that fire on the same days share a group; inside a group, hours that fire at
    the same minutes share a line.
    """
    days_at: dict[tuple[int, int], set[int]] = defaultdict(set)  # (hour, minute) -> cron days
    for tick in ticks:
        day, minute_of_day = divmod(tick, _DAY_MINUTES)
        days_at[divmod(minute_of_day, 60)].add((day + 1) % 7)  # cron counts Sunday as 0
    times_on: dict[frozenset[int], list[tuple[int, int]]] = defaultdict(list)
    for time, days in days_at.items():
        times_on[frozenset(days)].append(time)
    lines: list[tuple[list[int], list[int], list[int]]] = []
    for days, times in times_on.items():
        minutes_in: dict[int, set[int]] = defaultdict(set)
        for hour, minute in times:
            minutes_in[hour].add(minute)
        hours_with: dict[frozenset[int], list[int]] = defaultdict(list)
        for hour, minutes in minutes_in.items():
            hours_with[frozenset(minutes)].append(hour)
        for minutes, hours in hours_with.items():
            lines.append((sorted(hours), sorted(minutes), sorted(days)))
    lines.sort()
    return tuple(
        f"{_field(minutes, 0, 59)} {_field(hours, 0, 23)} * * {_field(days, 0, 6)}"
        for hours, minutes, days in lines
    )


def _field(values: Iterable[int], low: int, high: int) -> str:
    """One cron field: ``*``, ``*/step``, or values and ``a-b`` runs joined by commas."""
    values = sorted(set(values))
    if values == list(range(low, high + 1)):
        return "*"
    if len(values) >= 3:
        step = values[1] - values[0]
        if values == list(range(low, high + 1, step)):
            return f"*/{step}"
    runs: list[list[int]] = []
    for value in values:
        if runs and value == runs[-1][-1] + 1:
            runs[-1].append(value)
        else:
            runs.append([value])
    return ",".join(
        f"{run[0]}-{run[-1]}" if len(run) >= 3 else ",".join(map(str, run)) for run in runs
    )
