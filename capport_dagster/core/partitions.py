"""Partitions from a runner's schedule: `partitions: true` or `partitions: {start: DATE}`.

A partitioned runner's pipelines get one partition per window of its `every:` phrase, so that a
day's (or an hour's, a week's, a month's) run is a thing Dagster knows: shown per partition in
the UI, backfilled over a range, re-run alone. The window a tick launches is the one that *starts*
at the tick, so a partitioned scheduled run keeps the `$REF_DATETIME` an unpartitioned one has
(the tick), and `$REF_DATE` is the partition's date.

Only regular cadences partition: one cron line firing once an hour (or every N hours, N dividing
24), once a day, once a week, or once every N months (N dividing 12). Sub-hourly phrases would
make thousands of partitions a day; irregular ones (several weekdays, times at uneven hours, a
phrase that needs several cron lines, a sensor interval) have windows of unequal length, which
Dagster's time-window partitions cannot say. Each is refused with what to write instead.

`partitions: true` starts at :data:`DEFAULT_START` (a constant, not "now minus N": the partition
set must be the same at every reload of the code location, or runs and backfills would point at
partitions that come and go). Nothing here imports Dagster: `translate/partitions.py` turns a
:class:`Cadence` into a `TimeWindowPartitionsDefinition`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from capport_dagster.core.every import CronTrigger, Every, IntervalTrigger, describe

__all__ = [
    "DAY_FORMAT",
    "DEFAULT_START",
    "HOUR_FORMAT",
    "Cadence",
    "PartitionsProblem",
    "cadence_for",
    "parse_partitions",
]

#: Where `partitions: true` starts (wall time in the runner's timezone).
DEFAULT_START = "2026-01-01"
#: Partition key formats: Dagster's defaults for daily/weekly/monthly and for hourly partitions.
DAY_FORMAT = "%Y-%m-%d"
HOUR_FORMAT = "%Y-%m-%d-%H:%M"

_NEED = (
    "partitions need hourly, daily, weekly or monthly ticks"
    " (1h, 6h, 1d, at 09:30, Monday at 15:00, 1M)"
)


class PartitionsProblem(ValueError):
    """Why a runner's `partitions` cannot be used; the runner reports it at its location."""


@dataclass(frozen=True)
class Cadence:
    """The partitions of a runner's pipelines: one window per tick of `cron`, from `start`.

    `start` is wall time in `timezone` (naive); the first partition is the first window that
    starts at or after it. `key_format` writes a window's start as its partition key.
    """

    kind: str
    cron: str
    key_format: str
    timezone: str
    start: datetime

    def __str__(self) -> str:
        start = self.start.isoformat(sep=" ", timespec="minutes")
        start = start.removesuffix(" 00:00")
        return f"{self.kind} from {start} ({self.timezone})"

    def config(self) -> dict[str, str]:
        """As plain strings (run config, a resource's config), read back by :meth:`from_config`."""
        return {
            "kind": self.kind,
            "cron": self.cron,
            "key_format": self.key_format,
            "timezone": self.timezone,
            "start": self.start.isoformat(),
        }

    @classmethod
    def from_config(cls, values: dict[str, Any]) -> Cadence:
        return cls(
            kind=str(values["kind"]),
            cron=str(values["cron"]),
            key_format=str(values["key_format"]),
            timezone=str(values["timezone"]),
            start=datetime.fromisoformat(str(values["start"])),
        )


def parse_partitions(value: Any) -> datetime | None:
    """The start a runner's `partitions:` value asks for (None: not partitioned).

    `true` starts at :data:`DEFAULT_START`; `{start: DATE}` at DATE; `false` or absent is off.
    Raises :class:`PartitionsProblem` for anything else.
    """
    if value is None or value is False:
        return None
    if value is True:
        return _start(DEFAULT_START)
    if isinstance(value, dict):
        unknown = sorted(str(key) for key in value if key != "start")
        if unknown or "start" not in value:
            raise PartitionsProblem(
                "partitions: expected true or {start: YYYY-MM-DD}"
                + (f" (unknown key '{unknown[0]}')" if unknown else " (no start given)")
            )
        return _start(str(value["start"]))
    raise PartitionsProblem(f"partitions: expected true or {{start: YYYY-MM-DD}}, got {value!r}")


