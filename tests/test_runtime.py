"""Running stages: lazy stays lazy, eager collects, failures become located task errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance
from polars.testing import assert_frame_equal

from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import FrameVersion, PipelineGraph, Project, load_project
from capport_dagster.core.loader import load_config
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext
from capport_dagster.core.runtime import frame_failure, run_stage
from capport_dagster.core.secrets import Redactor
from capport_dagster.errors import TaskError
from capport_dagster.translate.build import build_definitions
from tests.conftest import EXAMPLE_CONFIG, PolarsExecutions, run_stages


def run_in_order(graph: PipelineGraph, mode: RunMode, out: Path) -> dict[FrameVersion, object]:
    """The example's stages without Dagster, frames kept by version as the mode left them."""
    return run_stages(graph, mode, {"CONFIG_DIR": str(EXAMPLE_CONFIG), "OUTPUT_DIR": str(out)})


#: The constraint checks of the example: `primary` on player_id (model player, at the load) and
#: on event_id (model event_report, at the save): a duplicates and a nulls query each.
CHECK_QUERIES = 4


@pytest.mark.parametrize(("mode", "collects"), [("sync_lazy", 0), ("sync_eager", 6)])
def test_lazy_mode_collects_nothing_before_the_sink(mode, collects, monkeypatch, tmp_path):
    job = build_definitions(project=load_project(EXAMPLE_CONFIG)).resolve_job_def("enrich_events")
    counter = PolarsExecutions(monkeypatch)
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            run_config={"mode": mode, "output_dir": str(tmp_path)}, instance=instance
        )
    assert result.success
    # Eager: one collect per frame written (EVENTS, TEAMS, PLAYERS and three transforms);
    # lazy: none at all, the save stage streams the whole plan to the CSV with `sink_csv`, its
    # model's checks in the same pass. Only the constraint checks query the data otherwise.
    assert counter.queries == collects + CHECK_QUERIES
    assert counter.sinks == 1
    assert pl.read_csv(tmp_path / "enrich_events" / "events_enriched.csv").height == 12


def test_lazy_plan_spans_stages_down_to_the_csv_scan(write_config, tmp_path):
    wide = pl.DataFrame({f"c{i}": [i, i + 1] for i in range(20)})
    config = write_config(
        {
            "p.yml": """
                pipeline:
                  p:
                    - { label: load, task: load_csv, args: { filepath: wide.csv, df_name: W } }
                    - { label: pick, task: transform, args: { name: two, input: W, save_df: T } }
            """,
            "t.yml": "transform:\n  two:\n    - select: { a: c3, b: c17 }\n",
        }
    )
    wide.write_csv(tmp_path / "wide.csv")
    graph = load_project(config).graphs["p"]
    store = run_in_order(graph, RunMode.SYNC_LAZY, tmp_path)
    picked = store[FrameVersion("T", "pick", 2, 0)]
    assert isinstance(picked, pl.LazyFrame)
    assert "PROJECT 2/20 COLUMNS" in picked.explain()
    assert_frame_equal(picked.collect(), pl.DataFrame({"a": [3, 4], "b": [17, 18]}))


def test_eager_mode_hands_dataframes_between_stages(tmp_path):
    graph = load_project(EXAMPLE_CONFIG).graphs["label_teams"]
    store = run_in_order(graph, RunMode.SYNC_EAGER, tmp_path)
    assert all(isinstance(frame, pl.DataFrame) for frame in store.values())
    lazy = run_in_order(graph, RunMode.SYNC_LAZY, tmp_path / "lazy")
    final = graph.final_versions["TEAMS"]
    assert_frame_equal(lazy[final].collect(), store[final])


# --- custom tasks ---------------------------------------------------------------------------


def project_with(write_config, registry, stages: str) -> PipelineGraph:
    config = write_config({"p.yml": "pipeline:\n  p:\n" + stages})
    return Project.from_config(load_config(config), registry).graphs["p"]


