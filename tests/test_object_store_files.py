"""File tasks on an object store (`s3://bucket/key`, moto's S3 server: `tests/s3_server.py`):
loads in every mode (lazy scans where Polars has one), saves in every write mode, each object
written in one upload (a failure leaves the old object and no other), errors in the user's
terms at the stage, credentials from the environment only and never printed."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import io
import os
import pickle
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core import interrupts, object_store
from capport_dagster.core.files import common
from capport_dagster.core.files.write_modes import next_uris
from capport_dagster.core.graph import FileEdge, FrameVersion, PipelineGraph, load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.object_store import ObjectStore, S3Store
from capport_dagster.core.registry import Frame, RunContext
from capport_dagster.core.runtime import run_stage
from capport_dagster.core.secrets import Redactor, secret_values
from capport_dagster.core.sinks import HOST_TAG, staging_directory
from capport_dagster.errors import Location, RunInterrupted, TaskError
from tests.conftest import capport
from tests.test_tasks import errors, pipeline

# `s3_server` and `s3_bucket` (moto's S3 server, a fresh bucket per test): tests/s3_server.py.

ALL_MODES = pytest.mark.parametrize("mode", list(RunMode))
LAZY_AND_EAGER = pytest.mark.parametrize("mode", [RunMode.SYNC_LAZY, RunMode.SYNC_EAGER])

OLD = pl.DataFrame({"id": [1], "name": ["old"]})
NEW = pl.DataFrame({"id": [2, 3], "name": ["ann", None]})


def _parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


def _read_parquet(data: bytes) -> pl.DataFrame:
    return pl.read_parquet(io.BytesIO(data))


#: format -> (load task, save task, save options, object name, encode a frame, decode bytes)
FORMATS: dict[str, tuple[str, str, str, str, Callable, Callable]] = {
    "csv": (
        "load_csv",
        "save_csv",
        "",
        "a.csv",
        lambda f: f.write_csv().encode(),
        lambda b: pl.read_csv(io.BytesIO(b)),
    ),
    "array": (
        "load_json",
        "save_json",
        "",
        "a.json",
        lambda f: f.write_json().encode(),
        lambda b: pl.read_json(io.BytesIO(b)),
    ),
    "ndjson": (
        "load_json",
        "save_json",
        ", lines: true",
        "a.json",
        lambda f: f.write_ndjson().encode(),
        lambda b: pl.read_ndjson(io.BytesIO(b)),
    ),
    "parquet": ("load_parquet", "save_parquet", "", "a.parquet", _parquet, _read_parquet),
}
BY_FORMAT = pytest.mark.parametrize("fmt", list(FORMATS))


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    return {"CONFIG_DIR": str(tmp_path / "config"), "OUTPUT_DIR": str(tmp_path / "out")}


def run(
    graph: PipelineGraph,
    variables: Mapping[str, str],
    mode: RunMode = RunMode.SYNC_LAZY,
    *,
    before: Mapping[str, Callable[[], None]] | None = None,
    redact: Redactor | None = None,
) -> dict[str, Frame]:
    """Every stage in list order, as `run_stages` does; `before[label]()` runs just before that
    stage. Returns the last version of each frame, as the mode left it (lazy or eager)."""
    store: dict[FrameVersion, Frame] = {}

    async def stages() -> None:
        for node in graph.nodes:
            if before and node.label in before:
                before[node.label]()
            frames = {name: store[version] for name, version in node.inputs.items()}
            ctx = RunContext(mode, variables, node.location, redact=redact or Redactor())
            result = await run_stage(node, frames, ctx)
            for version in node.outputs:
                store[version] = result.frames[version.name]

    asyncio.run(stages())
    return {version.name: frame for version, frame in store.items()}


def graph_of(write_config: Callable[..., Path], *stages: str, extra: str = "") -> PipelineGraph:
    return load_project(write_config({"p.yml": pipeline(*stages) + extra})).graphs["p"]


def staged_leftovers(name: str) -> list[str]:
    """This process's local copies of objects named `name` still on disk (`core/sinks.py`)."""
    directory = staging_directory()
    prefix = f".{name}.{HOST_TAG}.{os.getpid()}."
    return sorted(p.name for p in directory.glob(f"{prefix}*")) if directory.is_dir() else []


