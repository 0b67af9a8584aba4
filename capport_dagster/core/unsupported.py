"""Tasks of capport that this project knowingly does not provide.

A config written for the original capport may name them; `capport validate` then says plainly
that the task is not supported, why, and what to use instead, rather than "unknown task" with a
did-you-mean that suggests a typo.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capport_dagster.core.registry import (
    BindContext,
    Frame,
    RunContext,
    TaskRegistry,
    TaskSpec,
)
from capport_dagster.errors import ConfigError

__all__ = ["UNSUPPORTED", "register_unsupported_tasks"]

#: Task name -> why it is not supported and what to use instead.
UNSUPPORTED: Mapping[str, str] = {
    "mongo": (
        "MongoDB is not supported (no MongoDB server is available to test it against, so it"
        " could not be kept working); export the collection to JSON or CSV and read it with"
        " load_json or load_csv, or copy it into PostgreSQL and read it with load_sql or postgres"
    ),
    "save_clickhouse": (
        "ClickHouse is not supported (no ClickHouse server is available to test it against: the"
        " only packaged one, Debian's 18.16 of 2018, is years older than the servers capport"
        " writes to); write the frame with save_parquet and import the file with ClickHouse's"
        " own INSERT ... FORMAT Parquet"
    ),
}


def _refuse(task: str) -> Any:
    def parse(raw: Any, ctx: BindContext) -> None:
        raise ConfigError(f"task '{task}': {UNSUPPORTED[task]}", ctx.location)

    return parse


def _never_runs(args: Any, frames: Mapping[str, Frame], ctx: RunContext) -> None:
    """Never called: the args of an unsupported task never parse."""
    raise AssertionError("an unsupported task cannot run")  # pragma: no cover


def register_unsupported_tasks(registry: TaskRegistry) -> TaskRegistry:
    """Register the unsupported tasks in `registry`, each refusing its stage at validation."""
    for task in UNSUPPORTED:
        registry.register(
            TaskSpec(
                task,
                _never_runs,
                reads=lambda a: (),
                writes=lambda a: (),
                parse=_refuse(task),
                description="Not supported: " + UNSUPPORTED[task].split(" (")[0] + ".",
            )
        )
    return registry
