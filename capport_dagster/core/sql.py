"""The SQL tasks: `load_sql`, `save_sql`, and `postgres` (the original example's name).

Engines, measured on this project's machines (docs/reference.md, "SQL tasks"):

- reads: PostgreSQL through ADBC (`adbc-driver-postgresql`: about twice connectorx's speed on
  1M rows, and it reads `numeric` columns that connectorx refuses); MySQL/MariaDB and SQLite
  through connectorx (MySQL has no ADBC driver on PyPI; SQLite: connectorx was a little faster).
- writes: PostgreSQL and SQLite through ADBC's bulk ingest (COPY for PostgreSQL), MySQL/MariaDB
  through PyMySQL: `LOAD DATA LOCAL INFILE` of a CSV file Polars writes (`executemany`, one
  multi-row INSERT per batch, where the server refuses local files).

Every write is all-or-nothing. PostgreSQL and SQLite run the whole write in one transaction
(their DDL is transactional). MariaDB commits DDL at once, so a table that must be created is
filled under a staging name and renamed in place by one `RENAME TABLE`; rows written into an
existing table (replace's DELETE, append, upsert) go in one InnoDB transaction. The writers
and the column types of created tables are in `core/sql_write.py`.

A database read is not lazy: the query runs when the stage runs (the rows come back as a frame).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from capport_dagster.core.connections import Connection, Target, lookup_connection, url_connection
from capport_dagster.core.constraints import constraint_check
from capport_dagster.core.models import Model, reshape
from capport_dagster.core.registry import (
    BindContext,
    Frame,
    RunContext,
    SchemaContext,
    TaskRegistry,
    TaskSpec,
    validate_model,
)
from capport_dagster.core.sql_write import (
    AdbcWriter,
    MysqlWriter,
    column_type,
    quote_name,
    writable,
)
from capport_dagster.core.tasks import raw_names
from capport_dagster.core.variables import BUILTIN_VARIABLES, check_template, expand
from capport_dagster.errors import ConfigError, Location, TaskError

__all__ = ["SqlLoad", "SqlSave", "column_type", "register_sql_tasks"]


# --- args ------------------------------------------------------------------------------------


class _LoadEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    connection: str | None = None
    url: str | None = None
    table: str | None = None
    query: str | None = None
    df_name: str = Field(validation_alias=AliasChoices("df_name", "save_df"))
    model: str | None = None


class _PostgresEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    database: str
    table: str | None = None
    cmd: str | None = None
    save_df: str
    model: str | None = None


class _SaveEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    connection: str | None = None
    url: str | None = None
    table: str
    df_name: str = Field(validation_alias=AliasChoices("df_name", "from_df"))
    model: str | None = None
    mode: Literal["replace", "append", "upsert", "make_next"] = "replace"
    keys: list[str] | None = None
    create: bool = True


@dataclass(frozen=True)
class SqlLoad:
    """A checked `load_sql`: where to read, what (a table or a query template), into which frame."""

    connection: Connection
    table: str | None
    query: str | None
    df_name: str
    model: Model | None
    task: str = "load_sql"

    def tables(self) -> tuple[str, ...]:
        """What it reads, as the graph orders files: a query may read any table of its
        connection (`sql:NAME/*`, written by every save_sql on it)."""
        return (_table_token(self.connection, self.table or "*"),)


@dataclass(frozen=True)
class SqlSave:
    """A checked `save_sql`."""

    connection: Connection
    table: str
    df_name: str
    model: Model | None
    mode: str = "replace"
    keys: tuple[str, ...] = ()
    create: bool = True

    def sink_key(self) -> tuple[str, ...]:
        """The asset key's parts after the pipeline: the table, not the stage, is the asset."""
        return ("sql", self.connection.label, self.table)

    def asset_metadata(self) -> dict[str, str]:
        """What the table asset shows in Dagster (never the URL: only the entry's name)."""
        return {
            "capport/table": self.table,
            "capport/mode": self.mode,
            "capport/connection": self.connection.label,
        }

    def tables(self) -> tuple[str, ...]:
        written = () if self.mode == "make_next" else (self.table,)
        return tuple(_table_token(self.connection, name) for name in (*written, "*"))