def load_stage(task: str, filepath: str, options: str = "") -> str:
    return (
        f"{{ label: load, task: {task}, args: {{ filepath: '{filepath}', df_name: N{options} }} }}"
    )


def local_frame(tmp_path: Path, frame: pl.DataFrame = NEW) -> str:
    """The stage loading `frame` from a local Parquet file (dtypes kept)."""
    frame.write_parquet(tmp_path / "new.parquet")
    return "{ label: load, task: load_parquet, args: { filepath: new.parquet, df_name: N } }"


def save_stage(fmt: str, filepath: str, args: str = "", label: str = "save") -> str:
    _, task, options, _, _, _ = FORMATS[fmt]
    return (
        f"{{ label: {label}, task: {task}, args: {{ filepath: '{filepath}', df_name: N"
        f"{options}{args} }} }}"
    )


# --- loads ----------------------------------------------------------------------------------


@BY_FORMAT
@ALL_MODES
def test_a_load_reads_an_object_in_every_mode(write_config, s3_bucket, variables, mode, fmt):
    load, _, _, name, encode, _ = FORMATS[fmt]
    s3_bucket.put(f"in/{name}", encode(NEW))
    uri = f"{s3_bucket.uri}/in/{name}"
    graph = graph_of(write_config, load_stage(load, uri))
    frame = run(graph, variables, mode)["N"]
    assert_frame_equal(frame.lazy().collect(), NEW)
    if mode.is_lazy and fmt != "array":  # a scan of the object: read when a sink needs it
        assert isinstance(frame, pl.LazyFrame)
        assert uri in frame.explain()
    if fmt == "array":  # no lazy scan of a JSON array in Polars: read at the load
        assert uri not in frame.lazy().explain()


@BY_FORMAT
@LAZY_AND_EAGER
def test_a_load_with_a_model_casts_the_objects_columns(
    write_config, s3_bucket, variables, mode, fmt
):
    load, _, _, name, encode, _ = FORMATS[fmt]
    s3_bucket.put(name, encode(NEW))
    model = "model:\n  m:\n    id: uint64\n    name: str\n    extra?: date\n"
    graph = graph_of(
        write_config, load_stage(load, f"{s3_bucket.uri}/{name}", ", model: m"), extra=model
    )
    expected = NEW.with_columns(pl.col("id").cast(pl.UInt64), extra=pl.lit(None, pl.Date))
    assert_frame_equal(run(graph, variables, mode)["N"].lazy().collect(), expected)


@pytest.mark.parametrize("task", ["load_csv", "load_json", "load_parquet"])
@ALL_MODES
def test_a_missing_key_is_said_at_the_load(write_config, s3_bucket, variables, mode, task):
    s3_bucket.put("data/in/a.csv", b"id\n1\n")  # a "folder": other keys, not this one
    uri = f"{s3_bucket.uri}/data/nope.csv"
    graph = graph_of(write_config, load_stage(task, uri))
    with pytest.raises(TaskError) as info:
        run(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): {task}: no such object {uri}"
    )
    graph = graph_of(write_config, load_stage(task, f"{s3_bucket.uri}/data/in"))
    with pytest.raises(TaskError) as info:
        run(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): {task}: no such object "
        f"{s3_bucket.uri}/data/in (objects lie under it: give the key of an object)"
    )


@pytest.mark.parametrize("task", ["load_csv", "load_json", "load_parquet"])
def test_a_missing_bucket_is_said_at_the_load(write_config, s3_bucket, variables, task):
    bucket = f"{s3_bucket.name}-gone"
    graph = graph_of(write_config, load_stage(task, f"s3://{bucket}/a.csv"))
    with pytest.raises(TaskError) as info:
        run(graph, variables)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): {task}: cannot read "
        f"s3://{bucket}/a.csv: bucket '{bucket}' does not exist"
    )


CREDENTIALS = (
    "check the credentials in the environment, AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or "
    "AWS_PROFILE, and the bucket's policy"
)


