"""Runner schedules become what the Dagster daemon evaluates: schedules (cron) and sensors.

For each runner with a `schedule` and each pipeline it lists, one definition named
`<pipeline>__<runner>`:

- a phrase cron can say (`1d`, `15m`, `Monday at 15:00`, ...) becomes a `ScheduleDefinition` with
  the runner's timezone as `execution_timezone`; its run's `$REF_DATETIME` is the tick;
- anything else (`10s`, `7m`, `10m30s`, `2d`) becomes a sensor with `minimum_interval_seconds`
  equal to the interval; its run's `$REF_DATETIME` is the evaluation time.

A sensor skips its tick while a run of its job has not finished (queued, starting, running,
canceling): a pipeline slower than its interval would otherwise pile up runs, each slowing the
others. The skip reason names that run, in the UI's tick history. A sensor's run covers "now", so
a skipped tick loses nothing: the next one after the run ends covers it. Cron schedules do not
skip: each tick is its own `$REF_DATETIME` (a day's data), which a skip would lose.

Either way the run request carries the runner's mode, executor, concurrency and logger as run
config, and tags naming the runner and the pipeline. A partitioned runner's schedule (`partitions:`)
asks for the partition whose window starts at the tick (`translate/partitions.py`), so its
`$REF_DATETIME` is the tick as before; its run config is in Dagster's form, as a partitioned job
takes it. Definitions start RUNNING: a runner with a
schedule in the config means "run this", so nobody has to switch it on in the UI first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pendulum
from dagster import (
    ConfigMapping,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SensorDefinition,
    SensorEvaluationContext,
    SkipReason,
)

from capport_dagster.core.every import CronTrigger
from capport_dagster.core.graph import Project
from capport_dagster.core.partitions import Cadence
from capport_dagster.core.runners import Runner
from capport_dagster.translate.partitions import dagster_run_config, partitions_def
from capport_dagster.translate.run_config import default_logger, run_config_mapping
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["UNFINISHED", "build_schedules"]

#: The statuses of a run that has not finished: while a run of its job has one, a sensor skips.
#: Not MANAGED: Dagster never moves a run managed outside it to a finished status.
UNFINISHED: tuple[DagsterRunStatus, ...] = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.SUSPENDED,
    DagsterRunStatus.CANCELING,
)


def build_schedules(
    *, project: Project, jobs: Mapping[str, JobDefinition], translator: CapportTranslator
) -> tuple[list[ScheduleDefinition], list[SensorDefinition]]:
    schedules: list[ScheduleDefinition] = []
    sensors: list[SensorDefinition] = []
    for runner in project.runners.values():
        if runner.schedule is None:
            continue
        for pipeline in runner.pipelines:
            if pipeline not in jobs:
                continue  # not loaded (e.g. a single-pipeline project)
            request = _RunRequests(
                runner,
                pipeline,
                jobs[pipeline].name,
                project,
                translator,
                partitions=_Partitions.of(runner, pipeline, project),
            )
            name = translator.get_schedule_name(runner, pipeline)
            trigger = runner.schedule.trigger
            description = (
                f"capport runner '{runner.name}': every {runner.schedule.every} "
                f"({runner.schedule.timezone})"
            )
            if isinstance(trigger, CronTrigger):
                crons = list(trigger.crons)
                schedules.append(
                    ScheduleDefinition(
                        name=name,
                        job=jobs[pipeline],
                        cron_schedule=crons[0] if len(crons) == 1 else crons,
                        execution_timezone=runner.schedule.timezone,
                        execution_fn=request.for_schedule,
                        default_status=DefaultScheduleStatus.RUNNING,
                        description=description,
                    )
                )
            else:
                sensors.append(
                    SensorDefinition(
                        name=name,
                        job=jobs[pipeline],
                        evaluation_fn=request.for_sensor,
                        minimum_interval_seconds=trigger.seconds,
                        default_status=DefaultSensorStatus.RUNNING,
                        description=description,
                    )
                )
    return schedules, sensors


@dataclass(frozen=True)
class _Partitions:
    """A partitioned pipeline's cadence, and the mapping that puts its flat run config in the
    form its job takes."""

    cadence: Cadence
    mapping: ConfigMapping

    @classmethod
    def of(cls, runner: Runner, pipeline: str, project: Project) -> _Partitions | None:
        if runner.partitions is None:
            return None
        mapping = run_config_mapping(
            config_dir=str(Path(project.config.config_dir).absolute()),
            runner=project.runner_for(pipeline),
            loggers=project.loggers,
            partitions=runner.partitions,
        )
        return cls(runner.partitions, mapping)


class _RunRequests:
    """The run a runner asks for, at a given reference time."""

    def __init__(
        self,
        runner: Runner,
        pipeline: str,
        job: str,
        project: Project,
        translator: CapportTranslator,
        partitions: _Partitions | None = None,
    ) -> None:
        self._job = job
        self._partitions = partitions
        self._timezone = runner.schedule.timezone if runner.schedule else "UTC"
        self._run_config: dict[str, Any] = {
            "mode": runner.mode.value,
            "executor": runner.executor,
            "max_concurrent": runner.max_concurrent,
            "logger": default_logger(runner, project.loggers),
        }
        self._tags = dict(translator.get_schedule_tags(runner, pipeline))

    def request(self, reference: datetime) -> RunRequest:
        run_config = {**self._run_config, "ref_datetime": reference.isoformat()}
        if self._partitions is None:
            return RunRequest(run_config=run_config, tags=self._tags)
        return RunRequest(
            run_config=dagster_run_config(self._partitions.mapping, run_config),
            tags=self._tags,
            partition_key=partitions_def(self._partitions.cadence).get_partition_key_for_timestamp(
                reference.timestamp()
            ),
        )

    def for_schedule(self, context: ScheduleEvaluationContext) -> RunRequest:
        tick = context.scheduled_execution_time
        return self.request(pendulum.instance(tick).in_timezone(self._timezone))

    def for_sensor(self, context: SensorEvaluationContext) -> RunRequest | SkipReason:
        unfinished = context.instance.get_runs(
            RunsFilter(job_name=self._job, statuses=list(UNFINISHED)), limit=1
        )
        if unfinished:
            run = unfinished[0]
            return SkipReason(
                f"run {run.run_id} of job '{self._job}' is still {run.status.value.lower()}:"
                " this sensor starts no run before it finishes (runs of a pipeline slower than"
                " its interval do not pile up)"
            )
        return self.request(pendulum.now(self._timezone))
