"""One Dagster executor that follows the capport run mode chosen in run config.

The mode is run configuration, not part of the job, so one job serves every mode:

- sync modes: Dagster's in-process executor, stages one at a time in list order (each op carries
  `dagster/priority` = -index, so among ready stages the earliest runs first);
- async modes: the asyncio executor of `dagster-async-executor`, in one process with frames in
  memory; ops are `async def` and push Polars work to threads, so independent stages overlap;
- `executor: multiprocess`: Dagster's multiprocess executor (one process per stage, frames
  persisted as Parquet); sync modes then run one stage at a time;
- `executor: celery`: dagster-celery's executor (each stage a task on a broker, run by the
  Celery workers of any machine; frames persisted as Parquet where all can reach them). The
  workers' number and concurrency bound how many stages run at once (`translate/celery.py`);
- `executor: k8s`: dagster-k8s's `k8s_job_executor` (each stage a Kubernetes Job; frames
  persisted in object storage), configured by the run config's `k8s:` (`translate/k8s.py`).
"""

from __future__ import annotations

import os

from dagster import Enum, EnumValue, Field, Noneable, Permissive, Shape, executor
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.in_process import InProcessExecutor

from capport_dagster.core.modes import EXECUTORS, RunMode
from capport_dagster.translate.celery import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_QUEUE,
    QUEUE_VARIABLE,
    celery_executor,
)
from capport_dagster.translate.translator import IO_TAG

__all__ = [
    "CELERY_CONFIG",
    "CELERY_DEFAULTS",
    "EXECUTOR_ENUM",
    "EXECUTOR_KINDS",
    "MODE_ENUM",
    "PERSISTING_EXECUTORS",
    "REMOTE_EXECUTORS",
    "capport_executor",
    "default_concurrency",
]

EXECUTOR_KINDS = EXECUTORS
#: Executors whose stages run in separate processes: frames are persisted between stages.
PERSISTING_EXECUTORS = ("multiprocess", "celery", "k8s")
#: Executors whose stages may run on other machines: they need an instance all can reach.
REMOTE_EXECUTORS = ("celery", "k8s")

MODE_ENUM = Enum("CapportRunMode", [EnumValue(mode.value) for mode in RunMode])
EXECUTOR_ENUM = Enum("CapportExecutor", [EnumValue(kind) for kind in EXECUTOR_KINDS])

#: Modules each multiprocess worker gets from the forkserver already imported: importing is the
#: expensive part of a step's start-up. Dagster's SQLite storage (sqlalchemy, alembic) is imported
#: by every worker when it opens the instance, so it is preloaded too. Measured on 2 cores: about
#: 1.4 s per step with spawn, 0.7 s with forkserver and Dagster preloaded, 0.35 s with this list
#: (docs/benchmarks.md).
FORKSERVER_PRELOAD = [
    "polars",
    "dagster",
    "dagster_polars",
    "sqlalchemy",
    "alembic",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.runs.sqlite",
    "dagster._core.storage.event_log.sqlite",
    "dagster._core.storage.schedules.sqlite",
    "capport_dagster.translate.build",
]


#: `celery:` in the run config, read by `executor: celery` only.
CELERY_CONFIG = Shape(
    {
        "broker": Field(
            Noneable(str),
            default_value=None,
            description="broker URL (default: $CAPPORT_CELERY_BROKER, else RabbitMQ on localhost)",
        ),
        "backend": Field(
            Noneable(str),
            default_value=None,
            description="result backend (default: $CAPPORT_CELERY_BACKEND, else a Redis broker,"
            " else rpc://)",
        ),
        "queue": Field(
            Noneable(str),
            default_value=None,
            description="queue of the workers that run the stages (default:"
            f" ${QUEUE_VARIABLE}, else {DEFAULT_QUEUE})",
        ),
        "poll_interval": Field(
            float,
            default_value=DEFAULT_POLL_INTERVAL,
            description="seconds between checks of the stages' results (dagster-celery: 1)",
        ),
    }
)

#: The whole `celery:` block as its fields' defaults make it (a run config without one).
CELERY_DEFAULTS = {name: field.default_value for name, field in CELERY_CONFIG.fields.items()}


def default_concurrency() -> int:
    return os.cpu_count() or 1


@executor(
    name="capport",
    config_schema={
        "mode": Field(MODE_ENUM, default_value=RunMode.SYNC_LAZY.value),
        "executor": Field(EXECUTOR_ENUM, default_value="in_process"),
        "max_concurrent": Field(Noneable(int), default_value=None),
        "celery": Field(CELERY_CONFIG, default_value=CELERY_DEFAULTS),
        # dagster-k8s's `k8s_job_executor` config, checked against its schema by the run config
        # mapping (`translate/k8s.py`): not imported here, Kubernetes' client is heavy.
        "k8s": Field(Permissive(), default_value={}),
    },
)
def capport_executor(init_context):  # type: ignore[no-untyped-def]
    config = init_context.executor_config
    mode = RunMode(config["mode"])
    limit = config["max_concurrent"] or default_concurrency()
    # The other executors are imported when a run asks for them: a sync in-process run (what
    # `capport run` does by default) does not pay for anyio and the multiprocess machinery.
    if config["executor"] == "celery":
        return celery_executor(config["celery"])
    if config["executor"] == "k8s":
        from capport_dagster.translate.k8s import k8s_executor

        return k8s_executor(init_context, config["k8s"])
    if config["executor"] == "multiprocess":
        from dagster._core.executor.multiprocess import MultiprocessExecutor

        return MultiprocessExecutor(
            retries=RetryMode.ENABLED,
            max_concurrent=limit if mode.is_async else 1,
            start_method="forkserver",
            explicit_forkserver_preload=FORKSERVER_PRELOAD,
        )
    if mode.is_async:
        from dagster_async_executor.executor import AsyncExecutor

        # `max_concurrent` bounds the stages that compute; stages of async tasks (HTTP) await
        # the network and would only queue behind them, so they are not counted.
        return AsyncExecutor(
            retries=RetryMode.ENABLED,
            max_concurrent=None,
            tag_concurrency_limits=[{"key": IO_TAG, "value": "false", "limit": limit}],
        )
    return InProcessExecutor(retries=RetryMode.ENABLED)
