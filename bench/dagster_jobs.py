"""Hand-written Dagster jobs with the same op graphs as the benchmarked capport pipelines: the
framework floor. What a Dagster user would write without capport: one op per stage, Polars
frames passed in memory, the in-process executor.

    BENCH_DATA=DIR BENCH_OUT=FILE dagster job execute -m bench.dagster_jobs -j enrich_job

(No `from __future__ import annotations`: Dagster inspects op annotations.)
"""

import functools
import os
from pathlib import Path

import polars as pl
from dagster import (
    AssetMaterialization,
    Definitions,
    In,
    JobDefinition,
    MetadataValue,
    Nothing,
    Out,
    Output,
    TableColumn,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
    in_process_executor,
    job,
    mem_io_manager,
    op,
)

from bench import plain_enrich

__all__ = ["COPIES", "chain_job", "copy_job", "defs", "enrich_job", "sql_read_job", "sql_write_job"]

_RESOURCES = {"io_manager": mem_io_manager}


@op
def load_events() -> pl.LazyFrame:
    return plain_enrich.load(Path(os.environ["BENCH_DATA"]), lazy=True)[0]


@op(out={"teams": Out(), "players": Out()})
def load_reference():  # type: ignore[no-untyped-def]
    _, teams, players = plain_enrich.load(Path(os.environ["BENCH_DATA"]), lazy=True)
    return teams, players


@op
def shape_events(events: pl.LazyFrame) -> pl.LazyFrame:
    return plain_enrich.shape(events)


@op
def join_teams(shaped: pl.LazyFrame, teams: pl.LazyFrame) -> pl.LazyFrame:
    return plain_enrich.join_teams(shaped, teams)


@op
def join_players(with_teams: pl.LazyFrame, players: pl.LazyFrame) -> pl.LazyFrame:
    return plain_enrich.join_players(with_teams, players)


@op
def save_report(enriched: pl.LazyFrame) -> None:
    plain_enrich.save_report(enriched, Path(os.environ["BENCH_OUT"]))


@job(executor_def=in_process_executor, resource_defs=_RESOURCES)
def enrich_job() -> None:
    teams, players = load_reference()
    save_report(join_players(join_teams(shape_events(load_events()), teams), players))


def _swap(frame: pl.LazyFrame) -> pl.LazyFrame:
    return frame.select(pl.col("b").alias("a"), pl.col("a").alias("b"))


def _materialized(name: str, frame: pl.LazyFrame, upstream: str | None) -> AssetMaterialization:
    """What a Dagster user recording the catalog by hand writes for a frame: its schema, and
    its columns' lineage from the frame before it."""
    schema = frame.collect_schema()
    metadata: dict[str, object] = {
        "dagster/column_schema": MetadataValue.table_schema(
            TableSchema(columns=[TableColumn(c, str(t)) for c, t in schema.items()])
        )
    }
    if upstream is not None:
        metadata["dagster/column_lineage"] = TableColumnLineage(
            {c: [TableColumnDep(["chain", upstream], c)] for c in schema}
        )
    return AssetMaterialization(asset_key=["chain", name], metadata=metadata)  # type: ignore[arg-type]


@functools.cache
def chain_job(stages: int, csv: str, materialize: bool = False) -> JobDefinition:
    """`stages` ops: load a tiny CSV, `stages - 2` cheap selects one after another, save.

    The same graph as `bench.overhead`'s capport pipeline; a factory so that Dagster can rebuild
    it (`build_reconstructable_job`) as it rebuilds capport's, built once per process as a
    module-level job would be (capport caches its jobs too). `materialize`: each op also
    records an asset materialization of what it made (`bench.catalog`'s floor).
    """

    @op(name="load")
    def load():  # type: ignore[no-untyped-def]
        frame = pl.scan_csv(csv)
        yield Output(frame)
        if materialize:
            yield _materialized("F0", frame, None)

    def step(i: int):  # type: ignore[no-untyped-def]
        @op(name=f"step_{i}", ins={"frame": In()})
        def swap(frame):  # type: ignore[no-untyped-def]
            swapped = _swap(frame)
            yield Output(swapped)
            if materialize:
                yield _materialized(f"F{i}", swapped, f"F{i - 1}")

        return swap

    steps = [step(i) for i in range(1, stages - 1)]

    @op(name="save", ins={"frame": In()}, out=Out(Nothing))
    def save(frame: pl.LazyFrame):  # type: ignore[no-untyped-def]
        frame.sink_csv(os.environ["BENCH_OUT"])
        if materialize:
            yield _materialized("save", frame, f"F{stages - 2}")

    name = f"chain_{stages}{'_assets' if materialize else ''}"

    @job(name=name, executor_def=in_process_executor, resource_defs=_RESOURCES)
    def chain() -> None:
        frame = load()
        for step in steps:
            frame = step(frame)
        save(frame)

    return chain


#: Each format's plain Polars read and write (`bench.files` times them with and without Dagster).
COPIES = {
    "ndjson": (pl.scan_ndjson, lambda frame, path: frame.sink_ndjson(path)),
    "array": (pl.read_json, lambda frame, path: frame.write_json(path)),
    "parquet": (pl.scan_parquet, lambda frame, path: frame.sink_parquet(path)),
}


@functools.cache
def copy_job(form: str, source: str, target: str) -> JobDefinition:
    """Two ops: read `source` and write `target` in the format `form` (a key of `COPIES`),
    the graph of `bench.files`' load-and-save pipelines."""
    read, write = COPIES[form]

    @op(name="load")
    def load():  # type: ignore[no-untyped-def]
        return read(source)

    @op(name="save", ins={"frame": In()}, out=Out(Nothing))
    def save(frame) -> None:  # type: ignore[no-untyped-def]
        write(frame, target)

    @job(name=f"copy_{form}", executor_def=in_process_executor, resource_defs=_RESOURCES)
    def copy() -> None:
        save(load())

    return copy


@functools.cache
def sql_read_job(query: str) -> JobDefinition:
    """One op reading `query` from PostgreSQL with ADBC, as a Dagster user would write
    `bench.sql`'s load_sql stage."""
    from bench.sql import read_rows

    @op(name="load")
    def load():  # type: ignore[no-untyped-def]
        return read_rows(query)

    @job(name="sql_read", executor_def=in_process_executor, resource_defs=_RESOURCES)
    def read() -> None:
        load()

    return read


@functools.cache
def sql_write_job(parquet: str, schema: str, table: str) -> JobDefinition:
    """`bench.sql`'s write pipeline: read the Parquet file, ingest it with ADBC."""
    from bench.sql import ingest

    @op(name="load")
    def load():  # type: ignore[no-untyped-def]
        return pl.read_parquet(parquet)

    @op(name="save", ins={"frame": In()}, out=Out(Nothing))
    def save(frame) -> None:  # type: ignore[no-untyped-def]
        ingest(frame, schema, table)

    @job(name="sql_write", executor_def=in_process_executor, resource_defs=_RESOURCES)
    def write() -> None:
        save(load())

    return write


defs = Definitions(jobs=[enrich_job])
