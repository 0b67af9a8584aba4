"""The `capport` command: run, validate and draw pipelines.

Results go to stdout; progress, warnings and errors to stderr. Errors print as one located line
each, never a traceback unless `--debug`. Exit codes: 0 success, 1 the run failed, 2 the config
or the command line is invalid, 130 / 143 interrupted by SIGINT / SIGTERM (`core/interrupts.py`).
Output is a courtesy: when stdout or stderr cannot be written (a reader that closed the pipe,
`capport run ... | head -1`, or a closed descriptor) the rest of it is dropped, the run goes on,
and the exit code still says how the run went.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

from capport_dagster.cli_common import (
    DEFAULT_OUTPUT,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_RUN_FAILED,
    print_warnings,
)
from capport_dagster.core import interrupts
from capport_dagster.core.modes import EXECUTORS, RunMode
from capport_dagster.errors import CapportError, ConfigError, ValidationError, count

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capport", description=__doc__.split("\n")[0])
    parser.add_argument("--debug", action="store_true", help="show tracebacks and Dagster logs")
    commands = parser.add_subparsers(dest="command", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-c", "--config", required=True, type=Path, help="config directory")
        sub.add_argument(
            "-m",
            "--module",
            action="append",
            default=[],
            help="import this module first (it registers your own tasks); repeatable",
        )
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS)

    run = commands.add_parser("run", help="run a pipeline through Dagster")
    common(run)
    run.add_argument("-p", "--pipeline", required=True)
    run.add_argument("-r", "--runner", help="runner whose mode, executor and logger to use")
    run.add_argument(
        "-o",
        "--output",
        help=f"$OUTPUT_DIR, a directory or an object-store URI (default: {DEFAULT_OUTPUT})",
    )
    run.add_argument("-d", "--date", help="$REF_DATETIME of the run (ISO 8601; default: now)")
    run.add_argument("--mode", choices=[m.value for m in RunMode])
    run.add_argument("--executor", choices=EXECUTORS)
    run.add_argument(
        "--frames-dir",
        help="where frames persist between processes: a directory or an object-store URI"
        " (default: the runner's frames_dir, $CAPPORT_FRAMES_DIR, else the instance's storage)",
    )
    run.add_argument("--no-preview", action="store_true", help="do not print the final frames")
    run.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="re-execute a failed multiprocess or celery run from its failure, with its settings"
        " (needs DAGSTER_HOME)",
    )

    backfill = commands.add_parser(
        "backfill",
        help="run a partitioned pipeline once per partition of a range (needs DAGSTER_HOME)",
    )
    common(backfill)
    backfill.add_argument("-p", "--pipeline", required=True)
    backfill.add_argument(
        "--from",
        dest="start",
        required=True,
        metavar="DATE",
        help="first partition: its key or its start (ISO 8601)",
    )
    backfill.add_argument(
        "--to", dest="end", required=True, metavar="DATE", help="last partition, included"
    )
    backfill.add_argument("-r", "--runner", help="runner whose mode, executor and logger to use")
    backfill.add_argument(
        "-o",
        "--output",
        help=f"$OUTPUT_DIR, a directory or an object-store URI (default: {DEFAULT_OUTPUT})",
    )
    backfill.add_argument("--mode", choices=[m.value for m in RunMode])
    backfill.add_argument("--executor", choices=EXECUTORS)
    backfill.add_argument("--frames-dir", help="as for `capport run`")
    backfill.add_argument(
        "--location",
        default="capport_dagster.definitions",
        help="the code location serving this config in the UI, which the backfill record names"
        " (default: capport_dagster.definitions, as workspace.yaml loads it)",
    )
    backfill.set_defaults(date=None, no_preview=True, resume=None)

    validate = commands.add_parser("validate", help="check a config and report every problem")
    common(validate)
    validate.add_argument("-p", "--pipeline", help="only this pipeline")

    schedules = commands.add_parser(
        "schedules", help="what each runner's schedule becomes in Dagster, and its next ticks"
    )
    common(schedules)

    graph = commands.add_parser("graph", help="print a pipeline's dependency graph")
    common(graph)
    graph.add_argument("-p", "--pipeline", required=True)
    graph.add_argument("--format", choices=["text", "mermaid", "dot"], default="text")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    with forgiving_output(), interrupts.handlers():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    args = _parser().parse_args(argv)
    try:
        from capport_dagster.core.registry import import_task_modules

        import_task_modules(args.module)
        if args.command == "validate":
            return _validate(args)
        if args.command == "graph":
            return _graph(args)
        if args.command == "schedules":
            return _schedules(args)
        if args.command == "backfill":
            from capport_dagster.cli_backfill import backfill_pipeline

            return backfill_pipeline(args)
        from capport_dagster.cli_run import run_pipeline

        return run_pipeline(args)
    except CapportError as exc:
        if args.debug:
            raise
        _print_error(exc)
        return EXIT_INVALID if isinstance(exc, ConfigError) else EXIT_RUN_FAILED
    except interrupts.Interrupted as exc:  # before or after the run: see core/interrupts.py
        interrupts.say_interrupted(exc.signum)
        return interrupts.exit_code(exc.signum)
    except KeyboardInterrupt:  # a SIGINT before our handler was installed
        interrupts.say_interrupted(signal.SIGINT)
        return interrupts.exit_code(signal.SIGINT)
    except Exception as exc:  # a bug of ours or of a user's task: still no traceback by default
        if args.debug:
            raise
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return EXIT_RUN_FAILED


class DroppingStream:
    """A text stream whose failed writes are dropped instead of raised.

    A run must not die because nobody reads its progress: `capport run ... 2>&1 | head -1` closes
    the pipe after one line, and the next `print` raised BrokenPipeError inside Dagster's
    logging, which failed the run before it wrote anything. On the first failure the descriptor
    is pointed at /dev/null, so that later writes (ours, Dagster's, C code's, the interpreter's
    final flush of what the stream still buffers) all succeed without output.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        if interrupts.interrupted() and threading.current_thread() is not threading.main_thread():
            # The abandoned run's last words (a stage failing as its process is killed): after
            # "interrupted", only the main thread speaks.
            return len(text)
        try:
            return self._stream.write(text)
        except (OSError, ValueError):  # ValueError: a closed file object
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except (OSError, ValueError):
            self._silence()

    def _silence(self) -> None:
        try:
            fd = self._stream.fileno()
        except (OSError, ValueError):
            return  # not a descriptor (a test's capture): nothing else writes to it
        _open_null_as(fd)
        with suppress(OSError, ValueError):  # what the stream still buffers goes to /dev/null
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _open_null_as(fd: int) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    if null != fd:
        os.dup2(null, fd)
        os.close(null)


