"""Transforms: a named list of steps (`select`, `join`, `drop`) that builds a Polars LazyFrame.

Parsing and applying are apart so `capport validate` reports every bad step of every transform
without data, and a run only builds a lazy plan that Polars can optimise as a whole (a `select`
of 2 of 20 CSV columns reads only those 2). Decisions a user of the YAML sees:

- **Column paths**: a dot always goes into a struct field: `team.name` is
  `pl.col("team").struct.field("name")`. A column whose own name contains a dot cannot be
  selected by path; rename it where it is loaded.
- **Sources**: a path, null (the key's own name), or a mapping; a mapping whose `action` is
  missing or null is a plain column, its `args` the path (null: the key's own name), as in
  capport.
- **format / concat** cast each column to a string; any null input gives a null result. The
  concat `separator` defaults to one space.
- **Join keys** are column names (not paths). As in capport (Polars' defaults), `left`,
  `inner` and `right` joins coalesce their keys into one column (left and inner keep the left
  key names, right keeps the right ones), while a `full` join keeps both sides' keys: different
  names stay as they are, a shared name gives `key` and `key_right`, and a key missing on one
  side is null there. Other right columns whose names clash with left ones get the suffix
  `_right`. Nulls never match nulls (SQL).
- **Row order** is part of the result, the same in every mode and executor, in memory, scanned
  back from Parquet and streamed to a sink: left, inner and full joins follow the left rows, each
  with its matches in right order (full: then the unmatched right rows, in right order); right
  joins follow the right rows, each with its matches in left order.
- **drop** takes exact column names; `true`, `null` or the string `"true"` (any case) drop,
  `false`/`"false"` keep.
- Steps are numbered from 1 in messages.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import polars as pl

from capport_dagster.core.yaml_source import describe, location_at
from capport_dagster.errors import (
    ConfigError,
    Location,
    Problem,
    TaskError,
    ValidationError,
    did_you_mean,
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

STEPS: tuple[str, ...] = ("select", "join", "drop")
PLANNED_STEPS: tuple[str, ...] = ("filter", "order", "limit", "head", "tail", "sql")
JOIN_HOWS: tuple[str, ...] = ("left", "right", "full", "cross", "inner")
ACTIONS: tuple[str, ...] = ("concat", "format")

_SOURCE_KEYS = ("action", "args")
_ACTION_KEYS = {"format": ("template", "cols"), "concat": ("cols", "separator")}
_JOIN_KEYS = ("join", "right", "right_select", "left_on", "right_on", "how")
# Polars' "left"/"right" keep only one side's order: the order of several matches of one row
# then depends on the engine and the input's chunks (seen from ~12k rows, and for frames
# scanned back from Parquet), so every how names both sides.
_ORDER = {"left": "left_right", "inner": "left_right", "right": "right_left"}


@dataclass(frozen=True)
class SelectItem:
    """One output column of a select: a column path, or a `format`/`concat` of column paths."""

    name: str
    action: Literal["column", "format", "concat"]
    cols: tuple[str, ...]
    template: str = "{}"
    separator: str = " "


@dataclass(frozen=True)
class SelectStep:
    """`select`: the output has exactly these columns, so later steps see a known shape."""

    kind: ClassVar[str] = "select"
    items: tuple[SelectItem, ...]

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.select(select_exprs(self.items))


@dataclass(frozen=True)
class JoinStep:
    """`join`: `right` names another frame of the pipeline, hence a dependency of the stage."""

    kind: ClassVar[str] = "join"
    right: str
    how: str
    left_on: tuple[str, ...] = ()
    right_on: tuple[str, ...] = ()
    right_select: tuple[SelectItem, ...] | None = None

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        right = frames[self.right].lazy()
        if self.right_select is not None:
            right = right.select(select_exprs(self.right_select))
        if self.how == "cross":
            # Row order as the eager engine gives it, in every mode (streaming sinks included).
            return frame.join(right, how="cross", maintain_order="left_right")
        if self.how == "full":
            return _full_join(frame, right, list(self.left_on), list(self.right_on))
        return frame.join(
            right,
            left_on=list(self.left_on),
            right_on=list(self.right_on),
            how=self.how,  # type: ignore[arg-type]
            coalesce=True,  # capport's (Polars') default for left, inner and right
            maintain_order=_ORDER[self.how],  # type: ignore[arg-type]
        )


def _full_join(
    left: pl.LazyFrame, right: pl.LazyFrame, left_on: list[str], right_on: list[str]
) -> pl.LazyFrame:
    """A full join, keys not coalesced (capport), as a left join then the unmatched right rows.

    Polars' own full join with `maintain_order="left_right"` gives the unmatched right rows in
    hash-table order on the streaming engine (pola-rs/polars#29362, Polars 1.44; fixed later),
    so a lazy run sinking to CSV and an eager run disagreed. A left join and an anti join keep
    their order on every engine; the columns are those of the full join (same names, suffixes).
    """
    matched = left.join(
        right,
        left_on=left_on,
        right_on=right_on,
        how="left",
        coalesce=False,
        maintain_order="left_right",
    )
    right_names = right.collect_schema().names()
    output_names = matched.collect_schema().names()[-len(right_names) :]
    keys = [f"_capport_key_{i}" for i in range(len(left_on))]  # a key may be named twice
    left_keys = left.select(
        pl.col(name).alias(key) for name, key in zip(left_on, keys, strict=True)
    )
    unmatched = right.join(
        left_keys, left_on=right_on, right_on=keys, how="anti", maintain_order="left"
    )
    renamed = unmatched.rename(dict(zip(right_names, output_names, strict=True)))
    return pl.concat([matched, renamed], how="diagonal")


@dataclass(frozen=True)
class DropStep:
    """`drop`: only the columns flagged to drop; those flagged to keep need no work."""

    kind: ClassVar[str] = "drop"
    columns: tuple[str, ...]

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.drop(list(self.columns)) if self.columns else frame


Step = SelectStep | JoinStep | DropStep


@dataclass(frozen=True)
class Transform:
    """A parsed transform: reusable by any stage, shared between threads (it is immutable)."""

    name: str
    steps: tuple[Step, ...]

    def reads(self) -> tuple[str, ...]:
        """The frames the joins name, in step order: the stage's extra dependencies."""
        names = [step.right for step in self.steps if isinstance(step, JoinStep)]
        return tuple(dict.fromkeys(names))

    def apply(
        self,
        frame: pl.LazyFrame,
        frames: Mapping[str, pl.LazyFrame],
        *,
        location: Location | None = None,
    ) -> pl.LazyFrame:
        """Build the plan; never collects.

        The schema is resolved after each step (no data is read), so a missing column is
        reported with the step that names it rather than as a bare Polars error at collect time.
        """
        plan = frame.lazy()
        columns = plan.collect_schema().names()
        for number, step in enumerate(self.steps, 1):
            where = f"transform '{self.name}', step {number} ({step.kind})"
            if isinstance(step, JoinStep) and step.right not in frames:
                given = ", ".join(sorted(frames)) or "none"
                raise TaskError(
                    f"{where}: frame '{step.right}' was not given (frames: {given})", location
                )
            try:
                plan = step.apply(plan, frames)
                columns = plan.collect_schema().names()
            except pl.exceptions.PolarsError as exc:
                detail = _polars_detail(exc, step, columns)
                raise TaskError(f"{where}: {detail}", location) from exc
        return plan


# -- parsing -------------------------------------------------------------------------------------


def parse_transform(name: str, body: Any, location: Location) -> Transform:
    """Read one transform definition (after `$$kwargs` substitution); reports every bad step."""
    if not isinstance(body, list):
        raise ConfigError(
            "a transform is a list of steps (- select: ..., - join: ..., - drop: ...),"
            f" got {describe(body)}",
            location,
        )
    if not body:
        raise ConfigError("a transform needs at least one step", location)
    problems: list[Problem] = []
    steps: list[Step] = []
    for number, raw in enumerate(body, 1):
        messages: list[str] = []
        step = _parse_step(number, raw, messages)
        if step is not None and not messages:
            steps.append(step)
        where = location_at(location, body, number - 1)
        problems += [Problem(where, message) for message in messages]
    ValidationError.raise_if_any(problems)
    return Transform(name, tuple(steps))


def _parse_step(number: int, raw: Any, messages: list[str]) -> Step | None:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        got = describe(raw)
        if isinstance(raw, Mapping) and raw:
            got = f"{_count(len(raw), 'key')}: {', '.join(map(str, raw))}"
        messages.append(
            f"step {number}: a step is a mapping with exactly one key"
            f" ({', '.join(STEPS)}), got {got}"
        )
        return None
    ((kind, args),) = raw.items()
    context = f"step {number} ({kind})"
    if kind == "select":
        return SelectStep(_parse_select(args, context, messages))
    if kind == "join":
        return _parse_join(args, context, messages)
    if kind == "drop":
        return DropStep(_parse_drop(args, context, messages))
    if kind in PLANNED_STEPS:
        messages.append(f"step {number}: step '{kind}' is not supported yet (planned)")
    else:
        hint = did_you_mean(kind, STEPS + PLANNED_STEPS)
        messages.append(
            f"step {number}: unknown step {kind!r}{hint} (valid steps: {', '.join(STEPS)})"
        )
    return None


def parse_select(mapping: Any, location: Location, context: str) -> tuple[SelectItem, ...]:
    """Read a `{new_col: SOURCE}` mapping; `context` prefixes messages (e.g. `step 2 (join)`)."""
    messages: list[str] = []
    items = _parse_select(mapping, context, messages)
    ValidationError.raise_if_any([Problem(location, message) for message in messages])
    return items


def _parse_select(mapping: Any, context: str, messages: list[str]) -> tuple[SelectItem, ...]:
    if not isinstance(mapping, Mapping) or not mapping:
        got = "an empty mapping" if isinstance(mapping, Mapping) else describe(mapping)
        messages.append(f"{context}: expected a mapping of new column -> source, got {got}")
        return ()
    items: list[SelectItem] = []
    for key, source in mapping.items():
        if not isinstance(key, str) or not key:
            messages.append(f"{context}: column name {key!r} must be a non-empty string")
            continue
        item = _parse_source(key, source, f"{context}: column '{key}'", messages)
        if item is not None:
            items.append(item)
    return tuple(items)


def _parse_source(key: str, source: Any, where: str, messages: list[str]) -> SelectItem | None:
    if source is None or isinstance(source, str):
        return _column_item(key, source, where, messages)
    if not isinstance(source, Mapping):
        messages.append(
            f"{where}: a source is a column path, null or a mapping with action and args,"
            f" got {describe(source)}"
        )
        return None
    if _unknown_keys(source, _SOURCE_KEYS, where, messages, "a source mapping"):
        return None
    if source.get("action") is None:
        args = source.get("args")
        if args is not None and not isinstance(args, str):
            messages.append(f"{where}: args without an action is a column path, got {args!r}")
            return None
        return _column_item(key, args, where, messages)
    action, args = source["action"], source.get("args")
    if action not in ACTIONS:
        hint = did_you_mean(action, ACTIONS)
        messages.append(
            f"{where}: unknown action {action!r}{hint} (valid actions: {', '.join(ACTIONS)})"
        )
        return None
    where = f"{where} ({action})"
    if not isinstance(args, Mapping):
        messages.append(f"{where}: args must be a mapping, got {describe(args)}")
        return None
    errors = len(messages)
    _unknown_keys(args, _ACTION_KEYS[action], where, messages, f"{action} args")
    cols = _columns(args.get("cols"), "cols", where, messages, required=True, paths=True) or ()
    if action == "format":
        template = args.get("template")
        if not isinstance(template, str):
            messages.append(f"{where}: template must be a string, got {describe(template)}")
        elif cols and template.count("{}") != len(cols):
            messages.append(
                f"{where}: template {template!r} has {_count(template.count('{}'), 'placeholder')}"
                f" '{{}}' but cols has {_count(len(cols), 'column')}; they must match"
            )
        item = SelectItem(key, "format", cols, template=str(template))
    else:
        separator = args.get("separator", " ")
        if not isinstance(separator, str):
            messages.append(f"{where}: separator must be a string, got {describe(separator)}")
        item = SelectItem(key, "concat", cols, separator=str(separator))
    return item if len(messages) == errors else None


def _column_item(key: str, path: str | None, where: str, messages: list[str]) -> SelectItem | None:
    path = key if path is None else path
    if not valid_path(path):
        messages.append(f"{where}: column path {path!r} has an empty part")
        return None
    return SelectItem(key, "column", (path,))


def _parse_join(args: Any, context: str, messages: list[str]) -> JoinStep | None:
    if not isinstance(args, Mapping):
        messages.append(f"{context}: expected a mapping with join, left_on, right_on and how")
        return None
    errors = len(messages)
    _unknown_keys(args, _JOIN_KEYS, context, messages, "a join")
    right = args.get("join", args.get("right"))
    if "join" in args and "right" in args:
        messages.append(f"{context}: name the right frame with 'join' or 'right', not both")
    elif not isinstance(right, str) or not right:
        messages.append(f"{context}: the right frame is required: join: FRAME_NAME")
    how = args.get("how")
    if how is None:
        messages.append(f"{context}: how is required (one of {', '.join(JOIN_HOWS)})")
    elif how not in JOIN_HOWS:
        hint = did_you_mean(str(how).lower(), JOIN_HOWS)
        messages.append(f"{context}: unknown how {how!r}{hint} (valid: {', '.join(JOIN_HOWS)})")
    left_on = _columns(args.get("left_on"), "left_on", context, messages)
    right_on = _columns(args.get("right_on"), "right_on", context, messages)
    if left_on is None or right_on is None:
        pass  # already reported
    elif how == "cross":
        if left_on or right_on:
            messages.append(f"{context}: a cross join takes no keys; remove left_on and right_on")
    elif not left_on or not right_on:
        if how in JOIN_HOWS:
            missing = [k for k, v in (("left_on", left_on), ("right_on", right_on)) if not v]
            messages.append(
                f"{context}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'}"
                f" required for how: {how} (only a cross join takes no keys)"
            )
    elif len(left_on) != len(right_on):
        messages.append(
            f"{context}: left_on has {_count(len(left_on), 'column')}"
            f" but right_on has {len(right_on)}"
        )
    right_select = None
    if args.get("right_select") is not None:
        right_select = _parse_select(args["right_select"], f"{context} right_select", messages)
    if len(messages) > errors:
        return None
    return JoinStep(str(right), str(how), left_on or (), right_on or (), right_select)


def _parse_drop(args: Any, context: str, messages: list[str]) -> tuple[str, ...]:
    if not isinstance(args, Mapping) or not args:
        got = "an empty mapping" if isinstance(args, Mapping) else describe(args)
        messages.append(f"{context}: expected a mapping of column -> true/false, got {got}")
        return ()
    dropped: list[str] = []
    for key, value in args.items():
        flag = value.lower() if isinstance(value, str) else value
        if flag is None or flag is True or flag == "true":
            dropped.append(str(key))
        elif not (flag is False or flag == "false"):
            messages.append(
                f"{context}: column '{key}': {value!r} is not a drop flag"
                " (true or null drops the column, false keeps it)"
            )
    return tuple(dropped)


def _columns(
    value: Any,
    label: str,
    where: str,
    messages: list[str],
    *,
    required: bool = False,
    paths: bool = False,
) -> tuple[str, ...] | None:
    """A column list given as a name, a comma-separated string or a YAML list; None if bad."""
    if value is None or value == "" or value == []:
        if required:
            messages.append(f"{where}: {label} is required (a list of columns)")
            return None
        return ()
    if isinstance(value, str):
        names = [part.strip() for part in value.split(",")]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        names = list(value)
    else:
        messages.append(
            f"{where}: {label} must be a column name, a comma-separated string or a list of"
            f" names, got {describe(value)}"
        )
        return None
    if not all(valid_path(n) if paths else n for n in names):
        messages.append(f"{where}: {label} {value!r} has an empty column name")
        return None
    return tuple(names)


# -- building expressions ------------------------------------------------------------------------


def select_exprs(items: tuple[SelectItem, ...]) -> list[pl.Expr]:
    """The Polars expressions of a parsed select, one per output column, in order."""
    exprs: list[pl.Expr] = []
    for item in items:
        cols = [path_expr(path) for path in item.cols]
        if item.action == "format":
            expr = pl.format(item.template, *cols)
        elif item.action == "concat":
            expr = pl.concat_str(cols, separator=item.separator, ignore_nulls=False)
        else:
            expr = cols[0]
        exprs.append(expr.alias(item.name))
    return exprs


def path_expr(path: str) -> pl.Expr:
    """`a.b.c`: column `a`, then struct field `b`, then `c` (a dot always means a field)."""
    head, *fields = path.split(".")
    expr = pl.col(head)
    for field in fields:
        expr = expr.struct.field(field)
    return expr


# -- helpers -------------------------------------------------------------------------------------


def valid_path(path: str) -> bool:
    """A column path has no empty part (`a..b`, `.a` and `a.` are not paths)."""
    return bool(path) and all(path.split("."))


def _unknown_keys(
    mapping: Mapping, allowed: tuple[str, ...], where: str, messages: list[str], what: str
) -> bool:
    unknown = [key for key in mapping if key not in allowed]
    for key in unknown:
        messages.append(
            f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}"
            f" ({what} takes {', '.join(allowed)})"
        )
    return bool(unknown)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'s' if n != 1 else ''}"


def _polars_detail(exc: Exception, step: Step, columns: list[str]) -> str:
    """The first line of a Polars error, reworded for the errors a config typo causes."""
    first = str(exc).split("\n\n")[0].strip()
    if isinstance(exc, pl.exceptions.StructFieldNotFoundError):
        return f"struct field {first!r} not found"
    if isinstance(exc, pl.exceptions.ColumnNotFoundError):
        quoted = re.search(r'"(.+?)"', first)  # the wording differs between Polars versions
        name = quoted.group(1) if quoted else first
        if isinstance(step, JoinStep):
            return f"column '{name}' not found in the left or the right frame"
        hint = did_you_mean(name, columns)
        return f"column '{name}' not found{hint} (columns: {', '.join(columns)})"
    return first
