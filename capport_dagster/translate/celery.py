"""`executor: celery`: stages on Dagster's Celery executor, workers on any machine.

Nothing here executes a step: dagster-celery submits each step to the broker and its workers
run it (`capport_dagster/celery_worker.py` is their app). What capport adds is where the broker
and backend come from, and a poll interval users can set:

- broker: run config `celery.broker`, else `$CAPPORT_CELERY_BROKER`, else dagster-celery's
  default (RabbitMQ on localhost);
- backend: `celery.backend`, else `$CAPPORT_CELERY_BACKEND`, else the broker when it is Redis,
  else `rpc://` (results over AMQP, which a Redis broker cannot carry);
- queue: `celery.queue`, else `$CAPPORT_CELERY_QUEUE`, else dagster-celery's `dagster`: the
  workers started with `-Q <queue>` run the stages (a pool of workers per runner, or one per
  team on a shared broker);
- poll interval: dagster-celery's orchestrator checks its steps' results once a second (a
  module global, `TICK_SECONDS`), which costs ~1 s per stage of a chain; capport sets it from
  `celery.poll_interval` (default 0.05 s), here and nowhere else.

dagster-celery is an optional extra (`pip install 'capport-dagster[celery]'`); `run_config.py`
says so as a config error before a run starts.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Mapping
from typing import Any

from dagster import Executor
from dagster._core.execution.retries import RetryMode

__all__ = [
    "BACKEND_VARIABLE",
    "BROKER_VARIABLE",
    "DEFAULT_POLL_INTERVAL",
    "DEFAULT_QUEUE",
    "MISSING_EXTRA",
    "QUEUE_VARIABLE",
    "broker_and_backend",
    "broker_problem",
    "celery_available",
    "celery_executor",
    "queue_name",
    "set_poll_interval",
    "shown_url",
]

BROKER_VARIABLE = "CAPPORT_CELERY_BROKER"
BACKEND_VARIABLE = "CAPPORT_CELERY_BACKEND"
QUEUE_VARIABLE = "CAPPORT_CELERY_QUEUE"
#: dagster-celery's queue, which its workers listen to unless told otherwise (`-Q`).
DEFAULT_QUEUE = "dagster"
#: Seconds between the orchestrator's checks of its steps' results. Measured on this 2-core
#: machine (docs/benchmarks.md): a 16-stage chain takes 17.3 s at dagster-celery's 1 s and
#: 3.4-5.0 s at 0.05 s; below that the poll only costs the launching process CPU.
DEFAULT_POLL_INTERVAL = 0.05
MISSING_EXTRA = (
    "executor 'celery' needs dagster-celery, which is not installed:"
    " pip install 'capport-dagster[celery]'"
)


def celery_available() -> bool:
    return importlib.util.find_spec("dagster_celery") is not None


def queue_name(queue: str | None = None) -> str:
    return queue or os.environ.get(QUEUE_VARIABLE) or DEFAULT_QUEUE


def broker_and_backend(broker: str | None = None, backend: str | None = None) -> tuple[str, str]:
    """The broker and backend URLs, for the launching process and the workers alike (they
    must agree, or the workers never see the steps)."""
    from dagster_celery.defaults import broker_url

    broker = broker or os.environ.get(BROKER_VARIABLE) or broker_url
    backend = backend or os.environ.get(BACKEND_VARIABLE)
    if backend is None:
        backend = broker if broker.startswith(("redis://", "rediss://")) else "rpc://"
    return broker, backend


def broker_problem(broker: str, timeout: float = 5.0) -> str | None:
    """Why the broker cannot be reached, or None. Said before a run starts: dagster-celery would
    retry for ~20 s, then fail the run with no word of the broker."""
    from kombu import Connection

    try:
        with Connection(broker, connect_timeout=timeout) as connection:
            connection.ensure_connection(max_retries=1)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def shown_url(url: str) -> str:
    """A broker or backend URL as messages show it: its password masked (`redis://:**@h/0`)."""
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(url))


def set_poll_interval(seconds: float) -> None:
    """dagster-celery's poll interval is a module global with no public setting: set here
    only, and loudly broken (tests/test_celery.py) if dagster-celery renames it."""
    from dagster_celery import core_execution_loop

    if not isinstance(getattr(core_execution_loop, "TICK_SECONDS", None), int | float):
        raise RuntimeError(
            "dagster_celery.core_execution_loop.TICK_SECONDS is gone: this dagster-celery"
            " version is not one capport_dagster supports (see pyproject.toml)"
        )
    core_execution_loop.TICK_SECONDS = seconds  # type: ignore[attr-defined]


def celery_executor(config: Mapping[str, Any]) -> Executor:
    """The executor for `execution.config.celery` (broker, backend, queue, poll_interval)."""
    from celery.exceptions import DuplicateTaskNameWarning
    from dagster_celery.executor import CeleryExecutor

    # dagster-celery declares its task again for every step it submits: Celery's warning
    # about it (on the terminal of `capport run`) says nothing a user could act on.
    warnings.filterwarnings("ignore", category=DuplicateTaskNameWarning)
    set_poll_interval(config["poll_interval"])
    broker, backend = broker_and_backend(config["broker"], config["backend"])
    # dagster-celery's own settings (one task prefetched per worker process, its queue), as
    # `capport_dagster.celery_worker` builds the workers' app. No retries: a failed stage
    # fails the run, which `capport run --resume` re-executes from the failure.
    return CeleryExecutor(
        retries=RetryMode(RetryMode.DISABLED),
        broker=broker,
        backend=backend,
        config_source={"task_default_queue": queue_name(config["queue"])},
    )
