"""`capport run --resume RUN_ID`: a failed multiprocess run picks up from its failure."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef
from polars.testing import assert_frame_equal

from capport_dagster.cli import main
from tests.conftest import capport

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


def capport_in(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`capport` keeping its runs in the instance at `home` (what `--resume` reads)."""
    return capport(*args, cwd=cwd, timeout=180, DAGSTER_HOME=str(home))


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

    failed = capport_in(*run, "-o", "out", "-d", "2026-01-04", home=tmp_path / "home", cwd=tmp_path)
    assert failed.returncode == 1
    assert "stage 'load_b' (#3): load_csv: no such file" in failed.stderr
    run_id = re.search(r"resume with: --resume (\S+)", failed.stderr).group(1)
    assert started_steps(run_id) == ["load_a", "load_b", "shape"]

    (config / "b.csv").write_text("id,y\n1,a\n2,b\n")
    # The failed command with --resume added: options that repeat the run's settings are fine.
    again = (*run, "-o", "out", "-d", "2026-01-04T00:00:00Z", "--mode", "sync_lazy")
    resumed = capport_in(*again, "--resume", run_id, home=tmp_path / "home", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming run {run_id} of pipeline 'p'" in resumed.stderr
    with DagsterInstance.get() as instance:
        latest = instance.get_runs(limit=1)[0]
    assert latest.parent_run_id == run_id
    # Only the failed stage and those after it ran again; load_a and shape were reused.
    assert started_steps(latest.run_id) == ["join", "load_b", "save"]

    whole = capport_in(
        *run, "-o", "whole", "-d", "2026-01-04", home=tmp_path / "home", cwd=tmp_path
    )
    assert whole.returncode == 0, whole.stderr
    assert_frame_equal(
        pl.read_csv(tmp_path / "out" / "j.csv"), pl.read_csv(tmp_path / "whole" / "j.csv")
    )


# --- what cannot be resumed: exit 2, why, and what to do -------------------------------------

RUNNERS = """
    runner:
      eager: { run_with: async_eager, executor: multiprocess }
"""
Q = """
    pipeline:
      q:
        - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/a.csv, df_name: A } }
        - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/q.csv, df_name: A } }
"""


@dataclass(frozen=True)
class Stored:
    """A DAGSTER_HOME holding runs of every kind a resume must refuse."""

    root: Path
    home: Path
    failed: str  # a failed multiprocess run of p (-o out -d 2026-01-04): resumable
    in_memory: str  # a failed in-process run of p
    succeeded: str  # a successful run of q


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(textwrap.dedent(text).lstrip("\n"))
    return directory


def stored_instance(home: Path) -> DagsterInstance:
    """The instance in `home`, without touching this process's DAGSTER_HOME."""
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def latest_run(home: Path) -> str:
    with stored_instance(home) as instance:
        return instance.get_runs(limit=1)[0].run_id


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> Stored:
    root = tmp_path_factory.mktemp("resume")
    home = root / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    logger = "logger:\n  default: { level: info, output: logs }\n"
    config = write(root / "config", {**CONFIG, "q.yml": Q, "r.yml": RUNNERS, "l.yml": logger})
    base = ("run", "-c", str(config), "--no-preview", "-o", "out")
    failed = capport_in(
        *base, "-p", "p", "-d", "2026-01-04", "--executor", "multiprocess", home=home, cwd=root
    )
    assert failed.returncode == 1, failed.stderr
    failed_id = latest_run(home)
    in_memory = capport_in(*base, "-p", "p", home=home, cwd=root)
    assert in_memory.returncode == 1, in_memory.stderr
    in_memory_id = latest_run(home)
    succeeded = capport_in(*base, "-p", "q", home=home, cwd=root)
    assert succeeded.returncode == 0, succeeded.stderr
    return Stored(root, home, failed_id, in_memory_id, latest_run(home))


def resume(
    stored: Stored,
    monkeypatch,
    capsys,
    run_id: str,
    *options: str,
    config: str = "config",
    pipeline: str = "p",
) -> str:
    """`capport run --resume` in this process (it is refused before any execution): stderr."""
    monkeypatch.setenv("DAGSTER_HOME", str(stored.home))
    monkeypatch.chdir(stored.root)
    argv = ["run", "-c", config, "-p", pipeline, "--no-preview", *options, "--resume", run_id]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


KEEP = (
    "A resumed run keeps the settings of the run it resumes: leave these options out (or repeat"
    " the original values), or start a new run without --resume\n"
)


@pytest.mark.parametrize(
    ("options", "was", "asked"),
    [
        (["-o", "elsewhere"], "-o {root}/out", "-o {root}/elsewhere"),
        (["--mode", "async_lazy"], "--mode sync_lazy", "--mode async_lazy"),
        (["--executor", "in_process"], "--executor multiprocess", "--executor in_process"),
        (["-d", "2026-01-05"], "-d 2026-01-04T00:00:00+00:00", "-d 2026-01-05T00:00:00+00:00"),
        (["-r", "eager"], "--mode sync_lazy", "mode async_eager (runner 'eager')"),
        (
            ["-o", "out", "--mode", "async_eager"],  # -o repeats the run's: only --mode differs
            "--mode sync_lazy",
            "--mode async_eager",
        ),
    ],
    ids=["-o", "--mode", "--executor", "-d", "-r", "only-the-option-that-differs"],
)
def test_options_that_change_the_settings_of_a_resumed_run_are_refused(
    stored, monkeypatch, capsys, options, was, asked
):
    err = resume(stored, monkeypatch, capsys, stored.failed, *options)
    was, asked = was.format(root=stored.root), asked.format(root=stored.root)
    expected = (
        f"error: --resume: run {stored.failed} ran with {was}; this command asks for {asked}."
    )
    assert err == f"{expected} {KEEP}"


def test_a_run_that_does_not_exist(stored, monkeypatch, capsys):
    missing = "00000000-0000-0000-0000-000000000000"
    assert resume(stored, monkeypatch, capsys, missing) == (
        f"error: --resume: no run {missing} in {stored.home} (DAGSTER_HOME): give the whole id a"
        " failed run printed after 'resume with:'\n"
    )


def test_a_run_of_another_pipeline(stored, monkeypatch, capsys):
    assert resume(stored, monkeypatch, capsys, stored.succeeded) == (
        f"error: --resume: run {stored.succeeded} is a run of 'q', not of 'p': resume it with"
        " -p q\n"
    )


def test_a_run_that_succeeded(stored, monkeypatch, capsys):
    assert resume(stored, monkeypatch, capsys, stored.succeeded, pipeline="q") == (
        f"error: --resume: run {stored.succeeded} succeeded, so there is nothing to resume: to"
        " run the pipeline again, start a new run (without --resume)\n"
    )


def test_a_run_that_kept_its_frames_in_memory(stored, monkeypatch, capsys):
    assert resume(stored, monkeypatch, capsys, stored.in_memory) == (
        f"error: --resume: run {stored.in_memory} kept its frames in memory, so there is nothing"
        " to resume from; runs with --executor multiprocess or celery persist them\n"
    )


def test_resume_needs_dagster_home(stored, monkeypatch, capsys):
    monkeypatch.chdir(stored.root)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["run", "-c", "config", "-p", "p", "--resume", stored.failed]) == 2
    assert capsys.readouterr().err == (
        "error: --resume needs DAGSTER_HOME, where runs are stored: set it to the directory the"
        " run was made with\n"
    )


