"""The run settings every capport op reads: mode, output directory, reference date/time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pendulum
from dagster import Field, InitResourceContext, Noneable, ResourceDefinition, resource

from capport_dagster.core.modes import RunMode
from capport_dagster.core.variables import run_variables
from capport_dagster.errors import ConfigError

__all__ = ["CapportRun", "capport_run_resource", "parse_reference"]


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


@dataclass
class CapportRun:
    """Settings of one run, set through the job's run config (see `run_config.py`); their
    defaults are the `capport` resource's config schema (`capport_run_resource`).

    `ref_datetime` defaults to the moment the run was created (so every stage of a run, and a
    re-execution of it, sees the same `$REF_DATE`), in the runner's timezone.
    """

    config_dir: str
    mode: str
    output_dir: str
    ref_datetime: str | None
    timezone: str
    preview: bool
    _reference: datetime | None = field(default=None, init=False, repr=False)
    _variables: Mapping[str, str] | None = field(default=None, init=False, repr=False)

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
                    output_dir=self.output_dir,  # a path, or an object-store URI
                    ref_datetime=self.reference,
                    environ=os.environ,
                )
            )
        return self._variables


def capport_run_resource(config_dir: str) -> ResourceDefinition:
    """The `capport` resource of a config directory's jobs: a `CapportRun` per run.

    A function resource, not a `ConfigurableResource`: Dagster rebuilds a Pydantic resource
    with each run's config, inferring its schema again: ~10 ms of every run, however small
    (docs/benchmarks.md, "Files, SQL and the transform language against the Dagster floor").
    """

    @resource(
        config_schema={
            "config_dir": Field(str, default_value=config_dir, is_required=False),
            "mode": Field(str, default_value=RunMode.SYNC_LAZY.value, is_required=False),
            "output_dir": Field(str, default_value="output", is_required=False),
            "ref_datetime": Field(Noneable(str), default_value=None, is_required=False),
            "timezone": Field(str, default_value="UTC", is_required=False),
            "preview": Field(bool, default_value=False, is_required=False),
        },
        description="Settings of one capport run: mode, output directory, reference date/time.",
    )
    def capport(context: InitResourceContext) -> CapportRun:
        run = CapportRun(**context.resource_config)
        run.setup_for_execution(context)
        return run

    return capport
