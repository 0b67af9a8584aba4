"""The asset view: keys and lineage from the same graph as the jobs, checks from models."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from dagster import AssetKey, DagsterInstance, Definitions, FreshnessPolicy
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.execution.api import execute_run
from polars.testing import assert_frame_equal

from capport_dagster import CapportTranslator, load_definitions
from capport_dagster.core.graph import load_project
from tests.conftest import EXAMPLE_CONFIG
from tests.test_jobs import EXAMPLE_PIPELINES, read_outputs, run_job


def expected_lineage(pipeline: str, translator: CapportTranslator) -> dict[AssetKey, set]:
    """What the job's dependency graph says each asset must depend on."""
    graph = load_project(EXAMPLE_CONFIG).graphs[pipeline]
    lineage: dict[AssetKey, set] = {}
    keys: dict[str, list[AssetKey]] = {}
    for node in graph.nodes:
        parents = {translator.get_asset_key(graph, v) for v in node.inputs.values()}
        # A file or table an earlier stage wrote and this one reads: its assets are parents too.
        parents |= {key for edge in node.after for key in keys[edge.writer]}
        keys[node.label] = [translator.get_asset_key(graph, v) for v in node.outputs] or [
            translator.get_sink_asset_key(graph, node)
        ]
        for key in keys[node.label]:
            lineage[key] = parents
    return lineage


@pytest.mark.parametrize("pipeline", EXAMPLE_PIPELINES)
def test_asset_keys_and_lineage_follow_the_job_graph(pipeline):
    defs = load_definitions(EXAMPLE_CONFIG)
    asset_graph = defs.resolve_asset_graph()
    expected = expected_lineage(pipeline, CapportTranslator())
    actual = {
        key: set(asset_graph.get(key).parent_keys)
        for key in asset_graph.get_all_asset_keys()
        if key.path[0] == pipeline
    }
    assert actual == expected
    job = defs.resolve_job_def(f"{pipeline}__assets")
    assert set(job.asset_layer.selected_asset_keys) == set(expected)


def test_a_rewritten_frame_gets_a_key_per_version():
    keys = {
        k.to_user_string()
        for k in load_definitions(EXAMPLE_CONFIG).resolve_asset_graph().get_all_asset_keys()
        if k.path[0] == "label_teams"
    }
    assert keys == {
        "label_teams/TEAMS",
        "label_teams/TEAMS/label_teams",
        "label_teams/TEAMS/drop_ids",
        "label_teams/save_teams",
    }


@pytest.mark.parametrize("pipeline", EXAMPLE_PIPELINES)
def test_materialising_all_assets_gives_the_job_results(pipeline, tmp_path, example_api):
    defs = load_definitions(example_api)
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        job_result = run_job(
            example_api, pipeline, instance, mode="sync_lazy", output_dir=str(tmp_path / "job")
        )
        assets = defs.resolve_job_def(f"{pipeline}__assets").execute_in_process(
            run_config={"output_dir": str(tmp_path / "assets")}, instance=instance
        )
    assert job_result.success and assets.success
    from_job, from_assets = read_outputs(tmp_path / "job"), read_outputs(tmp_path / "assets")
    assert from_job.keys() == from_assets.keys() and from_job
    for name, frame in from_job.items():
        assert_frame_equal(from_assets[name], frame)


CHECKED = {
    "model.yml": "model:\n  person:\n    id: { dtype: int, constraints: [primary] }\n"
    "    name: { dtype: str, constraints: [not_null] }\n",
    "p.yml": """
        pipeline:
          people:
            - { label: load, task: load_csv,
                args: { filepath: $CONFIG_DIR/people.csv, df_name: PEOPLE, model: person } }
            - { label: save, task: save_csv,
                args: { filepath: $OUTPUT_DIR/p.csv, df_name: PEOPLE } }
    """,
}


