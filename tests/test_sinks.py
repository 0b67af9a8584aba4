"""Atomic writes: a reader sees the previous complete file or the new one, never half of one."""

from __future__ import annotations

import asyncio
import os
import re
import stat
from pathlib import Path

import polars as pl
import pytest

from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext
from capport_dagster.core.runtime import run_stage
from capport_dagster.core.sinks import TEMP_SUFFIX, atomic_path
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
    """Records each `sink_csv` target and how many bytes it held when the sink failed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.targets: list[Path] = []
        self.bytes_at_failure: list[int] = []
        sink_csv = pl.LazyFrame.sink_csv

        def spy(frame, path, *args, **kwargs):
            self.targets.append(Path(path))
            try:
                return sink_csv(frame, path, *args, **kwargs)
            except Exception:
                self.bytes_at_failure.append(Path(path).stat().st_size)
                raise

        monkeypatch.setattr(pl.LazyFrame, "sink_csv", spy)


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
        "config/p.yml:4, pipeline 'p', stage 'save' (#1): model 'person', column 'day': "
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
        r"config/p\.yml:4, pipeline 'p', stage 'save' \(#1\): model 'person', column 'day': "
        r"cannot cast value '2024-13-45' to date \(at least 1 value failed\)",
        str(info.value),
    )
    [written] = spy.bytes_at_failure
    assert written > 0  # the sink had streamed earlier batches into the temporary file
    assert (out / "people.csv").read_bytes() == GOOD
    assert os.listdir(out) == ["people.csv"]
