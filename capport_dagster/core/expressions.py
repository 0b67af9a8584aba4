"""Expressions: the one syntax for a value wherever a step takes one (select, with_columns,
filter, sort keys, aggregations). The user's guide is `docs/expressions.md`.

Grammar (a YAML value; KEY: VALUE is a mapping of exactly that one key)::

    expr     := PATH                                   a column path: a, a.b.c (core/paths.py)
              | "^" NAME "$" { "." FIELD }             an optional column: null when missing
              | {col: PATH}                            a column, also where a scalar is a literal
              | {format: {template: STR, columns: exprs}}          cols is accepted for columns
              | {concat: {columns: exprs, separator: STR, ignore_nulls: BOOL}}
              | {cast: {column: expr, dtype: DTYPE, strict: BOOL}}   DTYPE: a model dtype
              | {coalesce: [expr, ...]}
              | {fill_null: {column: expr, value: value}}
              | {TYPE: SCALAR | null}                  a typed literal (TYPE below)
              | {sql: STR}                             one SQL expression, parsed by Polars
    exprs    := [expr, ...] | "PATH, PATH, ..."        at least one
    value    := expr, except that a plain scalar is a literal (a string too)
    TYPE     := int8 | int16 | int32 | int64 | uint8 | uint16 | uint32 | uint64
              | float | double | bool | str | date | datetime
    template := ( text | "{}" | "{{" | "}}" )*         text: anything but "{" and "}"

Where a step reads a plain YAML scalar as a literal (`scalars="literal"`: a filter's value), a
scalar is a literal and `{col: PATH}` names a column; everywhere else a string is a PATH and a
number or boolean is an error (quote it, or write a typed literal). Inside an action map, a
plain string is always a PATH, except `fill_null`'s `value`.

Every expression is checked against a schema (`check`) before Polars builds a plan, so a
mistake is reported with its path and the columns there are, not as Polars' bare message.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any, Literal, Protocol

import polars as pl

from capport_dagster.core.models import DTYPES
from capport_dagster.core.paths import (
    check_path,
    escape_name,
    path_error,
    path_expr,
    split_path,
)
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import count, did_you_mean

__all__ = [
    "EXPRESSION_KEYS",
    "LITERAL_TYPES",
    "Cast",
    "Coalesce",
    "Column",
    "Concat",
    "Expr",
    "FillNull",
    "Findings",
    "Format",
    "Lit",
    "OptionalColumn",
    "Schema",
    "Sql",
    "format_template",
    "output_dtype",
    "parse_expr",
    "unknown_keys",
]

Schema = Mapping[str, pl.DataType | None]


@dataclass
class Findings:
    """What parsing found: errors make the transform unusable, warnings do not."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Variable names a `$NAME` in a template is warned about.
    variables: Collection[str] = ()
    #: Warnings that the step's rows come in no fixed order: a later step that orders them (a
    #: sort, a query with ORDER BY) settles them, so the transform decides whether they show.
    unordered: list[str] = field(default_factory=list)
    #: Whether the step leaves its rows in a fixed order of its own making.
    ordered: bool = False


class Expr(Protocol):
    """A parsed expression: immutable, reusable on any frame."""

    def polars(self) -> pl.Expr:
        """The Polars expression (not aliased)."""
        ...

    def paths(self) -> tuple[str, ...]:
        """The column paths it reads, in order (for checks and column lineage). An optional
        column is not listed: it is read only when the frame has it."""
        ...

    def check(self, schema: Schema) -> list[str]:
        """Its problems in a frame of this schema (a missing column, a path into a non-struct);
        an optional column is never missing."""
        ...


# -- the expressions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    path: str

    def polars(self) -> pl.Expr:
        return path_expr(self.path)

    def paths(self) -> tuple[str, ...]:
        return (self.path,)

    def check(self, schema: Schema) -> list[str]:
        problem = check_path(self.path, schema)
        return [problem] if problem else []


#: The characters Polars' regex syntax (Rust's regex crate) treats as special.
_REGEX_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$#&\-~])")


