"""The typed, immutable shape of a capport config directory.

Values are frozen so that the graph, the translator and concurrent runs can share them across
threads. Stage args and entry bodies stay as the YAML gave them (dicts, lists, scalars): each task
and section gives them meaning when the graph is built, so an unknown task can still be reported
with its location instead of failing the load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from capport_dagster.errors import Location, Problem

__all__ = ["SECTIONS", "CapportConfig", "ConfigSnapshot", "Entry", "Pipeline", "Stage"]

#: Top-level keys a config file may use. `service` and `connection` hold settings that service
#: tasks read by name; they are accepted as they are.
SECTIONS: tuple[str, ...] = (
    "pipeline",
    "transform",
    "model",
    "runner",
    "logger",
    "service",
    "connection",
)


@dataclass(frozen=True)
class Entry:
    """One named definition in a section (a transform, a model, a runner, ...)."""

    section: str
    name: str
    body: Any
    location: Location


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline: a task applied to args that name dataframes."""

    label: str
    task: str
    args: Any
    location: Location

    @property
    def index(self) -> int:
        return self.location.index if self.location.index is not None else -1


@dataclass(frozen=True)
class Pipeline:
    """A named, ordered list of stages; its name becomes the Dagster job name."""

    name: str
    stages: tuple[Stage, ...]
    location: Location


def _frozen(mapping: Mapping | None = None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


#: The text of every file `load_config` reads, by name, in reading order: a run carries it so
#: that the processes executing its stages (on other machines too) rebuild the very config it
#: was launched with, without the config directory (docs/deploy.md).
ConfigSnapshot = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class CapportConfig:
    """Everything read from one config directory, plus the problems found while reading it.

    Loading never stops at the first problem: a file that does not parse, a clash or a malformed
    stage becomes a :class:`Problem` here and the rest is still read, so `capport validate`
    can report everything at once.
    """

    config_dir: Path
    files: tuple[Path, ...] = ()
    pipelines: Mapping[str, Pipeline] = field(default_factory=_frozen)
    entries: Mapping[str, Mapping[str, Entry]] = field(default_factory=_frozen)
    problems: tuple[Problem, ...] = ()

    def section(self, name: str) -> Mapping[str, Entry]:
        """The entries of a section (empty when no file defines it)."""
        return self.entries.get(name, _EMPTY)

    @property
    def transforms(self) -> Mapping[str, Entry]:
        return self.section("transform")

    @property
    def models(self) -> Mapping[str, Entry]:
        return self.section("model")

    @property
    def runners(self) -> Mapping[str, Entry]:
        return self.section("runner")

    @property
    def loggers(self) -> Mapping[str, Entry]:
        return self.section("logger")


_EMPTY: Mapping[str, Entry] = MappingProxyType({})