def cadence_for(
    every: Every, trigger: CronTrigger | IntervalTrigger, timezone: str, start: datetime
) -> Cadence:
    """The partitions a schedule makes, or :class:`PartitionsProblem` saying why it makes none."""
    phrase = f"`every: {every}`"
    if isinstance(trigger, IntervalTrigger):
        if trigger.seconds < 3600:
            raise PartitionsProblem(_too_short(phrase))
        raise PartitionsProblem(
            f"cannot partition {phrase}: it runs as a sensor (every {trigger.seconds} s from when"
            f" the daemon starts), not on the clock, so its runs have no fixed windows; {_NEED},"
            " or remove `partitions`"
        )
    if len(trigger.crons) != 1:
        if all(len(_values(cron.split()[0], 0, 59)) > 1 for cron in trigger.crons):
            raise PartitionsProblem(_too_short(phrase))
        raise PartitionsProblem(_irregular(phrase, trigger))
    cron = trigger.crons[0]
    minute, hour, day, month, weekday = cron.split()
    minutes, hours = _values(minute, 0, 59), _values(hour, 0, 23)
    months, weekdays = _values(month, 1, 12), _values(weekday, 0, 6)
    if len(minutes) != 1:
        raise PartitionsProblem(_too_short(phrase))
    every_month, every_weekday = months == list(range(1, 13)), weekdays == list(range(7))
    kind: str | None = None
    if day == "*" and every_month and every_weekday:
        step = _step(hours, 24)
        if len(hours) == 1:
            kind = "daily"
        elif step is not None:
            kind = "hourly" if step == 1 else f"every {step} hours"
    elif day == "*" and every_month and len(weekdays) == 1 and len(hours) == 1:
        kind = "weekly"
    elif day.isdigit() and every_weekday and len(hours) == 1:
        step = _step(months, 12)
        if step is not None:
            kind = {1: "monthly", 12: "yearly"}.get(step, f"every {step} months")
    if kind is None:
        raise PartitionsProblem(_irregular(phrase, trigger))
    key_format = HOUR_FORMAT if len(hours) > 1 else DAY_FORMAT
    return Cadence(kind, cron, key_format, timezone, start)


def _too_short(phrase: str) -> str:
    return (
        f"cannot partition {phrase}: a partition is at least an hour; use `every: 1h` or"
        " longer, or remove `partitions`"
    )


def _irregular(phrase: str, trigger: CronTrigger) -> str:
    return (
        f"cannot partition {phrase} ({describe(trigger)}): its windows are not all the same"
        f" length; {_NEED}, or remove `partitions`"
    )


def _start(text: str) -> datetime:
    """`YYYY-MM-DD` or `YYYY-MM-DDTHH:MM[:SS]`, wall time in the runner's timezone."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or len(text) < 10:
        raise PartitionsProblem(
            f"partitions.start: {text!r} is not a date (YYYY-MM-DD) or a date-time"
            " (YYYY-MM-DDTHH:MM)"
        )
    if parsed.tzinfo is not None:
        raise PartitionsProblem(
            f"partitions.start: {text!r} has an offset: give the wall time in the schedule's"
            " timezone, without one (e.g. 2026-01-01)"
        )
    return parsed


def _step(values: list[int], period: int) -> int | None:
    """The spacing of `values` when they split `period` evenly from the first (else None)."""
    step = period // len(values)
    if period % len(values) or values != list(range(values[0], values[0] + period, step)):
        return None
    return step


def _values(field: str, low: int, high: int) -> list[int]:
    """The sorted values of one cron field as `core/every.py` writes them (`*`, `*/N`, `a-b`,
    lists)."""
    found: set[int] = set()
    for part in field.split(","):
        if part == "*":
            found.update(range(low, high + 1))
        elif part.startswith("*/"):
            found.update(range(low, high + 1, int(part[2:])))
        elif "-" in part:
            first, last = part.split("-")
            found.update(range(int(first), int(last) + 1))
        else:
            found.add(int(part))
    return sorted(found)