@dataclass(frozen=True)
class OptionalColumn:
    """`^name$.field`: the column when the frame has it, else an all-null (dtype Null) column.

    Written as Polars' regex column selection, as capport does, so one plan serves frames with
    and without the column; the name is matched literally (regex characters are escaped)."""

    name: str
    fields: tuple[str, ...] = ()

    def polars(self) -> pl.Expr:
        escaped = _REGEX_SPECIAL.sub(r"\\\1", self.name)
        expr = pl.col(f"^{escaped}$")
        for name in self.fields:
            expr = expr.struct.field(name)
        # a column of the frame's (or the group's) length, so that sorts and aggregations
        # see one null per row, as they would see the column
        return pl.coalesce([expr, pl.repeat(None, pl.len())])

    def paths(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema) -> list[str]:
        if self.name not in schema:
            return []
        return Column(".".join(escape_name(n) for n in (self.name, *self.fields))).check(schema)


@dataclass(frozen=True)
class Lit:
    value: Any
    dtype: pl.DataType | None = None

    def polars(self) -> pl.Expr:
        return pl.lit(self.value, dtype=self.dtype)

    def paths(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema) -> list[str]:
        return []


class _Composite:
    """An expression over others: reads and checks what its parts do."""

    def parts(self) -> tuple[Expr, ...]:
        raise NotImplementedError

    def paths(self) -> tuple[str, ...]:
        return tuple(path for part in self.parts() for path in part.paths())

    def check(self, schema: Schema) -> list[str]:
        problems = (problem for part in self.parts() for problem in part.check(schema))
        return list(dict.fromkeys(problems))


@dataclass(frozen=True)
class Format(_Composite):
    """Each value as text into the template's `{}`; a null anywhere gives null (capport)."""

    template: str
    columns: tuple[Expr, ...]

    def parts(self) -> tuple[Expr, ...]:
        return self.columns

    def polars(self) -> pl.Expr:
        return pl.format(self.template, *(c.polars() for c in self.columns))


@dataclass(frozen=True)
class Concat(_Composite):
    columns: tuple[Expr, ...]
    separator: str = " "
    ignore_nulls: bool = False

    def parts(self) -> tuple[Expr, ...]:
        return self.columns

    def polars(self) -> pl.Expr:
        exprs = [c.polars() for c in self.columns]
        return pl.concat_str(exprs, separator=self.separator, ignore_nulls=self.ignore_nulls)


@dataclass(frozen=True)
class Cast(_Composite):
    column: Expr
    dtype: str
    strict: bool = True

    def parts(self) -> tuple[Expr, ...]:
        return (self.column,)

    def polars(self) -> pl.Expr:
        return self.column.polars().cast(DTYPES[self.dtype], strict=self.strict)


@dataclass(frozen=True)
class Coalesce(_Composite):
    items: tuple[Expr, ...]

    def parts(self) -> tuple[Expr, ...]:
        return self.items

    def polars(self) -> pl.Expr:
        return pl.coalesce([item.polars() for item in self.items])


@dataclass(frozen=True)
class FillNull(_Composite):
    column: Expr
    value: Expr

    def parts(self) -> tuple[Expr, ...]:
        return (self.column, self.value)

    def polars(self) -> pl.Expr:
        return self.column.polars().fill_null(self.value.polars())


@dataclass(frozen=True)
class Sql:
    """`{sql: TEXT}`: Polars' own SQL expression; its columns are checked like paths."""

    text: str
    expr: pl.Expr = field(compare=False, repr=False)

    def polars(self) -> pl.Expr:
        return self.expr

    def paths(self) -> tuple[str, ...]:
        return tuple(escape_name(name) for name in self.expr.meta.root_names())

    def check(self, schema: Schema) -> list[str]:
        problems = (check_path(path, schema) for path in self.paths())
        return [f"sql {self.text!r}: {p}" for p in dict.fromkeys(problems) if p is not None]


