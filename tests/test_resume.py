"""`capport run --resume RUN_ID`: a failed multiprocess run picks up from its failure."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import polars as pl
from dagster import DagsterEventType, DagsterInstance
from polars.testing import assert_frame_equal

CONFIG = {
    "a.csv": "id,x\n1,10\n2,20\n",
    "p.yml": """
        pipeline:
          p:
            - { label: load_a, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
            - { label: shape, task: transform, args: { name: keep, input: A, save_df: S } }
            - { label: load_b, task: load_csv, args: { filepath: $CONFIG_DIR/b.csv, df_name: B } }
            - { label: join, task: transform, args: { name: join_b, input: S, save_df: J } }
            - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/j.csv, df_name: J } }
    """,
    "t.yml": """
        transform:
          keep:
            - select: { id: null, x: null }
          join_b:
            - join: { right: B, left_on: id, right_on: id, how: left }
    """,
}


def capport(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "capport_dagster.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=180,
    )


def started_steps(run_id: str) -> list[str]:
    """Stages that ran in a run of the instance in $DAGSTER_HOME."""
    with DagsterInstance.get() as instance:
        return sorted(
            r.step_key
            for r in instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
            if r.step_key
        )


def test_a_failed_run_resumes_from_its_failure_without_redoing_finished_stages(
    write_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    config = write_config(CONFIG)
    run = ("run", "-c", str(config), "-p", "p", "--executor", "multiprocess", "--no-preview")

    failed = capport(*run, "-o", "out", home=tmp_path / "home", cwd=tmp_path)
    assert failed.returncode == 1
    assert "stage 'load_b' (#2): load_csv: no such file" in failed.stderr
    run_id = re.search(r"resume with: --resume (\S+)", failed.stderr).group(1)
    assert started_steps(run_id) == ["load_a", "load_b", "shape"]

    (config / "b.csv").write_text("id,y\n1,a\n2,b\n")
    resumed = capport(*run, "-o", "out", "--resume", run_id, home=tmp_path / "home", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {run_id} of pipeline 'p'" in resumed.stderr
    with DagsterInstance.get() as instance:
        latest = instance.get_runs(limit=1)[0]
    assert latest.parent_run_id == run_id
    # Only the failed stage and those after it ran again; load_a and shape were reused.
    assert started_steps(latest.run_id) == ["join", "load_b", "save"]

    whole = capport(*run, "-o", "whole", home=tmp_path / "home", cwd=tmp_path)
    assert whole.returncode == 0, whole.stderr
    assert_frame_equal(
        pl.read_csv(tmp_path / "out" / "j.csv"), pl.read_csv(tmp_path / "whole" / "j.csv")
    )


def test_resume_needs_a_persisted_run(write_config, tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    config = write_config({**CONFIG, "b.csv": "id,y\n1,a\n"})
    ok = capport("run", "-c", str(config), "-p", "p", home=tmp_path / "home", cwd=tmp_path)
    assert ok.returncode == 0
    with DagsterInstance.get() as instance:
        run_id = instance.get_runs(limit=1)[0].run_id
    again = capport(
        "run",
        "-c",
        str(config),
        "-p",
        "p",
        "--resume",
        run_id,
        home=tmp_path / "home",
        cwd=tmp_path,
    )
    assert again.returncode == 2
    assert f"--resume: run {run_id} kept its frames in memory" in again.stderr
