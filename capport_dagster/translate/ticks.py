"""When a translated `every:` phrase fires: the next ticks of a trigger, as Dagster computes them.

Cron triggers use Dagster's own ``cron_string_iterator`` (the code the schedule daemon runs), one
iterator per cron line, merged by instant: sorted, and a moment two lines both name fires once.
Ticks come back in the runner's timezone.

Daylight saving time, as Dagster 1.13 handles it (asserted in ``tests/test_ticks.py``):

* A wall time the clocks skip (``at 02:30`` on the spring-forward day in New York) fires once, at
  the end of the gap (03:00 local), so a daily schedule does not lose that day. A cron line whose
  hour field is ``*`` (``15m``, ``1h``) is the exception: it skips the missing times (02:00 to
  02:59) and goes on at 03:00.
* A wall time the clocks repeat (``at 01:30`` on the fall-back day) fires once, at the later of
  the two (01:30 standard time), again except for lines whose hour field is ``*``, which fire at
  both.
* The phrases are wall-clock times: ``90m`` is 00:00, 01:30, 03:00, ... local time every day, so
  the real gap around a change is 30 minutes or 2.5 hours, and a repeat's ticks that fall in a
  skipped hour collapse into its end.

Interval triggers become sensors, which fire every ``minimum_interval_seconds`` counted from
whenever the daemon starts evaluating them: they are not aligned to the clock and do not see DST.
:func:`next_ticks` models that as ``after + k * seconds`` of real (UTC) time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice

from dagster._time import get_timezone
from dagster._utils.schedules import cron_string_iterator

from capport_dagster.core.every import CronTrigger, IntervalTrigger

__all__ = ["next_ticks"]


def next_ticks(
    trigger: CronTrigger | IntervalTrigger,
    timezone: str,
    after: datetime,
    count: int,
) -> list[datetime]:
    """The next `count` fire times strictly after `after` (an aware datetime), in `timezone`."""
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"`after` must be an aware datetime, got {after!r}")
    if count < 0:
        raise ValueError(f"`count` must be 0 or more, got {count}")
    zone = get_timezone(timezone)
    if isinstance(trigger, IntervalTrigger):
        start = after.astimezone(UTC)  # add real seconds, not wall-clock ones
        step = timedelta(seconds=trigger.seconds)
        return [(start + k * step).astimezone(zone) for k in range(1, count + 1)]
    ticks: dict[float, datetime] = {}
    for cron in trigger.crons:
        for tick in islice(_cron_ticks(cron, timezone, after), count):
            ticks.setdefault(tick.timestamp(), tick)
    return [ticks[moment] for moment in sorted(ticks)[:count]]


def _cron_ticks(cron: str, timezone: str, after: datetime) -> Iterator[datetime]:
    """One cron line's ticks strictly after `after` (Dagster's iterator starts at or after)."""
    moment = after.timestamp()
    for tick in cron_string_iterator(moment, cron, timezone):
        if tick.timestamp() > moment:
            yield tick
