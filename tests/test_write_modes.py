"""Write modes of the file sinks (core/files/write_modes.py): replace, append (insert) and
make_next, for CSV, JSON arrays, NDJSON and Parquet; appends that keep the old file on failure
and refuse a frame whose columns are not the file's."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.files import FileFrame, FileFrames, WriteMode
from capport_dagster.core.files.csv_files import CsvSaveEntry, run_save_csv
from capport_dagster.core.files.write_modes import next_names
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext
from capport_dagster.errors import Location, TaskError
from tests.conftest import capport
from tests.test_tasks import errors, pipeline, run_in_order

ALL_MODES = pytest.mark.parametrize("mode", list(RunMode))

OLD = pl.DataFrame({"id": [1], "name": ["old"]})
NEW = pl.DataFrame({"id": [2, 3], "name": ["ann", None]})

#: (save task, extra args, file name, write the old file, read a file back)
FORMATS = {
    "csv": ("save_csv", "", "o.csv", pl.DataFrame.write_csv, pl.read_csv),
    "array": ("save_json", "", "o.json", pl.DataFrame.write_json, pl.read_json),
    "ndjson": ("save_json", ", lines: true", "o.json", pl.DataFrame.write_ndjson, pl.read_ndjson),
    "parquet": ("save_parquet", "", "o.parquet", pl.DataFrame.write_parquet, pl.read_parquet),
}
BY_FORMAT = pytest.mark.parametrize("fmt", list(FORMATS))


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    return {"CONFIG_DIR": str(tmp_path / "config"), "OUTPUT_DIR": str(tmp_path / "out")}


def config_saving(write_config, tmp_path: Path, fmt: str, args: str, frame=NEW) -> Path:
    task, extra, name, _, _ = FORMATS[fmt]
    frame.write_parquet(tmp_path / "new.parquet")
    return write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_parquet, args: { filepath: new.parquet, df_name: N } }",
                f"{{ label: save, task: {task}, args: {{ filepath: out/{name}, df_name: N"
                f"{extra}{args} }} }}",
            )
        }
    )


@BY_FORMAT
@ALL_MODES
@pytest.mark.parametrize("word", ["mode: append", "mode: insert", "merge_type: append"])
def test_append_adds_the_frames_rows_after_the_files(
    write_config, tmp_path, variables, mode, fmt, word
):
    _, _, name, write, read = FORMATS[fmt]
    out = tmp_path / "out"
    out.mkdir()
    write(OLD, out / name)
    config = config_saving(write_config, tmp_path, fmt, f", {word}")
    run_in_order(load_project(config).graphs["p"], variables, mode)
    assert_frame_equal(read(out / name), pl.concat([OLD, NEW]))
    assert os.listdir(out) == [name]
    if fmt == "csv":  # one header, no blank line
        assert (out / name).read_text() == "id,name\n1,old\n2,ann\n3,\n"
    if fmt == "array":  # one array, as Polars writes the whole frame
        assert (out / name).read_text() == pl.concat([OLD, NEW]).write_json()


@BY_FORMAT
@ALL_MODES
def test_append_to_no_file_creates_it(write_config, tmp_path, variables, mode, fmt):
    _, _, name, _, read = FORMATS[fmt]
    config = config_saving(write_config, tmp_path, fmt, ", mode: append")
    run_in_order(load_project(config).graphs["p"], variables, mode)
    assert_frame_equal(read(tmp_path / "out" / name), NEW)


def test_append_to_a_csv_without_a_last_newline_starts_a_line(write_config, tmp_path, variables):
    out = tmp_path / "out"
    out.mkdir()
    (out / "o.csv").write_text("id,name\n1,old")
    config = config_saving(write_config, tmp_path, "csv", ", mode: append")
    run_in_order(load_project(config).graphs["p"], variables)
    assert (out / "o.csv").read_text() == "id,name\n1,old\n2,ann\n3,\n"


def test_append_to_an_empty_array_writes_the_rows(write_config, tmp_path, variables):
    out = tmp_path / "out"
    out.mkdir()
    (out / "o.json").write_text("[]\n")
    config = config_saving(write_config, tmp_path, "array", ", mode: append")
    run_in_order(load_project(config).graphs["p"], variables)
    assert (out / "o.json").read_text() == NEW.write_json()


@BY_FORMAT
@ALL_MODES
def test_append_of_other_columns_is_refused_naming_both_lists(
    write_config, tmp_path, variables, mode, fmt
):
    _, _, name, write, _ = FORMATS[fmt]
    out = tmp_path / "out"
    out.mkdir()
    old = pl.DataFrame({"id": [1], "label": ["x"]})
    write(old, out / name)
    before = (out / name).read_bytes()
    config = config_saving(write_config, tmp_path, fmt, ", mode: append")
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    task = FORMATS[fmt][0]
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): {task}: cannot append frame 'N' to "
        f"{out / name}: its columns (id, name) are not the file's (id, label) (give the frame "
        "the file's columns, e.g. with a model, or save with mode: replace or make_next)"
    )
    assert (out / name).read_bytes() == before
    assert os.listdir(out) == [name]


def test_append_without_header_checks_the_number_of_fields(write_config, tmp_path, variables):
    out = tmp_path / "out"
    out.mkdir()
    (out / "o.csv").write_text("1,old,x\n")
    config = config_saving(write_config, tmp_path, "csv", ", mode: append, include_header: false")
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables)
    assert str(info.value) == (
        "config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot append frame 'N' to "
        f"{out / 'o.csv'}: its 2 columns (id, name) do not fit the file's lines of 3 fields (give "
        "the frame the file's columns, or save with mode: replace or make_next)"
    )
    (out / "o.csv").write_text("1,old\n")
    run_in_order(load_project(config).graphs["p"], variables)
    assert (out / "o.csv").read_text() == "1,old\n2,ann\n3,\n"


def test_append_to_parquet_of_another_type_is_refused(write_config, tmp_path, variables):
    out = tmp_path / "out"
    out.mkdir()
    pl.DataFrame({"id": ["1"], "name": ["old"]}).write_parquet(out / "o.parquet")
    config = config_saving(write_config, tmp_path, "parquet", ", mode: append")
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables)
    assert str(info.value) == (
        "config/p.yml:4, pipeline 'p', stage 'save' (#2): save_parquet: cannot append frame 'N' "
        f"to {out / 'o.parquet'}: column 'id' is Int64 in the frame but String in the file (cast "
        "it, e.g. with a model, or save with mode: replace or make_next)"
    )


@pytest.mark.parametrize(
    ("fmt", "content", "said"),
    [
        (
            "array",
            b'{"id":1,"name":"old"}\n',
            "it is not a JSON array (append with lines: true to NDJSON, or save with mode: "
            "replace or make_next)",
        ),
        (
            "ndjson",
            b'[{"id":1,"name":"old"}]',
            "its first line is not a JSON object, so it is not NDJSON (save with mode: replace "
            "or make_next)",
        ),
        (
            "parquet",
            b"id,name\n",
            "it is not a Parquet file (save with mode: replace or make_next)",
        ),
        (
            "array",
            b'[{"id":1,}]',
            "it is not a valid JSON array (ExpectedObjectKey at character 9 ('}'); fix the file, "
            "or save with mode: replace or make_next)",
        ),
        (
            "parquet",
            b"PAR1 broken PAR1",
            "its schema cannot be read (parquet: File out of specification: The footer size "
            "must be smaller or equal to the file's size; save with mode: replace or make_next)",
        ),
    ],
)
def test_append_to_a_file_of_another_format_is_refused(
    write_config, tmp_path, variables, fmt, content, said
):
    task, _, name, _, _ = FORMATS[fmt]
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_bytes(content)
    config = config_saving(write_config, tmp_path, fmt, ", mode: append")
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): {task}: cannot append frame 'N' to "
        f"{out / name}: {said}"
    )
    assert (out / name).read_bytes() == content


@BY_FORMAT
@ALL_MODES
def test_a_failed_append_leaves_exactly_the_old_file(write_config, tmp_path, variables, mode, fmt):
    """The frame's model breaks in the middle of the pass: the old file stays byte for byte."""
    task, extra, name, write, _ = FORMATS[fmt]
    out = tmp_path / "out"
    out.mkdir()
    write(OLD, out / name)
    before = (out / name).read_bytes()
    NEW.write_parquet(tmp_path / "new.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_parquet, args: { filepath: new.parquet, df_name: N } }",
                f"{{ label: save, task: {task}, args: {{ filepath: out/{name}, df_name: N,"
                f" model: m, mode: append{extra} }} }}",
            )
            + "model:\n  m:\n    id: int\n    name: { dtype: str, constraints: [not_null] }\n"
        }
    )
    with pytest.raises(TaskError, match="breaks 'not_null' in 1 row"):
        run_in_order(load_project(config).graphs["p"], variables, mode)
    assert (out / name).read_bytes() == before
    assert os.listdir(out) == [name]


