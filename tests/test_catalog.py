"""Every run of a pipeline job updates the asset catalog (`translate/catalog.py`).

After `capport run` of each example against a `DAGSTER_HOME`, a real `dagster-webserver`'s
GraphQL API shows a latest materialization of every asset of the pipeline (from that run, with
its row count and column lineage) and the model checks' results; a failed constraint shows as a
failed check; `catalog: false` records nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from dagster import AssetKey, DagsterEventType, DagsterInstance

from capport_dagster.core.graph import PipelineGraph, load_project
from capport_dagster.translate.translator import CapportTranslator
from tests.conftest import capport
from tests.dagster_servers import webserver
from tests.test_jobs import EXAMPLE_PIPELINES, run_job

TRANSLATOR = CapportTranslator()

ASSETS_QUERY = """
{ assetNodes { assetKey { path }
    internalFreshnessPolicy { __typename ... on TimeWindowFreshnessPolicy { failWindowSeconds } }
    assetMaterializations(limit: 1) { runId partition
      metadataEntries { label __typename
        ... on IntMetadataEntry { intValue }
        ... on TableColumnLineageMetadataEntry {
          lineage { columnName columnDeps { assetKey { path } columnName } } } } }
    assetChecksOrError { __typename
      ... on AssetChecks { checks { name executionForLatestMaterialization { runId status } } } }
} }
"""


def asset_keys(graph: PipelineGraph) -> dict[str, tuple[str, ...]]:
    """Each asset of a pipeline by key (as a `/` string), with the frames its stage reads."""
    keys = {}
    for node in graph.nodes:
        reads = tuple(node.reads)
        if node.outputs:
            for version in node.outputs:
                keys[TRANSLATOR.get_asset_key(graph, version).to_user_string()] = reads
        else:
            keys[TRANSLATOR.get_sink_asset_key(graph, node).to_user_string()] = reads
    return keys


@dataclass
class Catalogued:
    home: Path
    config: Path
    #: The run id of each example pipeline's run.
    runs: dict[str, str]
    #: Asset nodes as the webserver reports them, by key (`/` string).
    nodes: dict[str, dict[str, Any]]


#: The examples, and the partitioned one (config/daily.yml), run for one day.
PIPELINES = [*EXAMPLE_PIPELINES, "daily_teams"]
DAY = "2026-11-27"


def _eager(pipeline: str) -> tuple[str, ...]:
    # Eager runs know every frame's rows (a lazy frame is a plan: see the lazy test below);
    # `branches` keeps its runner's async_eager.
    day = ("-d", DAY) if pipeline == "daily_teams" else ()
    return (*day, *(() if pipeline == "branches" else ("--mode", "sync_eager")))


@pytest.fixture(scope="module")
def catalogued(example_api: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalogued]:
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("")
    out = tmp_path_factory.mktemp("out")
    runs = {}
    for pipeline in PIPELINES:
        ran = capport(
            *("run", "-c", str(example_api), "-p", pipeline, "-o", str(out), *_eager(pipeline)),
            cwd=out,
            DAGSTER_HOME=str(home),
        )
        assert ran.returncode == 0, ran.stderr
        with DagsterInstance.from_config(str(home)) as instance:
            [run] = instance.get_runs()[:1]
            assert run.job_name == pipeline
            runs[pipeline] = run.run_id
    with webserver(home, CAPPORT_CONFIG_DIR=str(example_api)) as (query, _):
        answer = query(ASSETS_QUERY)
    assert answer is not None and "errors" not in answer, answer
    nodes = {"/".join(node["assetKey"]["path"]): node for node in answer["data"]["assetNodes"]}
    yield Catalogued(home, example_api, runs, nodes)


def _entries(materialization: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    return {entry["label"]: entry for entry in materialization["metadataEntries"]}


def _lineage(entry: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    return {
        column["columnName"]: [
            ("/".join(dep["assetKey"]["path"]), dep["columnName"]) for dep in column["columnDeps"]
        ]
        for column in entry["lineage"]
    }


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_every_asset_of_an_example_shows_its_runs_materialization(
    catalogued: Catalogued, pipeline: str
) -> None:
    graph = load_project(catalogued.config, pipelines=[pipeline]).graphs[pipeline]
    expected = asset_keys(graph)
    ours = {key for key in catalogued.nodes if key.split("/")[0] == graph.name}
    assert ours == set(expected)
    for key, reads in expected.items():
        [latest] = catalogued.nodes[key]["assetMaterializations"]
        assert latest["runId"] == catalogued.runs[pipeline], key
        assert latest["partition"] == (DAY if pipeline == "daily_teams" else None), key
        entries = _entries(latest)
        assert entries["dagster/row_count"]["__typename"] == "IntMetadataEntry", key
        assert entries["dagster/row_count"]["intValue"] >= 0, key
        if not reads:  # a load: its columns come from outside the graph
            assert "dagster/column_lineage" not in entries, key
            continue
        lineage = _lineage(entries["dagster/column_lineage"])
        assert lineage, key
        upstream = {
            TRANSLATOR.get_asset_key(graph, version).to_user_string()
            for node in graph.nodes
            if node.label in {n.label for n in graph.nodes if _key_of(graph, n, key)}
            for version in node.inputs.values()
        }
        assert {asset for deps in lineage.values() for asset, _ in deps} <= upstream, key


def _key_of(graph: PipelineGraph, node: Any, key: str) -> bool:
    if node.outputs:
        return any(TRANSLATOR.get_asset_key(graph, v).to_user_string() == key for v in node.outputs)
    return TRANSLATOR.get_sink_asset_key(graph, node).to_user_string() == key


def test_enrich_events_rows_and_column_lineage(catalogued: Catalogued) -> None:
    rows = {
        key: _entries(node["assetMaterializations"][0])["dagster/row_count"]["intValue"]
        for key, node in catalogued.nodes.items()
        if key.startswith("enrich_events/")
    }
    assert rows == {
        "enrich_events/EVENTS": 12,
        "enrich_events/TEAMS": 4,
        "enrich_events/PLAYERS": 8,
        "enrich_events/EVENTS_SHAPED": 12,
        "enrich_events/EVENTS_WITH_TEAMS": 12,
        "enrich_events/EVENTS_ENRICHED": 12,
        "enrich_events/save_report": 12,
    }
    enriched = catalogued.nodes["enrich_events/EVENTS_ENRICHED"]["assetMaterializations"][0]
    lineage = _lineage(_entries(enriched)["dagster/column_lineage"])
    assert lineage["player_name"] == [
        ("enrich_events/PLAYERS", "first_name"),
        ("enrich_events/PLAYERS", "last_name"),
    ]
    assert lineage["position"] == [("enrich_events/PLAYERS", "position")]
    assert lineage["team"] == [("enrich_events/EVENTS_WITH_TEAMS", "team")]
    # The join key: coalesced from both sides, the left first.
    assert lineage["player_id"] == [
        ("enrich_events/EVENTS_WITH_TEAMS", "player_id"),
        ("enrich_events/PLAYERS", "player_id"),
    ]
    report = catalogued.nodes["enrich_events/save_report"]["assetMaterializations"][0]
    assert _lineage(_entries(report)["dagster/column_lineage"])["player_name"] == [
        ("enrich_events/EVENTS_ENRICHED", "player_name")
    ]


def test_model_checks_show_their_result_for_the_latest_materialization(
    catalogued: Catalogued,
) -> None:
    checks = {
        (key, check["name"]): check["executionForLatestMaterialization"]
        for key, node in catalogued.nodes.items()
        if node["assetChecksOrError"]["__typename"] == "AssetChecks"
        for check in node["assetChecksOrError"]["checks"]
        if key.split("/")[0] in catalogued.runs
    }
    assert checks, "the examples' models have constraints"
    for (key, name), execution in checks.items():
        assert execution is not None, (key, name)
        assert execution["status"] == "SUCCEEDED", (key, name)
        assert execution["runId"] == catalogued.runs[key.split("/")[0]], (key, name)
    assert ("enrich_events/PLAYERS", "player__player_id__primary") in checks
    assert ("enrich_events/save_report", "event_report__event_id__primary") in checks


def test_scheduled_pipelines_assets_are_overdue_one_period_and_a_grace_after_a_run(
    catalogued: Catalogued,
) -> None:
    """`branches` runs every Monday (config/runner.yml), `daily_teams` every day; the others
    have no schedule, so no freshness."""
    windows: dict[str, set[int | None]] = {}
    for key, node in catalogued.nodes.items():
        policy = node["internalFreshnessPolicy"]
        assert policy is None or policy["__typename"] == "TimeWindowFreshnessPolicy", policy
        windows.setdefault(key.split("/")[0], set()).add(policy and policy["failWindowSeconds"])
    week, day = 7 * 24 * 3600, 24 * 3600
    assert windows == {
        "branches": {week + week // 10},
        "daily_teams": {day + day // 10},
        **{p: {None} for p in EXAMPLE_PIPELINES if p != "branches"},
    }


# --- without the webserver: what a lazy run records, failures, and turning it off -------------


def _materializations(instance: DagsterInstance) -> dict[str, Mapping[str, Any]]:
    return {
        key.to_user_string(): record.asset_materialization.metadata  # type: ignore[union-attr]
        for key in instance.get_asset_keys()
        for record in instance.fetch_materializations(key, limit=1).records
    }


def test_a_lazy_run_records_plans_without_computing_their_rows(
    example_api: Path, tmp_path: Path
) -> None:
    """A lazy frame is a plan: its materialization has its schema and lineage, and no row
    count (counting would compute it); a sink knows the rows it wrote when the run previewed
    them (`capport run` does unless --no-preview)."""
    for preview, home in ((True, tmp_path / "a"), (False, tmp_path / "b")):
        home.mkdir()
        ran = capport(
            *("run", "-c", str(example_api), "-p", "enrich_events", "-o", str(tmp_path / "o")),
            *(() if preview else ("--no-preview",)),
            cwd=tmp_path,
            DAGSTER_HOME=str(home),
        )
        assert ran.returncode == 0, ran.stderr
        with DagsterInstance.from_config(str(home)) as instance:
            recorded = _materializations(instance)
        assert set(recorded) == set(asset_keys(_graph(example_api, "enrich_events")))
        for key, metadata in recorded.items():
            if key == "enrich_events/save_report":
                assert (metadata.get("dagster/row_count") is not None) == preview
                continue
            assert metadata["capport/lazy"].value is True, key
            assert "dagster/row_count" not in metadata, key
            assert "dagster/column_schema" in metadata, key


def _graph(config: Path, pipeline: str) -> PipelineGraph:
    return load_project(config, pipelines=[pipeline]).graphs[pipeline]


DUPLICATE_IDS = {
    "data/a.csv": "id,name\n1,a\n1,b\n2,c\n",
    "p.yml": """
        pipeline:
          p:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/data/a.csv,
                df_name: A } }
            - { label: shaped, task: transform, args: { name: keep, input: A, save_df: B } }
            - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/b.csv, df_name: B,
                model: m } }
        transform:
          keep: [{ select: { id: null, upper: { sql: "upper(name)" } } }]
        model:
          m: { id: { dtype: int64, constraints: [primary] }, upper: str }
    """,
}


def test_a_broken_constraint_is_a_failed_check_and_no_materialization(
    write_config: Any, tmp_path: Path
) -> None:
    config = write_config(DUPLICATE_IDS)
    with DagsterInstance.ephemeral() as instance:
        result = run_job(config, "p", instance, output_dir=str(tmp_path / "o"))
        assert not result.success
        recorded = _materializations(instance)
        assert set(recorded) == {"p/A", "p/B"}
        [evaluation] = [
            entry.dagster_event.event_specific_data  # type: ignore[union-attr]
            for entry in instance.all_logs(
                result.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
            )
        ]
    assert evaluation.asset_key == AssetKey(["p", "save"])
    assert evaluation.check_name == "m__id__primary"
    assert evaluation.passed is False
    assert evaluation.metadata["violations"].value == 2  # both rows of id 1
    assert evaluation.metadata["examples"].value == "id=1"
    assert not (tmp_path / "o" / "b.csv").exists()


def test_the_model_describes_the_columns_it_shaped(write_config: Any, tmp_path: Path) -> None:
    config = write_config({**DUPLICATE_IDS, "data/a.csv": "id,name\n1,a\n2,c\n"})
    with DagsterInstance.ephemeral() as instance:
        assert run_job(config, "p", instance, output_dir=str(tmp_path / "o")).success
        recorded = _materializations(instance)
    schema = recorded["p/save"]["dagster/column_schema"].value
    described = {c.name: (c.type, c.description, c.constraints) for c in schema.columns}
    assert described["id"][:2] == ("Int64", "model 'm': int64, primary")
    assert (described["id"][2].nullable, described["id"][2].unique) == (False, True)
    assert described["upper"][:2] == ("String", "model 'm': str")
    assert (described["upper"][2].nullable, described["upper"][2].unique) == (True, False)
    lineage = recorded["p/B"]["dagster/column_lineage"].value
    assert {c: [(d.asset_key.to_user_string(), d.column_name) for d in deps]
            for c, deps in lineage.deps_by_column.items()} == {
        "id": [("p/A", "id")],
        "upper": [("p/A", "name")],
    }  # fmt: skip


def test_catalog_false_records_no_materialization(write_config: Any, tmp_path: Path) -> None:
    config = write_config({**DUPLICATE_IDS, "data/a.csv": "id,name\n1,a\n2,c\n"})
    with DagsterInstance.ephemeral() as instance:
        result = run_job(config, "p", instance, output_dir=str(tmp_path / "o"), catalog=False)
        assert result.success
        assert instance.get_asset_keys() == []
        assert (tmp_path / "o" / "b.csv").read_text() == "id,upper\n1,A\n2,C\n"
