"""Column lineage: for each column of each frame a stage writes, the input-frame columns it was
computed from, derived from schemas and the stage's args alone.

It runs inside every stage op (the translator turns it into Dagster's `dagster/column_lineage`
metadata), so it never reads data, never executes a Polars plan and never raises: where the
origin of a column cannot be told, the column is marked as coming from the whole input.

The rules, in one place (docs/reference.md, "Column lineage", says the same to users):

- A source is `(frame, column)`: a frame the stage reads (`node.reads`) and one of its top-level
  columns (a path `a.b` is the column `a`).
- Sources are listed the stage's main input first (its first read frame), then the other frames
  in `node.reads` order, each frame's columns in schema order, without duplicates.
- The fallback, "the whole input", is every column of every frame the stage reads. A stage that
  reads no frame (a load) thus gives `()` for every column: its columns come from outside the
  graph. A column made from a literal only is `()` too.
- Each task says how its lineage is computed with `TaskSpec.lineage` (a `LineageFn`); the
  default, `whole_input`, tells nothing, so every column falls back. A `LineageFn` may leave out
  any column, which then falls back; sources naming a column the stage does not read are
  ignored (a column whose every source is ignored falls back rather than passing for a
  literal).
- The `transform` task composes its steps' own `lineage` (`core/steps/base.py`,
  `Transform.lineage`).

`core/graph.py`'s `StageNode` is only imported for typing: the registry and the steps use this
module's vocabulary, and must not import the graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

import polars as pl

if TYPE_CHECKING:
    from capport_dagster.core.graph import StageNode

__all__ = [
    "ColumnSource",
    "FrameLineage",
    "LineageFn",
    "by_name",
    "stage_lineage",
    "whole_input",
]

#: `(frame the stage reads, column of that frame)`.
ColumnSource: TypeAlias = tuple[str, str]
#: Output column -> its sources, in a stable order (see the module docstring).
FrameLineage: TypeAlias = dict[str, tuple[ColumnSource, ...]]
#: `lineage(args, inputs, outputs)`: for each frame the task writes, output column -> its
#: sources (any iterable, any order: they are put in the documented order afterwards). `inputs`
#: are the schemas of the frames the task reads, in `reads` order (the main input first), and
#: `outputs` those of the frames it writes. A frame or column left out falls back to the whole
#: input; a `LineageFn` that raises makes the whole stage fall back.
LineageFn: TypeAlias = Callable[
    [Any, Mapping[str, pl.Schema], Mapping[str, pl.Schema]],
    Mapping[str, Mapping[str, Iterable[ColumnSource]]],
]


def whole_input(
    args: Any, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
) -> dict[str, dict[str, tuple[ColumnSource, ...]]]:
    """The default `LineageFn` (a custom task's): nothing is known, so every column of every
    frame written comes from every column of every frame read."""
    return {}


def by_name(
    args: Any, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
) -> dict[str, dict[str, tuple[ColumnSource, ...]]]:
    """A `LineageFn` for tasks that keep columns by name (copy, dedupe, filter rows, reshape
    with a model): each written column comes from the column of the same name of the first frame
    read that has it; a column no frame read has falls back to the whole input.

        @task("dedupe", reads=..., writes=..., lineage=by_name)
    """
    found: dict[str, dict[str, tuple[ColumnSource, ...]]] = {}
    for frame, schema in outputs.items():
        columns: dict[str, tuple[ColumnSource, ...]] = {}
        for column in schema:
            source = next((name for name, read in inputs.items() if column in read), None)
            if source is not None:
                columns[column] = ((source, column),)
        found[frame] = columns
    return found


def stage_lineage(
    node: StageNode, inputs: Mapping[str, pl.Schema], outputs: Mapping[str, pl.Schema]
) -> dict[str, FrameLineage]:
    """Column lineage of every frame `node` writes, by frame written; every column of every
    written frame whose schema `outputs` gives is present (a written frame `outputs` lacks has
    no columns to describe: `{}`). `inputs` holds the schema of each frame the stage reads.

    The task's `LineageFn` is asked, then its answer is checked and ordered here, so a task's
    own function (a user's) can never break a run: whatever it raises or gets wrong falls back
    to the whole input.
    """
    read = {name: inputs[name] for name in node.reads if name in inputs}
    order = {
        (frame, column): (i, j)
        for i, (frame, schema) in enumerate(read.items())
        for j, column in enumerate(schema)
    }
    fallback = tuple(order)  # dicts keep insertion order: frames in reads order, schema order
    written = {name: outputs[name] for name in node.writes if name in outputs}
    try:
        declared = node.spec.lineage(node.args, read, written)
        if not isinstance(declared, Mapping):
            declared = {}
    except Exception:  # a task's lineage must never fail the stage it describes
        declared = {}
    result: dict[str, FrameLineage] = {}
    for frame in node.writes:
        told = declared.get(frame)
        told = told if isinstance(told, Mapping) else {}
        result[frame] = {
            column: _ordered(told.get(column), order, fallback) for column in written.get(frame, ())
        }
    return result


def _ordered(
    sources: Iterable[ColumnSource] | None,
    order: Mapping[ColumnSource, tuple[int, int]],
    fallback: tuple[ColumnSource, ...],
) -> tuple[ColumnSource, ...]:
    """`sources` in the documented order, without duplicates and without sources the stage
    does not read; the fallback when they are not told (None) or all unknown."""
    if sources is None:
        return fallback
    try:
        given = [tuple(source) for source in sources]
        known = {source for source in given if source in order}
    except TypeError:  # not pairs of names: a task's mistake
        return fallback
    if given and not known:
        return fallback
    return tuple(sorted(known, key=order.__getitem__))  # type: ignore[arg-type]