@BY_FORMAT
@ALL_MODES
def test_replace_overwrites_the_file(write_config, tmp_path, variables, mode, fmt):
    _, _, name, write, read = FORMATS[fmt]
    out = tmp_path / "out"
    out.mkdir()
    write(OLD, out / name)
    config = config_saving(write_config, tmp_path, fmt, ", mode: replace")
    run_in_order(load_project(config).graphs["p"], variables, mode)
    assert_frame_equal(read(out / name), NEW)


@BY_FORMAT
@ALL_MODES
def test_make_next_writes_a_new_file_each_time(write_config, tmp_path, variables, mode, fmt):
    _, _, name, write, read = FORMATS[fmt]
    out = tmp_path / "out"
    out.mkdir()
    write(OLD, out / name)
    config = config_saving(write_config, tmp_path, fmt, ", mode: make_next")
    graph = load_project(config).graphs["p"]
    for _ in range(3):
        run_in_order(graph, variables, mode)
    stem, suffix = Path(name).stem, Path(name).suffix
    made = sorted(p.name for p in out.iterdir() if p.name != name)
    assert len(made) == 3
    for made_name in made:
        assert made_name.startswith(f"{stem}_") and made_name.endswith(suffix)
        assert_frame_equal(read(out / made_name), NEW)
    assert_frame_equal(read(out / name), OLD)  # never overwritten


