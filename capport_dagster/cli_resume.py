"""`capport run --resume RUN_ID`: whether a stored run can be re-executed from its failure, and
with which settings.

Everything that would make the re-execution fail, or silently do something else than asked, is
refused here with what to do instead (exit 2): Dagster's own errors for these cases name its
internals (an unknown step, a missing `run_id`), and a failed resume printed a new `--resume`
line that failed again.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pendulum
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    DagsterRun,
    DagsterRunStatus,
    ReexecutionOptions,
)
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.execution.api import create_execution_plan
from dagster._core.snap import snapshot_from_execution_plan

from capport_dagster.core.sinks import HOST_TAG, is_running
from capport_dagster.errors import CapportError, ConfigError, Location
from capport_dagster.translate.executor import PERSISTING_EXECUTORS

__all__ = ["IN_PROGRESS", "PROCESS_TAG", "ResumeTarget", "resume_settings"]

#: Tags each run with the capport process that runs it (`<host tag>.<pid>`, see core/sinks.py), so
#: that `--resume` can tell a run that is still going from one whose process was killed.
PROCESS_TAG = "capport/process"


@dataclass(frozen=True)
class ResumeTarget:
    """The job a resume re-executes, and the settings its run config defaults to (a run
    launched from the Dagster UI may leave them out of its run config)."""

    target: ReconstructableJob
    defaults: dict[str, Any]


def resume_settings(
    instance: DagsterInstance,
    args: argparse.Namespace,
    run_config: dict[str, Any],
    job: ResumeTarget,
) -> tuple[dict[str, Any], ReexecutionOptions]:
    """The run config and re-execution options that resume run `args.resume` from its failure:
    its finished stages' persisted frames are reused, the failed and skipped stages run again,
    with the original run's settings; or a `ConfigError` saying why it cannot be resumed."""
    run_id = args.resume
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise ConfigError(
            "--resume needs DAGSTER_HOME, where runs are stored: set it to the directory the run"
            " was made with",
            Location(),
        )
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ConfigError(
            f"--resume: no run {run_id} in {home} (DAGSTER_HOME): give the whole id a failed"
            " run printed after 'resume with:'",
            Location(),
        )
    # The capport name (the job's is mapped: pipeline `nhl-daily` runs as job `nhl_daily`).
    pipeline = run.tags.get("capport/pipeline", run.job_name)
    if pipeline != args.pipeline:
        raise ConfigError(
            f"--resume: run {run_id} is a run of '{pipeline}', not of '{args.pipeline}':"
            f" resume it with -p {pipeline}",
            Location(),
        )
    run = _settle_abandoned(instance, run)
    if run.status == DagsterRunStatus.SUCCESS:
        raise ConfigError(
            f"--resume: run {run_id} succeeded, so there is nothing to resume: to run the"
            " pipeline again, start a new run (without --resume)",
            Location(),
        )
    if run.status not in (DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED):
        raise ConfigError(
            f"--resume: run {run_id} is {run.status.value}: only a failed or canceled run can be"
            " resumed",
            Location(),
        )
    original = {**job.defaults, **run.run_config}
    if original["executor"] not in PERSISTING_EXECUTORS:
        raise ConfigError(
            f"--resume: run {run_id} kept its frames in memory, so there is nothing to resume "
            "from; runs with --executor multiprocess or celery persist them",
            Location(),
        )
    _refuse_other_settings(run_id, args, run_config, original)
    _refuse_changed_stages(instance, run, job.target, original)
    # The original settings, with this invocation's display options.
    keep = ("preview", "progress", "log_level")
    resumed = {**run.run_config, **{key: run_config[key] for key in keep}}
    return resumed, ReexecutionOptions.from_failure(run_id, instance)


IN_PROGRESS = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
)


def _settle_abandoned(instance: DagsterInstance, run: DagsterRun) -> DagsterRun:
    """A run still in progress cannot be resumed, unless the capport process that ran it is gone
    (SIGKILL, the OOM killer, a reboot): it stays STARTED forever in the instance, so it is marked
    failed here, which is what it is, and the resume goes on."""
    if run.status not in IN_PROGRESS:
        return run
    status = run.status.value
    host, _, pid = run.tags.get(PROCESS_TAG, "").partition(".")
    ours = host == HOST_TAG and pid.isdigit()
    if ours and not is_running(int(pid)):
        message = f"the capport process that ran it ({pid}) is gone: marked failed by --resume"
        if run.status == DagsterRunStatus.CANCELING:
            instance.report_run_canceled(run, message=message)
        else:
            instance.report_run_failed(run, message=message)
        print(f"warning: run {run.run_id} was {status}, but {message}", file=sys.stderr)
        return instance.get_run_by_id(run.run_id) or run
    running = f"capport process {pid} is running it" if ours else "its status in DAGSTER_HOME"
    hint = "" if ours else "; if its process is gone, terminate the run in the Dagster UI first"
    raise ConfigError(
        f"--resume: run {run.run_id} is still in progress ({status}, {running}): wait for it to"
        f" end, and resume it if it fails{hint}",
        Location(),
    )


