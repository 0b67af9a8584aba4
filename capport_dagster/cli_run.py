"""`capport run`: execute one pipeline through Dagster and show what it produced.

The job is handed to Dagster as a *reconstructable* target (`job_for(config_dir, pipeline,
modules, snapshot)`, the snapshot holding the config files' text), so the multiprocess and
Celery executors rebuild the run's own config in their worker processes. Run storage: the
instance in `$DAGSTER_HOME` when it is set (runs then show in the UI); otherwise an ephemeral
in-memory one (a one-off run writes nothing but its outputs), or a temporary one for the
multiprocess executor, whose workers need storage they can share.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pendulum
from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    JobExecutionResult,
    ReexecutionOptions,
    RunsFilter,
    build_reconstructable_job,
    execute_job,
)
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.instance.ref import InstanceRef
from dagster._utils.error import SerializableErrorInfo

from capport_dagster.cli_common import DEFAULT_OUTPUT, EXIT_OK, EXIT_RUN_FAILED, print_warnings
from capport_dagster.cli_resume import IN_PROGRESS, PROCESS_TAG, ResumeTarget, resume_settings
from capport_dagster.core import interrupts
from capport_dagster.core.config import ConfigSnapshot
from capport_dagster.core.graph import PipelineGraph, Project
from capport_dagster.core.loader import NO_PIPELINES, NO_YAML_FILES, config_snapshot
from capport_dagster.core.partitions import Cadence
from capport_dagster.core.runners import pipeline_partitions
from capport_dagster.core.secrets import Redactor
from capport_dagster.core.sinks import HOST_TAG
from capport_dagster.core.uris import is_uri
from capport_dagster.errors import ConfigError, Location, ValidationError
from capport_dagster.translate.build import project_for
from capport_dagster.translate.executor import PERSISTING_EXECUTORS, REMOTE_EXECUTORS
from capport_dagster.translate.partitions import (
    dagster_run_config,
    partition_for,
    partition_start,
    partition_tags,
)
from capport_dagster.translate.reference import parse_reference
from capport_dagster.translate.run_config import (
    FRAMES_DIR_VARIABLE,
    default_logger,
    run_config_mapping,
)
from capport_dagster.translate.translator import CapportTranslator

__all__ = [
    "PreparedRun",
    "check_dagster_home",
    "execute",
    "instance_for",
    "prepare_run",
    "report_failure",
    "run_pipeline",
]

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
    run = prepare_run(args)
    graph = run.graph
    with instance_for(run.executor, args.debug) as instance:
        run_config, reexecution = run.run_config, None
        if args.resume:
            run_config, reexecution = _resume(args, run, instance)
        mode, executor = run_config["mode"], run_config["executor"]
        _check_broker(executor, run_config)
        verb = f"resuming run {args.resume} of" if args.resume else "running"
        partition = f", partition {run.partition}" if run.partition else ""
        print(
            f"[capport] {verb} pipeline '{graph.name}' ({len(graph.nodes)} stages), mode {mode},"
            f" executor {executor}{partition}",
            file=sys.stderr,
        )
        result = execute(run, instance, run_config, reexecution=reexecution)
        if not result.success:
            report_failure(run, instance, result.run_id, result.all_events, executor)
            return EXIT_RUN_FAILED
    if not args.no_preview:
        _print_final_frames(graph, result.all_events)
    return EXIT_OK


@dataclass
class PreparedRun:
    """A pipeline's run as `capport run` sets it up, checked before anything runs: what
    `capport backfill` runs once per partition too."""

    config_dir: str
    project: Project
    graph: PipelineGraph
    #: The reconstructable job (`job_for`), with the config's text as the run found it.
    job: ReconstructableJob
    #: The flat run config (`translate/run_config.py`).
    run_config: dict[str, Any]
    executor: str
    #: The pipeline's partitions (None: unpartitioned) and the partition this run is of.
    partitions: Cadence | None = None
    partition: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    def for_partition(self, key: str) -> PreparedRun:
        """The same run, of another partition of the pipeline (a backfill's runs)."""
        assert self.partitions is not None
        start = partition_start(self.partitions, key)
        return replace(
            self,
            run_config={**self.run_config, "ref_datetime": start.isoformat()},
            partition=key,
            tags={**self.tags, **partition_tags(self.job_name, key)},
        )

    @property
    def job_name(self) -> str:
        return CapportTranslator().get_job_name(self.graph)

    def dagster_run_config(self, run_config: dict[str, Any]) -> dict[str, Any]:
        """The run config as the job takes it: flat, or in Dagster's form for a partitioned
        job (which cannot take a config mapping: `translate/partitions.py`)."""
        if self.partitions is None:
            return run_config
        mapping = run_config_mapping(
            config_dir=self.config_dir,
            runner=self.project.runner_for(self.graph.name),
            loggers=self.project.loggers,
            partitions=self.partitions,
        )
        return dagster_run_config(mapping, run_config)


def prepare_run(args: argparse.Namespace, *, partition_date: bool = True) -> PreparedRun:
    """Everything `capport run` checks and sets up before it takes an instance.

    `partition_date`: a partitioned pipeline's run is of the partition `-d` names (or the
    current one); False leaves the partition to the caller (`capport backfill`)."""
    config_dir = str(Path(args.config).absolute())
    # What the environment and the command line get wrong is said before anything runs.
    check_dagster_home()
    output_dir = _output_dir(args.output)
    # The run carries its config's text: the processes running its stages rebuild this very
    # config (on other machines too), whatever happens to the files meanwhile.
    snapshot = _snapshot(config_dir, args.pipeline)
    # The same cached project the job is built from when Dagster reconstructs it below.
    project = _project(config_dir, args.pipeline, snapshot)
    print_warnings(project.warnings)
    graph = project.graphs[args.pipeline]
    runner = project.runner_for(args.pipeline, args.runner)

    mode = args.mode or (runner.mode.value if runner else "sync_lazy")
    executor = args.executor or (runner.executor if runner else "in_process")
    _check_instance_for(executor)
    timezone = runner.schedule.timezone if runner and runner.schedule else "UTC"
    partitions = pipeline_partitions(project.runners, args.pipeline)
    # A partition's run has its start (`PreparedRun.for_partition`).
    reference = _reference(args.date, timezone) if partitions is None else ""
    run_config = {
        "mode": mode,
        "executor": executor,
        "max_concurrent": runner.max_concurrent if runner else None,
        "frames_dir": _frames_dir(args.frames_dir or (runner.frames_dir if runner else None)),
        "output_dir": str(output_dir),
        "ref_datetime": reference,
        "preview": not args.no_preview,
        "logger": default_logger(runner, project.loggers),
        "progress": True,
        # Our own progress and error lines replace Dagster's console log unless --debug.
        "log_level": "DEBUG" if args.debug else "CRITICAL",
    }
    job = build_reconstructable_job(
        "capport_dagster.translate.build",
        "job_for",
        reconstructable_args=(config_dir, args.pipeline, tuple(args.module), snapshot),
    )
    run = PreparedRun(config_dir, project, graph, job, run_config, executor, partitions)
    if partitions is not None and partition_date:
        if getattr(args, "resume", None):
            raise ConfigError(
                f"--resume: pipeline '{graph.name}' is partitioned, and a partition's run is"
                f" not resumed from the command line: run the partition again (capport run -c"
                f" {args.config} -p {graph.name} -d PARTITION), or use the Dagster UI's"
                " Re-execute from failure",
                Location(),
            )
        now = pendulum.now(partitions.timezone)
        run = run.for_partition(partition_for(partitions, args.date, "-d", now))
    return run


def _resume(
    args: argparse.Namespace, run: PreparedRun, instance: DagsterInstance
) -> tuple[dict[str, Any], ReexecutionOptions]:
    default = run.project.runner_for(args.pipeline)
    job_defaults = {
        "mode": default.mode.value if default else "sync_lazy",
        "executor": default.executor if default else "in_process",
        "max_concurrent": default.max_concurrent if default else None,
        "logger": default_logger(default, run.project.loggers),
    }
    return resume_settings(instance, args, run.run_config, ResumeTarget(run.job, job_defaults))


def execute(
    run: PreparedRun,
    instance: DagsterInstance,
    run_config: dict[str, Any],
    *,
    reexecution: ReexecutionOptions | None = None,
    tags: dict[str, str] | None = None,
    stopping: Callable[[], None] | None = None,
) -> JobExecutionResult:
    """Run it in `instance`, answering SIGINT and SIGTERM at once (`core/interrupts.py`);
    `stopping`: the caller's own clean-up on such a signal, after the run's (the process then
    exits at once)."""
    executor = run_config["executor"]
    tags = {**run.tags, **(tags or {}), PROCESS_TAG: f"{HOST_TAG}.{os.getpid()}"}
    since = datetime.now(UTC)
    config = run.dagster_run_config(run_config)
    # In a worker thread, so that a signal is answered at once (see core/interrupts.py).
    with _progress_from_workers(instance, executor, RunsFilter(tags=tags, created_after=since)):
        return interrupts.run_in_worker(
            lambda: execute_job(
                run.job,
                instance=instance,
                run_config=config,
                tags=tags,
                raise_on_error=False,
                reexecution_options=reexecution,
            ),
            on_stop=lambda signum: _stop(instance, executor, tags, since, stopping),
            processes=executor == "multiprocess",
        )


def _stop(
    instance: DagsterInstance,
    executor: str,
    tags: dict[str, str],
    since: datetime,
    stopping: Callable[[], None] | None,
) -> None:
    _stop_run(instance, executor, tags, since)
    if stopping is not None:
        stopping()


def report_failure(
    run: PreparedRun, instance: DagsterInstance, run_id: str, events: list, executor: str
) -> None:
    """Why a run failed, one line per failed stage, and how to resume it when it can be."""
    stored = [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event]
    _print_failure(run.graph, events, stored, run.project.redactor)
    if os.environ.get("DAGSTER_HOME") and executor in PERSISTING_EXECUTORS and not run.partition:
        print(f"resume with: --resume {run_id}", file=sys.stderr)


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
                    if run.status in IN_PROGRESS:
                        stored.report_run_canceled(run, message="interrupted (capport run)")
                    elif run.status == DagsterRunStatus.SUCCESS:
                        continue  # it ended before the signal: nothing to resume
                    ended.append(run.run_id)  # canceled here, or failed as its stages died

        helper = threading.Thread(target=cancel, name="capport-cancel", daemon=True)
        helper.start()
        persisted = executor in PERSISTING_EXECUTORS
        if interrupts.wait_for(lambda: not helper.is_alive()) and persisted:
            for run_id in ended:  # persisted frames: an interrupted run resumes like a failed one
                interrupts.say(f"resume with: --resume {run_id}")
    elif executor == "multiprocess":  # the temporary instance of `instance_for`
        interrupts.remove_before_exit(instance.root_directory)


@contextmanager
def _progress_from_workers(
    instance: DagsterInstance, executor: str, run: RunsFilter
) -> Iterator[None]:
    """Celery workers and Kubernetes pods print their stages' progress lines where they run:
    here they are read back from the instance, as the workers store their events."""
    if executor not in REMOTE_EXECUTORS:
        yield
        return
    from capport_dagster.translate.progress import follow_progress

    stop = threading.Event()
    follower = threading.Thread(
        target=follow_progress, args=(instance, run, stop), name="capport-progress", daemon=True
    )
    follower.start()
    try:
        yield
    finally:
        stop.set()
        follower.join(timeout=10)


def _check_broker(executor: str, run_config: dict[str, Any]) -> None:
    """The Celery broker, reachable from here (workers are another matter: their logs say)."""
    if executor != "celery":
        return
    from capport_dagster.translate.celery import broker_and_backend, broker_problem, shown_url

    broker, _ = broker_and_backend((run_config.get("celery") or {}).get("broker"))
    problem = broker_problem(broker)
    if problem is not None:
        raise ConfigError(
            f"executor 'celery': cannot reach the broker {shown_url(broker)} ({problem}): set"
            f" $CAPPORT_CELERY_BROKER, or the run config's celery.broker, to the broker the"
            " workers use (docs/deploy.md)",
            Location(),
        )


def _check_instance_for(executor: str) -> None:
    """Celery workers and Kubernetes pods record their stages' events in the run's instance and
    find its frames through it: a temporary instance of this process is none they can reach."""
    if executor in REMOTE_EXECUTORS and not os.environ.get("DAGSTER_HOME"):
        raise ConfigError(
            f"executor '{executor}' needs DAGSTER_HOME: an instance the workers can reach (its"
            " dagster.yaml with PostgreSQL storage, as deploy/dagster.yaml), set in this"
            " process and the workers' (docs/deploy.md)",
            Location(),
        )


def _frames_dir(location: str | None) -> str | None:
    """A local frames directory made absolute here, as `-o` is: each worker process would
    otherwise resolve it in its own working directory."""
    location = location or os.environ.get(FRAMES_DIR_VARIABLE)
    if location is None or is_uri(location):
        return location
    return str(Path(location).expanduser().absolute())


def _reference(date: str | None, timezone: str) -> str:
    if date is None:
        return pendulum.now(timezone).isoformat()
    try:
        return parse_reference(date, timezone).isoformat()
    except ConfigError as exc:
        raise ConfigError(f"-d {exc.message}", Location()) from None


def _snapshot(config_dir: str, pipeline: str) -> ConfigSnapshot:
    """The config's text, or, when a file cannot be read as text, every problem of the
    directory at once (as `capport validate` lists them), not only that file's."""
    try:
        return config_snapshot(config_dir)
    except ConfigError:
        _project(config_dir, pipeline, None)  # raises the directory's ValidationError
        raise


def _project(config_dir: str, pipeline: str, snapshot: ConfigSnapshot | None) -> Project:
    """The project, or "nothing to run" when the config defines no pipeline at all: the unknown
    pipeline is then not the news."""
    try:
        return project_for(config_dir, pipeline, snapshot)
    except ValidationError as exc:
        empty = [p for p in exc.problems if p.message in (NO_YAML_FILES, NO_PIPELINES)]
        if empty:
            raise ConfigError(empty[0].message, empty[0].location) from None
        raise


def check_dagster_home() -> None:
    """Dagster wants `$DAGSTER_HOME` absolute and an existing directory, and says so with a
    traceback once the run has started: said here first, with what to do."""
    home = os.environ.get("DAGSTER_HOME")
    if not home:
        return
    expanded = os.path.expanduser(home)
    if not os.path.isabs(expanded):
        problem = "is relative: Dagster needs an absolute path"
        fix = f"export DAGSTER_HOME={Path(expanded).absolute()}"
    elif not os.path.exists(expanded):
        problem = "does not exist: Dagster needs an existing directory"
        fix = f"mkdir -p {expanded}"
    elif not os.path.isdir(expanded):
        problem = "is not a directory"
        fix = "point it at a directory"
    else:
        return
    raise ConfigError(
        f"DAGSTER_HOME={home} {problem} (it stores the runs): {fix}, or unset it for a run"
        " that keeps no history",
        Location(),
    )


def _output_dir(given: str | None) -> str:
    """`-o` as the run gets it: an object-store URI as it is, a directory made absolute (the
    run's stages may run in other working directories) and checked."""
    if given is not None and is_uri(given):
        return given
    output_dir = Path(given or DEFAULT_OUTPUT).absolute()
    _check_output_dir(output_dir, given=given is not None)
    return str(output_dir)


def _check_output_dir(output_dir: Path, *, given: bool) -> None:
    """`-o` names a directory: a file there (or a file among its parents) fails every stage
    that writes, after the stages before it ran; found here instead."""
    option = "-o" if given else "the output directory"
    for path in (output_dir, *output_dir.parents):
        if path.exists():
            if not path.is_dir():
                what = "is a file" if path == output_dir else f"is inside {path}, a file"
                raise ConfigError(
                    f"{option} {output_dir} {what}: $OUTPUT_DIR must be a directory (it is"
                    " created if missing)",
                    Location(),
                )
            return


@contextmanager
def instance_for(executor: str, debug: bool = False) -> Iterator[DagsterInstance]:
    home = os.environ.get("DAGSTER_HOME")
    if home:
        # As `DagsterInstance.get()` builds it (check_dagster_home made sure the path is good)...
        ref = InstanceRef.from_dir(os.path.expanduser(home))
        python_logs = dict(ref.settings.get("python_logs") or {})  # type: ignore[call-overload]
        if not debug and python_logs.get("python_log_level") is None:
            # ... but for the worker processes of the multiprocess executor, which log "step
            # started in subprocess" at the instance's python_log_level, DEBUG when dagster.yaml
            # sets none: on the terminal, past our own progress lines. INFO for this run's
            # instance (the rest of the user's dagster.yaml as it is).
            python_logs["python_log_level"] = "INFO"
            ref = ref._replace(settings={**ref.settings, "python_logs": python_logs})
        with DagsterInstance.from_ref(ref) as instance:
            yield instance
    elif executor == "multiprocess":
        # Workers log "step started in subprocess" through the instance's own console logger
        # at DEBUG unless told otherwise; our progress lines already say it.
        quiet = {"python_logs": {"python_log_level": "DEBUG" if debug else "WARNING"}}
        with DagsterInstance.local_temp(overrides=quiet) as instance:
            yield instance
    else:
        with DagsterInstance.ephemeral() as instance:
            yield instance


def _print_failure(graph: PipelineGraph, events: list, stored: list, redact: Redactor) -> None:
    """`events`: what the run yielded here; `stored`: the instance's record of it, workers'
    events included."""
    from capport_dagster.translate.worker_failures import worker_failures

    failures = [e for e in events if e.event_type == DagsterEventType.STEP_FAILURE]
    for event in failures:
        error = event.step_failure_data.error
        print(f"error: {redact(_our_message(error))}", file=sys.stderr)
    lost = worker_failures(graph, stored)
    for line in lost:
        print(f"error: {redact(line)}", file=sys.stderr)
    if not failures and not lost:
        for event in events:
            if event.event_type == DagsterEventType.RUN_FAILURE and event.message:
                # Dagster's message is "An exception was thrown during execution": its error
                # says which.
                error = getattr(event.event_specific_data, "error", None)
                message = _our_message(error) if error is not None else event.message
                print(f"error: {redact(message)}", file=sys.stderr)
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
