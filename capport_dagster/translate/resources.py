"""The run settings every capport op reads: mode, output directory, reference date/time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pendulum
from dagster import ConfigurableResource, InitResourceContext
from pydantic import PrivateAttr

from capport_dagster.core.modes import RunMode
from capport_dagster.core.variables import run_variables
from capport_dagster.errors import ConfigError

__all__ = ["CapportRun", "parse_reference"]


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


class CapportRun(ConfigurableResource):
    """Settings of one run, set through the job's run config (see `run_config.py`).

    `ref_datetime` defaults to the moment the run was created (so every stage of a run, and a
    re-execution of it, sees the same `$REF_DATE`), in the runner's timezone.
    """

    config_dir: str
    mode: str = RunMode.SYNC_LAZY.value
    output_dir: str = "output"
    ref_datetime: str | None = None
    timezone: str = "UTC"
    preview: bool = False

    _reference: datetime | None = PrivateAttr(default=None)
    _variables: Mapping[str, str] | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._reference = self._resolve_reference(context)

    def _resolve_reference(self, context: InitResourceContext | None) -> datetime:
        zone = pendulum.timezone(self.timezone)
        if self.ref_datetime:
            return parse_reference(self.ref_datetime, self.timezone)
        run = context.run if context is not None else None
        if run is not None and context is not None and context.instance is not None:
            record = context.instance.get_run_record_by_id(run.run_id)
            if record is not None:
                return pendulum.instance(record.create_timestamp).in_timezone(zone)
        return pendulum.now(zone)

    @property
    def run_mode(self) -> RunMode:
        return RunMode(self.mode)

    @property
    def reference(self) -> datetime:
        if self._reference is None:
            self._reference = self._resolve_reference(None)
        return self._reference

    def variables(self) -> Mapping[str, str]:
        """The run's variables, taken once per run (the environment as the run found it), as
        every stage asks for them."""
        if self._variables is None:
            self._variables = MappingProxyType(
                run_variables(
                    config_dir=Path(self.config_dir),
                    output_dir=Path(self.output_dir),
                    ref_datetime=self.reference,
                    environ=os.environ,
                )
            )
        return self._variables