def test_async_custom_task_is_awaited(write_config, tmp_path):
    registry = DEFAULT_REGISTRY.copy()

    @registry.task("make", reads=lambda a: [], writes=lambda a: [a["out"]])
    async def make(args, frames, ctx):
        await asyncio.sleep(0)
        return {args["out"]: pl.DataFrame({"v": [args["value"]]})}

    graph = project_with(
        write_config,
        registry,
        "    - { label: m, task: make, args: { out: X, value: 7 } }\n"
        "    - { label: s, task: save_csv, args: { filepath: x.csv, df_name: X } }\n",
    )
    for mode in RunMode:
        store = run_in_order(graph, mode, tmp_path)
        frame = store[FrameVersion("X", "m", 1, 0)]
        assert isinstance(frame, pl.LazyFrame if mode.is_lazy else pl.DataFrame)
        assert_frame_equal(frame.lazy().collect(), pl.DataFrame({"v": [7]}))


def test_a_crashing_custom_task_becomes_a_located_task_error(write_config, tmp_path):
    registry = DEFAULT_REGISTRY.copy()

    @registry.task("boom", reads=lambda a: [], writes=lambda a: ["X"])
    def boom(args, frames, ctx):
        raise ValueError("the API said no")

    graph = project_with(write_config, registry, "    - { label: b, task: boom }\n")
    with pytest.raises(TaskError) as info:
        run_in_order(graph, RunMode.SYNC_LAZY, tmp_path)
    assert str(info.value) == (
        "config/p.yml:3, pipeline 'p', stage 'b' (#1): task 'boom' failed: "
        "ValueError: the API said no"
    )


def test_a_task_that_forgets_a_frame_it_declares_fails_clearly(write_config, tmp_path):
    registry = DEFAULT_REGISTRY.copy()
    registry.task("forgetful", reads=lambda a: [], writes=lambda a: ["X", "Y"])(
        lambda args, frames, ctx: {"X": pl.DataFrame()}
    )
    graph = project_with(write_config, registry, "    - { label: f, task: forgetful }\n")
    with pytest.raises(TaskError, match=r"task 'forgetful' did not return frame\(s\) Y"):
        run_in_order(graph, RunMode.SYNC_EAGER, tmp_path)


def test_a_frame_failing_after_its_stage_is_located_and_masked(write_config, tmp_path):
    # The multiprocess IO manager executes a lazy output after its stage (sinking it to
    # Parquet): the failure still names the stage, and a secret in it is masked there too.
    config = write_config(
        {
            "pipeline.yml": """
            pipeline:
              p:
                - label: load
                  task: load_csv
                  args: { filepath: $CONFIG_DIR/a.csv, df_name: A, model: m }
            model:
              m: { code: int }
            """
        }
    )
    (config / "a.csv").write_text("code\n1\ns3cret\n")
    node = load_project(config).graphs["p"].nodes[0]
    variables = {"CONFIG_DIR": str(config), "OUTPUT_DIR": str(tmp_path)}
    for secrets, shown in ((frozenset(), "'s3cret'"), (frozenset({"s3cret"}), "'***'")):
        ctx = RunContext(RunMode.SYNC_LAZY, variables, node.location, redact=Redactor(secrets))
        frame = asyncio.run(run_stage(node, {}, ctx)).frames["A"]
        with pytest.raises(pl.exceptions.PolarsError) as info:
            frame.collect()
        error = frame_failure(info.value, frame)
        assert error is not None
        assert error.message == (
            f"load_csv: {config / 'a.csv'}: model 'm', column 'code': cannot cast value {shown}"
            " to int (at least 1 value failed)"
        )
        assert error.location == node.location
        # The original error (which quotes the value) is kept as the cause only if no secret.
        assert error.__cause__ is (None if secrets else info.value)
    assert frame_failure(ValueError("x"), pl.LazyFrame()) is None  # not a stage's output


