"""Runner entries: how and when pipelines run (SPEC 9).

A runner picks the run mode, the executor, the logger and, optionally, a schedule. The schedule's
`every:` phrase is kept as text here; its grammar and translation belong to the scheduler.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

import pendulum
from pydantic import BaseModel, ConfigDict, Field, field_validator

from capport_dagster.core.config import Entry
from capport_dagster.core.every import CronTrigger, Every, IntervalTrigger, parse_every, translate
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import validate_model
from capport_dagster.errors import (
    ConfigError,
    Location,
    Problem,
    ScheduleParseError,
    ValidationError,
    did_you_mean,
)

__all__ = ["Runner", "Schedule", "parse_runner"]

Executor = Literal["in_process", "multiprocess"]


class _ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    every: str
    timezone: str = "UTC"


class _RunnerBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    logger: str | None = None
    run_with: RunMode = RunMode.SYNC_LAZY
    executor: Executor = "in_process"
    max_concurrent: int | None = Field(default=None, ge=1)
    pipelines: tuple[str, ...] = ()
    schedule: _ScheduleBody | None = None

    @field_validator("pipelines", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


@dataclass(frozen=True)
class Schedule:
    """When a runner fires: the parsed `every` phrase and what it translates to."""

    every: Every
    timezone: str
    trigger: CronTrigger | IntervalTrigger


@dataclass(frozen=True)
class Runner:
    name: str
    mode: RunMode
    executor: Executor
    max_concurrent: int | None
    logger: str | None
    pipelines: tuple[str, ...]
    schedule: Schedule | None
    location: Location


def parse_runner(entry: Entry, pipelines: Collection[str], loggers: Collection[str]) -> Runner:
    """Check a runner entry against the pipelines and loggers it names; all problems at once."""
    if not isinstance(entry.body, dict):
        raise ConfigError(f"a runner is a mapping, got {entry.body!r}", entry.location)
    body = validate_model(_RunnerBody, entry.body, entry.location, "runner")
    assert isinstance(body, _RunnerBody)
    problems = []
    if body.logger is not None and body.logger not in loggers:
        problems.append(
            f"unknown logger '{body.logger}'{did_you_mean(body.logger, loggers)}"
            f" (loggers: {', '.join(sorted(loggers)) or 'none defined'})"
        )
    for name in body.pipelines:
        if name not in pipelines:
            problems.append(f"unknown pipeline '{name}'{did_you_mean(name, pipelines)}")
    schedule = None
    if body.schedule is not None:
        try:
            pendulum.timezone(body.schedule.timezone)
        except Exception:
            problems.append(
                f"unknown timezone '{body.schedule.timezone}' (use an IANA name like "
                "'UTC' or 'Asia/Singapore')"
            )
        try:
            every = parse_every(body.schedule.every, entry.location)
            schedule = Schedule(every, body.schedule.timezone, translate(every))
        except ScheduleParseError as exc:
            problems.append(exc.message)
    if problems:
        raise ValidationError(Problem(entry.location, message) for message in problems)
    return Runner(
        name=entry.name,
        mode=body.run_with,
        executor=body.executor,
        max_concurrent=body.max_concurrent,
        logger=body.logger,
        pipelines=body.pipelines,
        schedule=schedule,
        location=entry.location,
    )
