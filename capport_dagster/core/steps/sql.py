"""`sql: "SELECT ... FROM self ..."`, beside it `sql_context: [FRAME, ...]`: a Polars SQL query.

As capport: the step's input is the table `self`, each `sql_context` frame the table of its own
name (a dependency of every stage using the transform, as a join's right frame), and the query
runs in a fresh `pl.SQLContext`, lazily. The SQL is Polars' dialect, and Polars' semantics hold
(a column both sides of a JOIN have comes out as `name:table`).

Checked when the config is read (on frames without columns, so no data and no schema needed):
the SQL's syntax, one query (SELECT or WITH), the tables it names, and no table function
(`read_csv(...)` would read a file behind the pipeline's back). Checked against the schemas
before the plan is built: its columns and functions.

Row order is SQL's: only an ORDER BY fixes it. GROUP BY, JOIN, DISTINCT and UNION give rows in
an order that may differ between modes and runs, so a query with one of them and no ORDER BY is
warned about, unless a later step of the transform orders the rows (a sort, an ORDER BY).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.selects import Findings
from capport_dagster.core.steps.base import Schema, StepKind
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import did_you_mean

__all__ = ["KINDS", "SqlStep", "explain_sql_error"]

SELF = "self"
#: String literals, quoted identifiers and comments: what the text checks below must skip.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/", re.DOTALL)
_QUERY = re.compile(r"\s*\(*\s*(?:SELECT|WITH)\b", re.IGNORECASE)
_TABLE_FUNCTION = re.compile(r"\b(read_\w+)\s*\(", re.IGNORECASE)
_UNORDERED = re.compile(r"\b(GROUP\s+BY|JOIN|DISTINCT|UNION)\b", re.IGNORECASE)
_ORDER_BY = re.compile(r"\bORDER\s+BY\b", re.IGNORECASE)
_SYNTAX = re.compile(
    r"sql parser error: (?:Expected: (?P<expected>.+?), found: (?P<found>.+?)"
    r"(?: at Line: (?P<line>\d+), Column: (?P<column>\d+))?|(?P<other>.+))$",
    re.DOTALL,
)
_RELATION = re.compile(r"relation '(?P<name>.+?)' was not found")
_COLUMN = re.compile(r'unable to find column "(?P<name>.+?)"; valid columns: \[(?P<valid>.*?)\]')
_TABLE_COLUMN = re.compile(r"no column named '(?P<name>.+?)' found in table '(?P<table>.+?)'")
_PLACEHOLDER = re.compile(r'Placeholder\("(?P<text>.+?)"\)')
#: Polars' SQL errors that do not depend on the tables' columns.
_STATIC = re.compile(
    r"sql parser error|relation '.+?' was not found|Placeholder\(|only one\) statement"
)


@dataclass(frozen=True)
class SqlStep:
    """`sql`: the query, and the frames it reads besides the step's input."""

    kind: ClassVar[str] = "sql"
    sql: str
    context: tuple[str, ...] = ()

    def reads(self) -> tuple[str, ...]:
        return self.context

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        """The query planned on empty frames of these schemas: Polars' errors in our words."""
        tables = {name: frames[name].lazy().collect_schema() for name in self.context}
        tables[SELF] = pl.Schema({name: dtype or pl.Null() for name, dtype in schema.items()})
        problem = self._plan_problem(tables)
        return [problem] if problem else []

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        tables = {name: frames[name].lazy() for name in self.context}
        context = pl.SQLContext(frames={**tables, SELF: frame}, eager=False)
        return context.execute(self.sql, eager=False)

    def _plan_problem(
        self, tables: Mapping[str, Mapping[str, Any]], *, static: bool = False
    ) -> str | None:
        """The problem of planning the query on empty frames of these schemas; `static`: only
        one the schemas cannot cause (syntax, tables), as frames without columns have all."""
        frames = {name: pl.LazyFrame(schema=dict(schema)) for name, schema in tables.items()}
        try:
            plan = pl.SQLContext(frames=frames, eager=False).execute(self.sql, eager=False)
            plan.collect_schema()
        except pl.exceptions.PolarsError as exc:
            if static and not _STATIC.search(str(exc)):
                return None
            return explain_sql_error(exc, tables)
        return None