def test_next_names_are_the_utc_time_then_numbered():
    moment = dt.datetime(2026, 11, 29, 4, 15, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    names = next_names(Path("/d/players.csv"), moment)
    assert [next(names) for _ in range(3)] == [
        Path("/d/players_20261129T031500Z.csv"),
        Path("/d/players_20261129T031500Z_2.csv"),
        Path("/d/players_20261129T031500Z_3.csv"),
    ]
    assert next(next_names(Path("/d/noext"), moment)) == Path("/d/noext_20261129T031500Z")


def test_an_unknown_mode_is_a_config_error(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: save, task: save_csv, args: { filepath: a.csv, df_name: A,"
                " mode: upsert } }",
                "{ label: two, task: save_json, args: { filepath: a.json, from_df: A,"
                " mode: append, merge_type: append } }",
            )
        }
    )
    assert [e for e in errors(config) if "reads frame" not in e] == [
        "error: config/p.yml:3, pipeline 'p', stage 'save' (#1): malformed args for task "
        "'save_csv': mode: input should be 'replace', 'append', 'insert' or 'make_next'",
        "error: config/p.yml:4, pipeline 'p', stage 'two' (#2): task 'save_json': give mode or "
        "merge_type, not both",
    ]


KILLED_APPEND = """
import sys, time
from pathlib import Path
import polars as pl
from capport_dagster.core.files import FileFrame, FileFrames, WriteMode
from capport_dagster.core.files.csv_files import CsvSaveEntry, run_save_csv
from capport_dagster.core.modes import RunMode
from capport_dagster.core.registry import RunContext
from capport_dagster.errors import Location

destination, ready = Path(sys.argv[1]), Path(sys.argv[2])

def block(values: pl.Series) -> pl.Series:
    ready.write_text("writing")  # the old rows are copied; the new ones are being written
    time.sleep(600)
    return values

frame = pl.LazyFrame({"id": [2], "name": ["new"]}).with_columns(
    pl.col("id").map_batches(block, return_dtype=pl.Int64)
)
entry = CsvSaveEntry(filepath=str(destination), df_name="N", mode="append")
args = FileFrames((FileFrame(str(destination), "N", None, entry, WriteMode.APPEND),))
run_save_csv(args, {"N": frame}, RunContext(RunMode.SYNC_LAZY, {}, Location()))
"""


