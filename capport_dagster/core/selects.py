"""The `select` mapping (`{new_col: EXPR}`), shared by the `select` step, a join's
`right_select` and an HTTP stage's `select`, and the argument helpers every transform step uses.

A source is an expression (`core/expressions.py`, `docs/expressions.md`), null (the key's own
name), or this project's older action mapping, still read as before::

    source := EXPR | null
            | {action: format, args: {template: STR, cols: PATHS}}
            | {action: concat, args: {cols: PATHS, separator: STR}}
            | {action: null, args: PATH | null}             a column: the path, or the key
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl

from capport_dagster.core.expressions import (
    Concat,
    Expr,
    Findings,
    Format,
    format_template,
    parse_expr,
    unknown_keys,
)
from capport_dagster.core.paths import path_error
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import count as count
from capport_dagster.errors import did_you_mean

__all__ = [
    "ACTIONS",
    "Findings",
    "SelectItem",
    "check_items",
    "column_list",
    "parse_items",
    "select_exprs",
    "unknown_keys",
]

#: The actions of the older `{action: ..., args: ...}` form.
ACTIONS: tuple[str, ...] = ("concat", "format")

_SOURCE_KEYS = ("action", "args")
_ACTION_KEYS = {"format": ("template", "cols"), "concat": ("cols", "separator")}


@dataclass(frozen=True)
class SelectItem:
    """One output column of a select: its name and the expression giving it."""

    name: str
    expr: Expr


def parse_items(mapping: Any, context: str, found: Findings) -> tuple[SelectItem, ...]:
    """Read a `{new_col: SOURCE}` mapping; `context` prefixes messages (`step 2 (select)`)."""
    if not isinstance(mapping, Mapping) or not mapping:
        got = "an empty mapping" if isinstance(mapping, Mapping) else describe(mapping)
        found.errors.append(f"{context}: expected a mapping of new column -> source, got {got}")
        return ()
    items: list[SelectItem] = []
    for key, source in mapping.items():
        if not isinstance(key, str) or not key:
            found.errors.append(f"{context}: column name {key!r} must be a non-empty string")
            continue
        expr = _parse_source(key, source, f"{context}: column '{key}'", found)
        if expr is not None:
            items.append(SelectItem(key, expr))
    return tuple(items)


def _parse_source(key: str, source: Any, where: str, found: Findings) -> Expr | None:
    messages = found.errors
    if source is None:
        return parse_expr(key, where, found)
    if isinstance(source, str):
        return parse_expr(source, where, found)
    if not isinstance(source, Mapping):
        messages.append(
            f"{where}: a source is a column path, null or a mapping with action and args,"
            f" got {describe(source)}"
        )
        return None
    if source and not any(key in source for key in _SOURCE_KEYS):
        return parse_expr(source, where, found)
    if unknown_keys(source, _SOURCE_KEYS, where, messages, "a source mapping"):
        return None
    if source.get("action") is None:
        args = source.get("args")
        if args is not None and not isinstance(args, str):
            messages.append(f"{where}: args without an action is a column path, got {args!r}")
            return None
        return parse_expr(key if args is None else args, where, found)
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
    unknown_keys(args, _ACTION_KEYS[action], where, messages, f"{action} args")
    cols = column_list(args.get("cols"), "cols", where, messages, required=True, paths=True)
    parsed = [parse_expr(path, where, found) for path in cols or ()]
    columns = tuple(expr for expr in parsed if expr is not None)
    expr: Expr
    if action == "format":
        template = format_template(args.get("template"), len(columns), "cols", where, found)
        expr = Format(str(template), columns)
    else:
        separator = args.get("separator", " ")
        if not isinstance(separator, str):
            messages.append(f"{where}: separator must be a string, got {describe(separator)}")
        expr = Concat(columns, str(separator))
    return expr if len(messages) == errors else None


def select_exprs(items: tuple[SelectItem, ...]) -> list[pl.Expr]:
    """The Polars expressions of a parsed select, one per output column, in order."""
    return [item.expr.polars().alias(item.name) for item in items]


def check_items(
    items: tuple[SelectItem, ...], schema: Mapping[str, pl.DataType | None]
) -> list[str]:
    """Each distinct problem of the select's expressions in a frame of this schema."""
    return list(dict.fromkeys(problem for item in items for problem in item.expr.check(schema)))


# -- helpers shared by the steps ------------------------------------------------------------------


def column_list(
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
    if not all(names):
        messages.append(f"{where}: {label} {value!r} has an empty column name")
        return None
    if paths:
        for name in names:
            problem = path_error(name)
            if problem is not None:
                messages.append(f"{where}: {label}: {problem}")
                return None
    return tuple(names)