@ALL_MODES
def test_refused_credentials_are_said_at_the_load(write_config, s3_bucket, variables, mode):
    s3_bucket.put("a.csv", b"id\n1\n")
    graph = graph_of(write_config, load_stage("load_csv", f"{s3_bucket.uri}/a.csv"))
    s3_bucket.server.enforce_credentials(True)
    with pytest.raises(TaskError) as info:
        run(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: cannot read "
        f"{s3_bucket.uri}/a.csv: access denied ({CREDENTIALS})"
    )


@BY_FORMAT
def test_an_object_deleted_before_a_lazy_sink_reads_it_is_blamed_on_the_load(
    write_config, s3_bucket, variables, tmp_path, fmt
):
    load, _, _, name, encode, _ = FORMATS[fmt]
    s3_bucket.put(name, encode(NEW))
    uri = f"{s3_bucket.uri}/{name}"
    graph = graph_of(write_config, load_stage(load, uri), save_stage("csv", "out/b.csv"))
    delete = functools.partial(s3_bucket.server.client().delete_object, Bucket=s3_bucket.name)
    if fmt == "array":  # read at the load: its deletion does not matter
        run(graph, variables, before={"save": lambda: delete(Key=name)})
        assert_frame_equal(pl.read_csv(tmp_path / "out" / "b.csv"), NEW)
        return
    with pytest.raises(TaskError) as info:
        run(graph, variables, before={"save": lambda: delete(Key=name)})
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): {load}: {uri}: the object is gone: it "
        "was deleted after this stage, and lazy modes read an object only when a later stage "
        "needs its data (keep it until the run ends)"
    )


@ALL_MODES
def test_a_ragged_csv_object_is_reported_with_its_line(write_config, s3_bucket, variables, mode):
    s3_bucket.put("b.csv", b"id,name\n1,ann\n2,bob,extra\n")
    graph = graph_of(
        write_config, load_stage("load_csv", f"{s3_bucket.uri}/b.csv"), save_stage("csv", "o.csv")
    )
    with pytest.raises(TaskError) as info:
        run(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: {s3_bucket.uri}/b.csv: "
        "line 3 has 3 fields but the header has 2 (quote a field that holds a comma, or fix the "
        "row)"
    )


# --- replace --------------------------------------------------------------------------------


@BY_FORMAT
@ALL_MODES
def test_replace_writes_the_object_byte_for_byte(
    write_config, s3_bucket, variables, tmp_path, mode, fmt
):
    """The object holds exactly what the same save writes to a local file, and replaces the
    object that was there; nothing else is left, in the bucket or on disk."""
    _, _, _, name, encode, decode = FORMATS[fmt]
    s3_bucket.put(f"out/{name}", encode(OLD))
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage(fmt, f"out/{name}", label="local"),
        save_stage(fmt, f"{s3_bucket.uri}/out/{name}", ", mode: replace"),
    )
    run(graph, variables, mode)
    written = s3_bucket.get(f"out/{name}")
    assert written == (tmp_path / "out" / name).read_bytes()
    assert_frame_equal(decode(written), NEW)
    assert s3_bucket.keys() == [f"out/{name}"]
    assert s3_bucket.uploads() == []
    assert staged_leftovers(name) == []


@ALL_MODES
def test_output_dir_may_be_an_object_store_uri(write_config, s3_bucket, tmp_path, mode):
    """`$OUTPUT_DIR` = `s3://bucket/out/`: `$OUTPUT_DIR/b.csv` is the object `out/b.csv` (one
    slash, `..` resolved), and a later stage loading it reads what the save wrote."""
    variables = {"CONFIG_DIR": str(tmp_path / "config"), "OUTPUT_DIR": f"{s3_bucket.uri}/out/"}
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage("csv", "$OUTPUT_DIR/b.csv"),
        save_stage("parquet", "${OUTPUT_DIR}/sub/../c.parquet", label="save_c"),
        "{ label: reload, task: load_csv, args: { filepath: $OUTPUT_DIR/b.csv, df_name: B } }",
    )
    frames = run(graph, variables, mode)
    assert s3_bucket.keys() == ["out/b.csv", "out/c.parquet"]
    assert s3_bucket.get("out/b.csv") == NEW.write_csv().encode()
    assert_frame_equal(_read_parquet(s3_bucket.get("out/c.parquet")), NEW)
    assert_frame_equal(frames["B"].lazy().collect(), NEW)