def columns_read(expr: Expr, schema: Schema) -> tuple[str, ...] | None:
    """The top-level columns of a frame of this schema whose values `expr` is computed from,
    in the order it reads them (for column lineage): `a.b.c` reads `a`, a literal nothing, an
    optional column its column when the frame has it. None: it cannot be told.

    Column references come from Polars' own `meta.root_names()`; only an optional column (a
    regex selection, which Polars resolves only against a frame) and the actions holding one
    are resolved here, part by part. A name not in the schema (the check would have refused
    it) is not guessed at: None.
    """
    if isinstance(expr, OptionalColumn):
        return (expr.name,) if expr.name in schema else ()
    if isinstance(expr, _Composite):
        found: list[str] = []
        for part in expr.parts():
            names = columns_read(part, schema)
            if names is None:
                return None
            found += names
        return tuple(dict.fromkeys(found))
    try:
        names = _root_names(expr)
    except TypeError:  # unhashable (a user's own kind): not cached
        names = _root_names.__wrapped__(expr)
    if names is None or any(name not in schema for name in names):
        return None
    return names


@lru_cache(maxsize=4096)
def _root_names(expr: Expr) -> tuple[str, ...] | None:
    """Polars' root names of `expr`, once per expression: a transform's expressions are parsed
    once and asked for at every run of every stage using it."""
    try:
        polars = expr.polars()
        if polars.meta.has_multiple_outputs() or polars.meta.is_regex_projection():
            return None
        return tuple(dict.fromkeys(polars.meta.root_names()))
    except Exception:  # an expression Polars cannot analyse (a user's own kind)
        return None


def output_dtype(expr: Expr, schema: Mapping[str, pl.DataType]) -> pl.DataType:
    """The dtype `expr` gives in a frame of this (fully typed) schema; no data read. Raises
    Polars' error where the expression does not fit the schema."""
    frame = pl.LazyFrame(schema=dict(schema))
    return frame.select(expr.polars().alias("_")).collect_schema()["_"]


# -- parsing --------------------------------------------------------------------------------------

_INTS = {
    name: (lo, hi)
    for name, lo, hi in (
        ("int8", -(2**7), 2**7 - 1),
        ("int16", -(2**15), 2**15 - 1),
        ("int32", -(2**31), 2**31 - 1),
        ("int64", -(2**63), 2**63 - 1),
        ("uint8", 0, 2**8 - 1),
        ("uint16", 0, 2**16 - 1),
        ("uint32", 0, 2**32 - 1),
        ("uint64", 0, 2**64 - 1),
    )
}
#: The largest finite value of each float dtype, and how a message shows it.
_FLOAT_LIMITS = {
    "float": (3.4028234663852886e38, 32, "3.4e38"),
    "double": (1.7976931348623157e308, 64, "1.8e308"),
}
#: The typed literals' names: the model dtypes of one scalar value, and `datetime`.
LITERAL_TYPES: tuple[str, ...] = (*_INTS, "float", "double", "bool", "str", "date", "datetime")
_ACTION_KEYS: tuple[str, ...] = ("format", "concat", "cast", "coalesce", "fill_null")
#: Every key an expression mapping may have (it has exactly one).
EXPRESSION_KEYS: tuple[str, ...] = ("col", *_ACTION_KEYS, "sql", *LITERAL_TYPES)

_BRACES = "write {} for a value, {{ and }} for a literal brace"
_VARIABLE = re.compile(r"\$(?:([A-Za-z_][A-Za-z0-9_]*)|\{([A-Za-z_][A-Za-z0-9_]*)\})")
_SQL_PARSER = re.compile(
    r"sql parser error: (?P<what>.*?)\.?(?: at Line: (?P<line>\d+), Column: (?P<column>\d+))?$"
)
_SQL_EXPECTED = re.compile(r"Expected: (?P<expected>.*?), found: (?P<found>.*)$")


