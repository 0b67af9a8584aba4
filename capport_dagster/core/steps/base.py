"""What every transform step is, and how a step kind is registered.

A step is parsed once (when the config loads) into an immutable object, then applied to many
frames, from many threads. Parsing reports every problem into a `Findings` (so `validate`
lists them all); `check` finds what the schema alone shows (before Polars builds the plan, so
the message is ours); `apply` only builds the lazy plan, never collects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import polars as pl

from capport_dagster.core.selects import Findings
from capport_dagster.errors import did_you_mean

__all__ = ["Findings", "Schema", "Step", "StepKind", "StepParser", "missing_columns"]

#: A frame's columns; a dtype of None is unknown (the static checks know only names).
Schema = Mapping[str, pl.DataType | None]


class Step(Protocol):
    """A parsed step."""

    #: The step's name in messages: `transform 't', step 2 (join)`.
    kind: ClassVar[str]

    def reads(self) -> tuple[str, ...]:
        """Other frames of the pipeline this step needs (a join's right frame, a sql step's
        `sql_context`): dependencies of every stage using the transform."""
        ...

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        """Problems the input's schema shows (unknown columns, wrong dtypes), each a message
        without the step's prefix; `frames` are the frames `reads` names, lazy."""
        ...

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        """The lazy plan of the step on `frame` (already checked); never collects."""
        ...


#: Reads a whole step mapping (its key and the sibling options) into a Step, or None after
#: reporting each problem to `found.errors`, prefixed by `context` (`step 2 (sql)`).
StepParser = Callable[[Mapping[str, Any], str, Findings], "Step | None"]


@dataclass(frozen=True)
class StepKind:
    """One kind of step as the YAML writes it.

    A step mapping is of this kind when it has one of `keys` (`sql`; the three `unnest_*`
    keys are one kind, combinable in one step). It may also carry `options`, sibling keys of
    the step key (`sql_context` beside `sql`), as capport writes them.
    """

    name: str
    keys: tuple[str, ...]
    parse: StepParser
    options: tuple[str, ...] = ()


def missing_columns(names: Iterable[str], schema: Schema, *, label: str = "") -> list[str]:
    """One message per named column the frame lacks, with a did-you-mean and its columns;
    `label` names the key that listed them (`subset: `)."""
    columns = ", ".join(schema) or "none"
    return [
        f"{label}column '{name}' not found{did_you_mean(name, schema)} (columns: {columns})"
        for name in dict.fromkeys(names)
        if name not in schema
    ]