def test_run_context_resolves_uris_as_uris_and_paths_as_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    location = Location(file="p.yml", stage="save", index=1)
    ctx = RunContext(RunMode.SYNC_LAZY, {"OUTPUT_DIR": "S3://bucket/out"}, location)
    assert ctx.resolve("$OUTPUT_DIR/b.csv") == "s3://bucket/out/b.csv"
    assert ctx.resolve("${OUTPUT_DIR}//x/./y/../b.csv") == "s3://bucket/out/x/b.csv"
    assert ctx.resolve("gs://other/k.json") == "gs://other/k.json"
    assert ctx.resolve("rel/b.csv") == tmp_path / "rel" / "b.csv"
    assert ctx.path("rel/b.csv") == tmp_path / "rel" / "b.csv"
    with pytest.raises(TaskError) as info:
        ctx.path("$OUTPUT_DIR/b.csv")
    assert str(info.value) == (
        "p.yml, stage 'save' (#1): '$OUTPUT_DIR/b.csv' is the object-store URI "
        "s3://bucket/out/b.csv, and this task reads and writes local files only (give a local "
        "path)"
    )


@pytest.mark.parametrize("mode", ["replace", "append", "make_next"])
def test_a_missing_bucket_is_said_before_anything_is_written(
    write_config, s3_bucket, variables, tmp_path, mode
):
    bucket = f"{s3_bucket.name}-gone"
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage("csv", f"s3://{bucket}/a.csv", f", mode: {mode}"),
    )
    with pytest.raises(TaskError) as info:
        run(graph, variables)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write "
        f"s3://{bucket}/a.csv: bucket '{bucket}' does not exist (create it, or give a filepath "
        "in an existing bucket)"
    )
    assert staged_leftovers("a.csv") == []


def test_refused_credentials_are_said_at_the_save(write_config, s3_bucket, variables, tmp_path):
    graph = graph_of(
        write_config, local_frame(tmp_path), save_stage("csv", f"{s3_bucket.uri}/a.csv")
    )
    s3_bucket.server.enforce_credentials(True)
    with pytest.raises(TaskError) as info:
        run(graph, variables)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write "
        f"{s3_bucket.uri}/a.csv: access denied: the store refused the credentials "
        "(InvalidAccessKeyId: The AWS Access Key Id you provided does not exist in our records); "
        f"{CREDENTIALS}"
    )
    s3_bucket.server.enforce_credentials(False)
    assert s3_bucket.keys() == []


# --- failures leave the old object, and no other ---------------------------------------------


@BY_FORMAT
@ALL_MODES
@pytest.mark.parametrize("write_mode", ["replace", "append"])
def test_a_failed_save_leaves_exactly_the_old_object(
    write_config, s3_bucket, variables, tmp_path, mode, fmt, write_mode
):
    """The frame breaks its model's constraint in the middle of the pass: the object stays byte
    for byte, no other object or upload is made, no local copy is left."""
    _, _, _, name, encode, _ = FORMATS[fmt]
    s3_bucket.put(name, encode(OLD))
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage(fmt, f"{s3_bucket.uri}/{name}", f", model: m, mode: {write_mode}"),
        extra="model:\n  m:\n    id: int\n    name: { dtype: str, constraints: [not_null] }\n",
    )
    with pytest.raises(TaskError, match="breaks 'not_null' in 1 row"):
        run(graph, variables, mode)
    assert s3_bucket.get(name) == encode(OLD)
    assert s3_bucket.keys() == [name]
    assert s3_bucket.uploads() == []
    assert staged_leftovers(name) == []


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads in parts of 16 bytes (moto's minimum part size lowered to match)."""
    import moto.s3.models

    monkeypatch.setattr(object_store, "SINGLE_PUT_BYTES", 16)
    monkeypatch.setattr(object_store, "PART_BYTES", 16)
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)