def test_a_pipeline_whose_stages_changed(stored, monkeypatch, capsys):
    """A renamed stage: the resumed run would look for frames no stage of the run wrote."""
    changed = stored.root / "renamed"
    shutil.copytree(stored.root / "config", changed)
    text = (changed / "p.yml").read_text()
    (changed / "p.yml").write_text(text.replace("label: shape,", "label: shaped,"))
    err = resume(stored, monkeypatch, capsys, stored.failed, config="renamed")
    assert err == (
        f"error: --resume: pipeline 'p' changed since run {stored.failed} (stage 'shape' is gone;"
        " stage 'shaped' is new; stage 'join' reads or writes other frames). A resumed run reuses"
        " the frames its finished stages wrote, so it needs the same stages reading and writing"
        " the same frames: undo the change to resume, or start a new run without --resume\n"
    )


def test_a_run_whose_settings_the_config_no_longer_has(stored, monkeypatch, capsys):
    """The run wrote its log with the logger `default`; the config has dropped it since."""
    changed = stored.root / "no-logger"
    shutil.copytree(stored.root / "config", changed)
    (changed / "l.yml").unlink()
    err = resume(stored, monkeypatch, capsys, stored.failed, config="no-logger")
    assert err == (
        f"error: --resume: run {stored.failed} cannot run with the config as it is now: logger:"
        " unknown logger 'default' (loggers: none defined). Undo the change to resume, or start a"
        " new run without --resume\n"
    )


