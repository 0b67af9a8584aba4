"""Atomic writes: a reader sees the previous complete file or the new one, never half of one."""

from __future__ import annotations

import asyncio
import errno
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from capport_dagster.core import sinks
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext
from capport_dagster.core.runtime import run_stage
from capport_dagster.core.sinks import (
    HOST_TAG,
    TEMP_SUFFIX,
    DestinationError,
    atomic_new_file,
    atomic_path,
    remove_stale_temporaries,
)
from capport_dagster.errors import ModelCastError

OLD = b"id,name\n1,ann\n\x00\xff not even text\n"


def test_success_replaces_the_destination(tmp_path):
    destination = tmp_path / "out.csv"
    destination.write_bytes(OLD)
    with atomic_path(destination) as temporary:
        assert temporary.parent == tmp_path
        assert temporary.name.startswith(".out.csv.")
        assert temporary.name.endswith(TEMP_SUFFIX)
        temporary.write_text("new\n")
        assert destination.read_bytes() == OLD  # nothing visible before the rename
    assert destination.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.csv"]


@pytest.mark.parametrize("error", [RuntimeError("disk on fire"), KeyboardInterrupt()])
def test_a_failure_inside_the_block_keeps_the_previous_file(tmp_path, error):
    destination = tmp_path / "out.csv"
    destination.write_bytes(OLD)
    with pytest.raises(type(error)), atomic_path(destination) as temporary:
        temporary.write_text("half a fi")
        raise error
    assert destination.read_bytes() == OLD
    assert os.listdir(tmp_path) == ["out.csv"]
    assert not list(tmp_path.glob(f"*{TEMP_SUFFIX}"))


def test_a_failure_without_a_previous_file_leaves_nothing(tmp_path):
    destination = tmp_path / "out.csv"
    with pytest.raises(ValueError, match="no"), atomic_path(destination) as temporary:
        temporary.write_text("partial")
        raise ValueError("no")
    assert os.listdir(tmp_path) == []


def test_parent_directories_are_created(tmp_path):
    destination = tmp_path / "a" / "b" / "c" / "out.csv"
    with atomic_path(destination) as temporary:
        temporary.write_text("x\n")
    assert destination.read_text() == "x\n"
    assert os.listdir(destination.parent) == ["out.csv"]


@pytest.mark.parametrize("lazy", [True, False])
def test_a_new_file_gets_the_permissions_a_plain_write_would_give(tmp_path, lazy):
    frame = pl.DataFrame({"x": [1]})
    plain = tmp_path / "plain.csv"
    frame.write_csv(plain)
    destination = tmp_path / "atomic.csv"
    with atomic_path(destination) as temporary:
        if lazy:
            frame.lazy().sink_csv(temporary)
        else:
            frame.write_csv(temporary)
    assert destination.read_text() == "x\n1\n"
    assert stat.S_IMODE(destination.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode)


def test_a_replaced_file_keeps_its_permissions(tmp_path):
    destination = tmp_path / "out.csv"
    destination.write_text("old\n")
    destination.chmod(0o640)
    with atomic_path(destination) as temporary:
        temporary.write_text("new\n")
    assert destination.read_text() == "new\n"
    assert stat.S_IMODE(destination.stat().st_mode) == 0o640


SAVE_WITH_MODEL = {
    "p.yml": """
        pipeline:
          p:
            - { label: load, task: load_csv, args: { filepath: raw.csv, df_name: P } }
            - label: save
              task: save_csv
              args: { filepath: out/people.csv, df_name: P, model: person }
    """,
    "m.yml": "model:\n  person:\n    id: int32\n    day: date\n",
}
GOOD = b"id,day\n1,2024-01-01\n"


