"""`sql: "SELECT ... FROM self ..."`, beside it `sql_context: [FRAME, ...]`: a Polars SQL query.

As capport: the step's input is the table `self`, each `sql_context` frame the table of its own
name (a dependency of every stage using the transform, as a join's right frame), and the query
runs in a fresh `pl.SQLContext`, lazily. The SQL is Polars' dialect, and Polars' semantics hold
(a column both sides of a JOIN have comes out as `name:table`).

Checked when the config is read (on frames without columns, so no data and no schema needed):
the SQL's syntax, one query (SELECT or WITH), the tables it names, and no table function
(`read_csv(...)` would read a file behind the pipeline's back). Checked against the schemas
before the plan is built: its columns and functions.

Column lineage (`lineage`) is told where Polars can tell it: a query of one table (`self` or a
`sql_context` frame) whose select list Polars reads item by item (`pl.sql_expr`, its
`meta.root_names()`), as many as the query's columns, which Polars' plan names.
Anything else (JOIN, UNION, subqueries, `* EXCLUDE`, a qualified `t.col`) is told only as "from
every column the step reads", for the columns Polars plans.

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
from capport_dagster.core.steps.base import Schema, Source, StepKind, StepLineage
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
#: Lineage: the start of a query whose select list is read item by item, its FROM, the table
#: after it, and what makes the rest more than one table's rows filtered, grouped or ordered.
_SELECT = re.compile(r"\s*SELECT\s+(?:(?:ALL|DISTINCT)\s+)?", re.IGNORECASE)
_FROM = re.compile(r"\bFROM\b", re.IGNORECASE)
_TABLE = re.compile(r"\s+(\w+)\b")
_NOT_ONE_TABLE = re.compile(
    r"\b(JOIN|UNION|INTERSECT|EXCEPT|SELECT|FROM|LATERAL|UNNEST)\b", re.IGNORECASE
)
_CLAUSE = re.compile(r"\b(WHERE|GROUP|HAVING|ORDER|LIMIT|OFFSET|QUALIFY|WINDOW)\b", re.IGNORECASE)


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

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage | None:
        """The query's columns (planned on empty frames: SQL names its columns itself), each
        from what its select item reads where the query is of one table and Polars reads every
        item (see the module docstring); else each from every column the step reads. None
        while a dtype is unknown (planning needs them)."""
        tables = {name: frames[name] for name in self.context if name in frames}
        tables[SELF] = schema
        if len(tables) <= len(self.context) or any(
            dtype is None for table in tables.values() for dtype in table.values()
        ):
            return None
        empty = {name: pl.LazyFrame(schema=dict(table)) for name, table in tables.items()}
        try:
            plan = pl.SQLContext(frames=empty, eager=False).execute(self.sql, eager=False)
            names = plan.collect_schema().names()
        except pl.exceptions.PolarsError:
            return None
        found = _select_lineage(self.sql, tables)
        if found is None or len(found) != len(names):
            return dict.fromkeys(names)
        # the select list's items are the query's columns, in order; Polars names them
        return dict(zip(names, found, strict=True))

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


def _select_lineage(
    sql: str, tables: Mapping[str, Schema]
) -> list[tuple[Source, ...] | None] | None:
    """The sources of each column of `SELECT items FROM table [WHERE/GROUP BY/ORDER BY/...]`,
    in order, each item read by Polars (`pl.sql_expr`, `meta.root_names()`); None for any
    other query. The caller checks the count against the planned columns, so a query read
    wrongly here is told as unknown, and names them as the plan does."""
    # quotes and comments masked, positions kept: "#" is no space, word, comma or parenthesis
    masked = _QUOTED.sub(lambda quoted: "#" * len(quoted[0]), sql)
    head = _SELECT.match(masked)
    if head is None:
        return None
    end = next((m.start() for m in _FROM.finditer(masked) if _depth(masked, m.start()) == 0), -1)
    table = _TABLE.match(masked, end + len("FROM")) if end > 0 else None
    if table is None or table[1] not in tables:
        return None
    rest = masked[table.end() :]
    if _NOT_ONE_TABLE.search(rest) or "," in _CLAUSE.split(rest, maxsplit=1)[0]:
        return None
    frame = None if table[1] == SELF else table[1]
    columns = tables[table[1]]
    found: list[tuple[Source, ...] | None] = []
    start = head.end()
    for stop in [*_top_level_commas(masked, start, end), end]:
        item, shown = sql[start:stop].strip(), masked[start:stop].strip()
        start = stop + 1
        if shown == "*":
            found += [((frame, name),) for name in columns]
            continue
        if shown.startswith("*") or shown.endswith("*"):
            return None  # * EXCLUDE / RENAME / REPLACE, t.*
        try:
            roots = pl.sql_expr(item).meta.root_names()
        except pl.exceptions.PolarsError:
            return None
        known = all(root in columns for root in roots)
        found.append(tuple((frame, root) for root in dict.fromkeys(roots)) if known else None)
    return found


def _depth(text: str, position: int) -> int:
    """How many parentheses are open at `position` (quotes already masked)."""
    return text.count("(", 0, position) - text.count(")", 0, position)


def _top_level_commas(text: str, start: int, end: int) -> list[int]:
    """The positions of the commas between `start` and `end` outside parentheses."""
    commas, depth = [], 0
    for position in range(start, end):
        char = text[position]
        depth += (char == "(") - (char == ")")
        if char == "," and depth == 0:
            commas.append(position)
    return commas


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
