"""One line per stage: what `capport run` shows while it runs.

A Dagster logger reads the structured Dagster event on each log record (step start, success,
failure), so it works for the executors whose stages share this terminal (in process, and the
multiprocess executor's child processes). Celery workers log on their own machines: for them
`follow_progress` reads the same events back from the run's instance as they are stored.

Progress is a courtesy: a line that cannot be written (stderr is a pipe its reader closed, or a
closed descriptor) is dropped. Raised here, the error would fail the stage, inside Dagster's
logging, although its data work is fine. `capport run` also makes its own stderr forgiving, but
multiprocess stages print from their own processes, with their own `sys.stderr`.
"""

from __future__ import annotations

import logging
import sys
from contextlib import suppress
from threading import Event

from dagster import DagsterEvent, DagsterEventType, DagsterInstance, RunsFilter, logger

from capport_dagster.core.interrupts import interrupted

__all__ = ["follow_progress", "progress_line", "progress_logger"]

_EVENTS = {"STEP_START": "started", "STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED"}
#: Seconds between two reads of the instance when following a run's progress.
FOLLOW_INTERVAL = 0.2


def progress_line(event: DagsterEvent | None) -> str | None:
    """`[capport] load: done in 0.03s` for a step's start, success or failure; else None."""
    if event is None or event.event_type_value not in _EVENTS:
        return None
    state = _EVENTS[event.event_type_value]
    line = f"[capport] {event.step_key}: {state}"
    duration = getattr(event.event_specific_data, "duration_ms", None)
    if event.event_type_value == "STEP_SUCCESS" and duration is not None:
        line += f" in {duration / 1000:.2f}s"
    return line


def _say(line: str) -> None:
    with suppress(OSError, ValueError):  # ValueError: stderr closed as a file object
        print(line, file=sys.stderr, flush=True)


class _ProgressHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        line = progress_line(getattr(record, "dagster_event", None))
        if line is None:
            return
        if interrupted() is not None:  # stages failing as an interrupted run is torn down
            return
        _say(line)


def follow_progress(instance: DagsterInstance, run: RunsFilter, stop: Event) -> None:
    """Print the progress lines of the run `run` finds as its events reach the instance,
    until `stop` is set (then once more, for the last ones). Meant for a thread of its own."""
    run_id: str | None = None
    cursor: str | None = None
    kinds = {DagsterEventType(kind) for kind in _EVENTS}
    while True:
        stopping = stop.wait(FOLLOW_INTERVAL)
        if run_id is None:
            runs = instance.get_runs(run, limit=1)
            run_id = runs[0].run_id if runs else None
        if run_id is not None:
            connection = instance.get_records_for_run(run_id, cursor=cursor, of_type=kinds)
            cursor = connection.cursor
            for record in connection.records:
                line = progress_line(record.event_log_entry.dagster_event)
                if line is not None and interrupted() is None:
                    _say(line)
        if stopping:
            return


@logger(config_schema={}, description="One line per stage on stderr (used by `capport run`).")
def progress_logger(init_context):  # type: ignore[no-untyped-def]
    log = logging.getLogger("capport.progress")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    if not any(isinstance(h, _ProgressHandler) for h in log.handlers):
        log.addHandler(_ProgressHandler())
    return log
