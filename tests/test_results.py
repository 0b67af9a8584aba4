"""What `capport run` prints: result frames, previewed in the pass that computes them."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from capport_dagster.core.graph import load_project
from capport_dagster.translate.results import ResultFrame, result_frames
from tests.conftest import EXAMPLE_CONFIG, PolarsExecutions
from tests.test_jobs import MODES, run_job

EXPECTED = {
    "enrich_events": [("EVENTS_ENRICHED", "(12, 10)")],
    "branches": [
        ("PLAYER_NAMES", "(8, 3)"),
        ("TEAM_LABELS", "(4, 3)"),
        ("EVENTS_SHAPED", "(12, 8)"),
    ],
    "label_teams": [("TEAMS", "(4, 2)")],
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("pipeline", list(EXPECTED))
def test_every_result_is_previewed_in_every_mode(pipeline, mode, tmp_path):
    graph = load_project(EXAMPLE_CONFIG).graphs[pipeline]
    with DagsterInstance.ephemeral() as instance:
        result = run_job(
            EXAMPLE_CONFIG, pipeline, instance, mode=mode, preview=True, output_dir=str(tmp_path)
        )
    assert result.success
    found = result_frames(graph, result.all_events)
    assert [(frame.name, frame.shape) for frame in found] == EXPECTED[pipeline]
    assert all(frame.preview and frame.preview.startswith("┌") for frame in found)


@pytest.mark.parametrize("mode", ["sync_lazy", "async_lazy"])
@pytest.mark.parametrize("pipeline", list(EXPECTED))
def test_the_preview_costs_no_pass_of_its_own(pipeline, mode, tmp_path, monkeypatch):
    """Lazy modes: the head and row count come from the pass that writes (or executes) the
    frame, so a run with previews executes Polars exactly as often as one without."""
    passes = {}
    for preview in (False, True):
        counter = PolarsExecutions(monkeypatch)
        with DagsterInstance.ephemeral() as instance:
            result = run_job(
                EXAMPLE_CONFIG,
                pipeline,
                instance,
                mode=mode,
                preview=preview,
                output_dir=str(tmp_path / str(preview)),
            )
        assert result.success
        passes[preview] = counter.passes
    assert passes[True] == passes[False]


def test_a_failed_stage_has_no_result_to_print():
    assert ResultFrame("F", None, 3, None).shape == "(not collected)"


UNREAD = {
    "data/people.csv": "id,name\n1,Ann\nx,Bob\n",
    "model.yml": "model:\n  person:\n    id: uint64\n    name: str\n",
    "p.yml": """
        pipeline:
          people:
            - label: load
              task: load_csv
              args: { filepath: $CONFIG_DIR/data/people.csv, df_name: PEOPLE, model: person }
    """,
}


@pytest.mark.parametrize("preview", [True, False])
@pytest.mark.parametrize("mode", MODES)
def test_a_result_nobody_reads_is_part_of_the_run(write_config, tmp_path, mode, preview):
    """Its failure fails the run whether or not it is printed (lazy modes executed it only for
    the preview: --no-preview turned a failing run into a success)."""
    config = write_config(UNREAD)
    with DagsterInstance.ephemeral() as instance:
        result = run_job(config, "people", instance, mode=mode, preview=preview)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert failure.step_key == "load"
    assert "model 'person', column 'id': cannot cast value 'x' to uint64" in str(
        failure.event_specific_data.error.to_string()
    )


def test_a_custom_sink_still_gets_its_result_previewed(write_config, tmp_path):
    """A task that writes its frame itself, not through `ctx.sink_pass`: the preview then costs
    a pass of its own, but the result is still printed."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import execute_run

    from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
    from capport_dagster.core.graph import Project
    from capport_dagster.core.loader import load_config
    from capport_dagster.translate.build import build_definitions

    registry = DEFAULT_REGISTRY.copy()

    @registry.task("export", reads=lambda a: [a["df"]], writes=lambda a: [])
    def export(args, frames, ctx):
        frames[args["df"]].lazy().sink_csv(tmp_path / "export.csv")

    config = write_config(
        {
            "p.yml": """
            pipeline:
              p:
                - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
                - { label: export, task: export, args: { df: A } }
            """,
            "a.csv": "x\n1\n2\n3\n",
        }
    )
    project = Project.from_config(load_config(config), registry)
    job = build_definitions(project=project).resolve_job_def("p")
    with DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(job, run_config={"preview": True})
        result = execute_run(InMemoryJob(job), run, instance, raise_on_error=False)
    assert result.success
    found = result_frames(project.graphs["p"], result.all_events)
    assert [(frame.name, frame.shape) for frame in found] == [("A", "(3, 1)")]
    assert (tmp_path / "export.csv").read_text() == "x\n1\n2\n3\n"
