"""What every transform step is, and how a step kind is registered.

A step is parsed once (when the config loads) into an immutable object, then applied to many
frames, from many threads. Parsing reports every problem into a `Findings` (so `validate`
lists them all); `check` finds what the schema alone shows (before Polars builds the plan, so
the message is ours); `apply` only builds the lazy plan, never collects. `lineage` says where
each output column comes from, from the schema alone (`core/lineage.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import polars as pl

from capport_dagster.core.selects import Findings
from capport_dagster.errors import did_you_mean

__all__ = [
    "Findings",
    "Schema",
    "Source",
    "Step",
    "StepKind",
    "StepLineage",
    "StepParser",
    "identity",
    "missing_columns",
    "sources_of",
    "step_lineage",
]

#: A frame's columns; a dtype of None is unknown (the static checks know only names).
Schema = Mapping[str, pl.DataType | None]
#: Where a step's output column comes from: `(None, column)` is a column of the frame the step
#: receives, `(FRAME, column)` a column of another frame the step reads (`reads()`).
Source = tuple[str | None, str]
#: Each output column of a step, in output order, with its sources; None for a column whose
#: sources cannot be told (it then comes from every column of everything the step reads).
StepLineage = dict[str, tuple[Source, ...] | None]


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

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage | None:
        """Every output column of the step on a frame of this (checked) schema, in order, with
        the columns it is computed from (`StepLineage`); `frames` are the schemas of the frames
        `reads` names. From names and dtypes alone: never plans, never collects.

        None: the step cannot tell from this schema. A dtype may be None (unknown after an
        earlier step): a step that needs it (an unnest its struct's fields) answers None, and
        is asked again with the exact schema, which Polars then works out on empty frames.

        Optional (`step_lineage` asks for it): a step kind without it, or answering None to the
        exact schema, is taken as making every output column from every column of its input and
        of the frames it reads, its output columns being what Polars plans on empty frames
        (`Transform.lineage`), so a user's step kind never makes a lineage wrong, only coarse.
        """
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


def identity(schema: Schema) -> StepLineage:
    """The lineage of a step that keeps every column as it is, values or rows aside (filter,
    sort, distinct, a cast or parse in place): each column comes from itself."""
    return {name: ((None, name),) for name in schema}


def sources_of(columns: Iterable[str] | None) -> tuple[Source, ...] | None:
    """The sources of an output column computed from these input columns (None: unknown)."""
    return None if columns is None else tuple((None, name) for name in columns)


def step_lineage(step: Step, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage | None:
    """`step.lineage(...)`, or None for a step kind that does not define it (the documented
    default: the step's output is taken to come from everything it reads)."""
    lineage = getattr(step, "lineage", None)
    return None if lineage is None else lineage(schema, frames)
