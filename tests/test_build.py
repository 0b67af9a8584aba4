"""`job_for` and `project_for`: what Dagster rebuilds in the process launching a run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from capport_dagster.core import graph
from capport_dagster.translate import build
from tests.conftest import REPO

PIPELINE = """
pipeline:
  p:
    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/a.csv, df_name: A } }
"""


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The config directories `build` reads from disk, in order."""
    seen: list[str] = []

    def counting(config_dir: str, *args: object, **kwargs: object) -> graph.Project:
        seen.append(str(config_dir))
        return graph.load_project(config_dir, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "load_project", counting)
    monkeypatch.setattr(build, "_CACHE", {})
    return seen


def test_a_job_is_built_once_while_its_config_stays_the_same(
    write_config: Callable[..., Path], loads: list[str]
) -> None:
    config = write_config({"pipeline.yml": PIPELINE})
    first = build.job_for(str(config), "p")
    assert build.job_for(str(config), "p") is first
    assert build.project_for(str(config), "p") is build.project_for(str(config), "p")
    assert loads == [str(config)]


def test_an_edited_config_is_read_again(
    write_config: Callable[..., Path], loads: list[str]
) -> None:
    config = write_config({"pipeline.yml": PIPELINE})
    first = build.job_for(str(config), "p")
    pipeline = config / "pipeline.yml"
    pipeline.write_text(PIPELINE.replace("label: save", "label: store"))
    os.utime(pipeline, ns=(1, 1))  # a new modification time even on a coarse clock
    second = build.job_for(str(config), "p")
    assert second is not first
    assert sorted(node.name for node in second.graph.nodes) == ["load", "store"]
    write_config({"extra.yml": "model: { m: { a: int } }\n"})  # a new file counts too
    assert build.job_for(str(config), "p") is not second
    assert loads == [str(config)] * 3


def test_a_changed_environment_is_read_again(
    write_config: Callable[..., Path], loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Variables and secrets come from the environment when the config is loaded.
    config = write_config({"pipeline.yml": PIPELINE})
    first = build.job_for(str(config), "p")
    monkeypatch.setenv("CAPPORT_TEST_SETTING", "changed")
    assert build.job_for(str(config), "p") is not first
    assert len(loads) == 2


def test_the_cache_is_bounded(write_config: Callable[..., Path], loads: list[str]) -> None:
    configs = [write_config({"pipeline.yml": PIPELINE}, f"c{i}") for i in range(12)]
    for config in configs:
        build.job_for(str(config), "p")
    assert len(build._CACHE) == build._CACHE_SIZE
    build.job_for(str(configs[-1]), "p")  # the newest entries are kept
    assert len(loads) == 12


def test_an_in_memory_run_imports_neither_dagster_polars_nor_httpx(tmp_path: Path) -> None:
    # dagster-polars (pyarrow, numpy) and httpx cost ~0.5 s of start-up; a run that neither
    # persists frames nor makes a request does not need them.
    script = f"""
import sys
from capport_dagster.cli import main
code = main(["run", "-c", {str(REPO / "config")!r}, "-p", "label_teams", "-o", {str(tmp_path)!r},
             "--no-preview"])
print(code, sorted(m for m in ("dagster_polars", "httpx", "pyarrow") if m in sys.modules))
"""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "0 []", result.stderr[-2000:]
    assert (tmp_path / "label_teams" / "teams.csv").is_file()


# --- whatever `validate` accepts builds: a property test ----------------------------------------

from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: Names that Dagster refuses or that clash once mapped, mixed with plain ones.
ODD = (
    "meta", "input", "context", "class", "type", "None", "a-b", "a_b", "x", "x__assets", "a__b",
    "b__c", "c", "nhl-daily", "load data", "fetch.players", "日本", "données", "2024", "_",
    "files_ready", "files_written", "result", "save", "load", "A", "B",
)  # fmt: skip
NAMES = st.sampled_from(ODD) | st.text("ab-_. 日é1", min_size=1, max_size=6)
PATHS = st.sampled_from(
    ["$OUTPUT_DIR/a.csv", "${OUTPUT_DIR}/a.csv", "$OUTPUT_DIR/b.csv", "$CONFIG_DIR/in.csv"]
)
COLUMNS = st.sampled_from(["c", "a-b", "a_b", "input", "id"])


@st.composite
def stage_list(draw: st.DrawFn) -> list[dict]:
    labels = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    written: list[str] = []
    stages = []
    for label in labels:
        kind = draw(st.sampled_from(["noop", "load", "transform", "join", "save"]))
        frame = draw(NAMES)
        if kind == "noop" or (kind in ("transform", "join", "save") and not written):
            stages.append({"label": label, "task": "noop"})
            continue
        if kind == "load":
            files = [{"filepath": draw(PATHS), "df_name": frame}]
            if draw(st.booleans()):
                files.append({"filepath": draw(PATHS), "df_name": draw(NAMES), "model": "m"})
            stages.append({"label": label, "task": "load_csv", "args": files})
            written += [f["df_name"] for f in files]
            continue
        source = draw(st.sampled_from(written))
        if kind == "save":
            args = {"filepath": draw(PATHS), "df_name": source}
            if draw(st.booleans()):
                args["model"] = "m"
            stages.append({"label": label, "task": "save_csv", "args": args})
            continue
        args = {"name": "t", "input": source, "save_df": frame}
        if kind == "join":
            args = {**args, "name": "j", "kwargs": {"right": draw(st.sampled_from(written))}}
        stages.append({"label": label, "task": "transform", "args": args})
        written.append(frame)
    return stages


@st.composite
def configs(draw: st.DrawFn) -> dict:
    pipelines = draw(st.dictionaries(NAMES, stage_list(), min_size=1, max_size=3))
    columns = draw(st.lists(COLUMNS, min_size=1, max_size=3, unique=True))
    model = {
        name: {"dtype": "int", "constraints": [draw(st.sampled_from(["unique", "not_null"]))]}
        for name in columns
    }

    def runner() -> dict:
        # A schedule runs something: a runner with one lists at least one pipeline.
        scheduled = draw(st.booleans())
        listed = st.lists(st.sampled_from(list(pipelines)), min_size=int(scheduled), unique=True)
        return {"pipelines": draw(listed)} | ({"schedule": {"every": "1d"}} if scheduled else {})

    runners = {draw(NAMES): runner() for _ in range(draw(st.integers(0, 2)))}
    return {
        "pipeline": pipelines,
        "transform": {
            "t": [{"select": {"c": None}}],
            "j": [{"join": {"right": "$$right", "left_on": "c", "right_on": "c", "how": "left"}}],
        },
        "model": {"m": model},
        "runner": runners,
    }


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(configs())
def test_every_config_validate_accepts_builds_and_every_job_plans(document: dict) -> None:
    import tempfile

    import yaml
    from dagster._core.execution.api import create_execution_plan

    from capport_dagster import load_definitions
    from capport_dagster.core.names import DagsterNaming
    from capport_dagster.errors import ValidationError

    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "p.yml").write_text(yaml.safe_dump(document, allow_unicode=True))
        try:
            project = graph.load_project(directory)
        except ValidationError:
            event("rejected by validate")
            return
        event("accepted by validate")
        defs = load_definitions(directory)
        for pipeline in project.graphs:
            for job in (
                build.job_for(directory, pipeline),
                defs.resolve_job_def(DagsterNaming().job(project.graphs[pipeline])),
                defs.resolve_job_def(DagsterNaming().asset_job(project.graphs[pipeline])),
            ):
                create_execution_plan(job, run_config={})