def test_a_large_object_is_uploaded_in_parts(
    write_config, s3_bucket, variables, tmp_path, small_parts, monkeypatch
):
    calls: list[str] = []
    call = S3Store._call
    monkeypatch.setattr(
        S3Store,
        "_call",
        lambda self, method, *a, **k: calls.append(method) or call(self, method, *a, **k),
    )
    graph = graph_of(
        write_config, local_frame(tmp_path), save_stage("csv", f"{s3_bucket.uri}/a.csv")
    )
    run(graph, variables)
    assert s3_bucket.get("a.csv") == NEW.write_csv().encode()  # 17 bytes: 2 parts
    assert calls == [
        "create_multipart_upload",
        "upload_part",
        "upload_part",
        "complete_multipart_upload",
    ]
    assert s3_bucket.uploads() == []


def test_an_upload_failing_half_way_leaves_the_old_object(
    write_config, s3_bucket, variables, tmp_path, small_parts, monkeypatch
):
    s3_bucket.put("a.csv", b"id,name\n1,old\n")
    call = S3Store._call
    parts: list[int] = []
    staged: list[list[str]] = []

    def failing(self, method, *args, **kwargs):  # type: ignore[no-untyped-def]
        if method == "upload_part":
            parts.append(kwargs["PartNumber"])
            staged.append(staged_leftovers("a.csv"))
            if kwargs["PartNumber"] == 2:
                raise ConnectionResetError(104, "Connection reset by peer")
        return call(self, method, *args, **kwargs)

    monkeypatch.setattr(S3Store, "_call", failing)
    graph = graph_of(
        write_config, local_frame(tmp_path), save_stage("csv", f"{s3_bucket.uri}/a.csv")
    )
    with pytest.raises(TaskError) as info:
        run(graph, variables)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write "
        f"{s3_bucket.uri}/a.csv: [Errno 104] Connection reset by peer"
    )
    assert parts == [1, 2]
    assert [len(names) for names in staged] == [1, 1]  # the local copy, while uploading
    assert s3_bucket.get("a.csv") == b"id,name\n1,old\n"
    assert s3_bucket.keys() == ["a.csv"]
    assert s3_bucket.uploads() == []  # aborted: the store drops the part it has
    assert staged_leftovers("a.csv") == []


def test_an_interrupted_run_publishes_no_object(
    write_config, s3_bucket, variables, tmp_path, monkeypatch
):
    """The signal comes while the object's bytes are being written: the upload is refused."""
    s3_bucket.put("a.csv", b"id,name\n1,old\n")
    monkeypatch.setitem(interrupts._state, "signal", None)
    upload = S3Store.upload

    def interrupted(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        interrupts._state["signal"] = signal.SIGINT
        return upload(self, *args, **kwargs)

    monkeypatch.setattr(S3Store, "upload", interrupted)
    graph = graph_of(
        write_config, local_frame(tmp_path), save_stage("csv", f"{s3_bucket.uri}/a.csv")
    )
    with pytest.raises(RunInterrupted) as info:
        run(graph, variables)
    assert (
        str(info.value) == f"the run was interrupted (SIGINT): {s3_bucket.uri}/a.csv is not written"
    )
    assert s3_bucket.get("a.csv") == b"id,name\n1,old\n"
    assert s3_bucket.uploads() == []
    assert staged_leftovers("a.csv") == []


# --- make_next ------------------------------------------------------------------------------


@BY_FORMAT
@ALL_MODES
def test_make_next_writes_a_new_object_each_time(
    write_config, s3_bucket, variables, tmp_path, mode, fmt
):
    _, _, _, name, encode, decode = FORMATS[fmt]
    s3_bucket.put(f"out/{name}", encode(OLD))
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage(fmt, f"{s3_bucket.uri}/out/{name}", ", mode: make_next"),
    )
    run(graph, variables, mode)
    run(graph, variables, mode)
    stem, suffix = Path(name).stem, Path(name).suffix
    made = [key for key in s3_bucket.keys() if key != f"out/{name}"]  # noqa: SIM118
    assert len(made) == 2
    for key in made:
        assert key.startswith(f"out/{stem}_2") and key.endswith(suffix)
        assert_frame_equal(decode(s3_bucket.get(key)), NEW)
    assert s3_bucket.get(f"out/{name}") == encode(OLD)  # never overwritten


