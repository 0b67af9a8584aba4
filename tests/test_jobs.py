"""Pipelines as Dagster jobs: op graph, identical outputs in every mode, real instances."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
from pathlib import Path

import polars as pl
import pytest
from dagster import (
    DagsterEventType,
    DagsterInstance,
    build_reconstructable_job,
    execute_job,
)
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run
from polars.testing import assert_frame_equal

from capport_dagster import load_definitions
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import Project, load_project
from capport_dagster.core.loader import load_config
from capport_dagster.core.registry import TaskRegistry
from capport_dagster.translate.build import build_definitions
from tests.conftest import EXAMPLE_CONFIG

MODES = ["sync_lazy", "sync_eager", "async_lazy", "async_eager"]
EXAMPLE_PIPELINES = ["enrich_events", "label_teams", "branches", "player_api", "formats", "goals"]


def run_job(config_dir: Path, pipeline: str, instance: DagsterInstance, **run_config: object):
    job = build_reconstructable_job(
        "capport_dagster.translate.build",
        "job_for",
        reconstructable_args=(str(config_dir), pipeline, ()),
    )
    return execute_job(job, instance=instance, run_config=run_config, raise_on_error=False)


#: How each kind of output file the examples write is read back (JSON outputs are NDJSON).
READERS = {".csv": pl.read_csv, ".json": pl.read_ndjson, ".parquet": pl.read_parquet}


def read_outputs(directory: Path) -> dict[str, pl.DataFrame]:
    return {
        str(p.relative_to(directory)): READERS[p.suffix](p)
        for p in sorted(directory.rglob("*"))
        if p.suffix in READERS
    }


def test_job_per_pipeline_with_op_per_stage_wired_by_frames():
    defs = load_definitions(EXAMPLE_CONFIG)
    job = defs.resolve_job_def("enrich_events")
    graph = load_project(EXAMPLE_CONFIG).graphs["enrich_events"]
    assert sorted(node.name for node in job.graph.nodes) == sorted(n.label for n in graph.nodes)
    deps = {
        (invocation.alias, input_name): (dep.node, dep.output)
        for invocation, inputs in job.graph.dependencies.items()
        for input_name, dep in inputs.items()
    }
    assert deps == {
        ("shape_events", "EVENTS"): ("load_events", "EVENTS"),
        ("join_teams", "EVENTS_SHAPED"): ("shape_events", "EVENTS_SHAPED"),
        ("join_teams", "TEAMS"): ("load_reference", "TEAMS"),
        ("join_players", "EVENTS_WITH_TEAMS"): ("join_teams", "EVENTS_WITH_TEAMS"),
        ("join_players", "PLAYERS"): ("load_reference", "PLAYERS"),
        ("save_report", "EVENTS_ENRICHED"): ("join_players", "EVENTS_ENRICHED"),
    }
    assert job.tags["capport/pipeline"] == "enrich_events"


#: Joins whose row order differed between modes and executors: right joins from ~12k rows
#: (in memory vs streamed) and at 50 rows (in process vs frames through Parquet), full joins
#: (unmatched right rows in hash order when streamed). Keys repeat and include nulls.
JOINS_CONFIG = {
    "p.yml": """
        pipeline:
          joins:
            - label: load
              task: load_csv
              args:
                - { filepath: $CONFIG_DIR/left.csv, df_name: L }
                - { filepath: $CONFIG_DIR/right.csv, df_name: R }
            - { label: right, task: transform, args: { name: j, input: L, save_df: RJ,
                                                       kwargs: { how: right } } }
            - { label: full, task: transform, args: { name: j, input: L, save_df: FJ,
                                                      kwargs: { how: full } } }
            - { label: inner, task: transform, args: { name: j, input: L, save_df: IJ,
                                                       kwargs: { how: inner } } }
            - label: save
              task: save_csv
              args:
                - { filepath: $OUTPUT_DIR/right.csv, df_name: RJ }
                - { filepath: $OUTPUT_DIR/full.csv, df_name: FJ }
                - { filepath: $OUTPUT_DIR/inner.csv, df_name: IJ }
        transform:
          j:
            - join: { right: R, left_on: k, right_on: key, how: $$how }
    """
}


def write_join_inputs(config: Path, rows: int = 20_000) -> None:
    left = pl.DataFrame({"k": [(i * 7919) % 9_000 for i in range(rows)], "a": range(rows)})
    right = pl.DataFrame(
        {"key": [None if i % 97 == 0 else (i * 104_729) % 12_000 for i in range(rows)],
         "b": range(rows)}
    )  # fmt: skip
    left.write_csv(config / "left.csv")
    right.write_csv(config / "right.csv")


@pytest.mark.parametrize("pipeline", [*EXAMPLE_PIPELINES, "joins"])
def test_every_mode_and_executor_writes_identical_files(
    pipeline, tmp_path, example_api, write_config
):
    """The promise of the run modes: the same bytes in every file, row order included."""
    config = example_api
    if pipeline == "joins":
        config = write_config(JOINS_CONFIG)
        write_join_inputs(config)
    written: dict[tuple[str, str], dict[str, bytes]] = {}
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        for executor in ("in_process", "multiprocess"):
            for mode in MODES:
                out = tmp_path / executor / mode
                result = run_job(
                    config, pipeline, instance, mode=mode, executor=executor, output_dir=str(out)
                )
                assert result.success, (mode, executor)
                written[(mode, executor)] = {
                    str(p.relative_to(out)): p.read_bytes()
                    for p in sorted(out.rglob("*"))
                    if p.suffix in (".csv", ".json")
                }
    reference = written[("sync_lazy", "in_process")]
    assert reference, "the pipeline wrote no CSV or JSON file"
    for run, files in written.items():
        assert files.keys() == reference.keys(), run
        for name, content in reference.items():
            assert files[name] == content, (run, name)


def test_multiprocess_executor_persists_frames_and_gives_the_same_outputs(tmp_path):
    outputs = {}
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        for mode in ["sync_lazy", "async_eager"]:
            out = tmp_path / mode
            result = run_job(
                EXAMPLE_CONFIG,
                "label_teams",
                instance,
                mode=mode,
                executor="multiprocess",
                output_dir=str(out),
            )
            assert result.success
            outputs[mode] = read_outputs(out)
        persisted = list((tmp_path / "home" / "storage").rglob("*.parquet"))
        assert persisted, "frames were not persisted between processes"
    assert_frame_equal(
        outputs["sync_lazy"]["label_teams/teams.csv"],
        outputs["async_eager"]["label_teams/teams.csv"],
    )


def test_sync_mode_runs_stages_in_list_order(tmp_path):
    graph = load_project(EXAMPLE_CONFIG).graphs["branches"]
    with DagsterInstance.ephemeral() as instance:
        result = run_job(
            EXAMPLE_CONFIG, "branches", instance, mode="sync_lazy", output_dir=str(tmp_path)
        )
        starts = [
            e.step_key for e in result.all_events if e.event_type == DagsterEventType.STEP_START
        ]
    assert starts == [node.label for node in graph.nodes]


def test_run_through_a_sqlite_instance_in_dagster_home(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        result = run_job(EXAMPLE_CONFIG, "label_teams", instance, output_dir=str(tmp_path / "o"))
        assert result.success
        runs = instance.get_runs()
        assert [r.job_name for r in runs] == ["label_teams"]
        assert runs[0].tags["capport/pipeline"] == "label_teams"
        assert runs[0].is_success
    assert (home / "history" / "runs.db").exists()  # Dagster's default SQLite run storage
    assert (tmp_path / "o" / "label_teams" / "teams.csv").exists()


def test_dagster_job_execute_from_the_command_line(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CAPPORT_CONFIG_DIR": str(EXAMPLE_CONFIG),
    }
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "capport_dagster.definitions",
            "-j",
            "label_teams",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with DagsterInstance.get() as instance:
        assert [(r.job_name, r.is_success) for r in instance.get_runs()] == [("label_teams", True)]
    # `output_dir` defaults to ./output relative to where the run happens.
    written = pl.read_csv(tmp_path / "output" / "label_teams" / "teams.csv")
    assert written.columns == ["label", "city"]


# --- async execution ------------------------------------------------------------------------


def barrier_registry(barrier: threading.Barrier) -> TaskRegistry:
    """Two stages that can only finish if they run at the same time."""
    registry = DEFAULT_REGISTRY.copy()

    @registry.task("meet", reads=lambda a: [], writes=lambda a: [a["out"]])
    def meet(args, frames, ctx):
        barrier.wait()
        return {args["out"]: pl.DataFrame({"x": [1]})}

    return registry


BARRIER_CONFIG = {
    "p.yml": """
        pipeline:
          p:
            - { label: left, task: meet, args: { out: A } }
            - { label: right, task: meet, args: { out: B } }
            - { label: save_a, task: save_csv, args: { filepath: a.csv, df_name: A } }
            - { label: save_b, task: save_csv, args: { filepath: b.csv, df_name: B } }
    """
}


@pytest.mark.parametrize(
    ("mode", "max_concurrent", "overlap"),
    [
        ("async_eager", 2, True),
        ("async_lazy", 2, True),
        ("async_eager", 1, False),  # max_concurrent bounds the concurrency
        ("sync_eager", None, False),
        ("sync_lazy", 2, False),
    ],
)
def test_async_modes_run_independent_stages_together(write_config, mode, max_concurrent, overlap):
    barrier = threading.Barrier(2, timeout=3)
    config = write_config(BARRIER_CONFIG)
    project = Project.from_config(load_config(config), barrier_registry(barrier))
    job = build_definitions(project=project).resolve_job_def("p")
    run_config = {"mode": mode, "max_concurrent": max_concurrent}
    with DagsterInstance.ephemeral() as instance:
        # The job's own executor must run it: `execute_in_process` would force the in-process
        # one. The registry lives in this test, so the job is run in memory, not reconstructed.
        run = instance.create_run_for_job(job, run_config=run_config)
        result = execute_run(InMemoryJob(job), run, instance, raise_on_error=False)
    assert result.success is overlap


def io_registry() -> TaskRegistry:
    """Two async (I/O) stages that can only finish if they are in flight at the same time."""
    registry = DEFAULT_REGISTRY.copy()
    arrived: dict[str, asyncio.Event] = {}

    @registry.task("meet", reads=lambda a: [], writes=lambda a: [a["out"]])
    async def meet(args, frames, ctx):
        mine = arrived.setdefault(args["out"], asyncio.Event())
        other = arrived.setdefault("B" if args["out"] == "A" else "A", asyncio.Event())
        mine.set()
        await asyncio.wait_for(other.wait(), timeout=3)
        return {args["out"]: pl.DataFrame({"x": [1]})}

    return registry


def test_io_stages_are_not_held_back_by_max_concurrent(write_config):
    config = write_config(BARRIER_CONFIG)
    project = Project.from_config(load_config(config), io_registry())
    job = build_definitions(project=project).resolve_job_def("p")
    assert job.graph.node_named("left").tags["capport/io"] == "true"
    with DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(
            job, run_config={"mode": "async_eager", "max_concurrent": 1}
        )
        result = execute_run(InMemoryJob(job), run, instance, raise_on_error=False)
    assert result.success


# --- files written by one stage and read or overwritten by another ----------------------------

FILES_CONFIG = {
    "p.yml": """
        pipeline:
          p:
            - { label: load_a, task: load_csv, args: { filepath: a.csv, df_name: A } }
            - { label: read_state, task: load_csv, args: { filepath: $OUTPUT_DIR/state.csv,
                                                             df_name: S } }
            - { label: save_a, task: save_csv, args: { filepath: $OUTPUT_DIR/mid.csv, df_name: A } }
            - { label: reload, task: load_csv, args: { filepath: $OUTPUT_DIR/mid.csv, df_name: B } }
            - { label: save_b, task: save_csv, args: { filepath: $OUTPUT_DIR/b.csv, df_name: B } }
            - { label: new_state, task: save_csv, args: { filepath: $OUTPUT_DIR/state.csv,
                                                            df_name: B } }
            - { label: old_state, task: save_csv, args: { filepath: $OUTPUT_DIR/old.csv,
                                                            df_name: S } }
    """
}


@pytest.mark.parametrize(
    ("mode", "executor"),
    [(mode, "in_process") for mode in MODES]
    + [("sync_lazy", "multiprocess"), ("async_lazy", "multiprocess")],
)
def test_a_file_is_read_after_the_stage_writing_it_and_before_one_overwriting_it(
    write_config, tmp_path, mode, executor
):
    """In async modes nothing but the file orders `reload` after `save_a` and `new_state` after
    `read_state`; in lazy modes `read_state`'s scan must not see the file `new_state` writes."""
    config = write_config(FILES_CONFIG)
    out = tmp_path / "out"
    out.mkdir()
    pl.DataFrame({"x": [0]}).write_csv(out / "state.csv")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        for run in (1, 2):
            pl.DataFrame({"x": [run, run * 10]}).write_csv(tmp_path / "a.csv")
            result = run_job(
                config, "p", instance, mode=mode, executor=executor, output_dir=str(out)
            )
            assert result.success, (mode, executor, run)
            # each run sees its own data: not a missing file, not the previous run's file
            assert pl.read_csv(out / "b.csv")["x"].to_list() == [run, run * 10]
            previous = [0] if run == 1 else [1, 10]
            assert pl.read_csv(out / "old.csv")["x"].to_list() == previous
            assert pl.read_csv(out / "state.csv")["x"].to_list() == [run, run * 10]