def explain_sql_error(exc: Exception, tables: Mapping[str, Mapping[str, Any]]) -> str:
    """Polars' SQL error in our words (its first line where we do not know it)."""
    message = str(exc).strip()
    syntax = _SYNTAX.match(message)
    if syntax and syntax["other"]:
        return f"syntax error in the sql: {syntax['other'].strip()}"
    if syntax:
        found = syntax["found"]
        where = (
            f"at line {syntax['line']}, column {syntax['column']} of the sql"
            if syntax["line"]
            else "at the end of the sql"
        )
        found = "its end" if found == "EOF" else f"'{found}'"
        return f"syntax error {where}: expected {syntax['expected']}, found {found}"
    relation = _RELATION.search(message)
    if relation:
        name = relation["name"]
        others = [table for table in tables if table != SELF]
        hint = did_you_mean(name, [SELF, *others])
        listed = ", ".join([*others, name])
        return (
            f"sql reads table '{name}', which is neither {SELF} (the step's input) nor in"
            f" sql_context{hint}: add it to sql_context (sql_context: [{listed}])"
        )
    column = _COLUMN.search(message)
    if column:
        name = column["name"]
        valid = [part.strip().strip('"') for part in column["valid"].split(",") if part.strip()]
        return (
            f"sql reads column '{name}', not found{did_you_mean(name, valid)}"
            f" (columns: {', '.join(valid) or 'none'})"
        )
    if "only one) statement" in message:
        return "sql must be one query, got several statements (separated by ';')"
    field = _TABLE_COLUMN.search(message)
    if field and field["table"] in tables:
        name, valid = field["name"], list(tables[field["table"]])
        return (
            f"sql reads column '{name}' of table '{field['table']}', not found"
            f"{did_you_mean(name, valid)} (columns: {', '.join(valid) or 'none'})"
        )
    placeholder = _PLACEHOLDER.search(message)
    if placeholder:
        return (
            f"sql has {placeholder['text']!r}, which is not expanded in sql (no $NAME is; a"
            " transform's $$kwargs are, before the sql is read): write the value itself"
        )
    return f"sql: {message.split(chr(10))[0].strip()}"


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> SqlStep | None:
    messages = found.errors
    errors = len(messages)
    sql = step["sql"]
    if not isinstance(sql, str) or not sql.strip():
        got = "an empty string" if isinstance(sql, str) else describe(sql)
        messages.append(f'{context}: sql is a query such as "SELECT * FROM self", got {got}')
    names = _context_names(step.get("sql_context"), context, messages)
    if len(messages) > errors:
        return None
    text = _QUOTED.sub(" ", sql)
    function = _TABLE_FUNCTION.search(text)
    if not _QUERY.match(text):
        first = text.split()[0] if text.split() else text
        messages.append(
            f"{context}: sql must be one query (SELECT ... or WITH ...), got {first!r} first:"
            " a step makes a frame, it does not change tables"
        )
    elif function:
        messages.append(
            f"{context}: sql calls {function[1]}(), which reads a file outside the pipeline:"
            " load it in a stage and name its frame in sql_context"
        )
    else:
        empty = {name: {} for name in (SELF, *names)}
        problem = SqlStep(sql, names)._plan_problem(empty, static=True)
        if problem is not None:
            messages.append(f"{context}: {problem}")
    if len(messages) > errors:
        return None
    found.ordered = _ORDER_BY.search(text) is not None
    unordered = _UNORDERED.search(text)
    if unordered and not found.ordered:
        clause = " ".join(unordered[1].upper().split())
        found.unordered.append(
            f"{context}: sql has {clause} but no ORDER BY, so its row order may differ between"
            " runs and run modes: add an ORDER BY (or a sort step after it) for a stable output"
        )
    return SqlStep(sql, names)


def _context_names(value: Any, context: str, messages: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        messages.append(f"{context}: sql_context is a list of frame names, got {describe(value)}")
        return ()
    if SELF in names:
        messages.append(
            f"{context}: sql_context names '{SELF}', which is the step's input already; remove it"
        )
    twice = [name for name in dict.fromkeys(names) if names.count(name) > 1]
    if twice:
        messages.append(f"{context}: sql_context names '{twice[0]}' twice")
    return tuple(names)


KINDS = (StepKind("sql", ("sql",), _parse, options=("sql_context",)),)