MOMENT = dt.datetime(2026, 11, 29, 3, 15, tzinfo=dt.UTC)


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """`make_next` names its objects after MOMENT."""
    monkeypatch.setattr(common, "next_uris", functools.partial(next_uris, now=MOMENT))


def test_make_next_takes_the_next_free_key(
    write_config, s3_bucket, variables, tmp_path, frozen_clock
):
    s3_bucket.put("out/a_20261129T031500Z.csv", b"theirs\n")
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage("csv", f"{s3_bucket.uri}/out/a.csv", ", mode: make_next"),
    )
    run(graph, variables)
    run(graph, variables)
    assert s3_bucket.keys() == [
        "out/a_20261129T031500Z.csv",
        "out/a_20261129T031500Z_2.csv",
        "out/a_20261129T031500Z_3.csv",
    ]
    assert s3_bucket.get("out/a_20261129T031500Z.csv") == b"theirs\n"
    assert s3_bucket.get("out/a_20261129T031500Z_2.csv") == NEW.write_csv().encode()


def test_make_next_never_replaces_an_object_made_after_it_looked(
    write_config, s3_bucket, variables, tmp_path, frozen_clock, monkeypatch
):
    """A concurrent writer creates the key between the look and the upload: the conditional
    write (`If-None-Match`) refuses, and the next name is taken."""
    stat = S3Store.stat

    def racing(self, uri):  # type: ignore[no-untyped-def]
        found = stat(self, uri)
        if uri.endswith("a_20261129T031500Z.csv"):
            s3_bucket.put("a_20261129T031500Z.csv", b"theirs\n")
        return found

    monkeypatch.setattr(S3Store, "stat", racing)
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage("csv", f"{s3_bucket.uri}/a.csv", ", mode: make_next"),
    )
    run(graph, variables)
    assert s3_bucket.keys() == ["a_20261129T031500Z.csv", "a_20261129T031500Z_2.csv"]
    assert s3_bucket.get("a_20261129T031500Z.csv") == b"theirs\n"
    assert s3_bucket.get("a_20261129T031500Z_2.csv") == NEW.write_csv().encode()
    assert s3_bucket.uploads() == []


# --- append ---------------------------------------------------------------------------------


@BY_FORMAT
@ALL_MODES
def test_append_gives_the_object_what_a_local_append_gives_the_file(
    write_config, s3_bucket, variables, tmp_path, mode, fmt
):
    _, _, _, name, encode, decode = FORMATS[fmt]
    s3_bucket.put(f"out/{name}", encode(OLD))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / name).write_bytes(encode(OLD))
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage(fmt, f"out/{name}", ", mode: append", label="local"),
        save_stage(fmt, f"{s3_bucket.uri}/out/{name}", ", mode: append"),
    )
    run(graph, variables, mode)
    written = s3_bucket.get(f"out/{name}")
    assert written == (tmp_path / "out" / name).read_bytes()
    assert_frame_equal(decode(written), pl.concat([OLD, NEW]))
    assert s3_bucket.keys() == [f"out/{name}"]
    assert staged_leftovers(name) == []


@BY_FORMAT
def test_append_to_no_object_creates_it(write_config, s3_bucket, variables, tmp_path, fmt):
    _, _, _, name, encode, _ = FORMATS[fmt]
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage(fmt, f"{s3_bucket.uri}/{name}", ", mode: insert"),
    )
    run(graph, variables)
    assert s3_bucket.get(name) == encode(NEW)