def _table_token(connection: Connection, table: str) -> str:
    """A table as a file-like name the graph orders stages by (`sql:local/players`; the NUL
    keeps it from being read as a path under the working directory)."""
    return f"\0sql:{connection.label}/{table}".replace("$", "$$")


def _available() -> frozenset[str]:
    return frozenset(os.environ) | frozenset(BUILTIN_VARIABLES)


def _connection(entry: Any, task: str, ctx: BindContext) -> Connection:
    if (entry.connection is None) == (entry.url is None):
        raise ConfigError(f"task '{task}': give connection (an entry's name) or url", ctx.location)
    if entry.url is not None:
        return url_connection(entry.url, ctx.location, _available())
    return lookup_connection(ctx.config, entry.connection, ctx.location, _available())


def _load(
    task: str,
    connection: Connection,
    table: str | None,
    query: str | None,
    df: str,
    model: str | None,
    ctx: BindContext,
    query_key: str,
) -> SqlLoad:
    if table is None and query is None:
        raise ConfigError(f"task '{task}': give table or {query_key} (a SQL query)", ctx.location)
    if query is not None:
        check_template(query, _available(), ctx.location)
    return SqlLoad(connection, table, query, df, ctx.model(model) if model else None, task)


def _parse_load_sql(raw: Any, ctx: BindContext) -> SqlLoad:
    if isinstance(raw, Mapping) and "df_name" in raw and "save_df" in raw:
        raise ConfigError("task 'load_sql': give df_name or save_df, not both", ctx.location)
    entry = validate_model(_LoadEntry, raw, ctx.location, "args for task 'load_sql'")
    assert isinstance(entry, _LoadEntry)
    connection = _connection(entry, "load_sql", ctx)
    return _load(
        "load_sql", connection, entry.table, entry.query, entry.df_name, entry.model, ctx, "query"
    )


def _parse_postgres(raw: Any, ctx: BindContext) -> SqlLoad:
    if isinstance(raw, Mapping) and "from_df" in raw:
        raise ConfigError(
            "task 'postgres' reads a table or query into a frame (args: database, table or cmd,"
            " save_df, model); to write frame"
            f" '{raw['from_df']}' to PostgreSQL use save_sql (connection, table, df_name, mode)",
            ctx.location,
        )
    entry = validate_model(_PostgresEntry, raw, ctx.location, "args for task 'postgres'")
    assert isinstance(entry, _PostgresEntry)
    connection = lookup_connection(ctx.config, entry.database, ctx.location, _available())
    if connection.driver != "postgres":
        raise ConfigError(
            f"task 'postgres': database '{entry.database}' is a {connection.driver} connection"
            " (use load_sql for other databases)",
            ctx.location,
        )
    return _load(
        "postgres", connection, entry.table, entry.cmd, entry.save_df, entry.model, ctx, "cmd"
    )


def _parse_save_sql(raw: Any, ctx: BindContext) -> SqlSave:
    if isinstance(raw, Mapping) and "df_name" in raw and "from_df" in raw:
        raise ConfigError("task 'save_sql': give df_name or from_df, not both", ctx.location)
    entry = validate_model(_SaveEntry, raw, ctx.location, "args for task 'save_sql'")
    assert isinstance(entry, _SaveEntry)
    connection = _connection(entry, "save_sql", ctx)
    model = ctx.model(entry.model) if entry.model else None
    if entry.mode == "upsert" and not entry.keys:
        raise ConfigError(
            "task 'save_sql': mode upsert needs keys: the columns that identify a row",
            ctx.location,
        )
    if entry.keys and entry.mode != "upsert":
        raise ConfigError(
            f"task 'save_sql': keys are for mode upsert, not {entry.mode}", ctx.location
        )
    if model is not None and entry.keys:
        unknown = [key for key in entry.keys if key not in model.names]
        if unknown:
            raise ConfigError(
                f"task 'save_sql': keys {', '.join(unknown)} not in model '{model.name}'"
                f" (columns: {', '.join(model.names)})",
                ctx.location,
            )
    return SqlSave(
        connection,
        entry.table,
        entry.df_name,
        model,
        entry.mode,
        tuple(entry.keys or ()),
        entry.create,
    )


