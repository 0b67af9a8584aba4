"""A runner's partitions (`core/partitions.py`) as Dagster time-window partitions.

* The partitions definition: a `TimeWindowPartitionsDefinition` on the runner's cron line, in its
  timezone, from its start, with `end_offset=1`, so the window that starts at the latest tick (the
  one a schedule launches at that tick) is a partition already. Keys are Dagster's default
  formats: `2026-11-28` (daily, weekly, monthly), `2026-11-28-15:00` (hourly).
* A partitioned job cannot take capport's flat run config: Dagster 1.13 refuses a `ConfigMapping`
  on a job with partitions ("Can't supply a ConfigMapping for 'config' when 'partitions_def' is
  supplied"). Its config is a `PartitionedConfig` whose run config for a partition is what the
  flat mapping makes of the runner's defaults with that partition's start as `ref_datetime`; a
  flat config (a schedule's, `capport run`'s) is turned into Dagster's form by the same mapping
  (:func:`dagster_run_config`), so the values and their checks stay the same.
* Which partition a date names (:func:`partition_for`): `capport run -d` and `capport backfill
  --from/--to` take a partition key, or a date-time that is a partition's start; anything else is
  refused, naming the partition that contains it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from dagster import (
    ConfigMapping,
    PartitionedConfig,
    PartitionKeyRange,
    TimeWindowPartitionsDefinition,
)
from dagster._core.definitions.partitions.context import partition_loading_context
from dagster._core.storage.tags import PARTITION_NAME_TAG, PARTITION_SET_TAG

from capport_dagster.core.partitions import Cadence
from capport_dagster.errors import ConfigError, Location
from capport_dagster.translate.reference import parse_reference

__all__ = [
    "PARTITION_NAME_TAG",
    "dagster_run_config",
    "job_config",
    "partition_for",
    "partition_set_name",
    "partition_start",
    "partition_tags",
    "partitions_between",
    "partitions_def",
]


@lru_cache(maxsize=64)
def partitions_def(cadence: Cadence) -> TimeWindowPartitionsDefinition:
    """The partitions of a cadence (one object per cadence: jobs and assets of a pipeline share
    it, and Dagster compares them)."""
    return TimeWindowPartitionsDefinition(
        cron_schedule=cadence.cron,
        fmt=cadence.key_format,
        start=cadence.start,  # naive: wall time in `timezone`
        timezone=cadence.timezone,
        end_offset=1,
    )


def partition_start(cadence: Cadence, key: str) -> datetime:
    """The start of a partition's window, in the cadence's timezone: its `$REF_DATETIME`."""
    return partitions_def(cadence).time_window_for_partition_key(key).start


def partition_set_name(job_name: str) -> str:
    """The partition set Dagster makes of a partitioned job (what backfills and the UI name)."""
    return f"{job_name}_partition_set"


def partition_tags(job_name: str, key: str) -> dict[str, str]:
    """The tags of a run of one partition, as Dagster's own partitioned runs carry them."""
    return {PARTITION_NAME_TAG: key, PARTITION_SET_TAG: partition_set_name(job_name)}


def job_config(
    mapping: ConfigMapping, cadence: Cadence | None
) -> ConfigMapping | PartitionedConfig:
    """The config of a job: the flat `mapping`, or for a partitioned job (`cadence`), per
    partition the flat defaults with its start."""
    if cadence is None:
        return mapping

    def for_key(key: str) -> Mapping[str, Any]:
        return dagster_run_config(mapping, {"ref_datetime": partition_start(cadence, key)})

    return PartitionedConfig(partitions_def(cadence), run_config_for_partition_key_fn=for_key)


def dagster_run_config(mapping: ConfigMapping, flat: Mapping[str, Any]) -> dict[str, Any]:
    """A flat capport run config in Dagster's form: defaults filled, values checked (a
    `DagsterInvalidConfigError`, as a launch with the flat config would raise), mapped."""
    values = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in flat.items()
    }
    return dict(mapping.resolve_from_unvalidated_config(values))


def partition_for(cadence: Cadence, text: str | None, option: str, now: datetime) -> str:
    """The partition key `text` names (`option` is how the command line called it: `-d`,
    `--from`): a partition key, or a date or date-time that is a partition's start. None: the
    partition containing `now` (the one the latest tick started). Refused (`ConfigError`): a
    date inside a partition but not its start, one before the first partition or after the
    current one."""
    definition = partitions_def(cadence)
    with partition_loading_context(effective_dt=now):
        first, last = definition.get_first_partition_key(), definition.get_last_partition_key()
        if text is None:
            key = definition.get_partition_key_for_timestamp(now.timestamp())
            if first is None or not definition.has_partition_key(key):
                raise ConfigError(
                    f"no partition yet: the first starts at {_start_text(cadence)}"
                    " (the runner's partitions.start)",
                    Location(),
                )
            return key
        if definition.has_partition_key(text):
            return text
        try:
            moment = parse_reference(text, cadence.timezone)
        except ConfigError as exc:
            if _looks_like_key(cadence, text):
                moment = datetime.strptime(text, cadence.key_format)
                moment = moment.replace(tzinfo=ZoneInfo(cadence.timezone))
            else:
                raise ConfigError(
                    f"{option} {exc.message}, or a partition key like {first or 'YYYY-MM-DD'}",
                    Location(),
                ) from None
        key = definition.get_partition_key_for_timestamp(moment.timestamp())
        start = partition_start(cadence, key)
        if first is not None and start < partition_start(cadence, first):
            raise ConfigError(
                f"{option} {text} is before the first partition, {first} (partitions.start"
                f" {_start_text(cadence)}): give a later date, or an earlier partitions.start",
                Location(),
            )
        if last is None or start > partition_start(cadence, last):
            raise ConfigError(
                f"{option} {text} is after the current partition, {last}: a partition exists"
                " once its window has started",
                Location(),
            )
        if start != moment:
            raise ConfigError(
                f"{option} {text} is inside partition {key}, which starts at"
                f" {start.isoformat()} ({cadence.kind}): give {option} {key}",
                Location(),
            )
        return key


def partitions_between(cadence: Cadence, first: str, last: str, now: datetime) -> list[str]:
    """The partition keys from `first` to `last`, both included, in time order."""
    definition = partitions_def(cadence)
    with partition_loading_context(effective_dt=now):
        return list(definition.get_partition_keys_in_range(PartitionKeyRange(first, last)))


def _looks_like_key(cadence: Cadence, text: str) -> bool:
    try:
        datetime.strptime(text, cadence.key_format)
    except ValueError:
        return False
    return True


def _start_text(cadence: Cadence) -> str:
    return cadence.start.isoformat(sep=" ", timespec="minutes").removesuffix(" 00:00")