def test_append_of_other_columns_is_refused_naming_the_object(
    write_config, s3_bucket, variables, tmp_path
):
    s3_bucket.put("a.csv", b"id,label\n1,x\n")
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage("csv", f"{s3_bucket.uri}/a.csv", ", mode: append"),
    )
    with pytest.raises(TaskError) as info:
        run(graph, variables)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot append frame 'N' to "
        f"{s3_bucket.uri}/a.csv: its columns (id, name) are not the file's (id, label) (give the "
        "frame the file's columns, e.g. with a model, or save with mode: replace or make_next)"
    )
    assert s3_bucket.get("a.csv") == b"id,label\n1,x\n"
    assert staged_leftovers("a.csv") == []


def test_an_append_racing_another_writer_fails_and_loses_nothing(
    write_config, s3_bucket, variables, tmp_path, monkeypatch
):
    """Another writer replaces the object while the append writes: the upload, conditional on
    the version read (`If-Match`), is refused; the other writer's object stays."""
    s3_bucket.put("a.csv", b"id,name\n1,old\n")
    upload = S3Store.upload

    def racing(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        s3_bucket.put("a.csv", b"id,name\n9,theirs\n")
        return upload(self, *args, **kwargs)

    monkeypatch.setattr(S3Store, "upload", racing)
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage("csv", f"{s3_bucket.uri}/a.csv", ", mode: append"),
    )
    with pytest.raises(TaskError) as info:
        run(graph, variables)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot append frame 'N' to "
        f"{s3_bucket.uri}/a.csv: another writer changed the object while this append ran, and "
        "nothing was written (run the save again)"
    )
    assert s3_bucket.get("a.csv") == b"id,name\n9,theirs\n"
    assert staged_leftovers("a.csv") == []


def test_append_where_the_store_has_no_conditional_writes_is_refused(write_config, tmp_path):
    """gs://, az://: no conditional writes through their fsspec packages, so an append could
    lose a concurrent writer's rows: refused by `validate`, and by the run when a variable
    makes the path such an object."""
    config = write_config(
        {
            "p.yml": pipeline(
                local_frame(tmp_path),
                save_stage("csv", "gs://bucket/a.csv", ", mode: append"),
                save_stage("csv", "s3://bucket/b.csv", ", mode: append", label="fine"),
            )
        }
    )
    assert errors(config) == [
        "error: config/p.yml:4, pipeline 'p', stage 'save' (#2): task 'save_csv': mode: append "
        "cannot write gs://bucket/a.csv: appending to an object needs a store with conditional "
        "writes (s3://), and on this one a concurrent writer's rows could be lost (save with "
        "mode: replace or make_next)"
    ]
    graph = graph_of(
        write_config,
        local_frame(tmp_path),
        save_stage("csv", "$OUTPUT_DIR/a.csv", ", mode: append"),
    )
    variables = {"CONFIG_DIR": str(tmp_path / "config"), "OUTPUT_DIR": "az://container/out"}
    with pytest.raises(TaskError) as info:
        run(graph, variables)
    assert str(info.value) == (
        "config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: mode: append cannot write "
        "az://container/out/a.csv: appending to an object needs a store with conditional writes "
        "(s3://), and on this one a concurrent writer's rows could be lost (save with mode: "
        "replace or make_next)"
    )


def test_a_store_without_conditional_writes_checks_a_new_key_before_writing(s3_bucket, tmp_path):
    """The plain fsspec store (gs://, az://) looks before it writes a `make_next` object, and
    refuses to append (it could not tell a concurrent writer's change)."""
    import fsspec

    store = ObjectStore(fsspec.filesystem("s3", skip_instance_cache=True))
    s3_bucket.put("taken.csv", b"theirs\n")
    local = tmp_path / "mine.csv"
    local.write_bytes(b"mine\n")
    nothing = lambda: interrupts.guarded("x")  # noqa: E731
    with pytest.raises(object_store.ObjectExists):
        store.upload(local, f"{s3_bucket.uri}/taken.csv", publish=nothing, if_absent=True)
    store.upload(local, f"{s3_bucket.uri}/free.csv", publish=nothing, if_absent=True)
    assert s3_bucket.get("taken.csv") == b"theirs\n"
    assert s3_bucket.get("free.csv") == b"mine\n"
    assert store.stat(f"{s3_bucket.uri}/free.csv").size == 5
    assert store.stat(f"{s3_bucket.uri}/gone.csv") is None


