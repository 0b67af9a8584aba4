"""Logger entries (SPEC 10): where a run's log file goes and how much it says.

    logger:
      default:
        level: info                # trace | debug | info | warn | error | off
        output: $OUTPUT_DIR/logs   # a directory; `$VARIABLES` expand per run
        file_prefix: players_      # optional
        file_timestamp: "%Y-%m-%d" # optional strftime pattern, default one file per day

A run logs to `<output>/<file_prefix><timestamp>.log` (appending, so every process of a run and
every run of the period share one file) and to the console, both at `level`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from capport_dagster.core.config import Entry
from capport_dagster.core.registry import validate_model
from capport_dagster.errors import ConfigError, Location

__all__ = ["LEVELS", "LoggerSpec", "parse_logger"]

#: capport level names and the Python levels they mean. Python has no TRACE: it logs as DEBUG.
#: `off` silences the file and keeps only critical messages on the console.
LEVELS: dict[str, int] = {
    "trace": logging.DEBUG,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "off": logging.CRITICAL + 10,
}

DEFAULT_TIMESTAMP = "%Y-%m-%d"


class _LoggerBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    level: Literal["trace", "debug", "info", "warn", "error", "off"] = "info"
    output: str
    file_prefix: str = ""
    file_timestamp: str = DEFAULT_TIMESTAMP

    @field_validator("level", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


@dataclass(frozen=True)
class LoggerSpec:
    name: str
    level: str
    output: str
    file_prefix: str
    file_timestamp: str
    location: Location

    @property
    def python_level(self) -> int:
        return LEVELS[self.level]

    @property
    def console_level(self) -> str:
        """The level name Dagster's console logger takes."""
        return logging.getLevelName(min(self.python_level, logging.CRITICAL))

    def file_name(self, when: object) -> str:
        return f"{self.file_prefix}{when:{self.file_timestamp}}.log"


def parse_logger(entry: Entry) -> LoggerSpec:
    if not isinstance(entry.body, dict):
        raise ConfigError(
            f"a logger is a mapping {{level, output, file_prefix?, file_timestamp?}}, got "
            f"{entry.body!r}",
            entry.location,
        )
    body = validate_model(_LoggerBody, entry.body, entry.location, "logger")
    assert isinstance(body, _LoggerBody)
    if "/" in body.file_prefix:
        raise ConfigError(
            f"file_prefix {body.file_prefix!r} must not contain '/': use `output` for the "
            "directory",
            entry.location,
        )
    return LoggerSpec(
        entry.name, body.level, body.output, body.file_prefix, body.file_timestamp, entry.location
    )
