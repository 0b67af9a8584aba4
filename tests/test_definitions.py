"""The Dagster entry points: `defs`, `workspace.yaml`, and the webserver loading them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from dagster import Definitions

from capport_dagster import load_definitions
from tests.conftest import EXAMPLE_CONFIG
from tests.dagster_servers import webserver

PIPELINES = [
    "branches",
    "daily_teams",
    "enrich_events",
    "formats",
    "goals",
    "label_teams",
    "player_api",
]
#: A job per pipeline and an asset job per pipeline, sorted by name.
JOBS = sorted([*PIPELINES, *(f"{p}__assets" for p in PIPELINES)])


def test_definitions_of_the_examples_are_loadable_together():
    defs = load_definitions(EXAMPLE_CONFIG)
    Definitions.validate_loadable(defs)  # e.g. op definition names unique across jobs
    names = sorted(job.name for job in defs.resolve_all_job_defs())
    assert [n for n in names if not n.startswith("__")] == JOBS


def test_definitions_module_reads_capport_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("CAPPORT_CONFIG_DIR", str(EXAMPLE_CONFIG))
    code = "import capport_dagster.definitions as d; print(sorted(j.name for j in d.defs.jobs))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert out.stdout.strip() == str(JOBS), out.stderr


def loaded_jobs(tmp_path: Path, **env: str) -> list[str]:
    """The job names a real webserver (what `dagster dev` serves) loads from `workspace.yaml`
    at the repository root, with `env` set."""
    with webserver(tmp_path, **env) as (_, entry):
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location
        jobs = sorted(job["name"] for job in location["repositories"][0]["jobs"])
        return [j for j in jobs if not j.startswith("__")]


def test_webserver_loads_the_workspace_from_the_repository_root(tmp_path: Path):
    assert loaded_jobs(tmp_path) == JOBS


def test_webserver_loads_pipelines_with_names_dagster_refuses(tmp_path: Path, write_config):
    from tests.test_names import ODD_NAMES

    config = write_config({"p.yml": ODD_NAMES})
    assert loaded_jobs(tmp_path, CAPPORT_CONFIG_DIR=str(config)) == [
        "meta_",
        "meta___assets",
        "nhl_daily",
        "nhl_daily__assets",
    ]


def test_capport_pipelines_loads_only_the_pipelines_named(tmp_path, write_config):
    """One broken pipeline fails the code location (every problem listed); naming the others
    in $CAPPORT_PIPELINES keeps them loading meanwhile."""
    config = write_config(
        {
            "p.yml": """
            pipeline:
              good: [{label: a, task: noop}]
              also_good: [{label: a, task: noop}]
              broken: [{label: a, task: nope}]
            """
        }
    )
    code = "import capport_dagster.definitions as d; print(sorted(j.name for j in d.defs.jobs))"

    def load(**env: str) -> subprocess.CompletedProcess:
        environment = {**os.environ, "CAPPORT_CONFIG_DIR": str(config), **env}
        return subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=environment,
            timeout=120,
        )

    everything = load()
    assert everything.returncode != 0
    assert "pipeline 'broken', stage 'a' (#1): unknown task 'nope'" in everything.stderr
    selected = load(CAPPORT_PIPELINES="good, also_good")
    assert selected.returncode == 0, selected.stderr
    assert selected.stdout.strip() == str(
        ["also_good", "also_good__assets", "good", "good__assets"]
    )


def test_capport_task_modules_finds_modules_beside_you_and_names_a_broken_one(
    tmp_path, write_config
):
    """As `dagster -m` does, the working directory is searched; a module that fails says it
    came from $CAPPORT_TASK_MODULES, with its own error in one line."""
    config = write_config({"p.yml": "pipeline:\n  p: [{label: a, task: mine}]\n"})
    (tmp_path / "my_tasks.py").write_text(
        "from capport_dagster import task\n\n\n"
        "@task('mine', reads=lambda a: [], writes=lambda a: [])\n"
        "def mine(args, frames, ctx):\n"
        "    return {}\n"
    )
    (tmp_path / "broken.py").write_text("raise RuntimeError('no database configured')\n")
    # Run as a file (`python defs.py` puts its own directory, not the working one, on sys.path).
    script = tmp_path / "scripts" / "defs.py"
    script.parent.mkdir()
    script.write_text(
        "import capport_dagster.definitions as d\nprint(sorted(j.name for j in d.defs.jobs))\n"
    )

    def load(modules: str) -> subprocess.CompletedProcess:
        environment = {**os.environ, "CAPPORT_CONFIG_DIR": str(config)}
        environment["CAPPORT_TASK_MODULES"] = modules
        return subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=environment,
            timeout=120,
        )

    good = load(" my_tasks ,")
    assert (good.returncode, good.stdout) == (0, "['p', 'p__assets']\n"), good.stderr
    broken = load("my_tasks,broken")
    assert broken.returncode != 0
    assert broken.stderr.rstrip().splitlines()[-1] == (
        "capport_dagster.errors.ConfigError: broken.py:1: $CAPPORT_TASK_MODULES module 'broken': "
        "importing the module raised RuntimeError: no database configured"
    )
