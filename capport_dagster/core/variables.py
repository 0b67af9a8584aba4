"""Variables in paths and URL templates (``$NAME``), and kwargs in transform templates (``$$name``).

Path and URL templates::

    template  := ( text | "$$" | "$" NAME | "${" NAME "}" )*
    NAME      := [A-Za-z_][A-Za-z0-9_]*

``$$`` is a literal ``$``; any other ``$`` is a malformed reference and an error, so a typo never
silently becomes part of a file name. Values come from the built-ins (:data:`BUILTIN_VARIABLES`)
and then the process environment; an undefined variable is an error, never an empty string.
Nothing is ever passed to a shell.

Transform templates: a ``transform`` stage's ``kwargs`` replace ``$$name`` placeholders (or
``$${name}``, to end the name before a letter or digit) anywhere in the transform's definition:
keys, values, list items. Substituted values are not searched again. This is a separate layer:
placeholders only mean something inside a transform definition, where paths and URLs do not occur,
so ``$$`` can be the literal ``$`` of path templates.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from capport_dagster.core.uris import is_uri, normalize_uri
from capport_dagster.core.yaml_source import LocatedDict, LocatedList
from capport_dagster.errors import ConfigError, Location

__all__ = [
    "BUILTIN_VARIABLES",
    "RUN_VARIABLES",
    "canonical_path",
    "check_template",
    "expand",
    "placeholders",
    "run_variables",
    "substitute_kwargs",
    "variable_names",
]

#: Variables every run defines; they take precedence over environment variables of the same name.
BUILTIN_VARIABLES: tuple[str, ...] = ("CONFIG_DIR", "OUTPUT_DIR", "REF_DATE", "REF_DATETIME")

#: Built-ins whose value is known only when a run starts (`-o`, `-d`, the schedule's tick).
RUN_VARIABLES: tuple[str, ...] = ("OUTPUT_DIR", "REF_DATE", "REF_DATETIME")

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(rf"\$(?:(?P<dollar>\$)|(?P<name>{_NAME})|\{{(?P<braced>{_NAME})\}})")
_PLACEHOLDER = re.compile(rf"\$\$(?:(?P<name>{_NAME})|\{{(?P<braced>{_NAME})\}})")
_RULE = "write $NAME or ${NAME}, or $$ for a literal $"


def _parse(template: str, location: Location | None) -> list[str | tuple[str]]:
    """Split a template into literal text and ``(name,)`` references, rejecting malformed ones."""
    parts: list[str | tuple[str]] = []
    position = 0
    while (start := template.find("$", position)) != -1:
        parts.append(template[position:start])
        match = _REFERENCE.match(template, start)
        if match is None:
            raise ConfigError(_malformed(template, start), location)
        if match["dollar"]:
            parts.append("$")
        else:
            parts.append((match["name"] or match["braced"],))
        position = match.end()
    parts.append(template[position:])
    return parts


def _malformed(template: str, start: int) -> str:
    rest = template[start + 1 :]
    if rest.startswith("{") and "}" not in rest:
        what = "unclosed '${'"
    elif rest.startswith("{"):
        what = f"invalid variable name {rest[1 : rest.index('}')]!r}"
    else:
        what = "'$' not followed by a variable name"
    return f"{what} at character {start + 1} of {template!r} ({_RULE})"


def variable_names(template: str, location: Location | None = None) -> tuple[str, ...]:
    """The variables a template uses, each once, in order of first use."""
    names = (part[0] for part in _parse(template, location) if isinstance(part, tuple))
    return tuple(dict.fromkeys(names))


def _undefined(template: str, missing: list[str]) -> str:
    names = ", ".join(f"${name}" for name in missing)
    what, pronoun = ("variables", "them") if len(missing) > 1 else ("variable", "it")
    return (
        f"undefined {what} {names} in {template!r} "
        f"(define {pronoun} in the environment; built-ins: {', '.join(BUILTIN_VARIABLES)})"
    )


def check_template(template: str, available_names: Collection[str], location: Location) -> None:
    """Fail at validation time, before any run, when a template is malformed or uses unknowns."""
    missing = [name for name in variable_names(template, location) if name not in available_names]
    if missing:
        raise ConfigError(_undefined(template, missing), location)


def expand(template: str, values: Mapping[str, str], location: Location) -> str:
    """The template with every variable replaced by its value (``$$`` becomes ``$``)."""
    parts = _parse(template, location)
    missing = [p[0] for p in parts if isinstance(p, tuple) and p[0] not in values]
    if missing:
        raise ConfigError(_undefined(template, list(dict.fromkeys(missing))), location)
    return "".join(values[p[0]] if isinstance(p, tuple) else p for p in parts)


def canonical_path(template: str, known: Mapping[str, str], location: Location) -> str:
    """A path template in a form two templates naming the same file share, before any run.

    Variables in `known` (`CONFIG_DIR`, the environment) are expanded; those only a run knows
    (:data:`RUN_VARIABLES`) and undefined ones stay symbolic, as `${NAME}` between NUL
    characters (which no path holds), so `$OUTPUT_DIR/a.csv`, `${OUTPUT_DIR}/a.csv` and
    `$OUTPUT_DIR/x/../a.csv` are one file. Relative paths resolve against the working directory,
    as they do in a run.
    """
    parts = []
    for part in _parse(template, location):
        if isinstance(part, str):
            parts.append(part)
        elif part[0] in known and part[0] not in RUN_VARIABLES:
            parts.append(known[part[0]])
        else:
            parts.append(f"\0${{{part[0]}}}\0")
    joined = "".join(parts)
    if is_uri(joined):  # an object: normalized as a run names it, never made a local path
        return normalize_uri(joined)
    path = os.path.expanduser(joined)
    if not path.startswith(("/", "\0")):
        path = os.path.join(os.getcwd(), path)
    return os.path.normpath(path)


def run_variables(
    *,
    config_dir: Path,
    output_dir: Path | str,
    ref_datetime: datetime,
    environ: Mapping[str, str],
) -> dict[str, str]:
    """The variables of one run: the environment, overridden by the built-ins.

    Built-ins win so that a stray ``OUTPUT_DIR`` in the environment cannot redirect a run away
    from ``-o``. ``REF_DATETIME`` keeps the offset of ``ref_datetime`` (none when it is naive).
    """
    values = dict(environ)
    output = str(output_dir)
    values.update(
        CONFIG_DIR=os.path.abspath(config_dir),
        # An object-store URI (`s3://bucket/out`) stays one: `$OUTPUT_DIR/b.csv` is an object.
        OUTPUT_DIR=output if is_uri(output) else os.path.abspath(output),
        REF_DATE=ref_datetime.date().isoformat(),
        REF_DATETIME=ref_datetime.isoformat(),
    )
    return values


def placeholders(body: Any) -> frozenset[str]:
    """The ``$$name`` placeholders a transform definition holds, in keys and values: a kwarg
    none of them names is a mistake (a typo'd name leaves its placeholder unfilled, or does
    nothing)."""
    found: set[str] = set()
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.update(m["name"] or m["braced"] for m in _PLACEHOLDER.finditer(value))
        elif isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return frozenset(found)


def substitute_kwargs(body: Any, kwargs: Mapping[str, Any], location: Location) -> Any:
    """A copy of a transform definition with its ``$$name`` placeholders replaced by kwargs.

    A string that is exactly ``$$name`` becomes the kwarg itself, keeping its YAML type (a list
    stays a list); inside a longer string the kwarg is inserted as ``str(value)``. Every
    placeholder without a kwarg is reported at once.
    """
    missing: list[str] = []

    def text(value: str) -> Any:
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            name = whole["name"] or whole["braced"]
            if name in kwargs:
                return kwargs[name]
            missing.append(name)
            return value

        def replace(match: re.Match[str]) -> str:
            name = match["name"] or match["braced"]
            if name in kwargs:
                return str(kwargs[name])
            missing.append(name)
            return match[0]

        return _PLACEHOLDER.sub(replace, value)

    def walk(value: Any) -> Any:
        if isinstance(value, str):
            return text(value)
        if isinstance(value, dict):
            return _substitute_mapping(value, walk, location)
        if isinstance(value, LocatedList):
            items = LocatedList(walk(item) for item in value)
            items.line, items.column = value.line, value.column
            items.item_positions = value.item_positions
            return items
        if isinstance(value, list):
            return [walk(item) for item in value]
        return value

    result = walk(body)
    if missing:
        names = list(dict.fromkeys(missing))
        given = ", ".join(sorted(kwargs)) if kwargs else "none"
        plural = "s" if len(names) > 1 else ""
        raise ConfigError(
            f"no kwarg for placeholder{plural} {', '.join('$$' + n for n in names)} "
            f"(kwargs given: {given})",
            location,
        )
    return result


def _substitute_mapping(value: dict, walk: Callable[[Any], Any], location: Location) -> dict:
    result = LocatedDict()
    positions: dict[Any, tuple[int, int]] = {}
    old_positions = getattr(value, "key_positions", None) or {}
    for key, item in value.items():
        new_key = walk(key)
        try:
            hash(new_key)
        except TypeError:
            raise ConfigError(
                f"the key {key!r} becomes a list or a mapping, which cannot be a mapping key",
                location,
            ) from None
        if new_key in result:
            raise ConfigError(
                f"substituting kwargs makes the key {new_key!r} appear twice", location
            )
        result[new_key] = walk(item)
        if key in old_positions:
            positions[new_key] = old_positions[key]
    if not isinstance(value, LocatedDict):
        return dict(result)
    result.line, result.column, result.key_positions = value.line, value.column, positions
    return result