def check_evaluations(write_config, tmp_path, csv: str):
    config = write_config({**CHECKED, "people.csv": csv})
    job = load_definitions(config).resolve_job_def("people__assets")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        result = job.execute_in_process(
            run_config={"output_dir": "out"}, instance=instance, raise_on_error=False
        )
    evaluations = {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    return result, evaluations


def test_a_primary_key_with_duplicates_fails_its_check_and_blocks_downstream(
    write_config, tmp_path
):
    result, evaluations = check_evaluations(
        write_config, tmp_path, "id,name\n1,Ann\n1,Bob\n2,Cy\n3,\n"
    )
    primary = evaluations["person__id__primary"]
    assert primary.passed is False
    assert primary.asset_key == AssetKey(["people", "PEOPLE"])
    assert primary.metadata["violations"].value == 2
    assert primary.metadata["examples"].value == "id=1"  # the duplicated key
    not_null = evaluations["person__name__not_null"]
    assert not_null.passed is False
    assert not_null.metadata["violations"].value == 1
    assert not_null.metadata["examples"].value == "id=3"  # the row's key, not 'None'
    assert not result.success  # the blocking check stops the run
    assert not (tmp_path / "out" / "p.csv").exists()  # the save stage never ran


def test_clean_data_passes_every_check(write_config, tmp_path):
    result, evaluations = check_evaluations(write_config, tmp_path, "id,name\n1,Ann\n2,Bob\n")
    assert result.success
    assert {name: e.passed for name, e in evaluations.items()} == {
        "person__id__primary": True,
        "person__name__not_null": True,
    }
    assert pl.read_csv(tmp_path / "out" / "p.csv")["id"].to_list() == [1, 2]


class Warehouse(CapportTranslator):
    def get_asset_key(self, graph, version):
        return super().get_asset_key(graph, version).with_prefix("warehouse")

    def get_sink_asset_key(self, graph, node):
        return super().get_sink_asset_key(graph, node).with_prefix("warehouse")

    def get_group_name(self, graph):
        return "capport_" + super().get_group_name(graph)


def test_a_translator_subclass_changes_keys_and_groups():
    defs = load_definitions(EXAMPLE_CONFIG, translator=Warehouse())
    asset_graph = defs.resolve_asset_graph()
    key = AssetKey(["warehouse", "label_teams", "TEAMS", "drop_ids"])
    assert asset_graph.get(key).group_name == "capport_label_teams"
    assert set(asset_graph.get(key).parent_keys) == {
        AssetKey(["warehouse", "label_teams", "TEAMS", "label_teams"])
    }
    assert all(k.path[0] == "warehouse" for k in asset_graph.get_all_asset_keys())


def test_a_file_written_by_one_stage_and_read_by_another_is_an_asset_edge(write_config, tmp_path):
    from tests.test_jobs import FILES_CONFIG

    config = write_config(FILES_CONFIG)
    defs = load_definitions(config)
    asset_graph = defs.resolve_asset_graph()

    def parents(*path: str) -> set[str]:
        return {k.to_user_string() for k in asset_graph.get(AssetKey(["p", *path])).parent_keys}

    assert parents("B") == {"p/save_a"}  # reload reads the file save_a writes
    assert parents("new_state") == {"p/B", "p/S"}  # overwrites what read_state read
    out = tmp_path / "out"
    out.mkdir()
    pl.DataFrame({"x": [0]}).write_csv(out / "state.csv")
    pl.DataFrame({"x": [1, 10]}).write_csv(tmp_path / "a.csv")
    job = defs.resolve_job_def("p__assets")
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        # The job's own (async) executor: `execute_in_process` would force the in-process one.
        run = instance.create_run_for_job(
            job, run_config={"mode": "async_lazy", "output_dir": str(out)}
        )
        result = execute_run(InMemoryJob(job), run, instance, raise_on_error=False)
    assert result.success
    assert pl.read_csv(out / "b.csv")["x"].to_list() == [1, 10]
    assert pl.read_csv(out / "old.csv")["x"].to_list() == [0]


def test_a_stage_overwriting_the_file_its_input_frame_was_loaded_from(write_config, tmp_path):
    """`save` reads frame A of `load` and overwrites the file `load` read: the asset of A is
    both its input and a file dependency, one edge (Dagster refuses a typed input that is also
    declared as a dependency; found by tests/test_build.py's property test)."""
    config = write_config(
        {
            "p.yml": """
                pipeline:
                  p:
                    - { label: load, task: load_csv, args: { filepath: $OUTPUT_DIR/a.csv,
                        df_name: A } }
                    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/a.csv,
                        df_name: A } }
            """
        }
    )
    defs = load_definitions(config)
    asset_graph = defs.resolve_asset_graph()
    assert {k.to_user_string() for k in asset_graph.get(AssetKey(["p", "save"])).parent_keys} == {
        "p/A"
    }
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.csv").write_text("x\n1\n")
    result = defs.resolve_job_def("p__assets").execute_in_process(
        run_config={"output_dir": str(out)}, instance=DagsterInstance.ephemeral()
    )
    assert result.success
    assert (out / "a.csv").read_text() == "x\n1\n"


class Strict(CapportTranslator):
    """The default failure, and a warning an hour before it."""

    def get_freshness_policy(self, graph, overdue_after):
        if overdue_after is None:
            return None
        return FreshnessPolicy.time_window(
            fail_window=overdue_after, warn_window=overdue_after - timedelta(hours=1)
        )


def test_a_scheduled_pipelines_assets_have_the_schedules_freshness(write_config):
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p: [{ label: a, task: noop }]
              q: [{ label: a, task: noop }]
            runner:
              daily: { pipelines: p, schedule: { every: at 06:00, grace: 3h } }
            """
        }
    )
    default = load_definitions(config).resolve_asset_graph()
    policy = default.get(AssetKey(["p", "a"])).freshness_policy
    assert policy == FreshnessPolicy.time_window(fail_window=timedelta(hours=27))
    assert default.get(AssetKey(["q", "a"])).freshness_policy is None
    strict = load_definitions(config, translator=Strict()).resolve_asset_graph()
    assert strict.get(AssetKey(["p", "a"])).freshness_policy == FreshnessPolicy.time_window(
        fail_window=timedelta(hours=27), warn_window=timedelta(hours=26)
    )


def test_a_schedule_of_seconds_is_overdue_after_a_minute_dagsters_least(write_config):
    config = write_config(
        {
            "p.yml": """
            pipeline:
              p: [{ label: a, task: noop }]
            runner:
              often: { pipelines: p, schedule: { every: 5s } }
            """
        }
    )
    defs = load_definitions(config)
    Definitions.validate_loadable(defs)
    policy = defs.resolve_asset_graph().get(AssetKey(["p", "a"])).freshness_policy
    assert policy == FreshnessPolicy.time_window(fail_window=timedelta(minutes=1))