@contextmanager
def forgiving_output() -> Iterator[None]:
    """stdout and stderr as `DroppingStream`s while the command runs, and descriptors 0-2 open.

    A descriptor closed by the caller (`2>&-`) is opened on /dev/null: Python started without a
    `sys.stderr` (so `print(file=sys.stderr)` went to stdout), and the next file the run opened
    would have taken the number, receiving whatever a child process or a library writes to "2".
    """
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            _open_null_as(fd)
    saved = sys.stdout, sys.stderr
    out = sys.stdout or open(1, "w", closefd=False)  # noqa: SIM115 (a stream for descriptor 1)
    err = sys.stderr or open(2, "w", closefd=False)  # noqa: SIM115
    sys.stdout, sys.stderr = DroppingStream(out), DroppingStream(err)  # type: ignore[assignment]
    try:
        yield
    finally:
        # Flushed here, where a failure is dropped: at exit the interpreter would report it
        # ("Exception ignored ... BrokenPipeError") and exit 120.
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = saved


def _print_error(exc: CapportError) -> None:
    if isinstance(exc, ValidationError):
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print(exc.message.split(":\n")[0], file=sys.stderr)
    elif exc.__cause__ is not None and not isinstance(exc.__cause__, CapportError):
        # Our words for someone else's exception (a task module failing to import): its
        # traceback is one flag away.
        print(f"error: {exc} (run with --debug for the traceback)", file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)


def _validate(args: argparse.Namespace) -> int:
    from capport_dagster.core.graph import load_project
    from capport_dagster.core.render import dagster_names

    project = load_project(args.config, pipelines=[args.pipeline] if args.pipeline else None)
    print_warnings(project.warnings)
    stages = sum(len(g.nodes) for g in project.graphs.values())
    pipelines = count(len(project.graphs), "pipeline")
    print(f"valid: {pipelines}, {count(stages, 'stage')} in {args.config}")
    renamed = [line for graph in project.graphs.values() for line in dagster_names(graph)]
    if renamed:
        print("names in Dagster, where they differ:")
        print("\n".join(f"  {line}" for line in renamed))
    return EXIT_OK


def _graph(args: argparse.Namespace) -> int:
    """Draws a pipeline with errors too (its draft, broken stages marked): a picture helps
    most while something is wrong. The errors go to stderr and the exit code is still 2."""
    from capport_dagster.core.graph import Project, draft_pipeline
    from capport_dagster.core.loader import load_config
    from capport_dagster.core.render import render_draft, render_graph

    config = load_config(args.config)
    try:
        project = Project.from_config(config, pipelines=[args.pipeline])
    except ValidationError as exc:
        if args.pipeline not in config.pipelines:
            raise
        _print_error(exc)
        print(render_draft(args.pipeline, draft_pipeline(config, args.pipeline), args.format))
        return EXIT_INVALID
    print_warnings(project.warnings)
    print(render_graph(project.graphs[args.pipeline], args.format))
    return EXIT_OK


def _schedules(args: argparse.Namespace) -> int:
    import pendulum

    from capport_dagster.core.every import describe
    from capport_dagster.core.graph import load_project
    from capport_dagster.translate.ticks import next_ticks
    from capport_dagster.translate.translator import CapportTranslator

    project = load_project(args.config)
    print_warnings(project.warnings)
    translator = CapportTranslator()
    # Only schedules that run something: a schedule without pipelines is a validation error.
    scheduled = [r for r in project.runners.values() if r.schedule is not None and r.pipelines]
    for runner in sorted(scheduled, key=lambda r: r.name):
        schedule = runner.schedule
        assert schedule is not None
        now = pendulum.now("UTC").replace(microsecond=0)
        ticks = next_ticks(schedule.trigger, schedule.timezone, now, 3)
        for pipeline in runner.pipelines:
            stages = count(len(project.graphs[pipeline].nodes), "stage")
            print(
                f"runner {runner.name}, pipeline {pipeline} ({stages}): every {schedule.every} "
                f"({schedule.timezone})"
            )
            name = translator.get_schedule_name(runner, pipeline)
            print(f"  dagster: {name}, {describe(schedule.trigger)}")
            if runner.partitions is not None:
                print(f"  partitions: {runner.partitions}")
            print(f"  next: {', '.join(t.isoformat() for t in ticks)}")
    if not scheduled:
        print("no runner has a schedule")
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
