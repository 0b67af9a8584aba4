"""The Dagster daemon fires capport runners: a real `dagster-daemon run`, bounded and stopped."""

from __future__ import annotations

import itertools
import os
import re
import time
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, DagsterRunStatus

from tests.conftest import fixture_server
from tests.dagster_servers import daemon, dagster_home

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


def instance_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME of its own (`dagster_home`), which this process uses too."""
    home = dagster_home(tmp_path)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    return home


def test_daemon_launches_the_runner_sensor_and_the_run_succeeds(
    write_config, tmp_path: Path, monkeypatch
):
    config = write_config(CONFIG)
    home = instance_home(tmp_path, monkeypatch)
    out = tmp_path / "out"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CAPPORT_CONFIG_DIR": str(config),
        "DAEMON_TEST_OUT": str(out),
    }
    with daemon(env):
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


SLOW = {
    "p.yml": """
        pipeline:
          slow:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/urls.csv, df_name: U } }
            - { label: fetch, task: http_request, args: { df_from: U, url_column: url, df_to: R } }
            - { label: save, task: save_csv,
                args: { filepath: $DAEMON_TEST_OUT/r.csv, df_name: R } }
    """,
    "r.yml": """
        runner:
          often:
            pipelines: [slow]
            schedule: { every: 2s }
    """,
}


def test_a_sensor_on_a_slow_pipeline_never_piles_up_runs(write_config, tmp_path: Path, monkeypatch):
    """A sensor fires every 2 s, each run takes ~4 s: the sensor skips its ticks while a run of
    the pipeline has not finished (translate/schedules.py), so no run ever waits behind another,
    runs never overlap, and the skipped ticks say why."""
    from dagster._core.scheduler.instigation import TickStatus

    server = fixture_server().start_in_thread(root=tmp_path / "api", port=0, delay=4)
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "x.json").write_text('{"v": 1}')
    url = f"http://127.0.0.1:{server.server_address[1]}/x"
    config = write_config({**SLOW, "urls.csv": f"url\n{url}\n"})
    home = instance_home(tmp_path, monkeypatch)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CAPPORT_CONFIG_DIR": str(config),
        "DAEMON_TEST_OUT": str(tmp_path / "out"),
    }
    unfinished = (DagsterRunStatus.QUEUED, DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING)
    try:
        with daemon(env):
            records = []
            skips: list[str] = []
            deadline = time.monotonic() + 150
            while time.monotonic() < deadline:
                time.sleep(1)
                with DagsterInstance.get() as instance:
                    records = instance.get_run_records()
                    skips = [
                        tick.skip_reason or ""
                        for state in instance.all_instigator_state()
                        for tick in instance.get_ticks(
                            state.instigator_origin_id,
                            state.selector_id,
                            statuses=[TickStatus.SKIPPED],
                        )
                    ]
                statuses = [r.dagster_run.status for r in records]
                assert DagsterRunStatus.FAILURE not in statuses
                waiting = sum(status in unfinished for status in statuses)
                running = statuses.count(DagsterRunStatus.STARTED)
                assert running + waiting <= 1, f"runs piled up: {statuses}"
                if statuses.count(DagsterRunStatus.SUCCESS) >= 2 and skips:
                    break
            finished = sorted(
                (r for r in records if r.dagster_run.status == DagsterRunStatus.SUCCESS),
                key=lambda r: r.start_time,
            )
            assert len(finished) >= 2
            for earlier, later in itertools.pairwise(finished):
                assert later.start_time >= earlier.end_time  # never overlapping
            skipped = re.compile(
                r"run [0-9a-f-]+ of job 'slow' is still (queued|not_started|starting|started):"
                r" this sensor starts no run before it finishes \(runs of a pipeline slower than"
                r" its interval do not pile up\)"
            )
            assert skips and all(skipped.fullmatch(skip) for skip in skips), skips
    finally:
        server.shutdown()
