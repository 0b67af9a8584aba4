"""A Dagster logger that prints one line per stage: what `capport run` shows while it runs.

It reads the structured Dagster event on each log record (step start, success, failure), so it
works for every executor, including stages running in other processes.

Progress is a courtesy: a line that cannot be written (stderr is a pipe its reader closed, or a
closed descriptor) is dropped. Raised here, the error would fail the stage, inside Dagster's
logging, although its data work is fine. `capport run` also makes its own stderr forgiving, but
multiprocess stages print from their own processes, with their own `sys.stderr`.
"""

from __future__ import annotations

import logging
import sys
from contextlib import suppress

from dagster import logger

from capport_dagster.core.interrupts import interrupted

__all__ = ["progress_logger"]

_EVENTS = {"STEP_START": "started", "STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED"}


class _ProgressHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "dagster_event", None)
        if event is None or event.event_type_value not in _EVENTS:
            return
        if interrupted() is not None:  # stages failing as an interrupted run is torn down
            return
        state = _EVENTS[event.event_type_value]
        line = f"[capport] {event.step_key}: {state}"
        duration = getattr(event.event_specific_data, "duration_ms", None)
        if event.event_type_value == "STEP_SUCCESS" and duration is not None:
            line += f" in {duration / 1000:.2f}s"
        with suppress(OSError, ValueError):  # ValueError: stderr closed as a file object
            print(line, file=sys.stderr, flush=True)


@logger(config_schema={}, description="One line per stage on stderr (used by `capport run`).")
def progress_logger(init_context):  # type: ignore[no-untyped-def]
    log = logging.getLogger("capport.progress")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    if not any(isinstance(h, _ProgressHandler) for h in log.handlers):
        log.addHandler(_ProgressHandler())
    return log
