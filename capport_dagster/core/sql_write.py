"""How save_sql writes: table DDL and column types per driver, and the all-or-nothing writers.

PostgreSQL and SQLite write through ADBC in one transaction (their DDL is transactional);
MariaDB/MySQL through PyMySQL, where DDL commits at once (see :class:`MysqlWriter`). The type
mapping is documented in docs/reference.md ("SQL tasks").
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl

from capport_dagster.core.connections import Target
from capport_dagster.errors import Location, TaskError

if TYPE_CHECKING:
    from capport_dagster.core.sql import SqlSave

__all__ = ["AdbcWriter", "MysqlWriter", "column_type", "quote_name", "writable"]

#: Rows per INSERT statement for MariaDB/MySQL (when the server refuses LOAD DATA LOCAL).
MYSQL_BATCH = 5_000
#: MySQL/MariaDB errors meaning "loading local files is disabled" (server or client side).
_LOCAL_INFILE_REFUSED = frozenset({1148, 2068, 3948, 4166})


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


def writable(frame: pl.DataFrame, driver: str) -> pl.DataFrame:
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


# --- writers -------------------------------------------------------------------------------


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


class AdbcWriter(_Writer):
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


class MysqlWriter(_Writer):
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
