"""Killed runs lose nothing: `capport run` is SIGKILLed while `save_csv` streams a large file.

The pipeline cross-joins two generated CSVs, 3000 rows each, so its save stage streams 9 million
rows (423 MB) into the temporary file beside the destination: long enough (a second or
two) to watch the file grow and kill the run half-way. The destination must then be the previous
run's file, byte for byte, or absent when there was none; the partial temporary file stays
behind (a killed process cannot clean up), and the next successful run removes it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from capport_dagster.core.sinks import HOST_TAG, TEMP_SUFFIX

BIG = 3000  # rows of each input: 9_000_000 rows out
NOTE = "a row of the right-hand side"
PIPELINE = """\
pipeline:
  big:
    - label: load
      task: load_csv
      args:
        - { filepath: $CONFIG_DIR/left.csv, df_name: LEFT }
        - { filepath: $CONFIG_DIR/right.csv, df_name: RIGHT }
    - label: multiply
      task: transform
      args: { name: multiply, input: LEFT, save_df: BIG }
    - label: save
      task: save_csv
      args: { filepath: $OUTPUT_DIR/big.csv, df_name: BIG }
transform:
  multiply:
    - join: { right: RIGHT, how: cross }
"""
RUN = (sys.executable, "-m", "capport_dagster.cli", "run", "-p", "big", "--no-preview")
HEADER = "left,right,note\n"
ROW_BYTES = len(f"L0000000,R0000000,{NOTE}\n")
STARTUP_DEADLINE = 60  # seconds for the run to reach its save stage (about 3 s here)
GROWTH_DEADLINE = 20  # seconds for the temporary file to grow once it exists


def write_inputs(config: Path, left: int, right: int) -> None:
    (config / "left.csv").write_text("left\n" + "".join(f"L{i:07d}\n" for i in range(left)))
    (config / "right.csv").write_text(
        "right,note\n" + "".join(f"R{j:07d},{NOTE}\n" for j in range(right))
    )


def expected_rows(left: int, right: int) -> set[str]:
    """The rows (CSV lines) the pipeline saves from inputs of these sizes."""
    return {f"L{i:07d},R{j:07d},{NOTE}\n" for i in range(left) for j in range(right)}


def saved_rows(destination: Path) -> set[str]:
    """The saved rows as a set (the streaming cross join does not keep the left order)."""
    header, *rows = destination.read_text().splitlines(keepends=True)
    assert header == HEADER
    assert len(rows) == len(set(rows))
    return set(rows)


def start(config: Path, out: Path, log: Path) -> subprocess.Popen[bytes]:
    """`capport run` in its own session (process group), so the whole group can be killed."""
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    with log.open("wb") as stderr:
        return subprocess.Popen(
            [*RUN, "-c", str(config), "-o", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
            start_new_session=True,
        )


def run(config: Path, out: Path, log: Path) -> None:
    process = start(config, out, log)
    try:
        assert process.wait(timeout=120) == 0, log.read_text()
    finally:
        stop(process)


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group if it still runs, and reap the process."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def temporaries(out: Path) -> list[Path]:
    if not out.is_dir():
        return []
    return [
        p for p in out.iterdir() if p.name.startswith(".big.csv.") and p.name.endswith(TEMP_SUFFIX)
    ]


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return -1


def wait_until_growing(process: subprocess.Popen[bytes], out: Path, log: Path):
    """Poll until the run's temporary file exists and has grown; return it and the sizes seen."""
    deadline = time.monotonic() + STARTUP_DEADLINE
    while not (found := temporaries(out)):
        assert process.poll() is None, f"the run ended before saving:\n{log.read_text()}"
        assert time.monotonic() < deadline, "no temporary file within the deadline"
        time.sleep(0.01)
    [temporary] = found
    sizes = [size(temporary)]  # 0 at first: created empty, then streamed into
    deadline = time.monotonic() + GROWTH_DEADLINE
    while not 0 < min(sizes[-2:]) < sizes[-1]:
        assert process.poll() is None, f"the run ended before it was killed:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the temporary file did not grow: {sizes}"
        time.sleep(0.01)
        sizes.append(size(temporary))
    return temporary, sizes


@pytest.mark.parametrize("previous", [True, False], ids=["over-a-previous-file", "no-file-yet"])
def test_a_run_killed_while_saving_loses_nothing_and_the_next_run_cleans_up(tmp_path, previous):
    config = tmp_path / "config"
    config.mkdir()
    (config / "p.yml").write_text(PIPELINE)
    out = tmp_path / "out"
    destination = out / "big.csv"
    log = tmp_path / "stderr.txt"
    if previous:  # a complete file from an earlier, smaller run (20_000 rows, 940 kB)
        write_inputs(config, 200, 100)
        run(config, out, log)
        before = destination.read_bytes()
        assert saved_rows(destination) == expected_rows(200, 100)

    write_inputs(config, BIG, BIG)
    process = start(config, out, log)
    try:
        temporary, sizes = wait_until_growing(process, out, log)
        os.killpg(process.pid, signal.SIGKILL)
        assert process.wait(timeout=30) == -signal.SIGKILL
    finally:
        stop(process)

    # Killed half-way: the partial file is still the temporary one, named after the dead writer.
    full = len(HEADER) + BIG * BIG * ROW_BYTES
    assert 0 < sizes[-1] <= size(temporary) < full, (sizes, size(temporary), full)
    assert temporary.name.startswith(f".big.csv.{HOST_TAG}.{process.pid}.")
    if previous:
        assert destination.read_bytes() == before
        assert sorted(os.listdir(out)) == sorted(["big.csv", temporary.name])
    else:
        assert not destination.exists()
        assert os.listdir(out) == [temporary.name]

    # The next run succeeds, and its save removes the dead run's leftover.
    write_inputs(config, 4, 3)
    run(config, out, log)
    assert saved_rows(destination) == expected_rows(4, 3)
    assert os.listdir(out) == ["big.csv"]
