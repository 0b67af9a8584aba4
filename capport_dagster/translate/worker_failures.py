"""Stages that failed outside their own code, as a run's events tell: what `capport run` prints
when no stage reported a failure itself.

A stage whose worker process dies (SIGKILL, the OOM killer) or cannot even start it (its worker
runs other code) never logs a step failure: dagster-celery fails the run with one
`DagsterSubprocessError` listing `[step]: error` per step, in the RUN_FAILURE event. Those lines
are read back here and said at the stage they belong to, with the pid of the process that died
when the step had started.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from dagster import DagsterEventType

from capport_dagster.core.graph import PipelineGraph
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["worker_failures"]

#: `[step_key]: ErrorClass: message` (the first line of each step's error in the run's error).
_STEP_ERROR = re.compile(r"^\[(?P<step>[^\]]+)\]: (?:[\w.]+\.)?(?P<cls>\w+): (?P<message>.*)$")
_WORKER_LOST = "WorkerLostError"
#: Celery ends its WorkerLostError with the pool's job number: nothing a user can look up.
_POOL_JOB = re.compile(r"\s*Job: \d+\.$")


def worker_failures(
    graph: PipelineGraph, events: Iterable[Any], translator: CapportTranslator | None = None
) -> list[str]:
    """One located line per stage a worker failed to run, in stage order; [] when none.

    `events`: the run's events as the instance stored them (the workers' own events, such as
    a step's start with its pid, never reach the launching process when the worker dies)."""
    events = list(events)
    translator = translator or CapportTranslator()
    nodes = {translator.get_op_name(node): node for node in graph.nodes}
    pids = {
        event.step_key: event.pid
        for event in events
        if event.event_type == DagsterEventType.STEP_START and event.step_key
    }
    failed: dict[str, tuple[str, str]] = {}
    for event in events:
        if event.event_type != DagsterEventType.RUN_FAILURE:
            continue
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            for line in error.message.splitlines():
                match = _STEP_ERROR.match(line.strip())
                if match and match["step"] in nodes:
                    failed.setdefault(match["step"], (match["cls"], match["message"]))
            error = error.cause
    lines = []
    for step, (cls, message) in sorted(failed.items(), key=lambda item: nodes[item[0]].index):
        if cls == _WORKER_LOST:
            pid = pids.get(step)
            process = f" ({pid})" if pid else ""
            message = _POOL_JOB.sub("", message)
            what = f"the Celery worker process running it{process} died: {message}"
        else:
            what = f"its worker could not run it: {cls}: {message}"
        lines.append(f"{nodes[step].location}: {what}")
    return lines