class SinkSpy:
    """Records each `sink_csv` target, and how many bytes it held when the failed write removed
    it (whether the sink runs at once or in a later `collect_all`, as `save_csv` does)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.targets: list[Path] = []
        self.bytes_at_failure: list[int] = []
        sink_csv = pl.LazyFrame.sink_csv
        unlink = Path.unlink

        def spy(frame, path, *args, **kwargs):
            self.targets.append(Path(path))
            return sink_csv(frame, path, *args, **kwargs)

        def removing(path, *args, **kwargs):
            if path in self.targets and path.exists():
                self.bytes_at_failure.append(path.stat().st_size)
            return unlink(path, *args, **kwargs)

        monkeypatch.setattr(pl.LazyFrame, "sink_csv", spy)
        monkeypatch.setattr(Path, "unlink", removing)


def save_lazily(config: Path) -> None:
    """Run the load and save stages in lazy mode: the save stage executes the whole plan."""
    load, save = load_project(config).graphs["p"].nodes
    loaded = asyncio.run(run_stage(load, {}, RunContext(RunMode.SYNC_LAZY, {}, load.location)))
    assert isinstance(loaded.frames["P"], pl.LazyFrame)
    asyncio.run(run_stage(save, loaded.frames, RunContext(RunMode.SYNC_LAZY, {}, save.location)))


def test_a_lazy_save_whose_model_cast_fails_in_the_sink_keeps_the_good_file(
    write_config, tmp_path, monkeypatch
):
    (tmp_path / "raw.csv").write_text("id,day\n1,2024-01-01\n2,2024-02-30\n3,2024-03-01\n")
    config = write_config(SAVE_WITH_MODEL)
    out = tmp_path / "out"
    out.mkdir()
    (out / "people.csv").write_bytes(GOOD)
    spy = SinkSpy(monkeypatch)

    with pytest.raises(ModelCastError) as info:
        save_lazily(config)

    assert str(info.value) == (
        "config/p.yml:4, pipeline 'p', stage 'save' (#2): model 'person', column 'day': "
        "cannot cast value '2024-02-30' to date (at least 1 value failed)"
    )
    [temporary] = spy.targets  # the cast failed while sinking, into a temporary file
    assert temporary.parent == out
    assert temporary.name.endswith(TEMP_SUFFIX)
    assert (out / "people.csv").read_bytes() == GOOD
    assert os.listdir(out) == ["people.csv"]


def test_a_lazy_save_that_fails_half_way_removes_its_partial_file(
    write_config, tmp_path, monkeypatch
):
    days = ["2024-01-01"] * 200_000
    days[150_000] = "2024-13-45"
    pl.DataFrame({"id": range(200_000), "day": days}).write_csv(tmp_path / "raw.csv")
    config = write_config(SAVE_WITH_MODEL)
    out = tmp_path / "out"
    out.mkdir()
    (out / "people.csv").write_bytes(GOOD)
    spy = SinkSpy(monkeypatch)

    with pytest.raises(ModelCastError) as info:
        save_lazily(config)

    # The streaming engine counts failures per batch, so the total is not pinned here.
    assert re.fullmatch(
        r"config/p\.yml:4, pipeline 'p', stage 'save' \(#2\): model 'person', column 'day': "
        r"cannot cast value '2024-13-45' to date \(at least 1 value failed\)",
        str(info.value),
    )
    [written] = spy.bytes_at_failure
    assert written > 0  # the sink had streamed earlier batches into the temporary file
    assert (out / "people.csv").read_bytes() == GOOD
    assert os.listdir(out) == ["people.csv"]


# --- leftovers of killed writers --------------------------------------------------------------


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait(timeout=30)
    return process.pid


def leftover(directory: Path, name: str, host: str, pid: int) -> Path:
    path = directory / f".{name}.{host}.{pid}.{secrets.token_hex(6)}{TEMP_SUFFIX}"
    path.write_text("half a fi")
    return path


def test_a_temporary_name_records_host_and_pid(tmp_path):
    with atomic_path(tmp_path / "out.csv") as temporary:
        assert re.fullmatch(
            rf"\.out\.csv\.{HOST_TAG}\.{os.getpid()}\.[0-9a-f]{{12}}{re.escape(TEMP_SUFFIX)}",
            temporary.name,
        )
        temporary.write_text("x\n")


def test_a_successful_write_removes_what_dead_writers_left_and_nothing_else(tmp_path):
    destination = tmp_path / "out.csv"
    destination.write_bytes(OLD)
    dead = dead_pid()
    other_host = "0" * 8 if HOST_TAG != "0" * 8 else "1" * 8
    stale = [leftover(tmp_path, "out.csv", HOST_TAG, dead) for _ in range(2)]
    kept = [
        leftover(tmp_path, "out.csv", HOST_TAG, os.getpid()),  # this process: a live writer
        leftover(tmp_path, "out.csv", HOST_TAG, os.getppid()),  # another live process
        leftover(tmp_path, "out.csv", other_host, dead),  # another host's pid: unknown here
        leftover(tmp_path, "out.csv.bak", HOST_TAG, dead),  # another destination's
        leftover(tmp_path, "other.csv", HOST_TAG, dead),
        tmp_path / f".out.csv.{secrets.token_hex(6)}{TEMP_SUFFIX}",  # an older format
        tmp_path / f".out.csv.{HOST_TAG}.{dead}.notrandom{TEMP_SUFFIX}",  # not a name of ours
    ]
    kept[-2].write_text("old")
    kept[-1].write_text("odd")
    directory = tmp_path / f".out.csv.{HOST_TAG}.{dead}.{'a' * 12}{TEMP_SUFFIX}"
    directory.mkdir()  # not a file: skipped, and the write still succeeds

    # A failed write removes only its own temporary file.
    with pytest.raises(RuntimeError), atomic_path(destination) as temporary:
        temporary.write_text("partial")
        raise RuntimeError("disk on fire")
    assert all(path.exists() for path in [*stale, *kept])

    with atomic_path(destination) as temporary:
        temporary.write_text("new\n")
    assert destination.read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == sorted(
        ["out.csv", directory.name, *(path.name for path in kept)]
    )


def test_stale_removal_reports_what_it_removed_and_tolerates_an_unlisted_directory(tmp_path):
    stale = leftover(tmp_path, "out.csv", HOST_TAG, dead_pid())
    assert remove_stale_temporaries(tmp_path / "out.csv") == [stale]
    assert remove_stale_temporaries(tmp_path / "out.csv") == []
    assert remove_stale_temporaries(tmp_path / "missing" / "out.csv") == []


CONCURRENT_WRITER = """
import sys
from pathlib import Path
from capport_dagster.core.sinks import atomic_path