def parse_expr(
    raw: Any, where: str, found: Findings, *, scalars: Literal["path", "literal"] = "path"
) -> Expr | None:
    """Read one expression; None after reporting its problems to `found.errors`, each
    prefixed with `where`. `scalars`: what a plain YAML string is, a column path (select,
    with_columns, sort keys) or a literal value (a filter's comparison value)."""
    if scalars == "literal" and (raw is None or isinstance(raw, (str, int, float, bool))):
        return Lit(raw)
    if isinstance(raw, str):
        return _parse_path(raw, where, found)
    if isinstance(raw, Mapping):
        return _parse_mapping(raw, where, found)
    if isinstance(raw, (bool, int, float)):
        kind = "bool" if isinstance(raw, bool) else "int64" if isinstance(raw, int) else "double"
        shown = str(raw).lower() if kind == "bool" else str(raw)
        example = f"{{{kind}: {shown}}}"
        found.errors.append(
            f"{where}: {describe(raw)} is not a column path: quote it ('{shown}') if it names a"
            f" column, or write a typed literal such as {example}"
        )
    elif raw is None:
        found.errors.append(
            f"{where}: null is not an expression: write a column path, or a typed null such as"
            " {str: null}"
        )
    else:
        found.errors.append(
            f"{where}: {describe(raw)} is not an expression (a column path, or a mapping of one"
            f" key: {', '.join(EXPRESSION_KEYS)})"
        )
    return None


def _parse_path(raw: str, where: str, found: Findings) -> Expr | None:
    problem = path_error(raw)
    if problem is not None:
        found.errors.append(f"{where}: {problem}")
        return None
    head, *fields = split_path(raw)
    if len(head) >= 2 and head.startswith("^") and head.endswith("$"):
        if head == "^$":
            found.errors.append(f"{where}: optional column '{raw}' has no name between ^ and $")
            return None
        return OptionalColumn(head[1:-1], tuple(fields))
    return Column(raw)


def _parse_mapping(raw: Mapping, where: str, found: Findings) -> Expr | None:
    if len(raw) != 1:
        keys = ", ".join(map(str, raw)) or "none"
        found.errors.append(
            f"{where}: an expression mapping has exactly one key ({', '.join(EXPRESSION_KEYS)}),"
            f" got {count(len(raw), 'key')}: {keys}"
        )
        return None
    ((key, value),) = raw.items()
    if key == "col":
        if not isinstance(value, str):
            found.errors.append(f"{where}: col takes a column path, got {describe(value)}")
            return None
        return _parse_path(value, where, found)
    if key in LITERAL_TYPES:
        return _parse_literal(key, value, where, found)
    if key == "sql":
        return _parse_sql(value, where, found)
    if key in _ACTION_KEYS:
        return _ACTIONS[key](value, f"{where} ({key})", found)
    found.errors.append(
        f"{where}: unknown expression {str(key)!r}{did_you_mean(key, EXPRESSION_KEYS)}"
        f" (an expression mapping has one key: {', '.join(EXPRESSION_KEYS)})"
    )
    return None


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


def _args(
    action: str, value: Any, allowed: tuple[str, ...], where: str, found: Findings
) -> Mapping | None:
    if not isinstance(value, Mapping):
        found.errors.append(f"{where}: {action} takes a mapping of {', '.join(allowed)}, got"
                            f" {describe(value)}")  # fmt: skip
        return None
    if unknown_keys(value, allowed, where, found.errors, action):
        return None
    return value


def _columns(args: Mapping, where: str, found: Findings) -> tuple[str, tuple[Expr, ...] | None]:
    """An action's `columns` (or `cols`): expressions, or a comma-separated string of paths."""
    if "columns" in args and "cols" in args:
        found.errors.append(f"{where}: write columns or cols, not both")
        return "columns", None
    label = "cols" if "cols" in args else "columns"
    value = args.get(label)
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",")]
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else describe(value)
        found.errors.append(f"{where}: {label} must be a non-empty list of expressions, got {got}")
        return label, None
    exprs = [
        parse_expr(item, f"{where}, entry {number} of {label}", found)
        for number, item in enumerate(value, 1)
    ]
    if any(expr is None for expr in exprs):
        return label, None
    return label, tuple(e for e in exprs if e is not None)


def _flag(args: Mapping, key: str, default: bool, where: str, found: Findings) -> bool:
    value = args.get(key, default)
    if not isinstance(value, bool):
        found.errors.append(f"{where}: {key} must be true or false, got {describe(value)}")
        return default
    return value