@pytest.mark.parametrize(
    ("returned", "shown"),
    [
        # A frame's place holds something else.
        (
            {"X": [1, 2]},
            "returned a list of 2 items (int) for frame 'X', not a polars DataFrame or LazyFrame",
        ),
        (
            {"X": {"v": [1]}},
            "returned dict for frame 'X', not a polars DataFrame or LazyFrame",
        ),
        ({"X": None}, "returned None for frame 'X', not a polars DataFrame or LazyFrame"),
        (
            {"X": pl.Series("v", [1])},
            "returned polars.Series for frame 'X', not a polars DataFrame or LazyFrame",
        ),
    ],
)
@pytest.mark.parametrize("mode", list(RunMode))
def test_a_task_returning_something_else_than_a_frame_says_what(
    write_config, tmp_path, mode, returned, shown
):
    registry = DEFAULT_REGISTRY.copy()
    registry.task("make", reads=lambda a: [], writes=lambda a: ["X"])(
        lambda args, frames, ctx: returned
    )
    graph = project_with(write_config, registry, "    - { label: m, task: make }\n")
    with pytest.raises(TaskError) as info:
        run_in_order(graph, mode, tmp_path)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'm' (#1): task 'make' {shown} "
        "(return {'X': a frame})"
    )


@pytest.mark.parametrize(
    ("returned", "shown"),
    [
        ([pl.DataFrame({"v": [1]})], "a list of 1 item (polars.DataFrame)"),
        ([], "an empty list"),
        ("X", "str 'X'"),
    ],
)
def test_a_task_returning_no_mapping_says_what_it_returned(write_config, tmp_path, returned, shown):
    registry = DEFAULT_REGISTRY.copy()
    registry.task("make", reads=lambda a: [], writes=lambda a: ["X", "Y"])(
        lambda args, frames, ctx: returned
    )
    graph = project_with(write_config, registry, "    - { label: m, task: make }\n")
    with pytest.raises(TaskError) as info:
        run_in_order(graph, RunMode.SYNC_LAZY, tmp_path)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'm' (#1): task 'make' returned {shown}, not a "
        "mapping of frame name to frame (return {'X': a frame, 'Y': a frame})"
    )


STRICT_CAST = "- with_columns: { n: { cast: { column: v, dtype: int64, strict: true } } }"
KEEP = "- with_columns: { w: v }"


@pytest.mark.parametrize(
    ("first", "second", "failing"),
    [(STRICT_CAST, KEEP, "cast' (#2)"), (KEEP, STRICT_CAST, "again' (#3)")],
    ids=["first-transform", "second-transform"],
)
@pytest.mark.parametrize("mode", list(RunMode))
def test_a_failure_a_stages_plan_causes_later_is_located_at_that_stage(
    write_config, tmp_path, mode, first, second, failing
):
    """In lazy modes a transform's plan executes only in the sink, stages later: a strict cast
    that fails there is still the transform's failure, located as an eager run locates it (and
    a later stage's own failure is not blamed on an earlier transform)."""
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/i.csv, df_name: A } }
                - { label: cast, task: transform, args: { name: first, input: A, save_df: B } }
                - { label: again, task: transform, args: { name: second, input: B, save_df: C } }
                - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/c.csv, df_name: C } }
            """,
            "t.yml": f"transform:\n  first:\n    {first}\n  second:\n    {second}\n",
            "i.csv": "id,v\n1,a\n2,3\n",
        }
    )
    graph = load_project(config).graphs["p"]
    out = tmp_path / "out"
    with pytest.raises(TaskError) as info:
        run_stages(graph, mode, {"CONFIG_DIR": str(config), "OUTPUT_DIR": str(out)})
    assert str(info.value) == (
        f"config/p.yml:{4 if failing.startswith('cast') else 5}, pipeline 'p', stage '{failing}:"
        " task 'transform' failed: conversion from `str` to `i64` failed in column 'v' for 1 out"
        ' of 2 values: ["a"]'
    )
    assert not out.exists() or list(out.iterdir()) == []
