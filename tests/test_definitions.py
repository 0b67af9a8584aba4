"""The Dagster entry points: `defs`, `workspace.yaml`, and the webserver loading them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dagster import Definitions

from capport_dagster import load_definitions
from tests.conftest import EXAMPLE_CONFIG, REPO

PIPELINES = ["branches", "enrich_events", "label_teams", "player_api"]
#: A job per pipeline and an asset job per pipeline, sorted by name.
JOBS = sorted([*PIPELINES, *(f"{p}__assets" for p in PIPELINES)])

JOBS_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { jobs { name } } } } } } } }
"""


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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _query(port: int) -> dict | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": JOBS_QUERY}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())
    except OSError:
        return None


def test_webserver_loads_the_workspace_from_the_repository_root(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    env.pop("CAPPORT_CONFIG_DIR", None)
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster_webserver",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        entry = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            answer = _query(port)
            if answer:
                entries = answer["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    entry = entries[0]
                    break
            time.sleep(0.5)
        assert entry is not None, "the webserver did not load the workspace in 90 s"
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location
        jobs = sorted(job["name"] for job in location["repositories"][0]["jobs"])
        assert [j for j in jobs if not j.startswith("__")] == JOBS
    finally:
        server.terminate()
        server.wait(timeout=30)
