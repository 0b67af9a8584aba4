"""The `select` mapping (`{new_col: SOURCE}`), shared by the `select` step and a join's
`right_select`, and the argument helpers every transform step uses.

A `format` template follows Python's format strings, reduced to what a template needs::

    template := ( text | "{}" | "{{" | "}}" )*        text: anything but "{" and "}"

`{{` and `}}` are literal braces; any other brace is an error (Polars would read `{name}` as a
column). `$NAME` is not expanded in a template: it stays as written, and a `$NAME` that names a
variable (a built-in or an environment variable) is warned about, since it was most likely meant
to be expanded.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import polars as pl

from capport_dagster.core.paths import check_path, path_error, path_expr
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import count, did_you_mean

__all__ = ["ACTIONS", "Findings", "SelectItem", "check_items", "parse_items", "select_exprs"]

ACTIONS: tuple[str, ...] = ("concat", "format")

_SOURCE_KEYS = ("action", "args")
_ACTION_KEYS = {"format": ("template", "cols"), "concat": ("cols", "separator")}
_VARIABLE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
_BRACES = "write {} for a value, {{ and }} for a literal brace"


@dataclass
class Findings:
    """What parsing found: errors make the transform unusable, warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Variable names a `$NAME` in a template is warned about.
    variables: Collection[str] = ()


@dataclass(frozen=True)
class SelectItem:
    """One output column of a select: a column path, or a `format`/`concat` of column paths."""

    name: str
    action: Literal["column", "format", "concat"]
    cols: tuple[str, ...]
    template: str = "{}"
    separator: str = " "


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
        item = _parse_source(key, source, f"{context}: column '{key}'", found)
        if item is not None:
            items.append(item)
    return tuple(items)


def _parse_source(key: str, source: Any, where: str, found: Findings) -> SelectItem | None:
    messages = found.errors
    if source is None or isinstance(source, str):
        return _column_item(key, source, where, messages)
    if not isinstance(source, Mapping):
        messages.append(
            f"{where}: a source is a column path, null or a mapping with action and args,"
            f" got {describe(source)}"
        )
        return None
    if unknown_keys(source, _SOURCE_KEYS, where, messages, "a source mapping"):
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
    unknown_keys(args, _ACTION_KEYS[action], where, messages, f"{action} args")
    cols = column_list(args.get("cols"), "cols", where, messages, required=True, paths=True)
    cols = cols or ()
    if action == "format":
        template = args.get("template")
        if not isinstance(template, str):
            messages.append(f"{where}: template must be a string, got {describe(template)}")
        else:
            _check_template(template, cols, where, found)
        item = SelectItem(key, "format", cols, template=str(template))
    else:
        separator = args.get("separator", " ")
        if not isinstance(separator, str):
            messages.append(f"{where}: separator must be a string, got {describe(separator)}")
        item = SelectItem(key, "concat", cols, separator=str(separator))
    return item if len(messages) == errors else None


def _check_template(template: str, cols: tuple[str, ...], where: str, found: Findings) -> None:
    placeholders = 0
    position = 0
    while position < len(template):
        pair = template[position : position + 2]
        if pair in ("{}", "{{", "}}"):
            placeholders += pair == "{}"
            position += 2
            continue
        if template[position] in "{}":
            variable = _VARIABLE.match(template, position - 1) if position else None
            what = (
                f"'{variable[0]}' at character {position}, which a format template does not expand"
                if variable
                else f"an unmatched '{template[position]}' at character {position + 1}"
            )
            found.errors.append(f"{where}: template {template!r} has {what} ({_BRACES})")
            return
        position += 1
    if cols and placeholders != len(cols):
        found.errors.append(
            f"{where}: template {template!r} has {count(placeholders, 'placeholder')} '{{}}'"
            f" but cols has {count(len(cols), 'column')}; they must match"
        )
    known = [
        name
        for name in dict.fromkeys(a or b for a, b in _VARIABLE.findall(template))
        if name in found.variables
    ]
    if known:
        names = ", ".join(f"${name}" for name in known)
        found.warnings.append(
            f"{where}: template {template!r} contains {names}, which a format template does"
            " not expand: the text stays as written (variables are expanded in paths and URLs)"
        )


def _column_item(key: str, path: str | None, where: str, messages: list[str]) -> SelectItem | None:
    path = key if path is None else path
    problem = path_error(path)
    if problem is not None:
        messages.append(f"{where}: {problem}")
        return None
    return SelectItem(key, "column", (path,))


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


def check_items(
    items: tuple[SelectItem, ...], schema: Mapping[str, pl.DataType | None]
) -> list[str]:
    """Each distinct problem of the select's paths in a frame of this schema (see check_path)."""
    problems = (check_path(path, schema) for item in items for path in item.cols)
    return list(dict.fromkeys(p for p in problems if p is not None))


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


def unknown_keys(
    mapping: Mapping, allowed: tuple[str, ...], where: str, messages: list[str], what: str
) -> bool:
    """Report each key not in `allowed`; True when there was one."""
    unknown = [key for key in mapping if key not in allowed]
    for key in unknown:
        messages.append(
            f"{where}: unknown key {key!r}{did_you_mean(key, allowed)}"
            f" ({what} takes {', '.join(allowed)})"
        )
    return bool(unknown)
