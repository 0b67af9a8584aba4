"""Shared test helpers: small config directories written on the fly."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import FrameVersion, PipelineGraph
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import Frame, RunContext
from capport_dagster.core.runtime import run_stage

#: Skips for a missing service, and their failure where CAPPORT_REQUIRE_SERVICES=1; moto's S3
#: server and a bucket per test (`s3_server`, `s3_bucket`).
pytest_plugins = ["tests.services", "tests.s3_server"]

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_CONFIG = REPO / "config"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1 (for a server a test starts, or a refused
    connection)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: The console script pip installed: unlike `python -m capport_dagster.cli`, it does not put
#: the working directory on sys.path (what a user's `capport` runs).
SCRIPT = Path(sys.executable).parent / "capport"


def capport(
    *args: str, cwd: Path | None = None, script: bool = False, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[str]:
    """`capport` in a subprocess, as a user runs it: real exit codes and real stderr. `env` adds
    variables (DAGSTER_HOME is unset unless given)."""
    environment = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | env
    command = [str(SCRIPT)] if script else [sys.executable, "-m", "capport_dagster.cli"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=timeout,
    )


@pytest.fixture
def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Path]:
    """`write_config({"a.yml": "...yaml..."})` -> a config directory holding those files.

    The test runs in `tmp_path`, so error locations print as `config/<file>` and relative
    outputs land in the temporary directory.
    """
    monkeypatch.chdir(tmp_path)

    def write(files: dict[str, str], directory: str = "config") -> Path:
        config_dir = tmp_path / directory
        config_dir.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            path = config_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text).lstrip("\n"))
        return config_dir

    return write


def fixture_server() -> ModuleType:
    """scripts/fixture_server.py (a script, not a package module), loaded from its path."""
    spec = importlib.util.spec_from_file_location(
        "fixture_server", REPO / "scripts" / "fixture_server.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def example_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The example config, with its JSON API (scripts/fixture_server.py) served on a free port
    of 127.0.0.1: a copy of `config/` whose URLs name that port instead of 8765, so that test
    runs side by side do not fight over one port. Stopped after the session."""
    server = fixture_server().start_in_thread(port=0)
    port = server.server_address[1]
    config = tmp_path_factory.mktemp("example") / "config"
    shutil.copytree(EXAMPLE_CONFIG, config)
    for path in config.glob("*.yml"):
        path.write_text(path.read_text().replace("127.0.0.1:8765", f"127.0.0.1:{port}"))
    yield config
    server.shutdown()
    server.server_close()


def run_stages(
    graph: PipelineGraph, mode: RunMode, variables: Mapping[str, str]
) -> dict[FrameVersion, Frame]:
    """The core without Dagster: every stage of `graph` in list order, through `run_stage`;
    returns each written frame version as the mode left it (lazy or eager)."""
    store: dict[FrameVersion, Frame] = {}

    async def run() -> None:
        for node in graph.nodes:
            frames = {name: store[version] for name, version in node.inputs.items()}
            result = await run_stage(node, frames, RunContext(mode, variables, node.location))
            assert set(result.frames) == set(node.writes)
            for version in node.outputs:
                store[version] = result.frames[version.name]

    asyncio.run(run())
    return store


def run_transform(
    directory: Path,
    steps: list,
    frames: Mapping[str, pl.DataFrame],
    mode: RunMode,
    *,
    input: str | None = None,
) -> pl.DataFrame:
    """Run a transform (its list of `steps`, as the YAML would hold them) on `frames` in
    `mode`, the way a pipeline runs it: each frame loaded from a Parquet file (dtypes kept),
    then `transform` on `input` (default: the first frame). The result, collected.

    `directory` holds the config (a fresh subdirectory per call): pass `tmp_path`."""
    import json
    import uuid

    from capport_dagster.core.graph import load_project

    config = directory / f"transform_{uuid.uuid4().hex[:8]}"
    config.mkdir()
    loads = []
    for name, frame in frames.items():
        frame.write_parquet(config / f"{name}.parquet")
        loads.append({"filepath": str(config / f"{name}.parquet"), "df_name": name})
    stages = [
        {"label": "load", "task": "load_parquet", "args": loads},
        {"label": "apply", "task": "transform",
         "args": {"name": "t", "input": input or next(iter(frames)), "save_df": "RESULT"}},
    ]  # fmt: skip
    text = json.dumps({"pipeline": {"p": stages}, "transform": {"t": steps}})
    (config / "p.yml").write_text(text)
    store = run_stages(load_project(config).graphs["p"], mode, {})
    (result,) = [frame for version, frame in store.items() if version.name == "RESULT"]
    return result.lazy().collect()


def parse_errors(step: Mapping[str, Any]) -> list[str]:
    """The messages reading a transform of this one step gives (it must fail to parse)."""
    from capport_dagster.core.transforms import parse_transform
    from capport_dagster.errors import ConfigError, Location, ValidationError

    with pytest.raises(ConfigError) as info:
        parse_transform("t", [step], Location(file="t.yml", section="transform", name="t"))
    if isinstance(info.value, ValidationError):
        return [problem.message for problem in info.value.problems]
    return [info.value.message]


class PolarsExecutions:
    """Counts how Polars plans are executed while it is installed (`monkeypatch`): `passes`, the
    calls (`collect`, `collect_all`: each one pass over its data), and per query, `sinks`
    (writing a file) and `queries` (everything else)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.passes = self.queries = self.sinks = 0
        collect, collect_all = pl.LazyFrame.collect, pl.collect_all

        def counted_collect(frame, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.passes += 1
            self.queries += 1
            return collect(frame, *args, **kwargs)

        def counted_collect_all(frames, *args, **kwargs):  # type: ignore[no-untyped-def]
            self.passes += 1
            for frame in frames:
                if "SINK" in frame.explain():
                    self.sinks += 1
                else:
                    self.queries += 1
            return collect_all(frames, *args, **kwargs)

        monkeypatch.setattr(pl.LazyFrame, "collect", counted_collect)
        monkeypatch.setattr(pl, "collect_all", counted_collect_all)


def builtin_tasks() -> str:
    """The built-in task names as the unknown-task messages list them: derived from the default
    registry, so that each new task module does not rewrite every test quoting the list."""
    return ", ".join(
        name
        for name in DEFAULT_REGISTRY
        if getattr(DEFAULT_REGISTRY.get(name).run, "__module__", "").startswith("capport_dagster.")
    )


#: Lines a test module wants printed in the run's summary (tests/test_fuzz.py: its memory figures).
SUMMARY_LINES = pytest.StashKey[list[str]]()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    lines = config.stash.get(SUMMARY_LINES, [])
    if lines:
        terminalreporter.section("capport test figures")
        for line in lines:
            terminalreporter.write_line(line)


# Hypothesis profiles: `default` for every run, `long` for a thorough fuzzing session
# (`pytest tests/test_fuzz.py --hypothesis-profile=long`, see docs/reliability.md).
from hypothesis import settings  # noqa: E402

settings.register_profile("default", max_examples=100)
settings.register_profile("long", max_examples=20_000)
