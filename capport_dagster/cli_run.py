"""`capport run`: execute one pipeline through Dagster and show what it produced.

The job is handed to Dagster as a *reconstructable* target (`job_for(config_dir, pipeline)`),
so the multiprocess executor can rebuild it in worker processes. Run storage: the instance in
`$DAGSTER_HOME` when it is set (runs then show in the UI); otherwise an ephemeral in-memory one
(a one-off run writes nothing but its outputs), or a temporary one for the multiprocess executor,
whose workers need storage they can share.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pendulum
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    ReexecutionOptions,
    RunsFilter,
    build_reconstructable_job,
    execute_job,
)
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.execution.api import create_execution_plan
from dagster._core.snap import snapshot_from_execution_plan
from dagster._utils.error import SerializableErrorInfo

from capport_dagster.cli import DEFAULT_OUTPUT, EXIT_OK, EXIT_RUN_FAILED, print_warnings
from capport_dagster.core import interrupts
from capport_dagster.core.graph import PipelineGraph
from capport_dagster.core.secrets import Redactor
from capport_dagster.core.sinks import HOST_TAG, is_running
from capport_dagster.errors import CapportError, ConfigError, Location
from capport_dagster.translate.build import project_for
from capport_dagster.translate.run_config import default_logger

__all__ = ["PROCESS_TAG", "run_pipeline"]

#: Tags each run with the capport process that runs it (`<host tag>.<pid>`, see core/sinks.py), so
#: that `--resume` can tell a run that is still going from one whose process was killed.
PROCESS_TAG = "capport/process"

_OUR_ERRORS = {
    "TaskError",
    "ModelCastError",
    "ConstraintError",
    "RunInterrupted",
    "ConfigError",
    "ValidationError",
    "CapportError",
}


def run_pipeline(args: argparse.Namespace) -> int:
    # First: the stop directory is in the environment the project is loaded with (the cache of
    # `project_for` is keyed by it) and that every process of the run inherits.
    with interrupts.stop_directory():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    config_dir = str(Path(args.config).absolute())
    # The same cached project the job is built from when Dagster reconstructs it below.
    project = project_for(config_dir, args.pipeline)
    print_warnings(project.warnings)
    graph = project.graphs[args.pipeline]
    runner = project.runner_for(args.pipeline, args.runner)

    mode = args.mode or (runner.mode.value if runner else "sync_lazy")
    executor = args.executor or (runner.executor if runner else "in_process")
    timezone = runner.schedule.timezone if runner and runner.schedule else "UTC"
    run_config = {
        "mode": mode,
        "executor": executor,
        "max_concurrent": runner.max_concurrent if runner else None,
        "output_dir": str(Path(args.output or DEFAULT_OUTPUT).absolute()),
        "ref_datetime": _reference(args.date, timezone),
        "preview": not args.no_preview,
        "logger": default_logger(runner, project.loggers),
        "progress": True,
        # Our own progress and error lines replace Dagster's console log unless --debug.
        "log_level": "DEBUG" if args.debug else "CRITICAL",
    }
    job = build_reconstructable_job(
        "capport_dagster.translate.build",
        "job_for",
        reconstructable_args=(config_dir, args.pipeline, tuple(args.module)),
    )
    with _instance(executor) as instance:
        reexecution = None
        if args.resume:
            default = project.runner_for(args.pipeline)
            job_defaults = {
                "mode": default.mode.value if default else "sync_lazy",
                "executor": default.executor if default else "in_process",
                "max_concurrent": default.max_concurrent if default else None,
                "logger": default_logger(default, project.loggers),
            }
            run_config, reexecution = _resume(instance, args, run_config, _Job(job, job_defaults))
            mode, executor = run_config["mode"], run_config["executor"]
        verb = f"resuming run {args.resume} of" if args.resume else "running"
        print(
            f"[capport] {verb} pipeline '{graph.name}' ({len(graph.nodes)} stages), mode {mode},"
            f" executor {executor}",
            file=sys.stderr,
        )
        tags = {PROCESS_TAG: f"{HOST_TAG}.{os.getpid()}"}
        since = datetime.now(UTC)
        # In a worker thread, so that a signal is answered at once (see core/interrupts.py).
        result = interrupts.run_in_worker(
            lambda: execute_job(
                job,
                instance=instance,
                run_config=run_config,
                tags=tags,
                raise_on_error=False,
                reexecution_options=reexecution,
            ),
            on_stop=lambda signum: _stop_run(instance, executor, tags, since),
            processes=executor == "multiprocess",
        )
        events = result.all_events
        if not result.success:
            _print_failure(events, project.redactor)
            if os.environ.get("DAGSTER_HOME") and executor == "multiprocess":
                print(f"resume with: --resume {result.run_id}", file=sys.stderr)
            return EXIT_RUN_FAILED
    if not args.no_preview:
        _print_final_frames(graph, events)
    return EXIT_OK


def _stop_run(
    instance: DagsterInstance, executor: str, tags: dict[str, str], since: datetime
) -> None:
    """The Dagster side of an interrupted run, in the bounded shutdown of core/interrupts.py:
    the executor launches no more stages, the stage processes are killed, the stored run is
    marked canceled (else it would stay STARTED forever), a temporary instance is removed."""
    with suppress(ImportError, AttributeError):
        # The flag Dagster's own SIGINT handler sets in the main thread; its multiprocess
        # executor polls it, and then starts no more steps. Our run is in a worker thread,
        # where Dagster installs no handler.
        from dagster._utils import interrupts as dagster_interrupts

        dagster_interrupts._received_interrupt["received"] = True
    interrupts.kill_descendants()
    if os.environ.get("DAGSTER_HOME"):
        ended: list[str] = []

        def cancel() -> None:
            with suppress(Exception), DagsterInstance.get() as stored:
                for run in stored.get_runs(RunsFilter(tags=tags, created_after=since)):
                    if run.status in _IN_PROGRESS:
                        stored.report_run_canceled(run, message="interrupted (capport run)")
                    elif run.status == DagsterRunStatus.SUCCESS:
                        continue  # it ended before the signal: nothing to resume
                    ended.append(run.run_id)  # canceled here, or failed as its stages died

        helper = threading.Thread(target=cancel, name="capport-cancel", daemon=True)
        helper.start()
        if interrupts.wait_for(lambda: not helper.is_alive()) and executor == "multiprocess":
            for run_id in ended:  # persisted frames: an interrupted run resumes like a failed one
                interrupts.say(f"resume with: --resume {run_id}")
    elif executor == "multiprocess":  # the temporary instance of `_instance`
        interrupts.remove_before_exit(instance.root_directory)


@dataclass(frozen=True)
class _Job:
    """The job a resume re-executes, and the settings its run config defaults to (a run
    launched from the Dagster UI may leave them out of its run config)."""

    target: ReconstructableJob
    defaults: dict[str, Any]


def _resume(
    instance: DagsterInstance, args: argparse.Namespace, run_config: dict[str, Any], job: _Job
) -> tuple[dict[str, Any], ReexecutionOptions]:
    """Re-execute a failed run from its failure: its finished stages' persisted frames are
    reused, the failed and skipped stages run again, with the original run's settings.

    Everything that would make the re-execution fail, or silently do something else than asked,
    is refused here with what to do instead: Dagster's own errors for these cases name its
    internals (an unknown step, a missing `run_id`), and a failed resume printed a new `--resume`
    line that failed again.
    """
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
    if original["executor"] != "multiprocess":
        raise ConfigError(
            f"--resume: run {run_id} kept its frames in memory, so there is nothing to resume "
            "from; runs with --executor multiprocess persist them",
            Location(),
        )
    _refuse_other_settings(run_id, args, run_config, original)
    _refuse_changed_stages(instance, run, job.target, original)
    # The original settings, with this invocation's display options.
    keep = ("preview", "progress", "log_level")
    resumed = {**run.run_config, **{key: run_config[key] for key in keep}}
    return resumed, ReexecutionOptions.from_failure(run_id, instance)


_IN_PROGRESS = (
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
    if run.status not in _IN_PROGRESS:
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
_OPTIONS = {"mode": "--mode", "executor": "--executor", "output_dir": "-o", "ref_datetime": "-d"}


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


def _reference(date: str | None, timezone: str) -> str:
    if date is None:
        return pendulum.now(timezone).isoformat()
    try:
        return pendulum.parse(date, tz=timezone).isoformat()  # type: ignore[union-attr]
    except Exception:
        raise ConfigError(
            f"-d {date!r} is not an ISO 8601 date or date-time (e.g. 2026-01-05 or "
            "2026-01-05T15:00:00+08:00)",
            Location(),
        ) from None


@contextmanager
def _instance(executor: str) -> Iterator[DagsterInstance]:
    if os.environ.get("DAGSTER_HOME"):
        with DagsterInstance.get() as instance:
            yield instance
    elif executor == "multiprocess":
        # Workers log "step started in subprocess" through the instance's own console logger
        # at DEBUG unless told otherwise; our progress lines already say it.
        quiet = {"python_logs": {"python_log_level": "WARNING"}}
        with DagsterInstance.local_temp(overrides=quiet) as instance:
            yield instance
    else:
        with DagsterInstance.ephemeral() as instance:
            yield instance


def _print_failure(events: list, redact: Redactor) -> None:
    failures = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    for event in failures:
        error = event.step_failure_data.error
        print(f"error: {redact(_our_message(error))}", file=sys.stderr)
    if not failures:
        for event in events:
            if event.event_type == DagsterEventType.RUN_FAILURE and event.message:
                print(f"error: {redact(event.message)}", file=sys.stderr)
    print("run failed", file=sys.stderr)


def _our_message(error: SerializableErrorInfo | None) -> str:
    """The message of our own error in Dagster's wrapped chain, without its class prefix."""
    chain = []
    while error is not None:
        chain.append(error)
        error = error.cause
    for info in reversed(chain):
        if info.cls_name in _OUR_ERRORS:
            return _strip_class(info.message)
    return _strip_class(chain[-1].message) if chain else "unknown error"


def _strip_class(message: str) -> str:
    first, _, rest = message.strip().partition(": ")
    return rest if rest and "." in first and " " not in first else message.strip()


def _print_final_frames(graph: PipelineGraph, events: list) -> None:
    from capport_dagster.translate.results import result_frames

    for frame in result_frames(graph, events):
        print(f"{frame.name}: shape {frame.shape}")
        if frame.preview is not None:
            print(frame.preview)
        print()