with atomic_path(Path(sys.argv[1])) as temporary:
    temporary.write_text("theirs, half")
    print("half written", flush=True)  # the test reads this line before it writes
    sys.stdin.read()  # until the test closes stdin
    temporary.write_text("theirs\\n")
"""


def test_a_concurrent_writers_temporary_file_is_never_touched(tmp_path):
    destination = tmp_path / "out.csv"
    writer = subprocess.Popen(
        [sys.executable, "-c", CONCURRENT_WRITER, str(destination)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        # Waiting for the temporary file alone raced its first write (it exists, still empty).
        assert writer.stdout.readline() == "half written\n"
        prefix = f".out.csv.{HOST_TAG}.{writer.pid}."
        [their_temporary] = [p for p in tmp_path.iterdir() if p.name.startswith(prefix)]

        with atomic_path(destination) as temporary:  # our write finishes while theirs runs
            temporary.write_text("ours\n")
        assert destination.read_text() == "ours\n"
        assert their_temporary.read_text() == "theirs, half"

        writer.communicate(timeout=30)  # let it finish: its rename wins, as the later write
        assert writer.returncode == 0
    finally:
        if writer.poll() is None:
            os.killpg(writer.pid, signal.SIGKILL)
            writer.wait(timeout=30)
    assert destination.read_text() == "theirs\n"
    assert os.listdir(tmp_path) == ["out.csv"]


# --- destinations that cannot be a file: said in the destination's terms ----------------------


def test_a_destination_that_is_a_directory_is_refused_before_writing(tmp_path):
    (tmp_path / "sub").mkdir()
    with pytest.raises(DestinationError) as info, atomic_path(tmp_path / "sub"):
        pytest.fail("the block must not run")
    assert (info.value.errno, info.value.strerror, info.value.filename) == (
        errno.EISDIR,
        "it is a directory",
        str(tmp_path / "sub"),
    )
    assert os.listdir(tmp_path) == ["sub"]


@pytest.mark.parametrize("depth", ["out.csv", "deeper/out.csv"])
def test_a_destination_under_a_file_names_that_file(tmp_path, depth):
    (tmp_path / "report").write_text("a file, not a directory\n")
    destination = tmp_path / "report" / depth
    with pytest.raises(DestinationError) as info, atomic_path(destination):
        pytest.fail("the block must not run")
    assert (info.value.errno, info.value.strerror, info.value.filename) == (
        errno.ENOTDIR,
        f"{tmp_path / 'report'} is a file, not a directory",
        str(destination),
    )


@pytest.mark.parametrize(
    ("code", "kind"), [(errno.EACCES, "not writable"), (errno.EROFS, "read-only")]
)
def test_a_directory_we_may_not_write_is_named_not_the_temporary_file(
    tmp_path, monkeypatch, code, kind
):
    # Tests run as root, whom permissions do not stop: the OS's refusal is simulated where it
    # happens, creating the temporary file (its name is what the OS error carries).
    def refuse(destination: Path) -> Path:
        raise OSError(code, os.strerror(code), str(destination.with_name(".x.capport-tmp")))

    monkeypatch.setattr(sinks, "_create_temporary", refuse)
    destination = tmp_path / "new" / "out.csv"
    with pytest.raises(DestinationError) as info, atomic_path(destination):
        pytest.fail("the block must not run")
    assert (info.value.strerror, info.value.filename) == (
        f"directory {tmp_path / 'new'} is {kind}",
        str(destination),
    )
    assert TEMP_SUFFIX not in str(info.value)


def test_a_directory_that_cannot_be_created_names_its_nearest_existing_parent(
    tmp_path, monkeypatch
):
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    destination = tmp_path / "a" / "b" / "out.csv"
    with pytest.raises(DestinationError) as info, atomic_path(destination):
        pytest.fail("the block must not run")
    assert info.value.strerror == f"directory {tmp_path} is not writable"


# --- atomic_new_file: make_next never overwrites ------------------------------------------------


def test_a_new_file_takes_the_first_free_name_and_never_replaces_one(tmp_path):
    names = iter([tmp_path / "o_1.csv", tmp_path / "o_2.csv", tmp_path / "o_3.csv"])
    with atomic_new_file(names) as new:
        new.temporary.write_text("mine\n")
        # Another writer publishes under the first name meanwhile.
        (tmp_path / "o_1.csv").write_text("theirs\n")
        assert new.path is None
    assert new.path == tmp_path / "o_2.csv"
    assert (tmp_path / "o_1.csv").read_text() == "theirs\n"
    assert (tmp_path / "o_2.csv").read_text() == "mine\n"
    assert sorted(os.listdir(tmp_path)) == ["o_1.csv", "o_2.csv"]


def test_a_failed_new_file_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_new_file(iter([tmp_path / "o.csv"])) as new:
        new.temporary.write_text("half")
        raise RuntimeError("disk on fire")
    assert os.listdir(tmp_path) == []
