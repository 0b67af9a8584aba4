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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pendulum
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ReexecutionOptions,
    build_reconstructable_job,
    execute_job,
)
from dagster._utils.error import SerializableErrorInfo

from capport_dagster.cli import EXIT_OK, EXIT_RUN_FAILED, print_warnings
from capport_dagster.core.graph import PipelineGraph
from capport_dagster.core.secrets import Redactor
from capport_dagster.errors import ConfigError, Location
from capport_dagster.translate.build import project_for
from capport_dagster.translate.run_config import default_logger

__all__ = ["run_pipeline"]

_OUR_ERRORS = {"TaskError", "ModelCastError", "ConfigError", "ValidationError", "CapportError"}


def run_pipeline(args: argparse.Namespace) -> int:
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
        "output_dir": str(Path(args.output).absolute()),
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
            run_config, reexecution = _resume(instance, args.resume, args.pipeline, run_config)
            mode, executor = run_config["mode"], run_config["executor"]
        verb = f"resuming run {args.resume} of" if args.resume else "running"
        print(
            f"[capport] {verb} pipeline '{graph.name}' ({len(graph.nodes)} stages), mode {mode},"
            f" executor {executor}",
            file=sys.stderr,
        )
        result = execute_job(
            job,
            instance=instance,
            run_config=run_config,
            raise_on_error=False,
            reexecution_options=reexecution,
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


def _resume(
    instance: DagsterInstance, run_id: str, pipeline: str, run_config: dict[str, Any]
) -> tuple[dict[str, Any], ReexecutionOptions]:
    """Re-execute a failed run from its failure: its finished stages' persisted frames are
    reused, the failed and skipped stages run again, with the original run's settings."""
    if not os.environ.get("DAGSTER_HOME"):
        raise ConfigError("--resume needs DAGSTER_HOME: runs are stored only there", Location())
    run = instance.get_run_by_id(run_id)
    if run is None:
        raise ConfigError(f"--resume: no run {run_id} in {os.environ['DAGSTER_HOME']}", Location())
    if run.job_name != pipeline:
        raise ConfigError(
            f"--resume: run {run_id} is a run of '{run.job_name}', not of '{pipeline}'",
            Location(),
        )
    original = dict(run.run_config)
    if original.get("executor") != "multiprocess":
        raise ConfigError(
            f"--resume: run {run_id} kept its frames in memory, so there is nothing to resume "
            "from; runs with --executor multiprocess persist them",
            Location(),
        )
    # The original settings, with this invocation's display options.
    keep = ("preview", "progress", "log_level")
    resumed = {**original, **{key: run_config[key] for key in keep}}
    return resumed, ReexecutionOptions.from_failure(run_id, instance)


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
    outputs = {
        (e.step_key, e.event_specific_data.step_output_handle.output_name): e
        for e in events
        if e.event_type == DagsterEventType.STEP_OUTPUT
    }
    from capport_dagster.translate.translator import CapportTranslator

    translator = CapportTranslator()
    for version in graph.results:
        name = version.name
        node = graph.by_label[version.writer]
        event = outputs.get((translator.get_op_name(node), translator.get_output_name(version)))
        if event is None:
            continue
        metadata = event.event_specific_data.metadata
        rows = metadata.get("dagster/row_count")
        cols = metadata.get("capport/columns")
        preview = metadata.get("capport/preview")
        shape = f"({rows.value}, {cols.value})" if rows and cols else "(not collected)"
        print(f"{name}: shape {shape}")
        if preview is not None:
            print(preview.value)
        print()
