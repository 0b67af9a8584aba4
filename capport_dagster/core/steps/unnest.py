"""`unnest_list`, `unnest_struct`, `unnest_list_of_struct`: flatten nested columns.

One step may carry any of the three keys (capport's one unnest step); they run in capport's
fixed order whatever the YAML's: `unnest_list` explodes (a row per list element), then
`unnest_struct` replaces a struct column by its fields, where it stood, then
`unnest_list_of_struct` does both. Each takes a column name, a list of them or a comma-separated
string, as other column lists (capport: one column).

Polars' semantics, as capport: an empty or a null list gives one row whose value is null; a
null struct gives null fields. A value is a column, not a path into a struct (`a.b`): its
escapes resolve as in a path (`stats\\.goals` is the column `stats.goals`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.paths import escape_name, path_error, split_path
from capport_dagster.core.selects import Findings
from capport_dagster.core.steps.base import (
    Schema,
    StepKind,
    StepLineage,
    identity,
    missing_columns,
)
from capport_dagster.core.yaml_source import describe

__all__ = ["KINDS", "UnnestStep"]

KEYS = ("unnest_list", "unnest_struct", "unnest_list_of_struct")
_LISTS = (pl.List, pl.Array)
_EMPTY = {"str ''": "an empty string", "a list": "an empty list"}
_WANTS = {
    "unnest_list": "a list",
    "unnest_struct": "a struct",
    "unnest_list_of_struct": "a list of structs",
}


@dataclass(frozen=True)
class UnnestStep:
    """The three unnests of one step, each a tuple of column names (empty: not asked)."""

    kind: ClassVar[str] = "unnest"
    unnest_list: tuple[str, ...] = ()
    unnest_struct: tuple[str, ...] = ()
    unnest_list_of_struct: tuple[str, ...] = ()

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        """Each phase checked against the columns the previous ones leave (an exploded list
        column holds its elements; an unnested struct column is gone, its fields there)."""
        columns = dict(schema)
        problems: list[str] = []
        for key in KEYS:
            names = getattr(self, key)
            missing = missing_columns(names, columns)
            problems += [f"{key}: {problem}" for problem in missing]
            for name in dict.fromkeys(n for n in names if n in columns):
                dtype = columns[name]
                if dtype is None:
                    continue
                inner = dtype.inner if isinstance(dtype, _LISTS) else None
                if key == "unnest_list" and inner is not None:
                    columns[name] = inner
                    continue
                struct = inner if key == "unnest_list_of_struct" else dtype
                if key == "unnest_list" or not isinstance(struct, pl.Struct):
                    problems.append(f"{key}: column '{name}' is {dtype}, not {_WANTS[key]}")
                    continue
                problems += _clashes(key, name, struct, columns)
                columns = _unnested(columns, name, {f.name: f.dtype for f in struct.fields})
        return problems

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        if self.unnest_list:
            frame = frame.explode(self.unnest_list, empty_as_null=True, keep_nulls=True)
        if self.unnest_struct:
            frame = frame.unnest(self.unnest_struct)
        if self.unnest_list_of_struct:
            frame = frame.explode(self.unnest_list_of_struct, empty_as_null=True, keep_nulls=True)
            frame = frame.unnest(self.unnest_list_of_struct)
        return frame

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage | None:
        """An exploded list column comes from itself; each field of an unnested struct comes
        from the struct's column, where it stood. The fields are read from the struct's dtype:
        None when it is not known here (the caller asks again with the exact schema)."""
        found = identity(schema)
        dtypes = dict(schema)
        for key in KEYS:
            for name in dict.fromkeys(getattr(self, key)):
                dtype = dtypes.get(name)
                inner = dtype.inner if isinstance(dtype, _LISTS) else None
                if key == "unnest_list":
                    dtypes[name] = inner
                    continue
                struct = inner if key == "unnest_list_of_struct" else dtype
                if name not in found or not isinstance(struct, pl.Struct):
                    return None
                names = [field.name for field in struct.fields]
                found = _unnested(found, name, dict.fromkeys(names, found[name]))
                dtypes = _unnested(dtypes, name, {f.name: f.dtype for f in struct.fields})
        return found


def _clashes(key: str, name: str, struct: pl.Struct, columns: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: field '{field.name}' of column '{name}' would replace the column"
        f" '{field.name}' the frame has: rename or drop one of them first"
        for field in struct.fields
        if field.name != name and field.name in columns
    ]


def _unnested(columns: dict[str, Any], name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """`columns` with `name` replaced, where it stood, by `fields` (a field name -> its value:
    its dtype, or its lineage)."""
    out: dict[str, Any] = {}
    for column, dtype in columns.items():
        if column == name:
            out.update(fields)
        else:
            out[column] = dtype
    return out


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> UnnestStep | None:
    errors = len(found.errors)
    parsed: dict[str, tuple[str, ...]] = {}
    for key in KEYS:
        if key in step:
            parsed[key] = _columns(step[key], f"{context}: {key}", found.errors)
    if len(found.errors) > errors:
        return None
    return UnnestStep(**parsed)


def _columns(value: Any, where: str, messages: list[str]) -> tuple[str, ...]:
    if isinstance(value, str) and "," in value:
        value = [part.strip() for part in value.split(",")]
    values = value if isinstance(value, list) and value else [value]
    names: list[str] = []
    for raw in values:
        if not isinstance(raw, str) or not raw:
            got = _EMPTY.get(describe(raw), describe(raw)) if not raw else describe(raw)
            messages.append(f"{where}: expected a column name or a list of them, got {got}")
            continue
        problem = path_error(raw)
        if problem is not None:
            messages.append(f"{where}: {problem}")
            continue
        segments = split_path(raw)
        if len(segments) > 1:
            messages.append(
                f"{where}: '{raw}' is a path into struct '{escape_name(segments[0])}'; unnest"
                " takes a column (unnest the struct first, then its field, or escape a dot"
                " that is part of the name: \\.)"
            )
            continue
        names.append(segments[0])
    if len(set(names)) < len(names):
        messages.append(f"{where}: a column is listed twice")
    return tuple(names)


KINDS = (StepKind("unnest", KEYS, _parse),)
