"""The Dagster daemon fires capport runners: a real `dagster-daemon run`, bounded and stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
from dagster import DagsterInstance, DagsterRunStatus

from tests.conftest import REPO

CONFIG = {
    "a.csv": "x\n1\n2\n",
    "p.yml": """
        pipeline:
          ticker:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
            - label: save
              task: save_csv
              args: { filepath: "$DAEMON_TEST_OUT/$REF_DATE/a.csv", df_name: A }
    """,
    "r.yml": """
        runner:
          often:
            run_with: async_eager
            pipelines: [ticker]
            schedule: { every: 5s, timezone: UTC }
    """,
}


def test_daemon_launches_the_runner_sensor_and_the_run_succeeds(
    write_config, tmp_path: Path, monkeypatch
):
    config = write_config(CONFIG)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    out = tmp_path / "out"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CAPPORT_CONFIG_DIR": str(config),
        "DAEMON_TEST_OUT": str(out),
    }
    daemon = subprocess.Popen(
        [sys.executable, "-m", "dagster._daemon", "run", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    try:
        succeeded = []
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not succeeded:
            time.sleep(2)
            with DagsterInstance.get() as instance:
                runs = instance.get_runs()
                succeeded = [r for r in runs if r.status == DagsterRunStatus.SUCCESS]
                failed = [r for r in runs if r.status == DagsterRunStatus.FAILURE]
            assert not failed, "a run launched by the daemon failed"
        assert succeeded, "the daemon launched no successful run within 150 s"
        run = succeeded[0]
        assert run.job_name == "ticker"
        assert run.tags["capport/runner"] == "often"
        assert run.tags["capport/pipeline"] == "ticker"
        assert run.run_config["mode"] == "async_eager"
        written = list(out.glob("*/a.csv"))
        assert len(written) >= 1
        assert pl.read_csv(written[0])["x"].to_list() == [1, 2]
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
