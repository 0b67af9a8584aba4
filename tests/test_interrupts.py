"""SIGINT and SIGTERM stop a run promptly, in every mode and executor, publishing nothing after.

The slow stage is a task of the test's own (`stall`, loaded with `capport run -m`): it opens a
sink's temporary file, writes half of it, says so (a marker file), then blocks inside Polars
reading a FIFO nobody writes to, as a long Polars computation would: in Rust, with the GIL
released, where a Python signal handler of the thread running it cannot run. The test signals
the `capport run` process alone (`kill -INT <pid>`, not its process group, so the stage
processes of the multiprocess executor get nothing from the test) and requires that it ends
within `EXIT_DEADLINE` with 130 or 143, says "interrupted", prints no traceback, leaves neither
the half-written file, nor its temporary, nor the output of the later sink, nor any of its
processes, nor its stop directory.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.instance.ref import InstanceRef

from capport_dagster.core import interrupts
from capport_dagster.core.sinks import HOST_TAG, TEMP_SUFFIX, atomic_path
from capport_dagster.errors import RunInterrupted

STARTUP_DEADLINE = 60  # seconds for the run to reach its slow stage (2-6 s here)
EXIT_DEADLINE = 10  # seconds from the signal to the end of the process (well under 1 s here)

TASKS = '''
import os
from pathlib import Path

import polars as pl

from capport_dagster import task
from capport_dagster.core.sinks import atomic_path


@task("stall", reads=lambda a: [a["input"]], writes=lambda a: [a["save_df"]])
def stall(args, frames, ctx):
    """Half of a file written, then blocked in Polars on the FIFO (if there is one) until a
    writer opens it."""
    with atomic_path(ctx.path(args["file"])) as temporary:
        temporary.write_text("half,")
        Path(args["marker"]).touch()
        if os.path.exists(args["fifo"]):
            try:  # blocks until a writer opens the FIFO; then fails (Polars maps files): fine
                pl.scan_csv(args["fifo"]).collect()
            except OSError:
                pass
        temporary.write_text("whole\\n")
    return {args["save_df"]: frames[args["input"]]}
'''

PIPELINE = """
pipeline:
  p:
    - {{ label: load, task: load_csv, args: {{ filepath: $CONFIG_DIR/a.csv, df_name: A }} }}
    - label: stall
      task: stall
      args: {{ input: A, save_df: B, file: $OUTPUT_DIR/half.csv, marker: {marker},
               fifo: {fifo} }}
    - {{ label: save, task: save_csv, args: {{ filepath: $OUTPUT_DIR/later.csv, df_name: B }} }}