def _readable(frame: pl.DataFrame, model: Model | None) -> pl.DataFrame:
    """Undo what a database could not keep, before the model casts: naive datetimes into zoned
    model columns are UTC (how save_sql stores them in MySQL and SQLite), JSON text into list
    columns is decoded."""
    if model is None:
        return frame
    exprs = []
    for column in model.columns:
        dtype = frame.schema.get(column.name)
        if dtype is None:
            continue
        target = column.dtype
        if (
            isinstance(target, pl.Datetime)
            and target.time_zone
            and isinstance(dtype, pl.Datetime)
            and not dtype.time_zone
        ):
            exprs.append(pl.col(column.name).dt.replace_time_zone("UTC"))
        elif isinstance(target, pl.List) and dtype == pl.String():
            exprs.append(pl.col(column.name).str.json_decode(target))
    return frame.with_columns(exprs) if exprs else frame


# --- load ------------------------------------------------------------------------------------


def _select(args: SqlLoad, driver: str, variables: Mapping[str, str], location: Location) -> str:
    if args.query is not None:  # with a table too (capport's shape), the query is what runs
        return expand(args.query, variables, location)
    assert args.table is not None
    model = args.model
    if model is not None and not any(column.optional for column in model.columns):
        columns = ", ".join(quote_name(name, driver) for name in model.names)
    else:
        columns = "*"
    return f"SELECT {columns} FROM {quote_name(args.table, driver)}"


def read_sql(target: Target, query: str) -> pl.DataFrame:
    """Run `query` with the engine chosen for the driver (module docstring)."""
    if target.driver == "postgres":
        import adbc_driver_postgresql.dbapi as adbc

        with adbc.connect(target.url) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            with warnings.catch_warnings():
                # `numeric` arrives as an "opaque" extension over its text, which is what the
                # model's cast wants (uint64 is stored as numeric(20,0)).
                warnings.filterwarnings("ignore", "Extension type 'arrow.opaque'")
                return pl.from_arrow(cursor.fetch_arrow_table())  # type: ignore[return-value]
    if target.driver == "sqlite" and not os.path.isfile(target.sqlite_path):
        # connectorx would retry opening it for half a minute
        raise FileNotFoundError(f"no database file {target.sqlite_path}")
    if target.driver == "mysql":
        # connectorx's pool retries a refused connection for 30 s, logging each attempt to
        # stderr: connecting once first fails at once, with the server's reason.
        MysqlWriter.connect_to(target).close()
    return pl.read_database_uri(query, target.url, engine="connectorx")