# What each option of `capport run` sets in the run config (besides `-r`, which sets several).
_OPTIONS = {
    "mode": "--mode",
    "executor": "--executor",
    "output_dir": "-o",
    "ref_datetime": "-d",
    "frames_dir": "--frames-dir",
}


def _refuse_other_settings(
    run_id: str, args: argparse.Namespace, asked: dict[str, Any], original: dict[str, Any]
) -> None:
    """A resumed run keeps the original run's settings: finished stages wrote their frames with
    them, so mixing a new mode, output directory or date into the rest would give a result no
    run could have given. Options that repeat the original values (the failed command with
    `--resume ID` added) are fine; others are refused rather than ignored."""
    given = {
        "mode": args.mode,
        "executor": args.executor,
        "output_dir": args.output,
        "ref_datetime": args.date,
        "frames_dir": args.frames_dir,
    }
    keys = [key for key, value in given.items() if value is not None]
    if args.runner:
        keys += [
            k for k in ("mode", "executor", "max_concurrent", "logger") if given.get(k) is None
        ]
    differ = [key for key in keys if not _same(key, asked[key], original.get(key))]
    if not differ:
        return

    def option(key: str, value: object) -> str:
        if key in _OPTIONS and given.get(key) is not None:
            return f"{_OPTIONS[key]} {value}"
        return f"{key.replace('_', ' ')} {value} (runner '{args.runner}')"

    was = ", ".join(f"{_OPTIONS.get(k, k.replace('_', ' '))} {original.get(k)}" for k in differ)
    now = ", ".join(option(k, asked[k]) for k in differ)
    raise ConfigError(
        f"--resume: run {run_id} ran with {was}; this command asks for {now}. A resumed run"
        " keeps the settings of the run it resumes: leave these options out (or repeat the"
        " original values), or start a new run without --resume",
        Location(),
    )


def _same(key: str, asked: object, original: object) -> bool:
    if key == "ref_datetime" and isinstance(asked, str) and isinstance(original, str):
        try:
            return pendulum.parse(asked) == pendulum.parse(original)
        except Exception:
            return False
    return asked == original


def _refuse_changed_stages(
    instance: DagsterInstance, run: DagsterRun, job: ReconstructableJob, config: dict[str, Any]
) -> None:
    """The resumed run reads the frames the finished stages wrote, by step and output name, so
    the pipeline must have the same stages reading and writing the same frames (their args may
    change: fixing the failed stage is what resuming is for). Dagster would otherwise fail on a
    stage it does not know, or on a frame no stage of the run wrote."""
    if run.execution_plan_snapshot_id is None:
        return
    before = _shape(instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).steps)
    definition = job.get_definition()
    try:
        plan = create_execution_plan(definition, run_config=run.run_config or config)
    except Exception as exc:  # its settings name what the config no longer has (a logger)
        raise ConfigError(
            f"--resume: run {run.run_id} cannot run with the config as it is now: "
            f"{_reason(exc)}. Undo the change to resume, or start a new run without --resume",
            Location(),
        ) from None
    now = _shape(snapshot_from_execution_plan(plan, definition.get_job_snapshot_id()).steps)
    if before == now:
        return
    gone = sorted(set(before) - set(now))
    new = sorted(set(now) - set(before))
    changed = sorted(key for key in set(before) & set(now) if before[key] != now[key])
    what = [
        *(f"stage '{key}' is gone" for key in gone),
        *(f"stage '{key}' is new" for key in new),
        *(f"stage '{key}' reads or writes other frames" for key in changed),
    ]
    raise ConfigError(
        f"--resume: pipeline '{run.tags.get('capport/pipeline', run.job_name)}' changed since"
        f" run {run.run_id} ({'; '.join(what)})."
        " A resumed run reuses the frames its finished stages wrote, so it needs the same stages"
        " reading and writing the same frames: undo the change to resume, or start a new run"
        " without --resume",
        Location(),
    )


def _reason(exc: BaseException) -> str:
    """Our own error in the chain Dagster wrapped it in, else the first line of the outermost."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, CapportError):
            return str(current)
        if isinstance(current, DagsterInvalidConfigError):  # the run config mapping's checks
            return "; ".join(
                re.sub(r"^Invalid value at path root:(\S+): ", r"\1: ", message)
                for message in current.error_messages
            )
        current = current.__cause__ or current.__context__
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _shape(steps: Iterable[Any]) -> dict[str, tuple[frozenset[tuple[str, tuple]], tuple]]:
    """Each step's inputs (with the step outputs they come from) and outputs, by step key."""
    return {
        step.key: (
            frozenset(
                (i.name, tuple((h.step_key, h.output_name) for h in i.upstream_output_handles))
                for i in step.inputs
            ),
            tuple(sorted(o.name for o in step.outputs)),
        )
        for step in steps
    }
