"""Dagster's own processes for tests: the webserver (what `dagster dev` serves, for its
GraphQL API) and the daemon (schedules, sensors, backfills, the run queue).

Both load `workspace.yaml` at the repository root and are stopped by their pid on the way out;
the webserver binds a free port of 127.0.0.1 and is waited for until the code location has
loaded (90 s at most).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dagster import DagsterInstance

from tests.conftest import REPO, free_port

__all__ = ["LOCATION_QUERY", "Query", "daemon", "dagster_home", "webserver"]

LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { jobs { name } } } } } } } }
"""

#: Ask the webserver a GraphQL query; its answer's JSON, or None while it does not answer.
Query = Callable[[str], dict[str, Any] | None]


def _query(port: int, query: str, timeout: float = 30) -> dict[str, Any] | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except OSError:
        return None


@contextmanager
def webserver(dagster_home: Path, **env: str) -> Iterator[tuple[Query, dict[str, Any]]]:
    """The webserver on `dagster_home`, with `env` set (CAPPORT_CONFIG_DIR unset unless given):
    its query function and the loaded code location entry (`LOCATION_QUERY`'s)."""
    port = free_port()
    environment = {**os.environ, "DAGSTER_HOME": str(dagster_home), **env}
    if "CAPPORT_CONFIG_DIR" not in env:
        environment.pop("CAPPORT_CONFIG_DIR", None)
    command = ["-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1"]
    server = subprocess.Popen(
        [sys.executable, *command, "-p", str(port)],
        cwd=REPO,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        entry = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and server.poll() is None:
            answer = _query(port, LOCATION_QUERY, timeout=5)
            if answer:
                entries = answer["data"]["workspaceOrError"]["locationEntries"]
                if entries and entries[0]["loadStatus"] == "LOADED":
                    entry = entries[0]
                    break
            time.sleep(0.5)
        assert entry is not None, "the webserver did not load the workspace in 90 s"
        yield (lambda query: _query(port, query)), entry
    finally:
        _stop(server)


def dagster_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME with the repository's dagster.yaml (its run queue: one run of a pipeline
    at a time), its SQLite storage created here, before a daemon starts: two processes creating
    the same fresh databases at once race on their tables ("table alembic_version already
    exists")."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    with DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs()
        instance.all_instigator_state()
    return home


@contextmanager
def daemon(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`dagster-daemon run` on the workspace, with the environment `env` (DAGSTER_HOME,
    CAPPORT_CONFIG_DIR and what the config reads); the caller bounds its wait in time."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=30)
