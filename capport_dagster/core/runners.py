"""Runner entries: how and when pipelines run (SPEC 9).

A runner picks the run mode, the executor, the logger and, optionally, a schedule. The schedule's
`every:` phrase is kept as text here; its grammar and translation belong to the scheduler.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pendulum
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from capport_dagster.core.config import Entry
from capport_dagster.core.every import (
    CronTrigger,
    Every,
    IntervalTrigger,
    longest_gap,
    parse_every,
    translate,
)
from capport_dagster.core.modes import Executor, RunMode
from capport_dagster.core.partitions import (
    Cadence,
    PartitionsProblem,
    cadence_for,
    parse_partitions,
)
from capport_dagster.core.registry import validate_model
from capport_dagster.errors import (
    ConfigError,
    Location,
    Problem,
    ScheduleParseError,
    ValidationError,
    did_you_mean,
)

__all__ = [
    "Runner",
    "Schedule",
    "parse_runner",
    "pipeline_overdue_after",
    "pipeline_partitions",
    "runner_problems",
]


class _ScheduleBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    every: str
    timezone: str = "UTC"
    #: How late a run may land before its pipeline's assets are overdue (a length: 2h, 30m).
    grace: str | None = None


class _RunnerBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    logger: str | None = None
    run_with: RunMode = RunMode.SYNC_LAZY
    executor: Executor = "in_process"
    max_concurrent: int | None = Field(default=None, ge=1)
    frames_dir: str | None = None
    pipelines: tuple[str, ...] = ()
    schedule: _ScheduleBody | None = None
    #: `true` or `{start: DATE}`: read by `core/partitions.py`, which words its own problems.
    partitions: Any = None

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
    #: `grace:` in seconds; None: a tenth of the longest gap between two ticks.
    grace: int | None = None

    @property
    def overdue_after(self) -> int:
        """Seconds after a run's output lands past which the next one is late: the longest gap
        between two ticks plus the grace (the assets' freshness)."""
        gap = longest_gap(self.every)
        return gap + (gap // 10 if self.grace is None else self.grace)


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
    #: Where frames persist between processes (run config `frames_dir`); None: the default.
    frames_dir: str | None = None
    #: The partitions of its pipelines (`partitions:`, from its schedule); None: unpartitioned.
    partitions: Cadence | None = None


def parse_runner(entry: Entry, pipelines: Collection[str], loggers: Collection[str]) -> Runner:
    """Check a runner entry against the pipelines and loggers it names; all problems at once.

    A malformed key does not hide the others: the keys that are well-formed are still checked
    (`max_concurrent: 0` beside `logger: nolog` and `every: 10S` gives three problems).
    """
    if not isinstance(entry.body, dict):
        raise ConfigError(f"a runner is a mapping, got {entry.body!r}", entry.location)
    problems: list[str] = []
    body, bad_keys = _well_formed_part(entry)
    if bad_keys is not None:
        try:
            validate_model(_RunnerBody, entry.body, entry.location, "runner")
        except ConfigError as exc:
            problems.append(exc.message)
    if body.logger is not None and body.logger not in loggers:
        problems.append(
            f"unknown logger '{body.logger}'{did_you_mean(body.logger, loggers)}"
            f" (loggers: {', '.join(sorted(loggers)) or 'none defined'})"
        )
    for name in body.pipelines:
        if name not in pipelines:
            problems.append(f"unknown pipeline '{name}'{did_you_mean(name, pipelines)}")
    for name in sorted({n for n in body.pipelines if body.pipelines.count(n) > 1}):
        problems.append(f"lists pipeline '{name}' twice (list each pipeline once)")
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
        if body.schedule.grace is not None:
            try:
                grace = _grace_seconds(body.schedule.grace, entry.location)
            except ScheduleParseError as exc:
                problems.append(exc.message)
                grace = None
            if schedule is not None:
                schedule = replace(schedule, grace=grace)
        unsure = bad_keys is not None and any(
            key == "pipelines" or key not in _RunnerBody.model_fields for key in bad_keys
        )
        if not body.pipelines and not unsure:
            # Not when `pipelines` is malformed or a key is unknown: `pipeline: [p]` (a typo)
            # is already reported, and may be the list.
            problems.append(
                "has a schedule but no pipelines, so it would run nothing: list them in"
                f" `pipelines:`{_choices(pipelines)}, or remove `schedule:`"
            )
    partitions = None
    try:
        start = parse_partitions(body.partitions)
    except PartitionsProblem as exc:
        problems.append(str(exc))
        start = None
    if start is not None and body.schedule is None:
        problems.append(
            "has `partitions` but no schedule: its partitions are the windows of the schedule's"
            " `every:` (one per tick); add `schedule: { every: 1d }` (or another phrase), or"
            " remove `partitions`"
        )
    elif start is not None and schedule is not None:
        try:
            partitions = cadence_for(schedule.every, schedule.trigger, schedule.timezone, start)
        except PartitionsProblem as exc:
            problems.append(str(exc))
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
        frames_dir=body.frames_dir,
        partitions=partitions,
    )


def _well_formed_part(entry: Entry) -> tuple[_RunnerBody, set[str] | None]:
    """The runner with its malformed keys left out (defaults in their place), and those keys
    (None: nothing was malformed). The caller reports the malformed keys; the rest is checked
    as usual, so one problem does not hide the others."""
    try:
        return _RunnerBody.model_validate(entry.body), None
    except PydanticValidationError as exc:
        bad = {str(error["loc"][0]) for error in exc.errors() if error["loc"]}
    rest = {key: value for key, value in entry.body.items() if key not in bad}
    try:
        return _RunnerBody.model_validate(rest), bad
    except PydanticValidationError:  # not expected: every field has a default
        return _RunnerBody(), bad


def _choices(pipelines: Collection[str]) -> str:
    return f" (pipelines: {', '.join(sorted(pipelines))})" if pipelines else ""


def _grace_seconds(text: str, location: Location) -> int:
    """A schedule's `grace:`: a length of time in the `every` grammar's units (30m, 2h, 1d),
    or none at all (`0s`, `0`: overdue as soon as a tick's run is missing)."""
    if re.fullmatch(r"\s*0+[smhdw]?\s*", text):
        return 0
    try:
        grace = parse_every(text, location)
    except ScheduleParseError as exc:
        raise ScheduleParseError(f"schedule `grace`: {exc.message}", location) from None
    if grace.kind != "interval" or grace.interval is None:
        raise ScheduleParseError(
            f"schedule `grace` is a length of time like 30m, 2h or 1d, not {text!r}", location
        )
    return grace.interval.seconds


def pipeline_overdue_after(runners: Mapping[str, Runner], pipeline: str) -> int | None:
    """Seconds without a run after which a scheduled pipeline's assets are overdue: the
    soonest of the runners scheduling it (the most frequent schedule sets what users expect);
    None when no runner schedules it."""
    overdue = [
        runner.schedule.overdue_after
        for runner in runners.values()
        if runner.schedule is not None and pipeline in runner.pipelines
    ]
    return min(overdue, default=None)


def pipeline_partitions(runners: Mapping[str, Runner], pipeline: str) -> Cadence | None:
    """The partitions of a pipeline's job: those of the runners listing it (validation made
    sure they agree: `runner_problems`), else None. The `default` runner partitions only the
    pipelines it lists, like any other."""
    for runner in runners.values():
        if pipeline in runner.pipelines:
            return runner.partitions
    return None


def runner_problems(runners: Mapping[str, Runner]) -> list[Problem]:
    """Problems between runners: a pipeline listed by more than one runner.

    **Decision: different partitions are an error.** A pipeline is one Dagster job, and a job
    has one set of partitions: two runners that list it must partition it alike (same
    `every:` cadence, timezone and start) or not at all.

    **Decision: a warning**, not an error. Two runners may rightly run one pipeline (a nightly
    sync_lazy run and a weekly full one), and each schedule runs as written; only `capport run
    -p P` without `-r` is ambiguous, and it takes the first runner listing P
    (`Project.runner_for`). The warning is located at each later runner and names the one used.
    """
    first: dict[str, Runner] = {}
    problems: list[Problem] = []
    for runner in runners.values():
        for pipeline in dict.fromkeys(runner.pipelines):
            if pipeline not in first:
                first[pipeline] = runner
                continue
            used = first[pipeline].name
            if runner.partitions != first[pipeline].partitions:
                problems.append(
                    Problem(
                        runner.location,
                        f"pipeline '{pipeline}' is {_partitioned(runner.partitions)} here but"
                        f" {_partitioned(first[pipeline].partitions)} by runner '{used}': its"
                        " job has one set of partitions, so give both runners the same"
                        " `partitions` and `every:` (and timezone), or list it in one",
                    )
                )
                continue
            problems.append(
                Problem(
                    runner.location,
                    f"pipeline '{pipeline}' is also listed by runner '{used}', which"
                    f" `capport run -p {pipeline}` uses: pass `-r {runner.name}` to run it with"
                    " this one (its schedule runs as written)",
                    severity="warning",
                )
            )
    return problems


def _partitioned(cadence: Cadence | None) -> str:
    return f"partitioned {cadence}" if cadence is not None else "not partitioned"
