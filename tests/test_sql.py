"""load_sql, save_sql and postgres against real databases: SQLite in tmp_path, and the
PostgreSQL and MariaDB servers on loopback (skipped with the reason where they are missing,
failing in CI). Each test works in its own schema (PostgreSQL), database (MariaDB) or file
(SQLite), removed afterwards."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from datetime import time as clock
from pathlib import Path

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance
from polars.testing import assert_frame_equal

from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import load_project
from capport_dagster.core.models import DTYPES
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import TaskRegistry, TaskSpec
from capport_dagster.core.sql import column_type
from capport_dagster.errors import TaskError, ValidationError
from tests.conftest import capport, run_stages
from tests.services import require_service

PG_PASSWORD = "pg-Pass-" + uuid.uuid4().hex[:8]  # trust auth accepts it; it must never show


@dataclass
class Database:
    """One test's database: the connection entry and a way to run SQL on it directly."""

    driver: str
    entry: Mapping[str, object]
    env: Mapping[str, str]
    table_prefix: str
    execute: Callable[[str], list[tuple]]


def _sqlite(tmp_path: Path) -> Iterator[Database]:
    import sqlite3

    path = tmp_path / "db" / "test.db"

    def execute(sql: str) -> list[tuple]:
        with sqlite3.connect(path) as conn:
            return conn.execute(sql).fetchall()

    yield Database("sqlite", {"driver": "sqlite", "path": str(path)}, {}, "", execute)


def _postgres() -> Iterator[Database]:
    require_service("postgres")
    import adbc_driver_postgresql.dbapi as adbc

    schema = f"capport_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    url = "postgresql://postgres@127.0.0.1:5432/test"

    def execute(sql: str) -> list[tuple]:
        with adbc.connect(url) as conn, conn.cursor() as cursor:
            cursor.execute(sql)
            rows = cursor.fetchall() if cursor.description else []
            conn.commit()
            return rows

    execute(f'CREATE SCHEMA "{schema}"')
    entry = {
        "host_env": "TEST_PG_HOST",
        "port": 5432,
        "user_env": "TEST_PG_USER",
        "password_env": "TEST_PG_PW",
        "db_env": "TEST_PG_DB",
    }
    env = {
        "TEST_PG_HOST": "127.0.0.1",
        "TEST_PG_USER": "postgres",
        "TEST_PG_PW": PG_PASSWORD,
        "TEST_PG_DB": "test",
    }
    try:
        yield Database("postgres", entry, env, f"{schema}.", execute)
    finally:
        execute(f'DROP SCHEMA "{schema}" CASCADE')


def _mariadb() -> Iterator[Database]:
    require_service("mariadb")
    import pymysql

    name = f"capport_{os.getpid()}_{uuid.uuid4().hex[:8]}"

    def execute(sql: str, database: str | None = name) -> list[tuple]:
        conn = pymysql.connect(host="127.0.0.1", port=3306, user="root", database=database)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                rows = list(cursor.fetchall())
            conn.commit()
            return rows
        finally:
            conn.close()

    execute(f"CREATE DATABASE `{name}`", database=None)
    try:
        yield Database("mysql", {"url": f"mysql://root@127.0.0.1:3306/{name}"}, {}, "", execute)
    finally:
        execute(f"DROP DATABASE `{name}`", database=None)


