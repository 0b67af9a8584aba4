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
