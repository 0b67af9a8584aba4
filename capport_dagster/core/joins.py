"""The `join` step: parsing, the lazy plan, and Polars' join errors said in the YAML's terms.

Join keys are column names, not paths (a dot in a key is part of the name). Decisions on keys,
suffixes and row order are in `core/transforms.py`'s docstring and the reference (section 5).

`left_prefix` / `right_prefix` are capport's: before the join, each side gains a prefixed COPY
of every column (after `right_select` on the right), its own columns kept, so `left_on` and
`right_on` may name either. The schemas this module's checks take are the sides before the
prefixes; the checks add them (`prefixed`), so a caller never has to know about them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.expressions import columns_read
from capport_dagster.core.paths import escape_name
from capport_dagster.core.selects import (
    Findings,
    SelectItem,
    check_items,
    column_list,
    count,
    parse_items,
    select_exprs,
    unknown_keys,
)
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import did_you_mean

__all__ = ["JOIN_HOWS", "JoinStep", "parse_join", "prefixed"]

JOIN_HOWS: tuple[str, ...] = ("left", "right", "full", "cross", "inner")

_JOIN_KEYS = (
    "join", "right", "right_select", "left_on", "right_on", "how", "left_prefix", "right_prefix"
)  # fmt: skip
#: The suffix Polars gives a right column whose name the left frame already has.
SUFFIX = "_right"
# Polars' "left"/"right" keep only one side's order: the order of several matches of one row
# then depends on the engine and the input's chunks (seen from ~12k rows, and for frames
# scanned back from Parquet), so every how names both sides.
_ORDER = {"left": "left_right", "inner": "left_right", "right": "right_left"}
_TAKEN = re.compile(r"column with name '(.+?)' already exists")

Schema = Mapping[str, pl.DataType | None]
#: A column's sources and a step's column lineage, as `core/steps/base.py` has them (not
#: imported from there: the steps package imports this module).
_Sources = tuple[tuple[str | None, str], ...]
_Lineage = dict[str, _Sources | None]


@dataclass(frozen=True)
class JoinStep:
    """`join`: `right` names another frame of the pipeline, hence a dependency of the stage."""

    kind: ClassVar[str] = "join"
    right: str
    how: str
    left_on: tuple[str, ...] = ()
    right_on: tuple[str, ...] = ()
    right_select: tuple[SelectItem, ...] | None = None
    left_prefix: str = ""
    right_prefix: str = ""

    def reads(self) -> tuple[str, ...]:
        return (self.right,)

    def right_frame(self, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        """The right frame after `right_select` (before `right_prefix`, which `apply` adds)."""
        right = frames[self.right].lazy()
        if self.right_select is not None:
            right = right.select(select_exprs(self.right_select))
        return right

    def check(self, left: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        """The mistakes found from the schemas alone, before Polars builds the join."""
        if self.right_select is not None:
            schema = frames[self.right].lazy().collect_schema()
            problems = check_items(self.right_select, schema)
            if problems:
                return [f"right_select of frame '{self.right}': {p}" for p in problems]
        return self.check_keys(left, self.right_frame(frames).collect_schema())

    def check_keys(self, left: Schema, right: Schema) -> list[str]:
        """Every key not found on its side, with the columns that side has; first, every
        prefixed copy that would overwrite a column of its side (`left`, `right`: the sides
        before the prefixes)."""
        problems = [
            f"{label} {prefix!r} makes '{prefix}{name}', a column {side} already has: choose"
            f" another prefix, or rename the column first"
            for label, prefix, schema, side in (
                ("left_prefix", self.left_prefix, left, "the left frame"),
                ("right_prefix", self.right_prefix, right, self._right_name()),
            )
            if prefix
            for name in schema
            if f"{prefix}{name}" in schema
        ]
        if problems:
            return problems
        sides = (
            ("left_on", self.left_on, prefixed(left, self.left_prefix), "the left frame"),
            ("right_on", self.right_on, prefixed(right, self.right_prefix), self._right_name()),
        )
        for label, keys, schema, side in sides:
            for key in dict.fromkeys(keys):
                if key not in schema:
                    columns = ", ".join(schema) or "none"
                    problems.append(
                        f"{label} column '{key}' not found in {side}{did_you_mean(key, schema)}"
                        f" (columns: {columns})"
                    )
        return problems

    def explain(self, exc: Exception, left: Schema, right: Schema) -> str | None:
        """Polars' error from building this join, in the YAML's terms (None: not recognised)."""
        message = str(exc)
        taken = _TAKEN.search(message)
        if isinstance(exc, pl.exceptions.DuplicateError) and taken:
            name = taken.group(1)
            clash = name.removesuffix(SUFFIX)
            keys = "".join(f"{escape_name(k)}: null, " for k in dict.fromkeys(self.right_on))
            return (
                f"{self._right_name()} has a column '{clash}' that the left frame has too, and"
                f" '{name}' is taken (by an earlier join): keep and rename the right columns"
                f" with right_select, e.g. right_select: {{{keys}{clash}_2: {escape_name(clash)}}}"
            )
        if isinstance(exc, pl.exceptions.SchemaError):
            left, right = prefixed(left, self.left_prefix), prefixed(right, self.right_prefix)
            differ = [
                f"left_on '{lk}' is {left[lk]} but right_on '{rk}' is {right[rk]}"
                for lk, rk in zip(self.left_on, self.right_on, strict=True)
                if lk in left and rk in right and left[lk] != right[rk]
            ]
            if differ:
                return (
                    f"join keys of different types ({'; '.join(differ)}): give both sides the"
                    " same dtype, with a model where the frames are loaded"
                )
        return None

    def _right_name(self) -> str:
        after = " (after right_select)" if self.right_select is not None else ""
        return f"frame '{self.right}'{after}"

    def lineage(self, left: Schema, frames: Mapping[str, Schema]) -> _Lineage | None:
        """The join's columns as Polars names them (see `apply`), each with its sources: a left
        column from itself, a right one from the right frame's columns (through `right_select`),
        a prefixed copy from what it copies. A coalesced key (left, inner, right joins) comes
        from both keys; a full join keeps each side's key apart, and a cross join has none."""
        right_schema = frames.get(self.right)
        if right_schema is None:
            return None
        right: _Lineage
        if self.right_select is None:
            right = {name: ((self.right, name),) for name in right_schema}
        else:
            right = {}
            for item in self.right_select:
                names = columns_read(item.expr, right_schema)
                right[item.name] = None if names is None else tuple((self.right, n) for n in names)
        ours: _Lineage = _with_copies({name: ((None, name),) for name in left}, self.left_prefix)
        theirs = _with_copies(right, self.right_prefix)
        pairs = list(zip(self.left_on, self.right_on, strict=True))
        if any(lk not in ours or rk not in theirs for lk, rk in pairs):
            return None  # the check reports it; nothing to say here
        if self.how in ("left", "inner"):
            for lk, rk in pairs:
                ours[lk] = _both(ours[lk], theirs[rk])
            keys = set(self.right_on)
            theirs = {name: found for name, found in theirs.items() if name not in keys}
        elif self.how == "right":
            for lk, rk in pairs:
                theirs[rk] = _both(ours[lk], theirs[rk])
            keys = set(self.left_on)
            ours = {name: found for name, found in ours.items() if name not in keys}
        joined = dict(ours)
        for name, found in theirs.items():
            joined[f"{name}{SUFFIX}" if name in ours else name] = found
        return joined

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        right = self.right_frame(frames)
        if self.left_prefix:
            frame = frame.with_columns(pl.all().name.prefix(self.left_prefix))
        if self.right_prefix:
            right = right.with_columns(pl.all().name.prefix(self.right_prefix))
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


