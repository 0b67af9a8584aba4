"""The four run modes of the original capport design (SPEC 8), and the executors that run them."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args

__all__ = ["DEFAULT_MODE", "EXECUTORS", "Executor", "RunMode"]

#: Where stages run: in the launching process, a process each on this machine, as Celery tasks
#: on any machine, or as Kubernetes Jobs (`translate/executor.py` maps each to Dagster's).
Executor = Literal["in_process", "multiprocess", "celery", "k8s"]
EXECUTORS: tuple[Executor, ...] = get_args(Executor)


class RunMode(StrEnum):
    """How a pipeline runs: in list order or as soon as inputs are ready; lazy or eager frames.

    Every mode gives the same outputs; they differ only in speed and memory.
    """

    SYNC_LAZY = "sync_lazy"
    SYNC_EAGER = "sync_eager"
    ASYNC_LAZY = "async_lazy"
    ASYNC_EAGER = "async_eager"

    @property
    def is_lazy(self) -> bool:
        """Frames travel as `pl.LazyFrame` and are collected only by sinks."""
        return self in (RunMode.SYNC_LAZY, RunMode.ASYNC_LAZY)

    @property
    def is_async(self) -> bool:
        """Stages start as soon as the stages they depend on are done."""
        return self in (RunMode.ASYNC_LAZY, RunMode.ASYNC_EAGER)


DEFAULT_MODE = RunMode.SYNC_LAZY
