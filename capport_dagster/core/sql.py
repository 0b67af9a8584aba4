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
existing table (replace's DELETE, append, upsert) go in one InnoDB transaction.

A database read is not lazy: the query runs when the stage runs (the rows come back as a frame).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import polars as pl
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from capport_dagster.core.connections import Connection, Target, lookup_connection, url_connection
from capport_dagster.core.constraints import constraint_check
from capport_dagster.core.models import Model, reshape
from capport_dagster.core.registry import (
    DEFAULT_REGISTRY,
    BindContext,
    Frame,
    RunContext,
    TaskRegistry,
    TaskSpec,
    validate_model,
)
from capport_dagster.core.tasks import raw_names
from capport_dagster.core.variables import BUILTIN_VARIABLES, check_template, expand
from capport_dagster.errors import ConfigError, Location, TaskError

__all__ = ["MODES", "SqlLoad", "SqlSave", "column_type", "register_sql_tasks"]

MODES: tuple[str, ...] = ("replace", "append", "upsert", "make_next")
#: Rows per INSERT statement for MariaDB/MySQL (when the server refuses LOAD DATA LOCAL).
MYSQL_BATCH = 5_000
#: MySQL/MariaDB errors meaning "loading local files is disabled" (server or client side).
_LOCAL_INFILE_REFUSED = frozenset({1148, 2068, 3948, 4166})


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


# --- identifiers and types -------------------------------------------------------------------


def quote_name(name: str, driver: str) -> str:
    """A table (`schema.table`) or column name quoted for the driver."""
    mark = "`" if driver == "mysql" else '"'
    return ".".join(mark + part.replace(mark, mark * 2) + mark for part in name.split("."))


#: Column types of created tables, by Polars dtype and driver (docs/reference.md lists them).
_TYPES: Mapping[str, Mapping[type[pl.DataType], str]] = {
    "postgres": {
        pl.Int8: "smallint", pl.Int16: "smallint", pl.Int32: "integer", pl.Int64: "bigint",
        pl.UInt8: "smallint", pl.UInt16: "integer", pl.UInt32: "bigint",
        pl.UInt64: "numeric(20,0)", pl.Float32: "real", pl.Float64: "double precision",
        pl.String: "text", pl.Boolean: "boolean", pl.Date: "date", pl.Time: "time",
        pl.Binary: "bytea",
    },
    "mysql": {
        pl.Int8: "TINYINT", pl.Int16: "SMALLINT", pl.Int32: "INT", pl.Int64: "BIGINT",
        pl.UInt8: "TINYINT UNSIGNED", pl.UInt16: "SMALLINT UNSIGNED",
        pl.UInt32: "INT UNSIGNED", pl.UInt64: "BIGINT UNSIGNED", pl.Float32: "FLOAT",
        pl.Float64: "DOUBLE", pl.String: "LONGTEXT", pl.Boolean: "BOOLEAN", pl.Date: "DATE",
        pl.Time: "TIME(6)", pl.Binary: "LONGBLOB",
    },
    "sqlite": {
        pl.Int8: "INTEGER", pl.Int16: "INTEGER", pl.Int32: "INTEGER", pl.Int64: "INTEGER",
        pl.UInt8: "INTEGER", pl.UInt16: "INTEGER", pl.UInt32: "INTEGER", pl.UInt64: "TEXT",
        pl.Float32: "REAL", pl.Float64: "REAL", pl.String: "TEXT", pl.Boolean: "INTEGER",
        pl.Date: "TEXT", pl.Time: "TEXT", pl.Binary: "BLOB",
    },
}  # fmt: skip


def column_type(dtype: pl.DataType, driver: str) -> str:
    """The SQL type a created table gives a column of `dtype`."""
    if isinstance(dtype, type):  # `pl.String` as well as `pl.String()`
        dtype = dtype()
    if isinstance(dtype, pl.Datetime):
        return {
            "postgres": "timestamptz" if dtype.time_zone else "timestamp",
            "mysql": "DATETIME(6)",
            "sqlite": "TEXT",
        }[driver]
    if isinstance(dtype, pl.List) and driver == "postgres":
        return column_type(dtype.inner, driver) + "[]"
    if dtype.is_nested():
        return "LONGTEXT" if driver == "mysql" else "TEXT" if driver == "sqlite" else "jsonb"
    if isinstance(dtype, pl.Decimal):
        return f"DECIMAL({dtype.precision or 38},{dtype.scale})"
    return _TYPES[driver].get(type(dtype), "LONGTEXT" if driver == "mysql" else "TEXT")


def _writable(frame: pl.DataFrame, driver: str) -> pl.DataFrame:
    """The frame with the values each driver's bulk path takes for the column types above."""
    exprs = []
    for name, dtype in frame.schema.items():
        col = pl.col(name)
        if driver == "postgres":
            if dtype in (pl.Int8(), pl.UInt8()):
                exprs.append(col.cast(pl.Int16))
            elif dtype == pl.UInt16():
                exprs.append(col.cast(pl.Int32))
            elif dtype == pl.UInt32():
                exprs.append(col.cast(pl.Int64))
            elif dtype == pl.UInt64():
                exprs.append(col.cast(pl.Decimal(20, 0)))
            elif dtype.is_nested() and not isinstance(dtype, pl.List):
                exprs.append(col.struct.json_encode())
        elif driver == "sqlite":
            if isinstance(dtype, pl.Datetime):
                fmt = "%Y-%m-%dT%H:%M:%S%.f" + ("%:z" if dtype.time_zone else "")
                exprs.append(col.dt.to_string(fmt))
            elif isinstance(dtype, pl.Time):
                exprs.append(col.dt.to_string("%H:%M:%S%.f"))
            elif isinstance(dtype, pl.Date) or dtype == pl.UInt64():
                exprs.append(col.cast(pl.String))
            elif dtype == pl.Boolean():
                exprs.append(col.cast(pl.Int64))
            elif dtype.is_nested():
                exprs.append(_json(col, dtype))
        elif driver == "mysql":
            if isinstance(dtype, pl.Datetime) and dtype.time_zone:
                exprs.append(col.dt.convert_time_zone("UTC").dt.replace_time_zone(None))
            elif dtype.is_nested():
                exprs.append(_json(col, dtype))
    return frame.with_columns(exprs) if exprs else frame


def _json(col: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """A nested column as JSON text (null stays null), for databases without arrays."""
    if isinstance(dtype, pl.Struct):
        return col.struct.json_encode()
    name = col.meta.output_name()
    text = pl.struct(col.alias("v")).struct.json_encode().str.slice(5).str.head(-1)
    return pl.when(col.is_not_null()).then(text).alias(name)


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
        _MysqlWriter.connect_to(target).close()
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
        writer = _MysqlWriter if target.driver == "mysql" else _AdbcWriter
        writer(target, table, _writable(frame, target.driver), args).write()
    except TaskError as exc:
        raise TaskError(exc.message, ctx.location) from None
    except Exception as exc:  # a driver's own error: the write was rolled back
        raise TaskError(
            f"save_sql: writing {args.df_name} to table {table} of connection"
            f" '{args.connection.label}' failed, nothing was written:"
            f" {target.redact(_first_line(exc))}",
            ctx.location,
        ) from None
    ctx.log.info(
        f"save_sql: wrote {frame.height} rows of {args.df_name} to table {table} of connection"
        f" '{args.connection.label}' ({args.mode})"
    )
    return {}


class _Writer:
    def __init__(self, target: Target, table: str, frame: pl.DataFrame, args: SqlSave) -> None:
        self.target = target
        self.driver = target.driver
        self.table = table
        self.frame = frame
        self.args = args
        self.stage = f"{table}__capport_{os.getpid()}"

    def q(self, name: str) -> str:
        return quote_name(name, self.driver)

    def create_sql(self, table: str) -> str:
        model = {c.name: c.dtype for c in self.args.model.columns} if self.args.model else {}
        columns = ", ".join(
            f"{self.q(name)} {column_type(model.get(name, dtype), self.driver)}"
            for name, dtype in self.frame.schema.items()
        )
        return f"CREATE TABLE {self.q(table)} ({columns})"

    def column_list(self) -> str:
        return ", ".join(self.q(name) for name in self.frame.columns)

    def upsert_sql(self) -> list[str]:
        """Delete the rows whose keys come again, then insert them all (no unique index needed)."""
        table, stage = self.q(self.table), self.q(self.stage)
        match = " AND ".join(f"t.{self.q(k)} = s.{self.q(k)}" for k in self.args.keys)
        if self.driver == "mysql":
            delete = f"DELETE t FROM {table} t JOIN {stage} s ON {match}"
        else:
            delete = (
                f"DELETE FROM {table} AS t WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE {match})"
                if self.driver == "postgres"
                else f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM {stage} AS s WHERE "
                + " AND ".join(f"{table}.{self.q(k)} = s.{self.q(k)}" for k in self.args.keys)
                + ")"
            )
        cols = self.column_list()
        return [delete, f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {stage}"]

    def missing(self) -> TaskError:
        return TaskError(
            f"save_sql: table {self.table} does not exist and create is false (create it, or"
            " set create: true)",
            Location(),
        )


class _AdbcWriter(_Writer):
    """PostgreSQL and SQLite: DDL and rows in one transaction, rolled back by any failure (a
    killed process's transaction is rolled back by the server, or by SQLite's journal)."""

    @contextmanager
    def connect(self) -> Iterator[Any]:
        if self.driver == "postgres":
            import adbc_driver_postgresql.dbapi as adbc
        else:
            import adbc_driver_sqlite.dbapi as adbc  # type: ignore[no-redef]
        target = self.target.url if self.driver == "postgres" else self.target.sqlite_path
        if self.driver == "sqlite":
            os.makedirs(os.path.dirname(target), exist_ok=True)
        with adbc.connect(target) as conn:  # autocommit off: one transaction until commit
            yield conn

    def exists(self, cursor: Any, table: str) -> bool:
        if self.driver == "postgres":
            cursor.execute("SELECT to_regclass($1) IS NOT NULL", (self.q(table),))
        else:
            cursor.execute(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (table,),
            )
        return bool(cursor.fetchone()[0])

    def ingest(self, cursor: Any, table: str) -> None:
        schema, _, name = table.rpartition(".")
        options = {"db_schema_name": schema} if schema else {}
        cursor.adbc_ingest(name, self.frame.to_arrow(), mode="append", **options)

    def write(self) -> None:
        with self.connect() as conn, conn.cursor() as cursor:
            exists = self.exists(cursor, self.table)
            if not exists:
                if not self.args.create:
                    raise self.missing()
                cursor.execute(self.create_sql(self.table))
            if self.args.mode == "replace" and exists:
                # PostgreSQL's TRUNCATE is transactional and does not leave a million dead
                # rows behind (DELETE made a 1M-row replace 1.8x the bare COPY); readers wait
                # for the commit instead of seeing the old rows. SQLite's bare DELETE truncates.
                verb = "TRUNCATE TABLE" if self.driver == "postgres" else "DELETE FROM"
                cursor.execute(f"{verb} {self.q(self.table)}")
            if self.args.mode == "upsert" and exists:
                cursor.execute(self.create_sql(self.stage))
                self.ingest(cursor, self.stage)
                for statement in self.upsert_sql():
                    cursor.execute(statement)
                cursor.execute(f"DROP TABLE {self.q(self.stage)}")
            elif len(self.frame):
                self.ingest(cursor, self.table)
            conn.commit()


class _MysqlWriter(_Writer):
    """MariaDB/MySQL: rows into an existing table in one InnoDB transaction; a new table is
    filled under a staging name first and renamed in place (DDL commits at once there)."""

    def connect(self) -> Any:
        return self.connect_to(self.target)

    @staticmethod
    def connect_to(target: Target) -> Any:
        from urllib.parse import unquote, urlsplit

        import pymysql

        parts = urlsplit(target.url)
        return pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=unquote(parts.username or "root"),
            password=unquote(parts.password or ""),
            database=parts.path.lstrip("/") or None,
            autocommit=False,
            local_infile=True,
        )

    def exists(self, cursor: Any, table: str) -> bool:
        schema, _, name = table.rpartition(".")
        cursor.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = %s AND"
            " table_schema = COALESCE(%s, DATABASE())",
            (name, schema or None),
        )
        return bool(cursor.fetchone()[0])

    def insert(self, cursor: Any, table: str) -> None:
        """LOAD DATA LOCAL INFILE from a CSV file written by Polars (3.5x `executemany` on
        200k rows); `executemany` where the server refuses local files."""
        import pymysql

        if not len(self.frame):
            return
        with tempfile.TemporaryDirectory(prefix="capport-sql-") as directory:
            path = os.path.join(directory, "rows.csv")
            bools = [n for n, dtype in self.frame.schema.items() if dtype == pl.Boolean()]
            self.frame.with_columns(pl.col(bools).cast(pl.Int8)).write_csv(
                path,
                include_header=False,
                null_value="NULL",  # unquoted NULL is SQL NULL; text "NULL" is quoted
                quote_style="non_numeric",
                datetime_format="%Y-%m-%d %H:%M:%S%.6f",
                time_format="%H:%M:%S%.6f",
            )
            statement = (
                f"LOAD DATA LOCAL INFILE %s INTO TABLE {self.q(table)} CHARACTER SET utf8mb4"
                " FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' ESCAPED BY ''"
                f" LINES TERMINATED BY '\\n' ({self.column_list()})"
            )
            try:
                cursor.execute(statement, (path,))
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in _LOCAL_INFILE_REFUSED:
                    raise
            else:
                # LOCAL implies IGNORE: a value that does not fit is a warning, not an error
                # (stored as 0, truncated, or skipped): any warning fails the write.
                cursor.execute("SHOW WARNINGS LIMIT 1")
                warning = cursor.fetchone()
                if warning is not None:
                    raise ValueError(f"{warning[0]} {warning[1]}: {warning[2]}")
                return
        marks = ", ".join(["%s"] * self.frame.width)
        statement = f"INSERT INTO {self.q(table)} ({self.column_list()}) VALUES ({marks})"
        for batch in self.frame.iter_slices(MYSQL_BATCH):
            cursor.executemany(statement, batch.rows())

    def write(self) -> None:
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(f"DROP TABLE IF EXISTS {self.q(self.stage)}")
                exists = self.exists(cursor, self.table)
                if not exists:
                    if not self.args.create:
                        raise self.missing()
                    cursor.execute(self.create_sql(self.stage))
                    self.insert(cursor, self.stage)
                    conn.commit()
                    cursor.execute(f"RENAME TABLE {self.q(self.stage)} TO {self.q(self.table)}")
                    return
                if self.args.mode == "upsert":
                    cursor.execute(self.create_sql(self.stage))
                    self.insert(cursor, self.stage)
                    conn.commit()
                    conn.begin()
                    for statement in self.upsert_sql():
                        cursor.execute(statement)
                else:
                    conn.begin()
                    if self.args.mode == "replace":
                        cursor.execute(f"DELETE FROM {self.q(self.table)}")
                    self.insert(cursor, self.table)
                conn.commit()
        except BaseException:
            conn.rollback()
            raise
        finally:
            try:
                with conn.cursor() as cursor:
                    cursor.execute(f"DROP TABLE IF EXISTS {self.q(self.stage)}")
            finally:
                conn.close()


# --- registration ----------------------------------------------------------------------------


def _model_frames(args: SqlLoad | SqlSave) -> tuple[tuple[str, Model], ...]:
    return ((args.df_name, args.model),) if args.model is not None else ()


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


register_sql_tasks(DEFAULT_REGISTRY)