SLOW_TASKS = """
    import time
    from pathlib import Path

    from capport_dagster import task


    @task("hold", reads=lambda a: [a["input"]], writes=lambda a: [a["save_df"]])
    def hold(args, frames, ctx):
        \"\"\"Says it started (the marker file), then waits while the marker exists.\"\"\"
        marker = Path(args["marker"])
        marker.touch()
        deadline = time.monotonic() + 120
        while marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return {args["save_df"]: frames[args["input"]]}
"""


def test_a_run_in_progress_and_a_run_whose_process_was_killed(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    marker = tmp_path / "started"
    write(tmp_path, {"slow_tasks.py": SLOW_TASKS})
    config = write(
        tmp_path / "config",
        {
            "a.csv": "id\n1\n",
            "p.yml": f"""
                pipeline:
                  slow:
                    - {{ label: load, task: load_csv, args: {{ filepath: $CONFIG_DIR/a.csv,
                        df_name: A }} }}
                    - {{ label: hold, task: hold, args: {{ input: A, save_df: B,
                        marker: {marker} }} }}
                    - {{ label: save, task: save_csv, args: {{ filepath: $OUTPUT_DIR/b.csv,
                        df_name: B }} }}
            """,
        },
    )
    command = [sys.executable, "-m", "capport_dagster.cli", "run", "-c", str(config), "-p", "slow"]
    command += ["-m", "slow_tasks", "--no-preview"]
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(tmp_path)}
    running = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert running.poll() is None, running.communicate(timeout=30)[1]
            assert time.monotonic() < deadline, "the slow stage did not start"
            time.sleep(0.05)
        run_id = latest_run(home)

        def resume_it() -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*command, "--resume", run_id],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )

        alive = resume_it()
        assert (alive.returncode, alive.stderr) == (
            2,
            f"error: --resume: run {run_id} is still in progress (STARTED, capport process"
            f" {running.pid} is running it): wait for it to end, and resume it if it fails\n",
        )
        os.killpg(running.pid, signal.SIGKILL)
        assert running.wait(timeout=30) == -signal.SIGKILL
    finally:
        if running.poll() is None:
            os.killpg(running.pid, signal.SIGKILL)
            running.wait(timeout=30)
        running.stderr.close()
    # Killed, the run stays STARTED; its process is gone, so --resume marks it failed (then
    # refuses it here: an in-process run kept its frames in memory).
    dead = resume_it()
    assert dead.returncode == 2
    assert dead.stderr == (
        f"warning: run {run_id} was STARTED, but the capport process that ran it"
        f" ({running.pid}) is gone: marked failed by --resume\n"
        f"error: --resume: run {run_id} kept its frames in memory, so there is nothing to resume"
        " from; runs with --executor multiprocess or celery persist them\n"
    )
    with stored_instance(home) as instance:
        run = instance.get_run_by_id(run_id)
    assert run is not None and run.status == DagsterRunStatus.FAILURE