def test_op_inputs_and_outputs_are_typed_polars_frames():
    """The UI shows `PolarsFrame` (a LazyFrame or a DataFrame) where it showed `Any`; a sink's
    files-written output stays `Nothing`."""
    defs = load_definitions(EXAMPLE_CONFIG)
    job = defs.resolve_job_def("enrich_events")
    join = job.graph.node_named("join_teams").definition
    assert {i.name: i.dagster_type.display_name for i in join.input_defs} == {
        "EVENTS_SHAPED": "PolarsFrame",
        "TEAMS": "PolarsFrame",
    }
    assert {o.name: o.dagster_type.display_name for o in join.output_defs} == {
        "EVENTS_WITH_TEAMS": "PolarsFrame"
    }
    frame_type = join.output_defs[0].dagster_type
    assert frame_type.type_check(None, pl.LazyFrame()).success
    assert frame_type.type_check(None, pl.DataFrame()).success
    assert not frame_type.type_check(None, {"not": "a frame"}).success
    # The asset view too: a frame's asset is a PolarsFrame, a sink's holds no value.
    types = {
        key.to_user_string(): assets.node_def.output_def_named(
            assets.get_output_name_for_asset_key(key)
        ).dagster_type.display_name
        for assets in defs.assets or ()
        for key in assets.keys
        if key.path[0] == "enrich_events"
    }
    assert set(types.values()) == {"PolarsFrame", "Nothing"}
    assert types["enrich_events/EVENTS_ENRICHED"] == "PolarsFrame"