def _run_load_sql(args: SqlLoad, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    target = args.connection.target(ctx.variables, ctx.location)
    query = _select(args, target.driver, ctx.variables, ctx.location)
    what = "query" if args.query is not None else f"table {args.table}"
    try:
        frame = read_sql(target, query)
    except Exception as exc:  # the engines raise their own types; each is the read's failure
        raise TaskError(
            f"{args.task}: reading {what} from connection '{args.connection.label}' failed: "
            f"{target.redact(_first_line(exc))}",
            ctx.location,
        ) from None
    frame = _readable(frame, args.model)
    if args.model is not None:
        frame = reshape(frame, args.model, location=ctx.location)
    ctx.log.info(
        f"{args.task}: read {frame.height} rows of {args.df_name} from connection"
        f" '{args.connection.label}' {what}"
    )
    return {args.df_name: frame}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().split("\n")[0] or type(exc).__name__
    return text if len(text) <= 300 else f"{text[:297]}..."


# --- save ------------------------------------------------------------------------------------


def _run_save_sql(args: SqlSave, frames: Mapping[str, Frame], ctx: RunContext) -> dict:
    source = frames[args.df_name]
    shaped = reshape(source, args.model, location=ctx.location) if args.model else source
    frame = shaped.lazy().collect()
    checks = (
        [constraint_check(frame, args.model, args.df_name)]
        if args.model is not None and args.model.checks
        else []
    )
    # Previews and the model's checks before anything is written (a failed check writes nothing).
    ctx.sink_pass.execute(
        [], sources={args.df_name: (frame, frame.lazy())}, checks=checks, location=ctx.location
    )
    missing = [key for key in args.keys if key not in frame.columns]
    if missing:
        raise TaskError(
            f"save_sql: keys {', '.join(missing)} not in frame '{args.df_name}'"
            f" (columns: {', '.join(frame.columns)})",
            ctx.location,
        )
    target = args.connection.target(ctx.variables, ctx.location)
    table = args.table
    if args.mode == "make_next":
        table = f"{table}_{datetime.now(UTC).strftime('%Y%m%d_%H%M%S_%f')[:-3]}"
    try:
        writer = MysqlWriter if target.driver == "mysql" else AdbcWriter
        writer(target, table, writable(frame, target.driver), args).write()
    except TaskError as exc:
        raise TaskError(exc.message, ctx.location) from None
    except Exception as exc:  # a driver's own error: the write was rolled back
        raise TaskError(
            f"save_sql: writing {args.df_name} to table {table} of connection"
            f" '{args.connection.label}' failed, nothing was written:"
            f" {target.redact(_first_line(exc))}",
            ctx.location,
        ) from None
    ctx.sink_pass.metadata.update(
        {
            "rows": frame.height,
            "table": table,
            "mode": args.mode,
            "connection": args.connection.label,
        }
    )
    ctx.log.info(
        f"save_sql: wrote {frame.height} rows of {args.df_name} to table {table} of connection"
        f" '{args.connection.label}' ({args.mode})"
    )
    return {}


# --- registration ----------------------------------------------------------------------------


def _model_frames(args: SqlLoad | SqlSave) -> tuple[tuple[str, Model], ...]:
    return ((args.df_name, args.model),) if args.model is not None else ()


def _load_schemas(
    args: SqlLoad, inputs: Mapping[str, pl.Schema], ctx: SchemaContext
) -> dict[str, pl.Schema]:
    """For `validate`: a load with a model gives exactly the model's columns; without one, the
    columns are the database's, unknown before the run."""
    if args.model is None:
        return {}
    return {args.df_name: args.model.schema()}


def register_sql_tasks(registry: TaskRegistry) -> TaskRegistry:
    """Register `load_sql`, `postgres` and `save_sql` in `registry` (the default has them)."""
    for name, parse, description in (
        ("load_sql", _parse_load_sql, "Read a table or a query from a SQL database into a frame."),
        ("postgres", _parse_postgres, "load_sql on a PostgreSQL connection (args database, cmd)."),
    ):
        registry.register(
            TaskSpec(
                name,
                _run_load_sql,
                reads=lambda a: (),
                writes=lambda a: (a.df_name,),
                parse=parse,
                model_frames=_model_frames,
                reads_files=SqlLoad.tables,
                output_schemas=_load_schemas,
                description=description,
            )
        )
    registry.register(
        TaskSpec(
            "save_sql",
            _run_save_sql,
            reads=lambda a: (a.df_name,),
            writes=lambda a: (),
            parse=_parse_save_sql,
            model_frames=_model_frames,
            salvage_reads=lambda raw: raw_names(raw, "df_name", "from_df"),
            writes_files=SqlSave.tables,
            description="Write a frame to a SQL table in one transaction (replace, append, ...).",
        )
    )
    return registry