# --- validation -----------------------------------------------------------------------------


def test_validate_reads_no_object_and_orders_stages_by_object(write_config, monkeypatch):
    """No request at validate time (the endpoint refuses connections), and two spellings of one
    object order the stages writing and reading it."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("BUCKET", "s3://bucket")
    graph = graph_of(
        write_config,
        load_stage("load_csv", "s3://bucket/in/a.csv"),
        save_stage("csv", "$BUCKET/out/b.csv"),
        "{ label: reload, task: load_csv, args: { filepath: 's3://bucket/out/./x/../b.csv', "
        "df_name: B } }",
    )
    assert graph.by_label["reload"].after == (FileEdge("save", 2, ("s3://bucket/out/b.csv",)),)


def test_a_uri_naming_a_bucket_or_a_prefix_is_a_config_error(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                load_stage("load_csv", "s3://bucket"),
                "{ label: two, task: load_parquet, args: { filepath: 's3://bucket/dir/', "
                "df_name: M } }",
            )
        }
    )
    assert errors(config) == [
        "error: config/p.yml:3, pipeline 'p', stage 'load' (#1): task 'load_csv': filepath "
        "'s3://bucket' names a bucket, not an object (add the object's key: "
        "'s3://bucket/name.csv')",
        "error: config/p.yml:4, pipeline 'p', stage 'two' (#2): task 'load_parquet': filepath "
        "'s3://bucket/dir/' names a directory, not a file (add the file's name: "
        "'s3://bucket/dir/name.csv')",
    ]


# --- credentials: from the environment, never printed -----------------------------------------


def test_a_lazy_plan_carries_no_credentials(write_config, s3_bucket, variables):
    """The multiprocess executor pickles lazy frames: the scan must hold no storage options."""
    s3_bucket.put("a.parquet", _parquet(NEW))
    graph = graph_of(write_config, load_stage("load_parquet", f"{s3_bucket.uri}/a.parquet"))
    frame = run(graph, variables)["N"]
    assert isinstance(frame, pl.LazyFrame)
    dumped = pickle.dumps(frame)
    assert s3_bucket.secret.encode() not in dumped
    assert_frame_equal(pickle.loads(dumped).collect(), NEW)


def test_a_secret_in_an_error_is_masked(write_config, s3_bucket, variables):
    """Whatever quotes the AWS secret key (here the key of the missing object) shows `***`."""
    uri = f"{s3_bucket.uri}/{s3_bucket.secret}.csv"
    graph = graph_of(write_config, load_stage("load_csv", uri))
    with pytest.raises(TaskError) as info:
        run(graph, variables, redact=Redactor(secret_values({}, os.environ)))
    assert str(info.value) == (
        "config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: no such object "
        f"{s3_bucket.uri}/***.csv"
    )


def test_capport_run_takes_credentials_from_the_environment_and_never_prints_them(
    write_config, s3_bucket
):
    """`capport run -o s3://...` in a process of its own: the objects are read and written with
    the environment's credentials, and a failing stage's error (even with --debug) never shows
    the secret key."""
    s3_bucket.put("in/a.csv", NEW.write_csv().encode())
    config = write_config(
        {
            "p.yml": pipeline(
                load_stage("load_csv", f"{s3_bucket.uri}/in/a.csv"),
                save_stage("csv", "$OUTPUT_DIR/a.csv"),
                "{ label: gone, task: load_csv, args: { filepath: "
                f"'{s3_bucket.uri}/in/missing.csv', df_name: M }} }}",
            )
        }
    )
    done = capport("--debug", "run", "-c", str(config), "-p", "p", "-o", f"{s3_bucket.uri}/out")
    assert done.returncode == 1, done.stderr
    assert (
        "config/p.yml:5, pipeline 'p', stage 'gone' (#3): load_csv: no such object "
        f"{s3_bucket.uri}/in/missing.csv"
    ) in done.stderr
    assert s3_bucket.secret not in done.stdout + done.stderr
    assert s3_bucket.get("out/a.csv") == NEW.write_csv().encode()
