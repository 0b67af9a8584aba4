"""The `recon` task (core/recon.py): exact result frames, laziness and located errors."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core import recon as recon_module
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.recon import ReconArgs, recon
from capport_dagster.core.registry import DEFAULT_REGISTRY
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import PolarsExecutions, run_stages

LEFT = pl.DataFrame(
    {
        "id": [1, 2, 3, 4, None],
        "name": ["ann", "bob", "cy", None, "zed"],
        "note": ["l1", "l2", "l3", "l4", "l5"],  # only on the left: rides along
    }
)
RIGHT = pl.DataFrame(
    {
        "id": [4, 2, None, 1, 9],
        "name": [None, "BOB", "zed", "ann", "x"],
        "team": ["t", "t", "t", "t", "t"],  # only on the right: not compared
    }
)


def result(ids: list, names: list, notes: list, recons: list) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": ids, "name": names, "note": notes, "recon": recons},
        schema={"id": pl.Int64, "name": pl.String, "note": pl.String, "recon": pl.String},
    )


def test_the_public_api():
    assert recon_module.__all__ == [
        "DIFFERS",
        "MISSING",
        "RECON_COLUMN",
        "ReconArgs",
        "recon",
        "register_recon_task",
    ]
    assert "recon" in DEFAULT_REGISTRY
    assert not DEFAULT_REGISTRY.get("recon").waits_on_io


# --- the result ------------------------------------------------------------------------------


def test_with_on_rows_are_missing_or_differ_in_left_order():
    got = recon(LEFT, RIGHT, ["id"]).collect()
    # 1 and 4 agree (4's null name equals the right's null); null id matches the null id and
    # agrees; 2 differs in name; 3 has no key on the right.
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["differs", "missing"]))


def test_without_on_every_common_column_is_the_key_and_unmatched_rows_are_missing():
    got = recon(LEFT, RIGHT).collect()
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["missing", "missing"]))


def test_on_every_common_column_gives_only_missing():
    got = recon(LEFT, RIGHT, ["name", "id"]).collect()
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["missing", "missing"]))


def test_nulls_compare_equal_to_nulls():
    left = pl.DataFrame(
        {"k": [None, None, 1], "v": [None, 1, None]}, schema={"k": pl.Int64, "v": pl.Int64}
    )
    right = pl.DataFrame({"k": [None, 1], "v": [None, 2]}, schema={"k": pl.Int64, "v": pl.Int64})
    got = recon(left, right, ["k"]).collect()
    assert_frame_equal(
        got,
        pl.DataFrame(
            {"k": [None, 1], "v": [1, None], "recon": ["differs", "differs"]},
            schema={"k": pl.Int64, "v": pl.Int64, "recon": pl.String},
        ),
    )


def test_a_row_agrees_when_any_right_row_with_its_key_is_identical():
    left = pl.DataFrame({"k": [1, 2], "v": ["a", "b"]})
    right = pl.DataFrame({"k": [1, 1, 2, 2], "v": ["x", "a", "y", "z"]})
    got = recon(left, right, ["k"]).collect()
    assert_frame_equal(got, pl.DataFrame({"k": [2], "v": ["b"], "recon": ["differs"]}))


def test_a_left_row_that_occurs_twice_is_reported_twice():
    left = pl.DataFrame({"k": [5, 1, 5], "v": ["a", "b", "a"]})
    right = pl.DataFrame({"k": [1], "v": ["b"]})
    got = recon(left, right, ["k"]).collect()
    assert_frame_equal(
        got, pl.DataFrame({"k": [5, 5], "v": ["a", "a"], "recon": ["missing", "missing"]})
    )


@pytest.mark.parametrize("on", [None, ["id"]])
def test_frames_that_agree_give_an_empty_frame_with_the_left_columns_and_recon(on):
    right = LEFT.drop("note").reverse()
    got = recon(LEFT, right, on).collect()
    assert_frame_equal(got, result([], [], [], []))


def test_the_result_is_a_plan_nothing_is_computed(monkeypatch):
    executions = PolarsExecutions(monkeypatch)
    plan = recon(LEFT.lazy(), RIGHT.lazy(), ["id"])
    assert isinstance(plan, pl.LazyFrame)
    assert executions.passes == 0
    assert plan.collect_schema() == pl.Schema(
        {"id": pl.Int64, "name": pl.String, "note": pl.String, "recon": pl.String}
    )


# --- errors at run time ------------------------------------------------------------------------

WHERE = Location(file="p.yml", section="pipeline", name="p", stage="recon", index=3)


@pytest.mark.parametrize(
    ("left", "right", "on", "message"),
    [
        (
            LEFT,
            RIGHT,
            ["id", "nme"],
            "recon: on column 'nme' not found in frame 'L' (columns: id, name, note)",
        ),
        (
            LEFT,
            RIGHT,
            ["note"],
            "recon: on column 'note' not found in frame 'R' (columns: id, name, team)",
        ),
        (
            LEFT,
            RIGHT.with_columns(pl.col("id").cast(pl.String), pl.col("name").cast(pl.Categorical)),
            ["id"],
            "recon: the frames' types differ in columns 'id' (Int64 in 'L', String in 'R'), "
            "'name' (String in 'L', Categorical in 'R'); cast one side (a model or a transform) "
            "so that the values compare",
        ),
        (
            LEFT,
            pl.DataFrame({"x": [1]}),
            None,
            "recon: frames 'L' (id, name, note) and 'R' (x) have no column in common; rename "
            "columns in a transform, or give on:",
        ),
        (
            LEFT.with_columns(recon=pl.lit("x")),
            RIGHT,
            None,
            "recon: frame 'L' already has a column 'recon', which the result adds; rename or "
            "drop it in a transform first",
        ),
    ],
    ids=["on not in left", "on not in right", "dtypes differ", "nothing in common", "recon column"],
)
def test_run_time_errors_are_located(left, right, on, message):
    with pytest.raises(TaskError) as info:
        recon(left.lazy(), right.lazy(), on, names=("L", "R"), location=WHERE)
    assert str(info.value) == f"p.yml, pipeline 'p', stage 'recon' (#3): {message}"


# --- in a pipeline ---------------------------------------------------------------------------


def pipeline(*stages: str) -> str:
    return "pipeline:\n  p:\n" + "".join(f"    - {stage}\n" for stage in stages)


LOADS = (
    "{ label: left, task: load_csv, args: { filepath: left.csv, df_name: L } }",
    "{ label: right, task: load_csv, args: { filepath: right.csv, df_name: R } }",
)


def write_frames(tmp_path: Path) -> None:
    LEFT.write_csv(tmp_path / "left.csv")
    RIGHT.write_csv(tmp_path / "right.csv")


def run(config: Path, variables: Mapping[str, str], mode: RunMode) -> dict[str, pl.DataFrame]:
    graph = load_project(config).graphs["p"]
    store = run_stages(graph, mode, variables)
    return {name: store[version].lazy().collect() for name, version in graph.final_versions.items()}


@pytest.mark.parametrize("mode", list(RunMode))
def test_recon_in_a_pipeline_in_every_mode(write_config, tmp_path, mode):
    write_frames(tmp_path)
    args = "left_df: L, right_df: R, on: id, save_neq_rows: NEQ"
    stage = f"{{ label: recon, task: recon, args: {{ {args} }} }}"
    config = write_config({"p.yml": pipeline(*LOADS, stage)})
    node = load_project(config).graphs["p"].by_label["recon"]
    assert node.args == ReconArgs("L", "R", "NEQ", ("id",))
    assert (node.reads, node.writes) == (("L", "R"), ("NEQ",))
    got = run(config, {}, mode)["NEQ"]
    assert_frame_equal(got, result([2, 3], ["bob", "cy"], ["l2", "l3"], ["differs", "missing"]))


def test_a_run_time_error_names_the_stage(write_config, tmp_path):
    write_frames(tmp_path)
    args = "left_df: L, right_df: R, on: [nme], save_neq_rows: NEQ"
    stage = f"{{ label: recon, task: recon, args: {{ {args} }} }}"
    config = write_config({"p.yml": pipeline(*LOADS, stage)})
    with pytest.raises(TaskError) as info:
        run(config, {}, RunMode.SYNC_LAZY)
    assert str(info.value) == (
        "config/p.yml:5, pipeline 'p', stage 'recon' (#3): recon: on column 'nme' not found in "
        "frame 'L' (columns: id, name, note)"
    )


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (
            "left_df: L, right_df: R",
            "malformed args for task 'recon': save_neq_rows: field required",
        ),
        (
            "left_df: L, right_df: R, save_neq_rows: N, key: id",
            "malformed args for task 'recon': unknown key 'key' (keys: left_df, on, right_df, "
            "save_neq_rows)",
        ),
        (
            "left_df: L, right_df: R, save_neq_rows: N, on: []",
            "task 'recon': on is empty: name the key columns, or leave on out to compare every "
            "column the frames have in common",
        ),
        (
            "left_df: L, right_df: R, save_neq_rows: N, on: [id, name, id]",
            "task 'recon': on names 'id' more than once",
        ),
        (
            "left_df: L, right_df: NOPE, save_neq_rows: N",
            "reads frame 'NOPE' before any earlier stage writes it",
        ),
    ],
)
def test_args_are_checked_by_validate(write_config, args, cause):
    stage = f"{{ label: recon, task: recon, args: {{ {args} }} }}"
    config = write_config({"p.yml": pipeline(*LOADS, stage)})
    with pytest.raises(ValidationError) as info:
        load_project(config)
    assert [str(p) for p in info.value.errors] == [
        f"error: config/p.yml:5, pipeline 'p', stage 'recon' (#3): {cause}"
    ]