def _parse_format(value: Any, where: str, found: Findings) -> Expr | None:
    args = _args("format", value, ("template", "columns", "cols"), where, found)
    if args is None:
        return None
    errors = len(found.errors)
    label, columns = _columns(args, where, found)
    template = format_template(args.get("template"), len(columns or ()), label, where, found)
    if len(found.errors) > errors or columns is None or template is None:
        return None
    return Format(template, columns)


def _parse_concat(value: Any, where: str, found: Findings) -> Expr | None:
    args = _args("concat", value, ("columns", "cols", "separator", "ignore_nulls"), where, found)
    if args is None:
        return None
    errors = len(found.errors)
    _, columns = _columns(args, where, found)
    separator = args.get("separator", " ")
    if not isinstance(separator, str):
        found.errors.append(f"{where}: separator must be a string, got {describe(separator)}")
    ignore_nulls = _flag(args, "ignore_nulls", False, where, found)
    if len(found.errors) > errors or columns is None:
        return None
    return Concat(columns, separator, ignore_nulls)


def _parse_cast(value: Any, where: str, found: Findings) -> Expr | None:
    args = _args("cast", value, ("column", "dtype", "strict"), where, found)
    if args is None:
        return None
    errors = len(found.errors)
    column = _required_expr(args, "column", where, found)
    dtype = args.get("dtype")
    valid = f"(valid dtypes: {', '.join(DTYPES)})"
    if dtype is None:
        found.errors.append(f"{where}: dtype is required {valid}")
    elif not isinstance(dtype, str) or dtype not in DTYPES:
        hint = did_you_mean(dtype, DTYPES) if isinstance(dtype, str) else ""
        shown = repr(dtype) if isinstance(dtype, str) else describe(dtype)
        found.errors.append(f"{where}: unknown dtype {shown}{hint} {valid}")
    strict = _flag(args, "strict", True, where, found)
    if len(found.errors) > errors or column is None:
        return None
    return Cast(column, str(dtype), strict)


def _parse_coalesce(value: Any, where: str, found: Findings) -> Expr | None:
    if not isinstance(value, list) or not value:
        got = "an empty list" if value == [] else describe(value)
        found.errors.append(f"{where}: expected a non-empty list of expressions, got {got}")
        return None
    items = [
        parse_expr(item, f"{where}, entry {number}", found) for number, item in enumerate(value, 1)
    ]
    if any(item is None for item in items):
        return None
    return Coalesce(tuple(item for item in items if item is not None))


def _parse_fill_null(value: Any, where: str, found: Findings) -> Expr | None:
    args = _args("fill_null", value, ("column", "value"), where, found)
    if args is None:
        return None
    column = _required_expr(args, "column", where, found)
    if "value" not in args:
        found.errors.append(f"{where}: value is required (the value that replaces a null)")
        return None
    filler = parse_expr(args["value"], f"{where}, value", found, scalars="literal")
    if column is None or filler is None:
        return None
    return FillNull(column, filler)


def _required_expr(args: Mapping, key: str, where: str, found: Findings) -> Expr | None:
    if key not in args:
        found.errors.append(f"{where}: {key} is required (an expression)")
        return None
    return parse_expr(args[key], f"{where}, {key}", found)


_ACTIONS = {
    "format": _parse_format,
    "concat": _parse_concat,
    "cast": _parse_cast,
    "coalesce": _parse_coalesce,
    "fill_null": _parse_fill_null,
}


def format_template(
    template: Any, columns: int, label: str, where: str, found: Findings
) -> str | None:
    """A checked `format` template for `columns` values (0: not known, not compared)."""
    if not isinstance(template, str):
        found.errors.append(f"{where}: template must be a string, got {describe(template)}")
        return None
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
            return None
        position += 1
    if columns and placeholders != columns:
        found.errors.append(
            f"{where}: template {template!r} has {count(placeholders, 'placeholder')} '{{}}'"
            f" but {label} has {count(columns, 'column')}; they must match"
        )
        return None
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
    return template


# -- typed literals and SQL -----------------------------------------------------------------------


