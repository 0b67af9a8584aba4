"""capport on Dagster: YAML-described Polars pipelines as Dagster jobs.

from capport_dagster import load_definitions
defs = load_definitions("config")
"""

from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY, task
from capport_dagster.core.graph import PipelineGraph, Project, load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext, TaskRegistry, TaskSpec
from capport_dagster.errors import (
    CapportError,
    ConfigError,
    ModelCastError,
    TaskError,
    ValidationError,
)

# The translator layer imports Dagster; it loads on first use so that `capport_dagster.core`
# (and `capport validate`) never pay for, or depend on, importing Dagster.
_LAZY = {
    "build_definitions": "capport_dagster.translate.build",
    "load_definitions": "capport_dagster.translate.build",
    "CapportTranslator": "capport_dagster.translate.translator",
    "CapportComponent": "capport_dagster.component",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'capport_dagster' has no attribute {name!r}")


def __dir__() -> list[str]:
    # The lazy names too: `dg list components` finds components through `dir(capport_dagster)`.
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DEFAULT_REGISTRY",
    "CapportComponent",
    "CapportError",
    "CapportTranslator",
    "ConfigError",
    "ModelCastError",
    "PipelineGraph",
    "Project",
    "RunContext",
    "RunMode",
    "TaskError",
    "TaskRegistry",
    "TaskSpec",
    "ValidationError",
    "build_definitions",
    "load_definitions",
    "load_project",
    "task",
]
