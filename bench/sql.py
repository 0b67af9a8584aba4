"""load_sql and save_sql on PostgreSQL vs the same read and write with the engine called directly.

- read: a `load_sql` stage (capport, `sync_lazy`, in process) vs ADBC's PostgreSQL driver
  (`cursor.execute` + `fetch_arrow_table` + `pl.from_arrow`), the engine load_sql uses there;
- write: `load_parquet` + `save_sql` (mode replace: one transaction, TRUNCATE then COPY) vs
  `pl.read_parquet` + ADBC's bulk ingest (COPY) into the table in one transaction;
- each beside a hand-written Dagster job of the same ops around the direct code
  (`bench.dagster_jobs.sql_read_job`, `sql_write_job`: the floor, what any Dagster run costs
  around its ops, in process on the shared instance).

Needs the PostgreSQL server on 127.0.0.1:5432 (database `test`, trust auth); works in its own
schema, dropped afterwards. Both sides' results are checked to hold the same rows.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import adbc_driver_postgresql.dbapi as adbc
import polars as pl
from polars.testing import assert_frame_equal

from bench.data import mixed_rows
from bench.harness import (
    Comparison,
    alternate,
    run_capport_job,
    run_hand_written,
    timed,
)

__all__ = ["ingest", "read_rows", "sql"]

HAND_WRITTEN = "hand-written Dagster job"

URL = "postgresql://postgres@127.0.0.1:5432/test"

PIPELINE = """connection:
  wh: {{ url: "{url}" }}
pipeline:
  read:
    - {{ label: load, task: load_sql, args: {{ connection: wh, table: {schema}.source,
         df_name: R }} }}
  write:
    - {{ label: load, task: load_parquet, args: {{ filepath: $CONFIG_DIR/rows.parquet,
         df_name: R }} }}
    - {{ label: save, task: save_sql, args: {{ connection: wh, table: {schema}.capport_out,
         df_name: R }} }}
"""


def _execute(sql: str) -> None:
    with adbc.connect(URL) as conn, conn.cursor() as cursor:
        cursor.execute(sql)
        conn.commit()


def read_rows(query: str) -> pl.DataFrame:
    with adbc.connect(URL) as conn, conn.cursor() as cursor:
        cursor.execute(query)
        return pl.from_arrow(cursor.fetch_arrow_table())  # type: ignore[return-value]


def ingest(frame: pl.DataFrame, schema: str, table: str) -> None:
    with adbc.connect(URL) as conn, conn.cursor() as cursor:
        cursor.adbc_ingest(table, frame.to_arrow(), mode="replace", db_schema_name=schema)
        conn.commit()


def sql(work: Path, rows: int, rounds: int) -> list[Comparison]:
    schema = f"bench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    config = work / "config"
    config.mkdir()
    data = mixed_rows(rows, nullable_team=False)
    data.write_parquet(config / "rows.parquet")
    (config / "pipeline.yml").write_text(PIPELINE.format(url=URL, schema=schema))
    _execute(f'CREATE SCHEMA "{schema}"')
    try:
        with adbc.connect(URL) as conn, conn.cursor() as cursor:
            cursor.adbc_ingest("source", data.to_arrow(), mode="create", db_schema_name=schema)
            conn.commit()
        settings = {"mode": "sync_lazy", "output_dir": str(work / "out")}
        read = Comparison(f"load_sql from PostgreSQL, {rows:,} rows, in process")
        query = f'SELECT * FROM "{schema}".source'
        read.medians = alternate(
            {
                "capport": timed(lambda: run_capport_job(config, "read", settings)),
                HAND_WRITTEN: timed(
                    lambda: run_hand_written("bench.dagster_jobs", "sql_read_job", query)
                ),
                "adbc": timed(lambda: read_rows(query)),
            },
            rounds,
        )
        read.ratio("capport / adbc", "capport", "adbc", 1.1)
        read.ratio("capport / hand-written", "capport", HAND_WRITTEN)
        parquet = str(config / "rows.parquet")
        write = Comparison(f"save_sql to PostgreSQL, {rows:,} rows, in process")
        write.medians = alternate(
            {
                "capport": timed(lambda: run_capport_job(config, "write", settings)),
                HAND_WRITTEN: timed(
                    lambda: run_hand_written(
                        "bench.dagster_jobs", "sql_write_job", parquet, schema, "hand_out"
                    )
                ),
                "adbc": timed(lambda: ingest(pl.read_parquet(parquet), schema, "direct_out")),
            },
            rounds,
        )
        write.ratio("capport / adbc", "capport", "adbc", 1.1)
        write.ratio("capport / hand-written", "capport", HAND_WRITTEN)
        expected = read_rows(f'SELECT * FROM "{schema}".direct_out ORDER BY id')
        for table in ("capport_out", "hand_out"):
            assert_frame_equal(read_rows(f'SELECT * FROM "{schema}".{table} ORDER BY id'), expected)
        return [read, write]
    finally:
        _execute(f'DROP SCHEMA "{schema}" CASCADE')
