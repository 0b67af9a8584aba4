"""Transforms: a named list of steps (`core/steps/`, a module each) that builds a Polars LazyFrame.

Parsing and applying are apart so `capport validate` reports every bad step of every transform
without data, and a run only builds a lazy plan that Polars can optimise as a whole (a `select`
of 2 of 20 CSV columns reads only those 2). Decisions a user of the YAML sees:

- **Values** are expressions (`core/expressions.py`, the user's guide `docs/expressions.md`):
  a column path (`core/paths.py`: a dot goes into a struct field, `stats\\.goals` escapes one),
  an optional column `^name$`, an action, a typed literal or a SQL expression. A select's
  source may also be null (the key's own name) or capport's `{action, args}` mapping.
- **Steps** are a module each (`core/steps/`, guides `docs/steps-capport.md` and
  `docs/steps-planned.md`); a step mapping has one step key plus its kind's sibling options.
- **Join keys** (`core/joins.py`) are column names (not paths). As in capport (Polars'
  defaults), `left`, `inner` and `right` joins coalesce their keys into one column (left and
  inner keep the left key names, right keeps the right ones), while a `full` join keeps both
  sides' keys: different names stay as they are, a shared name gives `key` and `key_right`, and
  a key missing on one side is null there. Other right columns whose names clash with left ones
  get the suffix `_right`. Nulls never match nulls (SQL).
- **Row order** is part of the result, the same in every mode and executor, in memory, scanned
  back from Parquet and streamed to a sink: left, inner and full joins follow the left rows, each
  with its matches in right order (full: then the unmatched right rows, in right order); right
  joins follow the right rows, each with its matches in left order.
- **drop** takes exact column names; `true`, `null` or the string `"true"` (any case) drop,
  `false`/`"false"` keep. Dropping a column the frame does not have is an error.
- Steps are numbered from 1 in messages (`step 2` is the second step).
- **Checked before data**: `validate` runs `apply`'s own checks on empty frames of the input
  schemas known before the run (`Transform.output_schema`, fed by the schema flow of
  `core/graph.py`), so it says what a run would, at the step's line; and where a transform
  itself fixes the columns (after a `select`, and after a join whose right side is a
  `right_select`), a later step naming a column not there is found even without an input
  schema. At run time every step is checked against the real schema first, so a mistake is a
  located `TaskError` naming the step, never a bare Polars message.
- **Column lineage** (`Transform.lineage`): each step says where its columns come from
  (`Step.lineage`), and the transform composes them, from schemas alone; Polars plans on empty
  frames only where a step needs dtypes an earlier step made (an unnest's struct, a sql query)
  or cannot tell its columns.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from capport_dagster.core.joins import JOIN_HOWS, JoinStep
from capport_dagster.core.paths import path_expr, valid_path
from capport_dagster.core.selects import (
    ACTIONS,
    Findings,
    SelectItem,
    check_items,
    parse_items,
    select_exprs,
)
from capport_dagster.core.steps import PLANNED_STEPS, STEPS, Schema, Step, parse_step
from capport_dagster.core.steps.base import Source, StepLineage, step_lineage
from capport_dagster.core.steps.drop import DropStep
from capport_dagster.core.steps.select import SelectStep
from capport_dagster.core.variables import BUILTIN_VARIABLES
from capport_dagster.core.yaml_source import describe, location_at
from capport_dagster.errors import (
    ConfigError,
    Location,
    Problem,
    TaskError,
    ValidationError,
)

__all__ = [
    "ACTIONS",
    "JOIN_HOWS",
    "PLANNED_STEPS",
    "STEPS",
    "DropStep",
    "JoinStep",
    "SelectItem",
    "SelectStep",
    "Step",
    "Transform",
    "parse_select",
    "parse_transform",
    "path_expr",
    "select_exprs",
    "valid_path",
]


@dataclass(frozen=True)
class Transform:
    """A parsed transform: reusable by any stage, shared between threads (it is immutable)."""

    name: str
    steps: tuple[Step, ...]
    #: What parsing found worth saying that does not stop a run (e.g. `$NAME` in a template).
    warnings: tuple[Problem, ...] = field(default=(), compare=False)
    #: Where each step is written (its line in the transform's file): a problem `validate`
    #: finds in a step is located there. Empty for a transform built in code.
    locations: tuple[Location, ...] = field(default=(), compare=False)

    def reads(self) -> tuple[str, ...]:
        """The frames the steps name (joins, sql contexts), in step order: the stage's extra
        dependencies."""
        return tuple(dict.fromkeys(name for step in self.steps for name in step.reads()))

    def apply(
        self,
        frame: pl.LazyFrame,
        frames: Mapping[str, pl.LazyFrame],
        *,
        location: Location | None = None,
    ) -> pl.LazyFrame:
        """Build the plan; never collects.

        Each step is checked against the schema it receives (no data is read) before Polars
        builds it, so a mistake is reported with the step that makes it and the columns there
        are, rather than as a bare Polars error here or at collect time.
        """
        plan = frame.lazy()
        schema = _input_schema(plan, f"transform '{self.name}'", location)
        try:
            return self._build(plan, schema, frames)
        except _StepFailed as failed:
            raise TaskError(f"transform '{self.name}', {failed.message}", location) from (
                failed.__cause__
            )

    def output_schema(
        self, schema: Schema, schemas: Mapping[str, Schema]
    ) -> tuple[pl.Schema | None, Problem | None]:
        """What the transform makes of frames of these schemas, before any data exists: the
        output schema, or the problem of the first step that fails, located at that step's line.

        The very checks and plan of `apply` run on empty frames (`pl.LazyFrame(schema=...)`),
        so `validate` and a run say the same thing; `schemas` holds the frames `reads` names.
        """
        frame = pl.LazyFrame(schema=dict(schema))
        frames = {name: pl.LazyFrame(schema=dict(schemas[name])) for name in self.reads()}
        try:
            plan = self._build(frame, frame.collect_schema(), frames)
            return plan.collect_schema(), None
        except _StepFailed as failed:
            where = (
                self.locations[failed.number - 1]
                if len(self.locations) == len(self.steps)
                else Location(section="transform", name=self.name)
            )
            return None, Problem(where, failed.message)

    def lineage(self, schema: Schema, schemas: Mapping[str, Schema]) -> StepLineage:
        """Each output column of the transform on a frame of this schema, in order, with the
        columns it is computed from: `(None, column)` of the input frame, `(FRAME, column)` of a
        frame a step reads (`schemas` holds those `reads` names); None where it cannot be told.

        The steps' own lineages composed, step by step, from names (and the input's dtypes)
        alone. The dtypes after a step are not worked out unless a step needs them (an unnest
        of a struct, a sql query) or cannot tell its columns: then, and only then, Polars plans
        the steps so far on empty frames (no data; a step that fails to plan raises, as
        `output_schema` would, for the caller to fall back). A step kind without `lineage`
        makes each of its columns from everything it reads (None here).
        """
        columns: StepLineage = {name: ((None, name),) for name in schema}
        current: Schema = schema
        for number, step in enumerate(self.steps):
            frames = {name: schemas[name] for name in step.reads()}
            found = step_lineage(step, current, frames)
            if found is None and any(dtype is None for dtype in current.values()):
                current = self._planned_schema(number, schema, schemas)
                found = step_lineage(step, current, frames)
            after: Schema | None = None
            if found is None:
                after = self._planned_schema(number + 1, schema, schemas)
                found = dict.fromkeys(after)
            columns = {name: _composed(sources, columns) for name, sources in found.items()}
            current = after if after is not None else dict.fromkeys(found)
        return columns

    def _planned_schema(
        self, steps: int, schema: Schema, schemas: Mapping[str, Schema]
    ) -> pl.Schema:
        """The schema after the first `steps` steps, planned by Polars on empty frames."""

        def empty(columns: Schema) -> pl.LazyFrame:
            known = {name: pl.Null() if d is None else d for name, d in columns.items()}
            return pl.LazyFrame(schema=known)

        frames = {name: empty(columns) for name, columns in schemas.items()}
        plan = empty(schema)
        for step in self.steps[:steps]:
            plan = step.apply(plan, frames)
        return plan.collect_schema()

    def _build(
        self, plan: pl.LazyFrame, schema: pl.Schema, frames: Mapping[str, pl.LazyFrame]
    ) -> pl.LazyFrame:
        """Check then plan each step in turn (`_StepFailed` at the first that fails)."""
        for number, step in enumerate(self.steps, 1):
            for name in step.reads():
                if name not in frames:
                    given = ", ".join(sorted(frames)) or "none"
                    raise _StepFailed(
                        number,
                        f"{_context(number, step)}: frame '{name}' was not given (frames: {given})",
                    )
            try:
                problems = step.check(schema, frames)
                if not problems:
                    plan = step.apply(plan, frames)
                    schema = plan.collect_schema()
            except pl.exceptions.PolarsError as exc:
                detail = _explain(exc, step, schema, frames)
                raise _StepFailed(number, f"{_context(number, step)}: {detail}") from exc
            if problems:
                raise _StepFailed(number, f"{_context(number, step)}: {'; '.join(problems)}")
        return plan


class _StepFailed(Exception):
    """A step's check or plan failed: `message` is `step N (kind): ...`, said by a run after
    `transform 'name', ` and by `validate` at the step's line."""

    def __init__(self, number: int, message: str) -> None:
        super().__init__(message)
        self.number = number
        self.message = message


