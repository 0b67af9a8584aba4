"""`$REF_DATETIME` as text: what a run config's `ref_datetime` and `capport run -d` accept.

Its own module so that the resource and the partitions (`partitions.py`, which the resource
asks for a partition's start) both read dates the same way without importing each other.
"""

from __future__ import annotations

from datetime import datetime

import pendulum

from capport_dagster.errors import ConfigError

__all__ = ["parse_reference"]


def parse_reference(text: str, timezone: str) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is wall time in `timezone`.

    Anything else (a time alone, a duration, a typo) is a `ConfigError` quoting the text: the
    run config mapping reports it as a config error before the run starts, and `capport run -d`
    as a usage error.
    """
    try:
        parsed = pendulum.parse(text, tz=pendulum.timezone(timezone))
    except (ValueError, TypeError):  # pendulum.parsing.ParserError is a ValueError
        parsed = None
    if not isinstance(parsed, pendulum.DateTime):
        raise ConfigError(
            f"{text!r} is not an ISO 8601 date or date-time (e.g. 2026-01-05 or "
            "2026-01-05T15:00:00+08:00)"
        )
    return parsed