def test_a_killed_append_leaves_exactly_the_old_file(tmp_path):
    """SIGKILL half way through an append: nothing can clean up, and the file is as before."""
    destination, ready = tmp_path / "o.csv", tmp_path / "ready"
    destination.write_text("id,name\n1,old\n")
    script = tmp_path / "append.py"
    script.write_text(KILLED_APPEND)
    writer = subprocess.Popen([sys.executable, str(script), str(destination), str(ready)])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert writer.poll() is None, "the writer died before writing"
            assert time.monotonic() < deadline, "the writer never started writing"
            time.sleep(0.05)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    finally:
        if writer.poll() is None:
            writer.kill()
    assert destination.read_text() == "id,name\n1,old\n"
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".o.csv.")]
    assert len(leftovers) == 1  # the killed writer's copy, never read as output
    # The next successful append removes it and appends to the intact file.
    config_args = {"N": pl.LazyFrame({"id": [2], "name": ["new"]})}
    entry = CsvSaveEntry(filepath=str(destination), df_name="N", mode="append")
    args = FileFrames((FileFrame(str(destination), "N", None, entry, WriteMode.APPEND),))
    run_save_csv(args, config_args, RunContext(RunMode.SYNC_LAZY, {}, Location()))
    assert destination.read_text() == "id,name\n1,old\n2,new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["append.py", "o.csv", "ready"]


CLI_PIPELINE = {
    "p.yml": """
        pipeline:
          p:
            - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/p.csv, df_name: P,
                separator: ';' } }
            - { label: lines, task: save_json, args: { filepath: $OUTPUT_DIR/p.ndjson,
                df_name: P, lines: true, mode: append } }
            - { label: next, task: save_parquet, args: { filepath: $OUTPUT_DIR/p.parquet,
                df_name: P, mode: make_next } }
            - { label: back, task: load_json, args: { filepath: $OUTPUT_DIR/p.ndjson,
                df_name: B } }
            - { label: array, task: save_json, args: { filepath: $OUTPUT_DIR/b.json,
                df_name: B } }
        """,
    "p.csv": "id;name\n1;ann\n",
}


@pytest.mark.parametrize(
    ("mode", "executor"), [("sync_lazy", "multiprocess"), ("async_eager", "in_process")]
)
def test_capport_run_orders_file_stages_and_appends_run_after_run(
    write_config, tmp_path, mode, executor
):
    """Through Dagster: the load of p.ndjson waits for its save (the file orders them), and a
    second run appends to the first's file and makes a second Parquet file."""
    config = write_config(CLI_PIPELINE)
    out = tmp_path / "out"
    for _ in range(2):
        result = capport(
            "run", "-c", str(config), "-p", "p", "-o", str(out), "--mode", mode,
            "--executor", executor, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
    assert (out / "p.ndjson").read_text() == '{"id":1,"name":"ann"}\n' * 2
    assert (out / "b.json").read_text() == '[{"id":1,"name":"ann"},{"id":1,"name":"ann"}]'
    made = sorted(out.glob("p_*.parquet"))
    assert len(made) == 2
    for path in made:
        assert_frame_equal(pl.read_parquet(path), pl.DataFrame({"id": [1], "name": ["ann"]}))
