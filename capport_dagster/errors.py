"""Every error the project raises on purpose, in one place.

A capport user edits YAML, not Python, so each error carries a :class:`Location` that points at
the file, the section, the entry and, for stages, the stage label and its index. The CLI prints
``str(error)`` (never a traceback) and picks its exit code from the class: config problems exit 2,
run failures exit 1.
"""

from __future__ import annotations

import difflib
import functools
import itertools
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

__all__ = [
    "CapportError",
    "ConfigError",
    "Location",
    "ModelCastError",
    "Problem",
    "RunInterrupted",
    "ScheduleParseError",
    "TaskError",
    "ValidationError",
    "count",
    "did_you_mean",
]


@dataclass(frozen=True)
class Location:
    """Where in the config something is: every field is optional, the more the better."""

    file: str | None = None
    line: int | None = None
    column: int | None = None
    section: str | None = None
    name: str | None = None
    stage: str | None = None
    index: int | None = None
    #: For an entry other entries use (a transform, a model, a runner): who uses it, e.g.
    #: "pipeline 'p', stage 'join_a' (#2)", so `validate -p p` shows what is wrong with `p`.
    used_by: str | None = None

    def with_(self, **changes: object) -> Location:
        """A copy with some fields replaced (locations are shared, never mutated)."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def __str__(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            where = _short_path(self.file)
            if self.line is not None:
                where += f":{self.line}"
                if self.column is not None:
                    where += f":{self.column}"
            parts.append(where)
        if self.section is not None:
            entry = f"{self.section} '{self.name}'" if self.name is not None else self.section
            if self.used_by is not None:
                entry += f" (used by {self.used_by})"
            parts.append(entry)
        elif self.name is not None:
            parts.append(f"'{self.name}'")
        if self.stage is not None:
            stage = f"stage '{self.stage}'"
            if self.index is not None:
                stage += f" (#{self.index})"
            parts.append(stage)
        elif self.index is not None:
            parts.append(f"stage #{self.index}")
        return ", ".join(parts)


def _short_path(file: str) -> str:
    """Paths under the working directory print relative: shorter, and what the user typed."""
    return _relative_to(file, os.getcwd())


@functools.lru_cache(maxsize=256)
def _relative_to(file: str, cwd: str) -> str:
    # Cached: resolving costs system calls, and a config with many problems prints the same few
    # files over and over (every ValidationError formats all of its problems).
    # The directory is resolved, not the file: a symbolic link (even a dangling or looping one)
    # is named as the user named it, not as its target.
    path = Path(file)
    try:
        return str((path.parent.resolve() / path.name).relative_to(Path(cwd).resolve()))
    except (ValueError, OSError, RuntimeError):  # RuntimeError: a loop among the directories
        return str(path)


#: did-you-mean compares names of at most this many characters, among at most this many choices:
#: difflib is quadratic in the length of the strings and linear in the number of choices, so
#: hostile configs (thousands of long names) would otherwise take minutes to validate. Names that
#: long, or that many, are not typed by hand; they get no suggestion.
SUGGEST_MAX_LENGTH = 100
SUGGEST_MAX_CHOICES = 200


def count(number: int, noun: str) -> str:
    """`1 stage`, `3 stages`, `0 pipelines`: English plurals of the regular nouns messages count."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


def did_you_mean(value: object, choices: Iterable[str]) -> str:
    """The ' - did you mean ...?' suffix for a misspelt name, or '' when nothing is close.

    Case is ignored when comparing (`LEFT` suggests `left`), and a choice that is exactly the
    text typed is never suggested: a message such as "'a.b' not found - did you mean 'a.b'?"
    tells the user nothing. Callers pass the text as the user typed it.
    """
    text = str(value)
    candidates = list(itertools.islice(choices, SUGGEST_MAX_CHOICES + 1))
    if len(text) > SUGGEST_MAX_LENGTH or len(candidates) > SUGGEST_MAX_CHOICES:
        return ""
    folded: dict[str, str] = {}
    for candidate in sorted(candidates):
        if len(candidate) <= SUGGEST_MAX_LENGTH and candidate != text:
            folded.setdefault(candidate.casefold(), candidate)
    close = difflib.get_close_matches(text.casefold(), folded, n=1, cutoff=0.6)
    return f" - did you mean '{folded[close[0]]}'?" if close else ""


class CapportError(Exception):
    """Raised for every failure the project reports on purpose; carries a :class:`Location`."""

    def __init__(self, message: str, location: Location | None = None) -> None:
        self.message = message
        self.location = location or Location()
        super().__init__(str(self))

    def __str__(self) -> str:
        where = str(self.location)
        return f"{where}: {self.message}" if where else self.message

    def __reduce__(self):  # keep errors picklable across Dagster's process boundaries
        return (self.__class__, (self.message, self.location))


class ConfigError(CapportError):
    """Raised when the configuration cannot be read or does not follow the capport language."""


@dataclass(frozen=True)
class Problem:
    """One finding of the validator: an error makes the config unusable, a warning does not."""

    location: Location
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = str(self.location)
        text = f"{where}: {self.message}" if where else self.message
        return f"warning: {text}" if self.severity == "warning" else f"error: {text}"


class ValidationError(ConfigError):
    """Raised when validation finds errors; holds every problem found, not just the first."""

    def __init__(self, problems: Iterable[Problem], location: Location | None = None) -> None:
        self.problems = tuple(sorted(problems, key=_problem_order))
        errors = [p for p in self.problems if p.severity == "error"]
        self.errors = tuple(errors)
        head = f"the configuration has {len(errors)} error{'s' if len(errors) != 1 else ''}"
        body = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"{head}:\n{body}" if body else head, location)

    def __str__(self) -> str:  # the message already lists located problems
        return self.message

    def __reduce__(self):
        return (self.__class__, (self.problems, self.location))

    @classmethod
    def raise_if_any(cls, problems: list[Problem]) -> None:
        """Raise what the problems call for: nothing, one `ConfigError`, or all of them."""
        if len(problems) == 1:
            raise ConfigError(problems[0].message, problems[0].location)
        if problems:
            raise cls(problems)


def _problem_order(problem: Problem) -> tuple:
    loc = problem.location
    return (
        loc.file or "",
        loc.section or "",
        loc.name or "",
        -1 if loc.index is None else loc.index,
        loc.line or 0,
        problem.severity,
        problem.message,
    )


class TaskError(CapportError):
    """Raised when a stage fails while running: bad data, a missing file, a failed cast."""


class RunInterrupted(TaskError):
    """Raised when a stage would publish output (rename a file into place) after the run was
    interrupted by a signal: nothing lands after the signal."""


class ModelCastError(TaskError):
    """Raised when data does not fit a model: names the model, column, dtype and a bad value."""


class ScheduleParseError(ConfigError):
    """Raised when a runner's `every:` phrase does not follow the schedule grammar."""
