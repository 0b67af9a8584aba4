"""Backfills of a partitioned pipeline: `capport backfill` through a real instance, and one the
Dagster daemon runs from a backfill requested in the instance (as the UI requests it)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.execution.backfill import BulkActionStatus

from capport_dagster.cli_backfill import backfill_record
from tests.conftest import capport
from tests.dagster_servers import daemon, dagster_home

CONFIG = {
    "a.csv": "x\n1\n2\n",
    "p.yml": """
        pipeline:
          daily:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
            - label: save
              task: save_csv
              args: { filepath: "$BACKFILL_OUT/$REF_DATE/a.csv", df_name: A }
          plain:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
            - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/a.csv, df_name: A } }
    """,
    "r.yml": """
        runner:
          nightly:
            pipelines: [daily]
            partitions: { start: 2026-11-01 }
            schedule: { every: 1d, timezone: UTC }
    """,
}
KEYS = ["2026-11-26", "2026-11-27", "2026-11-28"]


def _instance(home: Path) -> DagsterInstance:
    from dagster._core.instance.ref import InstanceRef

    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def backfill(config: Path, home: Path | None, out: Path, *args: str):
    env = {"BACKFILL_OUT": str(out)}
    if home is not None:
        env["DAGSTER_HOME"] = str(home)
    return capport("backfill", "-c", str(config), *args, timeout=300, **env)


def test_capport_backfill_runs_one_run_per_partition_in_the_instance(write_config, tmp_path):
    config = write_config(CONFIG)
    home, out = dagster_home(tmp_path), tmp_path / "out"
    result = backfill(config, home, out, "-p", "daily", "--from", KEYS[0], "--to", KEYS[-1])
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert re.fullmatch(
        r"\[capport\] backfill (\w+): pipeline 'daily', 3 daily partitions from 2026-11-26 to"
        r" 2026-11-28, mode sync_lazy, executor in_process",
        lines[0],
    )
    for index, key in enumerate(KEYS, start=1):
        assert re.fullmatch(rf"partition {key} \({index}/3\): success in \d+\.\d s", lines[index])
    assert len(lines) == 4
    backfill_id = re.search(r"backfill (\w+):", lines[0]).group(1)  # type: ignore[union-attr]
    assert result.stdout == f"backfill {backfill_id}: 3 of 3 partitions succeeded\n"
    for key in KEYS:
        assert pl.read_csv(out / key / "a.csv")["x"].to_list() == [1, 2]
    with _instance(home) as instance:
        runs = sorted(instance.get_runs(), key=lambda run: run.tags["dagster/partition"])
        record = instance.get_backfill(backfill_id)
    assert [run.tags["dagster/partition"] for run in runs] == KEYS
    assert {run.tags["dagster/backfill"] for run in runs} == {backfill_id}
    assert {run.tags["dagster/partition_set"] for run in runs} == {"daily_partition_set"}
    assert {run.status for run in runs} == {DagsterRunStatus.SUCCESS}
    assert [run.run_config["resources"]["capport"]["config"]["ref_datetime"] for run in runs] == [
        f"{key}T00:00:00+00:00" for key in KEYS
    ]
    assert record is not None
    assert record.status == BulkActionStatus.COMPLETED_SUCCESS
    assert list(record.partition_names or []) == KEYS
    assert record.partition_set_origin is not None
    assert record.partition_set_origin.partition_set_name == "daily_partition_set"
    assert record.backfill_end_timestamp is not None


def test_a_failing_partition_exits_1_and_the_others_still_run(write_config, tmp_path):
    files = dict(CONFIG)
    files["p.yml"] = CONFIG["p.yml"].replace("$CONFIG_DIR/a.csv", "$CONFIG_DIR/$REF_DATE.csv", 1)
    files |= {"2026-11-26.csv": "x\n1\n", "2026-11-28.csv": "x\n3\n"}
    config = write_config(files)
    home, out = dagster_home(tmp_path), tmp_path / "out"
    result = backfill(config, home, out, "-p", "daily", "--from", KEYS[0], "--to", KEYS[-1])
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"partition 2026-11-26 \(1/3\): success in \d+\.\d s", lines[1])
    assert lines[2].startswith("error: ") and "2026-11-27.csv" in lines[2]
    assert lines[3] == "run failed"
    assert re.fullmatch(r"partition 2026-11-27 \(2/3\): failed in \d+\.\d s", lines[4])
    assert re.fullmatch(r"partition 2026-11-28 \(3/3\): success in \d+\.\d s", lines[5])
    assert lines[6:] == [
        "failed partitions: 2026-11-27; re-run each with:",
        f"  capport run -c {config} -p daily -d 2026-11-27",
    ]
    assert "Traceback" not in result.stderr
    assert re.fullmatch(r"backfill \w+: 2 of 3 partitions succeeded\n", result.stdout)
    assert sorted(p.parent.name for p in out.glob("*/a.csv")) == ["2026-11-26", "2026-11-28"]
    with _instance(home) as instance:
        [record] = instance.get_backfills()
    assert record.status == BulkActionStatus.COMPLETED_FAILED


@pytest.mark.parametrize(
    ("args", "home", "message"),
    [
        (
            ("-p", "daily", "--from", "2026-11-26", "--to", "2026-11-28"),
            False,
            "error: capport backfill needs DAGSTER_HOME: the backfill and its runs are recorded"
            " in that instance (export DAGSTER_HOME=$PWD/.dagster_home, a directory holding the"
            " repo's dagster.yaml)\n",
        ),
        (
            ("-p", "plain", "--from", "2026-11-26", "--to", "2026-11-28"),
            True,
            "error: pipeline 'plain' is not partitioned, so it has no partitions to backfill:"
            " give the runner that lists it `partitions: true` (docs/reference.md, Partitions"
            " and backfills), or run one date with capport run -p plain -d DATE\n",
        ),
        (
            ("-p", "daily", "--from", "2026-11-28", "--to", "2026-11-26"),
            True,
            "error: --from 2026-11-28 (partition 2026-11-28) is after --to 2026-11-26 (partition"
            " 2026-11-26): nothing to backfill\n",
        ),
        (
            ("-p", "daily", "--from", "2026-10-01", "--to", "2026-11-26"),
            True,
            "error: --from 2026-10-01 is before the first partition, 2026-11-01 (partitions.start"
            " 2026-11-01): give a later date, or an earlier partitions.start\n",
        ),
        (
            ("-p", "daily", "--from", "2026-11-26T06:00", "--to", "2026-11-28"),
            True,
            "error: --from 2026-11-26T06:00 is inside partition 2026-11-26, which starts at"
            " 2026-11-26T00:00:00+00:00 (daily): give --from 2026-11-26\n",
        ),
    ],
)
def test_config_errors_exit_2_without_a_traceback(write_config, tmp_path, args, home, message):
    config = write_config(CONFIG)
    result = backfill(config, dagster_home(tmp_path) if home else None, tmp_path / "o", *args)
    assert (result.returncode, result.stderr) == (2, message)
    assert not (tmp_path / "o").exists()


def test_the_daemon_runs_a_backfill_requested_in_the_instance(write_config, tmp_path):
    """What the UI's "Launch backfill" does: a REQUESTED backfill of the job's partition set in
    the instance; the daemon launches a run per partition through the run queue (one run of the
    pipeline at a time: the repo's dagster.yaml), each at its partition's `$REF_DATE`."""
    config = write_config(CONFIG)
    home, out = dagster_home(tmp_path), tmp_path / "out"
    with _instance(home) as instance:
        record = backfill_record("daily", KEYS, status=BulkActionStatus.REQUESTED)
        instance.add_backfill(record)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "CAPPORT_CONFIG_DIR": str(config),
        "BACKFILL_OUT": str(out),
    }
    with daemon(env):
        deadline = time.monotonic() + 240
        done = None
        while time.monotonic() < deadline:
            time.sleep(2)
            with _instance(home) as instance:
                runs = instance.get_run_records()
                done = instance.get_backfill(record.backfill_id)
            statuses = [r.dagster_run.status for r in runs]
            assert DagsterRunStatus.FAILURE not in statuses
            assert statuses.count(DagsterRunStatus.STARTED) <= 1  # one run at a time
            if done is not None and done.status == BulkActionStatus.COMPLETED_SUCCESS:
                break
    assert done is not None and done.status == BulkActionStatus.COMPLETED_SUCCESS, done
    tags = sorted(r.dagster_run.tags["dagster/partition"] for r in runs)
    assert tags == KEYS
    assert {r.dagster_run.tags["dagster/backfill"] for r in runs} == {record.backfill_id}
    for key in KEYS:
        assert pl.read_csv(out / key / "a.csv")["x"].to_list() == [1, 2]