def _parse_literal(kind: str, value: Any, where: str, found: Findings) -> Expr | None:
    dtype: pl.DataType = pl.Datetime("us") if kind == "datetime" else DTYPES[kind]
    if value is None:
        return Lit(None, dtype)
    rule = _literal_rule(kind, value)
    if isinstance(rule, str):
        found.errors.append(f"{where}: {describe(value)} is not a valid {kind} ({rule})")
        return None
    converted, dtype = rule if rule is not None else (value, dtype)
    return Lit(converted, dtype)


def _literal_rule(kind: str, value: Any) -> str | tuple[Any, pl.DataType] | None:
    """Why `value` is not a `kind` (a message), a converted value and dtype, or None: fits."""
    if kind in _INTS:
        lo, hi = _INTS[kind]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            return f"a whole number from {lo} to {hi}"
        return None
    if kind in ("float", "double"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return "a number"
        limit, bits, shown = _FLOAT_LIMITS[kind]
        if abs(value) > limit and abs(value) != float("inf"):
            return f"a number a {bits}-bit float holds: at most {shown} either side of 0"
        return float(value), DTYPES[kind]
    if kind == "bool":
        return None if isinstance(value, bool) else "true or false"
    if kind == "str":
        return None if isinstance(value, str) else f"a string: quote it, '{value}'"
    if kind == "date":
        return _date_value(value)
    return _datetime_value(value)


def _date_value(value: Any) -> str | tuple[Any, pl.DataType] | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return None
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        with suppress(ValueError):
            return date.fromisoformat(value), pl.Date()
    return "an ISO 8601 date, YYYY-MM-DD"


def _datetime_value(value: Any) -> str | tuple[Any, pl.DataType] | None:
    stamp = value if isinstance(value, datetime) else None
    iso = r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?"
    if isinstance(value, str) and re.fullmatch(iso, value):
        with suppress(ValueError):
            stamp = datetime.fromisoformat(value)
    if stamp is None:
        return (
            "an ISO 8601 datetime, YYYY-MM-DD[THH:MM[:SS[.ffffff]]] with an optional offset"
            " (Z, +02:00)"
        )
    if stamp.tzinfo is None:
        return stamp, pl.Datetime("us")
    return stamp.astimezone(UTC), pl.Datetime("us", "UTC")


def _parse_sql(value: Any, where: str, found: Findings) -> Expr | None:
    if not isinstance(value, str) or not value.strip():
        got = "an empty string" if isinstance(value, str) else describe(value)
        found.errors.append(f"{where}: sql takes one SQL expression as a string, got {got}")
        return None
    try:
        expr = pl.sql_expr(value)
    except pl.exceptions.PolarsError as exc:
        found.errors.append(f"{where}: sql {value!r} {_sql_problem(value, exc)}")
        return None
    return Sql(value, expr.meta.undo_aliases())


def _sql_problem(text: str, exc: Exception) -> str:
    """Polars' reason, with the position inside `text` where its parser gives one.

    `pl.sql_expr` says only "unable to parse"; the same text in a `SELECT` gives the SQL
    parser's own message, whose position is moved back into the user's text."""
    message = str(exc).split("\n")[0].strip()
    shift = 0  # characters before the user's text on its first line, in what Polars parsed
    if message.startswith("unable to parse"):
        try:
            pl.SQLContext().execute(f"SELECT {text}", eager=False)
        except pl.exceptions.PolarsError as probe:
            message = str(probe).split("\n")[0].strip()
            shift = len("SELECT ")
    match = _SQL_PARSER.match(message)
    if match is None:
        return f"is not a SQL expression Polars reads: {message}"
    what = match["what"]
    expected = _SQL_EXPECTED.match(what)
    if expected is not None and expected["found"] == "EOF":
        return f"is not a SQL expression: it ends where {expected['expected']} was expected"
    if expected is not None:
        what = f"expected {expected['expected']}, found '{expected['found']}'"
    else:
        what = what[:1].lower() + what[1:]
    line, column = int(match["line"] or 0), int(match["column"] or 0)
    if line == 1:
        column -= shift
    if line < 1 or column < 1:
        return f"is not a SQL expression: {what}"
    place = f"line {line}, character {column}" if "\n" in text else f"character {column}"
    return f"is not a SQL expression: at {place}, {what}"