@pytest.fixture(params=["sqlite", "postgres", "mariadb"])
def db(request, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    factory = {"sqlite": lambda: _sqlite(tmp_path), "postgres": _postgres, "mariadb": _mariadb}
    for database in factory[request.param]():
        for name, value in database.env.items():
            monkeypatch.setenv(name, value)
        yield database


@pytest.fixture
def postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    for database in _postgres():
        for name, value in database.env.items():
            monkeypatch.setenv(name, value)
        yield database


# --- helpers -------------------------------------------------------------------------------

#: Frames the `make` task of these tests writes, by name (set by each test).
FRAMES: dict[str, pl.DataFrame] = {}


def _registry() -> TaskRegistry:
    registry = DEFAULT_REGISTRY.copy()
    registry.register(
        TaskSpec(
            "make",
            lambda args, frames, ctx: {args: FRAMES[args]},
            reads=lambda a: (),
            writes=lambda a: (a,),
        )
    )
    return registry


def _yaml(value: object) -> str:
    import json

    return json.dumps(value)


def run(
    write_config,
    db: Database,
    stages: list[dict],
    models: Mapping[str, Mapping[str, str]] | None = None,
    ref_date: str = "2024-03-01",
) -> dict[str, pl.DataFrame]:
    """Run the stages (as YAML) in the core, sync eager; the frames written, by name."""
    text = _yaml(
        {
            "connection": {"wh": dict(db.entry)},
            "model": dict(models or {}),
            "pipeline": {"p": stages},
        }
    )
    config = write_config({"p.yml": text})
    graph = load_project(config, _registry()).graphs["p"]
    variables = {**os.environ, "REF_DATE": ref_date}
    store = run_stages(graph, RunMode.SYNC_EAGER, variables)
    return {version.name: frame for version, frame in store.items()}


def save(table: str, frame: str, **args: object) -> dict:
    return {"label": f"save_{uuid.uuid4().hex[:6]}", "task": "save_sql",
            "args": {"connection": "wh", "table": table, "df_name": frame, **args}}  # fmt: skip


def load(frame: str, **args: object) -> dict:
    return {"label": f"load_{frame}", "task": "load_sql",
            "args": {"connection": "wh", "df_name": frame, **args}}  # fmt: skip


def make(frame: str) -> dict:
    return {"label": f"make_{frame}", "task": "make", "args": frame}


# --- every dtype ---------------------------------------------------------------------------

ALL_DTYPES = {name.replace("[", "_").replace("]", ""): name for name in DTYPES}
VALUES: dict[str, list] = {
    "int": [1, -(2**63), None],
    "int8": [-128, 127, None],
    "int16": [-(2**15), 2**15 - 1, None],
    "int32": [-(2**31), 2**31 - 1, None],
    "int64": [2**63 - 1, 0, None],
    "uint8": [0, 255, None],
    "uint16": [0, 2**16 - 1, None],
    "uint32": [0, 2**32 - 1, None],
    "uint64": [0, 2**64 - 1, None],
    "float": [1.5, -2.25, None],
    "double": [1e300, -0.1, None],
    "str": ["NULL", "quote ' \" and \\ and , and\na newline", None],
    "char": ["a", "é", None],
    "bool": [True, False, None],
    "time": [clock(0, 0), clock(23, 59, 59, 123000), None],
    "date": [date(1970, 1, 1), date(9999, 12, 31), None],
    "datetime_utc": [datetime(2024, 1, 2, 3, 4, 5, 678000), datetime(1999, 12, 31), None],
    "datetime_nyt": [datetime(2024, 7, 1, 12), datetime(2024, 1, 1, 0, 0, 0, 1000), None],
    "list[str]": [["a", "b"], [], None],
    "list[int]": [[1, 2**62], [], None],
    "list[double]": [[0.5, -1.0], [], None],
}


def all_dtypes_frame() -> pl.DataFrame:
    columns = {}
    for column, name in ALL_DTYPES.items():
        dtype = DTYPES[name]
        series = pl.Series(column, VALUES[name])
        if isinstance(dtype, pl.Datetime):
            series = series.dt.replace_time_zone(dtype.time_zone).dt.cast_time_unit("ms")
        columns[column] = series.cast(dtype)
    return pl.DataFrame(columns)


def test_every_model_dtype_round_trips(write_config, db):
    FRAMES["ALL"] = all_dtypes_frame()
    table = f"{db.table_prefix}all_types"
    frames = run(
        write_config,
        db,
        [make("ALL"), save(table, "ALL", model="every"), load("BACK", table=table, model="every")],
        models={"every": ALL_DTYPES},
    )
    assert_frame_equal(frames["BACK"], FRAMES["ALL"])


def test_a_frame_without_model_round_trips_its_plain_dtypes(write_config, db):
    FRAMES["A"] = pl.DataFrame({"id": [1, 2], "name": ["a", None], "x": [0.5, None]})
    table = f"{db.table_prefix}plain"
    frames = run(write_config, db, [make("A"), save(table, "A"), load("B", table=table)])
    assert_frame_equal(frames["B"], FRAMES["A"], check_dtypes=False)


# --- modes ---------------------------------------------------------------------------------

MODEL = {"people": {"id": "int", "name": "str"}}


def rows(db: Database, table: str) -> list[tuple]:
    return sorted(tuple(r) for r in db.execute(f"SELECT id, name FROM {table}"))


def test_replace_append_and_upsert(write_config, db):
    table = f"{db.table_prefix}people"
    FRAMES["A"] = pl.DataFrame({"id": [1, 2], "name": ["ann", "bob"]})
    FRAMES["B"] = pl.DataFrame({"id": [2, 3], "name": ["bea", "cid"]})
    run(write_config, db, [make("A"), save(table, "A", model="people")], MODEL)
    assert rows(db, table) == [(1, "ann"), (2, "bob")]
    run(write_config, db, [make("A"), save(table, "A", model="people", mode="replace")], MODEL)
    assert rows(db, table) == [(1, "ann"), (2, "bob")]
    run(write_config, db, [make("B"), save(table, "B", model="people", mode="append")], MODEL)
    assert rows(db, table) == [(1, "ann"), (2, "bea"), (2, "bob"), (3, "cid")]
    run(write_config, db, [make("A"), save(table, "A", model="people", mode="replace")], MODEL)
    upsert = save(table, "B", model="people", mode="upsert", keys=["id"])
    run(write_config, db, [make("B"), upsert], MODEL)
    assert rows(db, table) == [(1, "ann"), (2, "bea"), (3, "cid")]
    # upsert into a table that does not exist creates it
    other = f"{db.table_prefix}fresh"
    run(write_config, db, [make("B"), save(other, "B", mode="upsert", keys=["id"])], MODEL)
    assert rows(db, other) == [(2, "bea"), (3, "cid")]


def test_make_next_writes_a_new_timestamped_table(write_config, db):
    FRAMES["A"] = pl.DataFrame({"id": [1], "name": ["ann"]})
    table = f"{db.table_prefix}snap"
    run(write_config, db, [make("A"), save(table, "A", mode="make_next")])
    if db.driver == "postgres":
        schema = db.table_prefix.rstrip(".")
        names = db.execute(
            f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'"
        )
    elif db.driver == "mysql":
        names = db.execute("SHOW TABLES")
    else:
        names = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    [(name,)] = names
    assert name.startswith("snap_") and len(name) == len("snap_20240102_030405_123")
    assert rows(db, f"{db.table_prefix}{name}") == [(1, "ann")]


def test_create_false_on_a_missing_table_fails_naming_it(write_config, db):
    FRAMES["A"] = pl.DataFrame({"id": [1], "name": ["ann"]})
    table = f"{db.table_prefix}absent"
    with pytest.raises(TaskError) as info:
        run(write_config, db, [make("A"), save(table, "A", create=False)])
    assert str(info.value) == (
        f"config/p.yml:1, pipeline 'p', stage '{info.value.location.stage}' (#2): save_sql:"
        f" table {table} does not exist and create is false (create it, or set create: true)"
    )


def test_a_failed_write_leaves_the_table_as_it_was(write_config, db):
    table = f"{db.table_prefix}people"
    FRAMES["A"] = pl.DataFrame({"id": [1, 2], "name": ["ann", "bob"]})
    run(write_config, db, [make("A"), save(table, "A", model="people")], MODEL)
    # a column the table does not have: the replace (DELETE, then the insert fails) rolls back
    FRAMES["BAD"] = pl.DataFrame({"id": [3], "name": ["zed"], "extra": [1]})
    with pytest.raises(TaskError, match=r"save_sql: writing BAD to table .* failed, nothing was"):
        run(write_config, db, [make("BAD"), save(table, "BAD", mode="replace")])
    assert rows(db, table) == [(1, "ann"), (2, "bob")]


@pytest.mark.parametrize("server", ["postgres", "mariadb"])
def test_a_value_the_column_refuses_fails_the_write(write_config, monkeypatch, server):
    """A text id into an integer column (SQLite would store it: columns have affinities only).
    MariaDB's LOAD DATA LOCAL only warns about such a value: the warning fails the write."""
    for db in {"postgres": _postgres, "mariadb": _mariadb}[server]():
        for name, value in db.env.items():
            monkeypatch.setenv(name, value)
        table = f"{db.table_prefix}people"
        FRAMES["A"] = pl.DataFrame({"id": [1, 2], "name": ["ann", "bob"]})
        run(write_config, db, [make("A"), save(table, "A", model="people")], MODEL)
        FRAMES["BAD"] = pl.DataFrame({"id": ["3", "x"], "name": ["cid", "zed"]})
        with pytest.raises(TaskError) as info:
            run(write_config, db, [make("BAD"), save(table, "BAD", mode="append")])
        assert "save_sql: writing BAD to table" in info.value.message
        assert "failed, nothing was written" in info.value.message
        assert rows(db, table) == [(1, "ann"), (2, "bob")]


def test_without_local_infile_mariadb_rows_go_in_by_batched_inserts(write_config, monkeypatch):
    """A client or server that refuses LOAD DATA LOCAL (MariaDB says 4166): every dtype goes
    in by `executemany`, in batches, and round-trips as through LOAD DATA."""
    import pymysql

    from capport_dagster.core import sql_write

    connect = pymysql.connect
    monkeypatch.setattr(pymysql, "connect", lambda **kw: connect(**{**kw, "local_infile": False}))
    monkeypatch.setattr(sql_write, "MYSQL_BATCH", 2)  # three rows: two batches
    for db in _mariadb():
        FRAMES["ALL"] = all_dtypes_frame()
        stages = [make("ALL"), save("all_types", "ALL", model="every"),
                  load("BACK", table="all_types", model="every")]  # fmt: skip
        frames = run(write_config, db, stages, models={"every": ALL_DTYPES})
        assert_frame_equal(frames["BACK"], FRAMES["ALL"])


def test_a_query_expands_ref_date(write_config, db):
    table = f"{db.table_prefix}days"
    FRAMES["A"] = pl.DataFrame({"day": ["2024-03-01", "2024-03-02"], "n": [1, 2]})
    stages = [
        make("A"),
        save(table, "A"),
        load("B", query=f"SELECT n FROM {table} WHERE day = '$REF_DATE'"),
    ]
    frames = run(write_config, db, stages, ref_date="2024-03-02")
    assert frames["B"]["n"].to_list() == [2]


def test_a_read_failure_names_the_connection_and_table(write_config, db):
    table = f"{db.table_prefix}nowhere"
    FRAMES["A"] = pl.DataFrame({"id": [1]})
    if db.driver == "sqlite":
        run(write_config, db, [make("A"), save(f"{table}_other", "A")])  # the file exists
    with pytest.raises(TaskError) as info:
        run(write_config, db, [load("B", table=table)])
    assert info.value.message.startswith(
        f"load_sql: reading table {table} from connection 'wh' failed: "
    )


def test_an_unreachable_mariadb_database_fails_at_once(write_config, monkeypatch):
    """No 30 s of connectorx's pool retrying: the server's refusal, masked, in one line."""
    require_service("mariadb")
    monkeypatch.setenv("TEST_MY_URL", "mysql://root:Secret-pw-1@127.0.0.1:3306/no_such_db_here")
    db = Database("mysql", {"url": "$TEST_MY_URL"}, {}, "", lambda sql: [])
    with pytest.raises(TaskError) as info:
        run(write_config, db, [load("B", table="t")])
    assert info.value.message.startswith("load_sql: reading table t from connection 'wh' failed: ")
    assert "Access denied for user" in info.value.message  # root has no password here
    assert "Secret-pw-1" not in info.value.message


def test_column_types_per_driver():
    assert column_type(pl.Datetime("ms", "UTC"), "postgres") == "timestamptz"
    assert column_type(pl.List(pl.String), "postgres") == "text[]"
    assert column_type(pl.UInt64(), "mysql") == "BIGINT UNSIGNED"
    assert column_type(pl.Boolean(), "sqlite") == "INTEGER"


# --- postgres task, asset keys, secrets, kill ------------------------------------------------


def test_the_postgres_task_reads_with_the_original_arg_names(write_config, postgres):
    table = f"{postgres.table_prefix}players"
    postgres.execute(f"CREATE TABLE {table} (id bigint, name text)")
    postgres.execute(f"INSERT INTO {table} VALUES (8478402, 'Connor'), (8471675, 'Sidney')")
    stage = {
        "label": "players",
        "task": "postgres",
        "args": {
            "database": "wh",
            "table": table,
            "model": "people",
            "save_df": "P",
            "cmd": f"SELECT id, name FROM {table} ORDER BY id",
        },
    }
    frames = run(write_config, postgres, [stage], MODEL)
    assert_frame_equal(
        frames["P"], pl.DataFrame({"id": [8471675, 8478402], "name": ["Sidney", "Connor"]})
    )


def pg_pipeline(table: str, frame_rows: int = 3, mode: str = "replace") -> dict[str, str]:
    entry = (
        "{ host_env: TEST_PG_HOST, port: 5432, user_env: TEST_PG_USER,"
        " password_env: TEST_PG_PW, db_env: TEST_PG_DB }"
    )
    return {
        "c.yml": f"connection:\n  wh: {entry}\n",
        "in.csv": "id,name\n" + "".join(f"{i},name{i}\n" for i in range(frame_rows)),
        "p.yml": f"""
            model:
              people: {{ id: int, name: str }}
            pipeline:
              p:
                - label: load
                  task: load_csv
                  args: {{ filepath: $CONFIG_DIR/in.csv, df_name: A, model: people }}
                - label: save
                  task: save_sql
                  args: {{ connection: wh, table: {table}, df_name: A, mode: {mode} }}
                - label: back
                  task: load_sql
                  args: {{ connection: wh, table: {table}, df_name: B }}
        """,
        "l.yml": "logger:\n  default: { level: debug, output: logs }\n",
    }


def test_the_password_never_shows_in_output_logs_events_or_metadata(
    write_config, postgres, tmp_path, monkeypatch
):
    table = f"{postgres.table_prefix}people"
    config = write_config(pg_pipeline(table))
    home = tmp_path / "home"
    home.mkdir()
    result = capport("run", "-c", str(config), "-p", "p", "-o", "out", DAGSTER_HOME=str(home))
    assert result.returncode == 0, result.stderr
    [log] = list((tmp_path / "logs").iterdir())
    text = log.read_text()
    assert f"save_sql: wrote 3 rows of A to table {table} of connection 'wh' (replace)" in text
    assert f"load_sql: read 3 rows of B from connection 'wh' table {table}" in text
    # a failing run quotes the server's error, masked
    monkeypatch.setenv("TEST_PG_DB", f"no_db_{PG_PASSWORD}")
    failed = capport("run", "-c", str(config), "-p", "p", "-o", "out", DAGSTER_HOME=str(home))
    assert failed.returncode == 1
    assert "save_sql: writing A to table" in failed.stderr
    assert 'database "no_db_***" does not exist' in failed.stderr  # the server quoted it
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        events = "\n".join(
            str(record) for run in instance.get_runs() for record in instance.all_logs(run.run_id)
        )
    everything = result.stdout + result.stderr + failed.stdout + failed.stderr + text + events
    assert PG_PASSWORD not in everything


def test_a_sql_sinks_asset_is_keyed_by_its_table(write_config, postgres):
    from capport_dagster.translate.build import load_definitions

    table = f"{postgres.table_prefix}people"
    config = write_config(pg_pipeline(table))
    graph = load_definitions(config).resolve_asset_graph()
    key = AssetKey(["p", "sql", "wh", table])
    assert key in graph.get_all_asset_keys()
    metadata = graph.get(key).metadata
    assert metadata["capport/task"] == "save_sql"
    assert (metadata["capport/table"], metadata["capport/mode"]) == (table, "replace")
    assert metadata["capport/connection"] == "wh"


def test_a_killed_save_sql_leaves_the_table_unchanged(write_config, postgres, tmp_path):
    """SIGKILL while PostgreSQL receives the COPY of 2M rows: the server rolls back."""
    table = f"{postgres.table_prefix}people"
    config = write_config(pg_pipeline(table, frame_rows=3))
    first = capport("run", "-c", str(config), "-p", "p", "-o", "out")
    assert first.returncode == 0, first.stderr
    before = rows(postgres, table)
    assert before == [(0, "name0"), (1, "name1"), (2, "name2")]
    (config / "in.csv").write_text(
        "id,name\n" + "".join(f"{i},name{i}\n" for i in range(2_000_000))
    )
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    process = subprocess.Popen(
        [sys.executable, "-m", "capport_dagster.cli", "run", "-c", str(config), "-p", "p",
         "-o", "out", "--no-preview"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            copying = postgres.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%' AND"
                f" query LIKE '%{table.split('.')[0]}%' AND pid <> pg_backend_pid()"
            )
            if copying[0][0]:
                break
            assert process.poll() is None, "the run ended before its write began"
            time.sleep(0.02)
        else:
            pytest.fail("the write never began")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    # the server notices the dead connection and rolls its transaction back
    deadline = time.monotonic() + 30
    while postgres.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%' AND pid <> pg_backend_pid()"
        f" AND query LIKE '%{table.split('.')[0]}%' AND state <> 'idle'"
    )[0][0]:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert rows(postgres, table) == before


def test_a_killed_save_sql_on_mariadb_leaves_the_table_unchanged(write_config, tmp_path):
    """SIGKILL during the LOAD DATA of 2M rows after the DELETE of a replace: InnoDB rolls the
    dead connection's transaction back."""
    for db in _mariadb():
        database = db.entry["url"].rsplit("/", 1)[1]  # type: ignore[union-attr]
        pipeline = pg_pipeline("people", frame_rows=3)
        pipeline["c.yml"] = f"connection:\n  wh: {{ url: '{db.entry['url']}' }}\n"
        config = write_config(pipeline)
        first = capport("run", "-c", str(config), "-p", "p", "-o", "out")
        assert first.returncode == 0, first.stderr
        before = rows(db, "people")
        assert before == [(0, "name0"), (1, "name1"), (2, "name2")]
        (config / "in.csv").write_text(
            "id,name\n" + "".join(f"{i},name{i}\n" for i in range(2_000_000))
        )
        loading = (
            f"SELECT count(*) FROM information_schema.processlist WHERE db = '{database}'"
            " AND info LIKE 'LOAD DATA%' AND id <> connection_id()"
        )
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        process = subprocess.Popen(
            [sys.executable, "-m", "capport_dagster.cli", "run", "-c", str(config), "-p", "p",
             "-o", "out", "--no-preview"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            start_new_session=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not db.execute(loading)[0][0]:
                assert process.poll() is None, "the run ended before its write began"
                assert time.monotonic() < deadline, "the write never began"
                time.sleep(0.02)
        finally:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        deadline = time.monotonic() + 30
        busy = (
            f"SELECT count(*) FROM information_schema.processlist WHERE db = '{database}'"
            " AND command <> 'Sleep' AND id <> connection_id()"
        )
        while db.execute(busy)[0][0]:  # the server notices and rolls back
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert rows(db, "people") == before


# --- validate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"connection": "wh", "table": "t", "df_name": "A", "mode": "upsert"},
         "task 'save_sql': mode upsert needs keys: the columns that identify a row"),
        ({"connection": "wh", "table": "t", "df_name": "A", "keys": ["id"]},
         "task 'save_sql': keys are for mode upsert, not replace"),
        ({"connection": "wh", "table": "t", "df_name": "A", "mode": "upsert", "keys": ["idd"],
          "model": "people"},
         "task 'save_sql': keys idd not in model 'people' (columns: id, name)"),
        ({"connection": "wh", "table": "t", "df_name": "A", "mode": "merge"},
         "malformed args for task 'save_sql': mode: input should be 'replace', 'append',"
         " 'upsert' or 'make_next'"),
        ({"table": "t", "df_name": "A"},
         "task 'save_sql': give connection (an entry's name) or url"),
        ({"connection": "wh", "url": "sqlite:///x.db", "table": "t", "df_name": "A"},
         "task 'save_sql': give connection (an entry's name) or url"),
        ({"connection": "wh", "table": "t", "df_name": "A", "from_df": "A"},
         "task 'save_sql': give df_name or from_df, not both"),
    ],
)  # fmt: skip
def test_save_sql_args_are_checked_at_validate(write_config, args, message):
    stages = [make("A"), {"label": "save", "task": "save_sql", "args": args}]
    text = _yaml(
        {
            "connection": {"wh": {"driver": "sqlite", "path": "x.db"}},
            "model": MODEL,
            "pipeline": {"p": stages},
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(write_config({"p.yml": text}), _registry())
    assert [str(p) for p in info.value.errors] == [
        f"error: config/p.yml:1, pipeline 'p', stage 'save' (#2): {message}"
    ]


@pytest.mark.parametrize(
    ("task", "args", "message"),
    [
        ("load_sql", {"connection": "wh", "df_name": "A"},
         "task 'load_sql': give table or query (a SQL query)"),
        ("load_sql", {"connection": "wh", "query": "SELECT '$NO_SUCH_VAR'", "df_name": "A"},
         "undefined variable $NO_SUCH_VAR in \"SELECT '$NO_SUCH_VAR'\" (define it in the"
         " environment; built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME)"),
        ("postgres", {"database": "wh", "table": "t", "save_df": "A"},
         "task 'postgres': database 'wh' is a sqlite connection (use load_sql for other"
         " databases)"),
    ],
)  # fmt: skip
def test_load_args_are_checked_at_validate(write_config, monkeypatch, task, args, message):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    text = _yaml(
        {
            "connection": {"wh": {"driver": "sqlite", "path": "x.db"}},
            "pipeline": {"p": [{"label": "read", "task": task, "args": args}]},
        }
    )
    with pytest.raises(ValidationError) as info:
        load_project(write_config({"p.yml": text}), _registry())
    assert [str(p) for p in info.value.errors] == [
        f"error: config/p.yml:1, pipeline 'p', stage 'read' (#1): {message}"
    ]


def test_materialising_a_save_sql_asset_records_rows_table_and_mode(write_config, tmp_path):
    from capport_dagster.translate.build import load_definitions

    config = write_config(
        {
            "people.csv": "id,name\n1,ann\n2,bob\n3,cid\n",
            "p.yml": f"""
                connection:
                  local: {{ driver: sqlite, path: {tmp_path}/db/local.db }}
                pipeline:
                  people:
                    - {{ label: load, task: load_csv,
                        args: {{ filepath: $CONFIG_DIR/people.csv, df_name: PEOPLE }} }}
                    - {{ label: save, task: save_sql,
                        args: {{ connection: local, table: people, df_name: PEOPLE,
                                 mode: append }} }}
            """,
        }
    )
    job = load_definitions(config).resolve_job_def("people__assets")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = job.execute_in_process(run_config={"output_dir": "out"}, instance=instance)
    key = AssetKey(["people", "sql", "local", "people"])
    [materialization] = [
        e.event_specific_data.materialization
        for e in result.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key == key
    ]
    recorded = {k: v.value for k, v in materialization.metadata.items()}
    # What the sink reported, then the frame as written (docs/catalog.md).
    assert {k: recorded.pop(k) for k in ("rows", "table", "mode", "connection")} == {
        "rows": 3,
        "table": "people",
        "mode": "append",
        "connection": "local",
    }
    assert [c.name for c in recorded.pop("dagster/column_schema").columns] == ["id", "name"]
    lineage = recorded.pop("dagster/column_lineage").deps_by_column
    found = {c: [(d.asset_key.path, d.column_name) for d in ds] for c, ds in lineage.items()}
    assert found == {
        "id": [(["people", "PEOPLE"], "id")],
        "name": [(["people", "PEOPLE"], "name")],
    }
    # The rows the sink counted are the asset's row count, even of a lazy frame.
    assert recorded == {"capport/columns": 2, "capport/lazy": True, "dagster/row_count": 3}


EXAMPLE = Path(__file__).parent.parent / "examples" / "postgres"


def test_the_postgres_example_runs(tmp_path):
    """examples/postgres, as its header says to run it, in a database of its own."""
    require_service("postgres")
    import adbc_driver_postgresql.dbapi as adbc

    name = f"capport_example_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    with adbc.connect(admin, autocommit=True) as conn, conn.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
    try:
        env = {"PG_HOST": "127.0.0.1", "PG_USER": "postgres", "PG_DB": name}
        result = capport(
            "run", "-c", str(EXAMPLE), "-p", "postgres_roundtrip", "-o", "output",
            cwd=tmp_path, **env,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert pl.read_csv(tmp_path / "output" / "postgres" / "team_sizes.csv").to_dicts() == [
            {"team_id": 1, "players": 2},
            {"team_id": 6, "players": 2},
            {"team_id": 10, "players": 2},
            {"team_id": 22, "players": 2},
        ]
    finally:
        with adbc.connect(admin, autocommit=True) as conn, conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
