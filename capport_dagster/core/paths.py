"""Column paths: `a.b.c` is column `a`, then struct field `b`, then field `c`.

A dot goes into a struct field; a column (or field) whose own name holds a dot, such as the CSV
header `stats.goals`, is written with the dot escaped::

    path     := segment ( "." segment )*
    segment  := ( char | "\\." | "\\\\" )+       char: anything but "." and "\\"

so `stats\\.goals` is the column `stats.goals` and `team.full\\.name` the field `full.name` of
the struct column `team`. A backslash escapes only a dot or a backslash; any other backslash is
an error, so a typo never silently becomes part of a name. The escape reads as written in plain
and single-quoted YAML (`a: stats\\.goals`); double-quoted YAML needs the backslash doubled.

Paths are checked against a frame's schema before Polars sees them, so a mistake is reported
with its path (`'team' is String, not a struct`) instead of Polars' bare field name.
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from capport_dagster.errors import did_you_mean

__all__ = ["check_path", "escape_name", "path_error", "path_expr", "split_path", "valid_path"]

_RULE = "a backslash escapes a dot (\\.) or a backslash (\\\\) in a column name"


def path_error(path: str) -> str | None:
    """Why `path` is not a column path, or None when it is one."""
    if not path:
        return f"column path '{path}' is empty"
    escaped = False
    for position, char in enumerate(path):
        if escaped:
            if char not in ".\\":
                return f"column path '{path}': '\\{char}' at character {position}: {_RULE}"
            escaped = False
        elif char == "\\":
            escaped = True
    if escaped:
        return f"column path '{path}' ends with a lone backslash: {_RULE}"
    if not all(split_path(path)):
        return f"column path '{path}' has an empty part"
    return None


def valid_path(path: str) -> bool:
    """A column path has no empty part (`a..b`, `.a` and `a.` are not paths), no lone `\\`."""
    return path_error(path) is None


def split_path(path: str) -> tuple[str, ...]:
    """The names along a (valid) path, escapes resolved: `a.b\\.c` -> ('a', 'b.c')."""
    segments: list[str] = []
    current: list[str] = []
    chars = iter(path)
    for char in chars:
        if char == "\\":
            current.append(next(chars, ""))
        elif char == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
    segments.append("".join(current))
    return tuple(segments)


def escape_name(name: str) -> str:
    """A column name as one path segment: `stats.goals` -> `stats\\.goals`."""
    return name.replace("\\", "\\\\").replace(".", "\\.")


def path_expr(path: str) -> pl.Expr:
    """`a.b.c`: column `a`, then struct field `b`, then `c` (escapes resolved)."""
    head, *fields = split_path(path)
    expr = pl.col(head)
    for field in fields:
        expr = expr.struct.field(field)
    return expr


def check_path(path: str, schema: Mapping[str, pl.DataType | None]) -> str | None:
    """What is wrong with `path` in a frame of this schema, or None when it resolves.

    A None dtype means unknown (validation knows a column's name, not always its type): the
    path is then checked only as far as its column.
    """
    segments = split_path(path)
    head = segments[0]
    if head not in schema:
        return _missing_column(segments, schema)
    dtype = schema[head]
    for depth, field in enumerate(segments[1:], 1):
        if dtype is None:
            return None
        prefix = ".".join(escape_name(s) for s in segments[:depth])
        if not isinstance(dtype, pl.Struct):
            hint = _dotted_hint(segments, schema)
            return (
                f"column path '{path}': '{prefix}' is {dtype}, not a struct, so it has no"
                f" field '{field}'{hint}"
            )
        fields = {f.name: f.dtype for f in dtype.fields}
        if field not in fields:
            listed = ", ".join(escape_name(name) for name in fields) or "none"
            return (
                f"column path '{path}': struct '{prefix}' has no field '{field}'"
                f"{did_you_mean(field, fields)} (fields: {listed})"
            )
        dtype = fields[field]
    return None


def _missing_column(segments: tuple[str, ...], schema: Mapping[str, object]) -> str:
    head = escape_name(segments[0])
    columns = ", ".join(escape_name(name) for name in schema) or "none"
    dotted = _dotted_hint(segments, schema)
    if dotted:
        return f"column '{head}' not found (columns: {columns}){dotted}"
    hint = did_you_mean(head, map(escape_name, schema))
    return f"column '{head}' not found{hint} (columns: {columns})"


def _dotted_hint(segments: tuple[str, ...], schema: Mapping[str, object]) -> str:
    """`stats.goals` typed for the column named `stats.goals`: say how to write its dot."""
    for end in range(len(segments), 1, -1):
        name = ".".join(segments[:end])
        if name in schema:
            rest = "".join(f".{escape_name(s)}" for s in segments[end:])
            return (
                f"; to read the column '{name}', escape its dot: {escape_name(name)}{rest}"
                " (a dot goes into a struct field)"
            )
    return ""
