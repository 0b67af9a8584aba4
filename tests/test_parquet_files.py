"""`load_parquet` and `save_parquet` (core/files/parquet_files.py): lazy scans, streaming
writes, exact round trips of every model dtype, and errors blamed on the load."""

from __future__ import annotations

import asyncio
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext
from capport_dagster.core.runtime import run_stage
from capport_dagster.errors import TaskError
from tests.conftest import run_stages
from tests.test_json_files import EVERY_DTYPE, EVERY_DTYPE_MODEL
from tests.test_tasks import final, pipeline, run_in_order

ALL_MODES = pytest.mark.parametrize("mode", list(RunMode))


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    return {"CONFIG_DIR": str(tmp_path / "config"), "OUTPUT_DIR": str(tmp_path / "out")}


@ALL_MODES
def test_every_model_dtype_round_trips_exactly(write_config, tmp_path, variables, mode):
    EVERY_DTYPE.write_parquet(tmp_path / "src.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: src.parquet, df_name: A,"
                " model: m } }",
                "{ label: s, task: save_parquet, args: { filepath: $OUTPUT_DIR/o.parquet,"
                " from_df: A, model: m } }",
                "{ label: l2, task: load_parquet, args: { filepath: $OUTPUT_DIR/o.parquet,"
                " save_df: B } }",
            )
            + EVERY_DTYPE_MODEL
        }
    )
    graph = load_project(config).graphs["p"]
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "B"), EVERY_DTYPE)
    assert_frame_equal(pl.read_parquet(tmp_path / "out" / "o.parquet"), EVERY_DTYPE)


def test_load_parquet_scans_lazily(write_config, tmp_path, variables):
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "a.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: a.parquet, df_name: A } }"
            )
        }
    )
    graph = load_project(config).graphs["p"]
    frame = run_stages(graph, RunMode.SYNC_LAZY, variables)[graph.final_versions["A"]]
    assert isinstance(frame, pl.LazyFrame) and "SCAN" in frame.explain()


@pytest.mark.parametrize("content", [b"a,b\n1,2\n", b"PAR1 truncated", b""])
@ALL_MODES
def test_a_file_that_is_not_parquet_is_blamed_on_its_load(
    write_config, tmp_path, variables, mode, content
):
    (tmp_path / "a.parquet").write_bytes(content)
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: a.parquet, df_name: A } }",
                "{ label: s, task: save_parquet, args: { filepath: o.parquet, df_name: A } }",
            )
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'l' (#1): load_parquet: {tmp_path / 'a.parquet'} "
        "is not a Parquet file (it does not start and end with 'PAR1'; give a Parquet file, or "
        "load it with the task of its format)"
    )
    assert not (tmp_path / "o.parquet").exists()


@ALL_MODES
def test_a_file_removed_before_a_lazy_sink_is_blamed_on_its_load(
    write_config, tmp_path, variables, mode
):
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "a.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: a.parquet, df_name: A } }",
                "{ label: s, task: save_parquet, args: { filepath: o.parquet, df_name: A } }",
            )
        }
    )
    graph = load_project(config).graphs["p"]

    load, save = graph.nodes

    async def run() -> None:
        out = await run_stage(load, {}, RunContext(mode, variables, load.location))
        (tmp_path / "a.parquet").unlink()
        frames = {"A": out.frames["A"]}
        await run_stage(save, frames, RunContext(mode, variables, save.location))

    if not mode.is_lazy:
        asyncio.run(run())  # eager: read at the load, before the file went
        assert (tmp_path / "o.parquet").exists()
        return
    with pytest.raises(TaskError) as info:
        asyncio.run(run())
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'l' (#1): load_parquet: {tmp_path / 'a.parquet'}:"
        " the file is gone: it was removed after this stage, and lazy modes read a file only "
        "when a later stage needs its data (keep it until the run ends)"
    )


def test_load_parquet_of_a_directory_says_so(write_config, tmp_path, variables):
    (tmp_path / "d.parquet").mkdir()
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: d.parquet, df_name: A } }"
            )
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'l' (#1): load_parquet: {tmp_path / 'd.parquet'} is "
        "a directory, not a Parquet file (give the file's path)"
    )


@ALL_MODES
def test_save_parquet_to_a_directory_names_it(write_config, tmp_path, variables, mode):
    pl.DataFrame({"a": [1]}).write_parquet(tmp_path / "a.parquet")
    (tmp_path / "sub").mkdir()
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: a.parquet, df_name: A } }",
                "{ label: s, task: save_parquet, args: { filepath: sub, df_name: A } }",
            )
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 's' (#2): save_parquet: cannot write "
        f"{tmp_path / 'sub'}: it is a directory (give filepath the file's name too)"
    )