"""


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    tmp: Path
    stop_dir: str

    @property
    def stderr(self) -> str:
        return (self.tmp / "stderr.txt").read_text()


def setup(tmp: Path) -> Path:
    """The config, the task module, and the FIFO the slow stage blocks on."""
    (tmp / "stall_tasks.py").write_text(TASKS)
    config = tmp / "config"
    config.mkdir()
    (config / "a.csv").write_text("x\n1\n")
    marker, fifo = tmp / "started", tmp / "never-written"
    (config / "p.yml").write_text(PIPELINE.format(marker=marker, fifo=fifo))
    os.mkfifo(fifo)
    return config


def start(tmp: Path, *options: str, home: Path | None = None) -> Run:
    """`capport run` on the slow pipeline; returns once the slow stage has started.

    Its temporary directory is the test's own `tmp/tmp`: the run's stop directory is found
    there, and whatever the run creates there (a temporary Dagster instance, multiprocessing's
    socket directory) must be gone after it.
    """
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PYTHONPATH"] = str(tmp)  # the task module, also for the multiprocess stages
    env["TMPDIR"] = str(tmp / "tmp")
    (tmp / "tmp").mkdir()
    if home is not None:
        env["DAGSTER_HOME"] = str(home)
    command = [sys.executable, "-m", "capport_dagster.cli", "run", "-c", "config", "-p", "p"]
    with (tmp / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            [*command, "-m", "stall_tasks", "-o", "out", "--no-preview", *options],
            cwd=tmp,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,  # the test's clean-up can kill the whole group
        )
    run = Run(process, tmp, "")
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while not (tmp / "started").exists():
            assert process.poll() is None, f"the run ended early:\n{run.stderr}"
            assert time.monotonic() < deadline, f"the slow stage did not start:\n{run.stderr}"
            time.sleep(0.02)
        [stop_dir] = (tmp / "tmp").glob("capport-run-*")
        run.stop_dir = str(stop_dir)
    except BaseException:
        kill(run)
        raise
    return run


def kill(run: Run) -> None:
    """The test's own clean-up: SIGKILL whatever is left of the run's process group."""
    if run.process.poll() is None:
        os.killpg(run.process.pid, signal.SIGKILL)
    run.process.wait(timeout=30)


def survivors(stop_dir: str) -> list[int]:
    """Processes still running with the run's stop directory in their environment: its stage
    processes and forkserver inherit it (zombies have no environment left to read)."""
    marker = f"{interrupts.STOP_DIR_VARIABLE}={stop_dir}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                found.append(int(entry))
    return found


def signal_and_wait(run: Run, signum: int, *, repeat: int = 0, group: bool = False) -> int:
    """The capport process alone, as `kill -INT <pid>`; or its whole process group, as a
    terminal's Ctrl-C does (the stage processes and Dagster's helpers get it too)."""

    def send() -> None:
        with contextlib.suppress(ProcessLookupError):  # ended already
            if group:
                os.killpg(run.process.pid, signum)
            else:
                run.process.send_signal(signum)

    send()
    for _ in range(repeat):  # more signals while it shuts down
        time.sleep(0.02)
        send()
    try:
        return run.process.wait(timeout=EXIT_DEADLINE)
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {EXIT_DEADLINE} s after {signum}:\n{run.stderr}")


def assert_stopped_cleanly(run: Run, signum: int, code: int) -> None:
    stderr = run.stderr
    assert code == 128 + signum, stderr
    assert f"interrupted by {signal.Signals(signum).name}\n" in stderr
    assert "Traceback" not in stderr and "error:" not in stderr, stderr
    assert "FAILED" not in stderr, stderr  # the stages torn down are not reported as failures
    out = run.tmp / "out"
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    # No half-written file published, no temporary left, no later output.
    assert left == [] or left == ["logs"], left
    assert not [p for p in run.tmp.rglob(f"*{TEMP_SUFFIX}")]
    # Every process of the run is gone (the stages' too, though the test signalled only capport);
    # multiprocessing's resource tracker leaves on its own once capport is gone.
    deadline = time.monotonic() + EXIT_DEADLINE
    while survivors(run.stop_dir):
        assert time.monotonic() < deadline, f"processes left: {survivors(run.stop_dir)}"
        time.sleep(0.05)
    assert os.listdir(run.tmp / "tmp") == []  # the stop directory and every other one gone


# Each mode and executor once; SIGINT and SIGTERM alternate so that each mode and each executor
# sees both (the handler is the same for both; the exit code differs).
CASES = [
    ("sync_lazy", "in_process", signal.SIGINT),
    ("sync_eager", "in_process", signal.SIGTERM),
    ("async_lazy", "in_process", signal.SIGINT),
    ("async_eager", "in_process", signal.SIGTERM),
    ("sync_lazy", "multiprocess", signal.SIGTERM),
    ("sync_eager", "multiprocess", signal.SIGINT),
    ("async_lazy", "multiprocess", signal.SIGTERM),
    ("async_eager", "multiprocess", signal.SIGINT),
]


@pytest.mark.parametrize(
    ("mode", "executor", "signum"),
    CASES,
    ids=[f"{m}-{e}-{signal.Signals(s).name}" for m, e, s in CASES],
)
def test_a_signal_stops_the_run_at_once_and_publishes_nothing(tmp_path, mode, executor, signum):
    setup(tmp_path)
    run = start(tmp_path, "--mode", mode, "--executor", executor)
    try:
        code = signal_and_wait(run, signum)
    finally:
        kill(run)
    assert_stopped_cleanly(run, signum, code)
    assert run.stderr.endswith(f"[capport] stall: started\ninterrupted by {signum.name}\n")


def instance_at(home: Path) -> DagsterInstance:
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(home)))


def test_an_interrupted_run_is_canceled_in_dagster_home_and_resumes(tmp_path):
    """Ctrl-C at a terminal, to the whole process group: the stage processes and Dagster's
    compute-log helpers (DAGSTER_HOME) get it too, and print no KeyboardInterrupt traceback. The
    stored run does not stay STARTED; with persisted frames it resumes like a failed run."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    setup(tmp_path)
    run = start(tmp_path, "--executor", "multiprocess", home=home)
    try:
        code = signal_and_wait(run, signal.SIGINT, group=True)
    finally:
        kill(run)
    assert_stopped_cleanly(run, signal.SIGINT, code)
    with instance_at(home) as instance:
        [stored] = instance.get_runs()
    # Canceled by capport, or failed first as the executor saw its stage process killed.
    assert stored.status in (DagsterRunStatus.CANCELED, DagsterRunStatus.FAILURE)
    assert run.stderr.endswith(f"interrupted by SIGINT\nresume with: --resume {stored.run_id}\n"), (
        run.stderr
    )

    (tmp_path / "never-written").unlink()  # the slow stage goes straight through now
    (tmp_path / "started").unlink()
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(tmp_path)}
    command = [sys.executable, "-m", "capport_dagster.cli", "run", "-c", "config", "-p", "p"]
    resumed = subprocess.run(
        [*command, "-m", "stall_tasks", "-o", "out", "--no-preview", "--resume", stored.run_id],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resumed.returncode == 0, resumed.stderr
    assert (tmp_path / "out" / "half.csv").read_text() == "whole\n"
    assert (tmp_path / "out" / "later.csv").read_text() == "x\n1\n"


def test_more_signals_while_it_shuts_down_change_nothing(tmp_path):
    """Ctrl-C pressed again and again at a terminal: the first decides (130), the others are
    absorbed (no traceback, from capport or Dagster's compute-log helpers, which DAGSTER_HOME
    starts); with DAGSTER_HOME the shutdown has the most to do (it marks the run)."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("")
    setup(tmp_path)
    run = start(tmp_path, "--mode", "async_eager", home=home)
    try:
        code = signal_and_wait(run, signal.SIGINT, repeat=5, group=True)
    finally:
        kill(run)
    assert_stopped_cleanly(run, signal.SIGINT, code)


# --- the guard sinks use, in this process -----------------------------------------------------


@pytest.fixture
def fresh_interrupts():
    """This process's interrupt state as `capport` starts it, and as it was after the test."""
    with interrupts.handlers():
        yield


def test_a_write_in_progress_is_not_published_after_the_interrupt(tmp_path, fresh_interrupts):
    destination = tmp_path / "out.csv"
    destination.write_text("previous\n")
    with pytest.raises(RunInterrupted) as info, atomic_path(destination) as temporary:
        temporary.write_text("new\n")
        assert interrupts.stop(signal.SIGINT) is True
    assert str(info.value) == f"the run was interrupted (SIGINT): {destination} is not written"
    assert destination.read_text() == "previous\n"
    assert os.listdir(tmp_path) == ["out.csv"]  # the temporary file is gone


def test_no_write_starts_after_the_interrupt(tmp_path, fresh_interrupts):
    interrupts.stop(signal.SIGTERM)
    with (
        pytest.raises(RunInterrupted, match=r"interrupted \(SIGTERM\)"),
        atomic_path(tmp_path / "o"),
    ):
        pytest.fail("the block must not run")
    assert os.listdir(tmp_path) == []


def test_the_stop_waits_for_a_rename_in_progress(tmp_path, fresh_interrupts, monkeypatch):
    """The rename and the stop take the same lock: a stop that arrives during the rename waits
    for it, so the rename counts as done before the signal."""
    renaming, release = threading.Event(), threading.Event()
    replace = os.replace

    def slow_replace(source, target):  # type: ignore[no-untyped-def]
        renaming.set()
        assert release.wait(10)
        replace(source, target)

    monkeypatch.setattr(os, "replace", slow_replace)
    destination = tmp_path / "out.csv"

    def write() -> None:
        with atomic_path(destination) as temporary:
            temporary.write_text("done\n")

    writer = threading.Thread(target=write)
    writer.start()
    assert renaming.wait(10)
    stopped = threading.Thread(target=interrupts.stop, args=(signal.SIGINT,))
    stopped.start()
    stopped.join(0.2)
    assert stopped.is_alive()  # waiting for the rename
    release.set()
    writer.join(10)
    stopped.join(10)
    assert destination.read_text() == "done\n"
    assert interrupts.interrupted() == signal.SIGINT


def test_the_first_signal_interrupts_the_main_thread_and_later_ones_do_not(fresh_interrupts):
    """Outside a run (loading the config, printing results) the first signal raises
    `Interrupted`, like Ctrl-C's KeyboardInterrupt; once stopping, signals are only counted."""
    with pytest.raises(interrupts.Interrupted) as info:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at once; this is never reached in full
    assert info.value.signum == signal.SIGTERM
    assert interrupts.exit_code(info.value.signum) == 143
    os.kill(os.getpid(), signal.SIGINT)  # absorbed
    time.sleep(0.01)
    assert interrupts.interrupted() == signal.SIGTERM


def test_another_process_of_the_run_sees_the_stop_and_its_temporary_is_removed(
    tmp_path, fresh_interrupts
):
    """A stage in another process: the stop directory tells it not to publish, and records the
    temporary file it is writing, which the interrupted run removes once it is killed."""
    script = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        from capport_dagster.core.sinks import atomic_path
        destination, ready, go = (Path(a) for a in sys.argv[1:])
        try:
            with atomic_path(destination) as temporary:
                temporary.write_text("half,")
                ready.touch()
                while not go.exists():
                    time.sleep(0.01)
        except Exception as exc:
            print(exc)
            sys.exit(3)
        """
    )
    with interrupts.stop_directory() as stop_dir:

        def writer(name: str) -> subprocess.Popen[str]:
            paths = [tmp_path / f"{name}.csv", tmp_path / f"{name}.ready", tmp_path / "go"]
            process = subprocess.Popen(
                [sys.executable, "-c", script, *map(str, paths)],
                stdout=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + 60
            while not paths[1].exists():
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.01)
            return process

        finishing, killed = writer("finishing"), writer("killed")
        try:
            assert len(list(stop_dir.glob("tmp-*"))) == 2  # both temporaries recorded
            interrupts.stop(signal.SIGINT)
            killed.kill()  # as the interrupted run kills its stages: mid-write
            killed.wait(timeout=30)
            (tmp_path / "go").touch()  # the other one goes on to publish, and may not
            out, _ = finishing.communicate(timeout=30)
            assert finishing.returncode == 3
            assert out == (
                f"the run was interrupted (SIGINT): {tmp_path / 'finishing.csv'} is not written\n"
            )
            assert len(list(tmp_path.glob(f"*{TEMP_SUFFIX}"))) == 1  # the killed writer's
        finally:
            for process in (finishing, killed):
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=30)
        interrupts._remove_temporaries(stop_directory_too=True)
        assert sorted(os.listdir(tmp_path)) == ["finishing.ready", "go", "killed.ready"]


def test_stop_directories_of_killed_runs_are_removed_by_the_next_run(tmp_path, monkeypatch):
    """A SIGKILLed `capport run` cannot remove its stop directory; the next run on the host
    removes those whose owner is gone, and no other."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait(timeout=30)
    stale = tmp_path / f"capport-run-{HOST_TAG}.{dead.pid}-abcd1234"
    (stale / "tmp-.a.csv.x.capport-tmp").mkdir(parents=True)
    live = tmp_path / f"capport-run-{HOST_TAG}.{os.getppid()}-abcd1234"
    other_host = tmp_path / f"capport-run-{'0' * 8 if HOST_TAG != '0' * 8 else '1' * 8}.1-x"
    for directory in (live, other_host):
        directory.mkdir()
    with interrupts.stop_directory() as mine:
        assert mine.name.startswith(f"capport-run-{HOST_TAG}.{os.getpid()}-")
        assert sorted(tmp_path.iterdir()) == sorted([live, other_host, mine])
    assert sorted(tmp_path.iterdir()) == sorted([live, other_host])


def test_a_signal_the_caller_ignores_stays_ignored(tmp_path):
    """`trap '' TERM; capport run ...`: the run goes on through a SIGTERM, as any program's."""
    setup(tmp_path)
    command = [sys.executable, "-m", "capport_dagster.cli", "run", "-c", "config", "-p", "p"]
    command += ["-m", "stall_tasks", "-o", "out", "--no-preview"]
    script = "import signal, subprocess, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    script += "sys.exit(subprocess.run(sys.argv[1:]).returncode)"
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env["PYTHONPATH"] = str(tmp_path)
    with (tmp_path / "stderr.txt").open("wb") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-c", script, *command],
            cwd=tmp_path,
            env=env,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + STARTUP_DEADLINE
        while not (tmp_path / "started").exists():
            assert process.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.killpg(process.pid, signal.SIGTERM)  # the wrapper and capport: both ignore it
        time.sleep(0.5)
        assert process.poll() is None
        # Now let the slow stage go on: it reads the FIFO to its end and finishes the run.
        fifo = os.open(tmp_path / "never-written", os.O_WRONLY | os.O_NONBLOCK)
        with contextlib.suppress(BrokenPipeError):  # the reader may be done at the open
            os.write(fifo, b"y\n2\n")
        os.close(fifo)
        assert process.wait(timeout=120) == 0, (tmp_path / "stderr.txt").read_text()
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
    assert (tmp_path / "out" / "half.csv").read_text() == "whole\n"
    assert (tmp_path / "out" / "later.csv").read_text() == "x\n1\n"
