"""A real `dagster-webserver` (what `dagster dev` serves) for tests that ask its GraphQL API.

Started on a free port of 127.0.0.1 from `workspace.yaml` at the repository root, waited for
until the code location has loaded (90 s at most), stopped by its pid on the way out.
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

from tests.conftest import REPO, free_port

__all__ = ["LOCATION_QUERY", "Query", "webserver"]

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
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=30)
