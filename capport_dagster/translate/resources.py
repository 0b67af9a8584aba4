"""The run settings every capport op reads: mode, output directory, reference date/time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType

import pendulum
from dagster import Field, InitResourceContext, Noneable, Permissive, ResourceDefinition, resource

from capport_dagster.core.modes import RunMode
from capport_dagster.core.partitions import Cadence
from capport_dagster.core.variables import run_variables
from capport_dagster.translate.partitions import PARTITION_NAME_TAG, partition_start
from capport_dagster.translate.reference import parse_reference

__all__ = ["CapportRun", "capport_run_resource", "parse_reference"]


@dataclass
class CapportRun:
    """Settings of one run, set through the job's run config (see `run_config.py`); their
    defaults are the `capport` resource's config schema (`capport_run_resource`).

    `ref_datetime` defaults to the moment the run was created (so every stage of a run, and a
    re-execution of it, sees the same `$REF_DATE`), in the runner's timezone. A run of a
    partition (tag `dagster/partition`, a partitioned job's run) has its partition's start
    instead, whatever `ref_datetime` says: a partition's runs, however launched (schedule,
    backfill, launchpad, `capport run -d`), all see the same `$REF_DATE`.
    """

    config_dir: str
    mode: str
    output_dir: str
    ref_datetime: str | None
    timezone: str
    preview: bool
    #: Record each frame and sink the run produced in the asset catalog (`translate/catalog.py`).
    catalog: bool = True
    #: The job's partitions (`Cadence.config()`); None: an unpartitioned job.
    partitions: Mapping[str, str] | None = None
    _reference: datetime | None = field(default=None, init=False, repr=False)
    _variables: Mapping[str, str] | None = field(default=None, init=False, repr=False)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        self._reference = self._resolve_reference(context)

    def _resolve_reference(self, context: InitResourceContext | None) -> datetime:
        zone = pendulum.timezone(self.timezone)
        run = context.run if context is not None else None
        key = run.tags.get(PARTITION_NAME_TAG) if run is not None else None
        if key is not None and self.partitions is not None:
            return partition_start(Cadence.from_config(dict(self.partitions)), key)
        if self.ref_datetime:
            return parse_reference(self.ref_datetime, self.timezone)
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
            "catalog": Field(bool, default_value=True, is_required=False),
            "partitions": Field(Noneable(Permissive()), default_value=None, is_required=False),
        },
        description="Settings of one capport run: mode, output directory, reference date/time.",
    )
    def capport(context: InitResourceContext) -> CapportRun:
        run = CapportRun(**context.resource_config)
        run.setup_for_execution(context)
        return run

    return capport