def _composed(
    sources: tuple[Source, ...] | None, columns: StepLineage
) -> tuple[Source, ...] | None:
    """A step's sources in terms of the transform's inputs: a column of the frame the step
    received is replaced by that column's own sources; another frame's column stays."""
    if sources is None:
        return None
    found: list[Source] = []
    for frame, column in sources:
        if frame is not None:
            found.append((frame, column))
            continue
        earlier = columns.get(column)
        if earlier is None:
            return None
        found += earlier
    return tuple(dict.fromkeys(found))


def _context(number: int, step: Step) -> str:
    return f"step {number} ({step.kind})"


def _input_schema(plan: pl.LazyFrame, where: str, location: Location | None) -> pl.Schema:
    """The input's columns; an input whose schema fails (a file that cannot be scanned) is
    named as the input, not blamed on a step."""
    try:
        return plan.collect_schema()
    except (pl.exceptions.PolarsError, OSError) as exc:
        first = str(exc).split("\n\n")[0].strip()
        raise TaskError(f"{where}: its input frame cannot be read: {first}", location) from exc


def _explain(exc: Exception, step: Step, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> str:
    """Polars' error in the YAML's terms where we know it, else its first line."""
    if isinstance(step, JoinStep):
        try:
            right = step.right_frame(frames).collect_schema()
        except (pl.exceptions.PolarsError, KeyError):
            right = pl.Schema()  # the explanations that need it are not the ones here
        detail = step.explain(exc, schema, right)
        if detail is not None:
            return detail
    return str(exc).split("\n\n")[0].strip()


# -- parsing -------------------------------------------------------------------------------------


def parse_transform(
    name: str, body: Any, location: Location, *, variables: Collection[str] | None = None
) -> Transform:
    """Read one transform definition (after `$$kwargs` substitution); reports every bad step.

    `variables` are the names a `$NAME` in a format template is warned about (default: the
    built-ins and the environment, as `validate` knows them).
    """
    if not isinstance(body, list):
        raise ConfigError(
            "a transform is a list of steps (- select: ..., - filter: ..., - join: ...),"
            f" got {describe(body)}",
            location,
        )
    if not body:
        raise ConfigError("a transform needs at least one step", location)
    if variables is None:
        variables = frozenset(BUILTIN_VARIABLES) | frozenset(os.environ)
    problems: list[Problem] = []
    warnings: list[tuple[int, Problem]] = []  # (step number, warning)
    steps: list[Step] = []
    locations: list[Location] = []
    known: dict[str, pl.DataType | None] | None = None  # the columns, where the steps fix them
    unordered: list[tuple[int, Problem]] = []  # rows in no fixed order, unless sorted later
    for number, raw in enumerate(body, 1):
        found = Findings(variables=variables)
        step = parse_step(number, raw, found)
        where = location_at(location, body, number - 1)
        if step is not None and found.ordered:
            unordered.clear()
        unordered += [(number, Problem(where, message, "warning")) for message in found.unordered]
        if step is not None and not found.errors:
            steps.append(step)
            locations.append(where)
            known = _known_after(step, known, f"step {number} ({step.kind})", found.errors)
        else:
            known = None
        problems += [Problem(where, message) for message in found.errors]
        warnings += [(number, Problem(where, message, "warning")) for message in found.warnings]
    ValidationError.raise_if_any(problems)
    shown = tuple(warning for _, warning in sorted([*warnings, *unordered], key=lambda w: w[0]))
    return Transform(name, tuple(steps), shown, tuple(locations))


def parse_select(mapping: Any, location: Location, context: str) -> tuple[SelectItem, ...]:
    """Read a `{new_col: SOURCE}` mapping; `context` prefixes messages (e.g. `step 2 (join)`)."""
    found = Findings()
    items = parse_items(mapping, context, found)
    ValidationError.raise_if_any([Problem(location, message) for message in found.errors])
    return items


def _known_after(
    step: Step, known: dict[str, pl.DataType | None] | None, context: str, messages: list[str]
) -> dict[str, pl.DataType | None] | None:
    """The columns after `step` where the transform alone fixes them (None: they depend on the
    input), reporting a step that names a column not there.

    Types are unknown here (None), so a path is checked only as far as its column; a join's
    output names come from Polars itself, joining empty frames of those names.
    """
    if isinstance(step, SelectStep):
        if known is not None:
            messages += [f"{context}: {problem}" for problem in check_items(step.items, known)]
        return dict.fromkeys(item.name for item in step.items)
    if known is None:
        return None
    if isinstance(step, DropStep):
        messages += [f"{context}: {problem}" for problem in step.check(known, {})]
        return {name: dtype for name, dtype in known.items() if name not in step.columns}
    if not isinstance(step, JoinStep) or step.right_select is None:
        return None
    right = dict.fromkeys(item.name for item in step.right_select)
    problems = step.check_keys(known, right)
    if problems:
        messages += [f"{context}: {problem}" for problem in problems]
        return None
    left_frame = pl.LazyFrame(schema=dict.fromkeys(known, pl.String))
    right_frame = pl.LazyFrame(schema=dict.fromkeys(right, pl.String))
    bare = replace(step, right_select=None)  # the right frame is the right_select already
    try:
        names = bare.apply(left_frame, {step.right: right_frame}).collect_schema().names()
    except pl.exceptions.PolarsError as exc:
        messages.append(f"{context}: {_explain(exc, step, known, {step.right: right_frame})}")
        return None
    return dict.fromkeys(names)