def prefixed(schema: Schema, prefix: str) -> dict[str, pl.DataType | None]:
    """A side's columns after its prefix: its own, then a prefixed copy of each (capport)."""
    columns = dict(schema)
    if prefix:
        columns.update({f"{prefix}{name}": dtype for name, dtype in schema.items()})
    return columns


def _with_copies(lineage: _Lineage, prefix: str) -> _Lineage:
    """A side's lineage after its prefix (`prefixed`): each prefixed copy from what it copies."""
    if not prefix:
        return lineage
    return lineage | {f"{prefix}{name}": found for name, found in lineage.items()}


def _both(left: _Sources | None, right: _Sources | None) -> _Sources | None:
    """A coalesced key's sources: the left key's, then the right key's (None: unknown)."""
    return None if left is None or right is None else (*left, *right)


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


def parse_join(args: Any, context: str, found: Findings) -> JoinStep | None:
    """Read a `join:` step's mapping; every problem goes to `found`."""
    messages = found.errors
    if not isinstance(args, Mapping):
        messages.append(f"{context}: expected a mapping with join, left_on, right_on and how")
        return None
    errors = len(messages)
    unknown_keys(args, _JOIN_KEYS, context, messages, "a join")
    right = args.get("join", args.get("right"))
    if "join" in args and "right" in args:
        messages.append(f"{context}: name the right frame with 'join' or 'right', not both")
    elif not isinstance(right, str) or not right:
        messages.append(f"{context}: the right frame is required: join: FRAME_NAME")
    how = args.get("how")
    if how is None:
        messages.append(f"{context}: how is required (one of {', '.join(JOIN_HOWS)})")
    elif how not in JOIN_HOWS:
        hint = did_you_mean(how, JOIN_HOWS)
        messages.append(f"{context}: unknown how {how!r}{hint} (valid: {', '.join(JOIN_HOWS)})")
    left_on = column_list(args.get("left_on"), "left_on", context, messages)
    right_on = column_list(args.get("right_on"), "right_on", context, messages)
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
            f"{context}: left_on has {count(len(left_on), 'column')}"
            f" but right_on has {len(right_on)}"
        )
    prefixes = []
    for label in ("left_prefix", "right_prefix"):
        prefix = args.get(label)
        if prefix is not None and (not isinstance(prefix, str) or not prefix):
            got = "an empty string" if prefix == "" else describe(prefix)
            side = label.split("_")[0]
            messages.append(
                f"{context}: {label} must be a non-empty text: a copy of each {side} column is"
                f" added under it (e.g. {label}: {side}_), got {got}"
            )
        prefixes.append(prefix if isinstance(prefix, str) else "")
    right_select = None
    if args.get("right_select") is not None:
        right_select = parse_items(args["right_select"], f"{context} right_select", found)
    if len(messages) > errors:
        return None
    left_prefix, right_prefix = prefixes
    return JoinStep(
        str(right), str(how), left_on or (), right_on or (), right_select, left_prefix, right_prefix
    )
