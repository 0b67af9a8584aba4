"""`load_json` and `save_json` (core/files/json_files.py): arrays and NDJSON, detected or told,
exact round trips of every model dtype, and errors blamed on the load and its file."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.graph import load_project
from capport_dagster.core.models import DTYPES
from capport_dagster.core.modes import RunMode
from capport_dagster.errors import TaskError
from tests.conftest import run_stages
from tests.test_tasks import errors, final, pipeline, run_in_order

ALL_MODES = pytest.mark.parametrize("mode", list(RunMode))

#: One column per model dtype, each with a value and a null: what a round trip must keep.
VALUES = {
    "int": [1, None],
    "int8": [-8, None],
    "int16": [300, None],
    "int32": [70000, None],
    "int64": [2**40, None],
    "uint8": [255, None],
    "uint16": [65535, None],
    "uint32": [2**32 - 1, None],
    "uint64": [2**64 - 1, None],
    "float": [1.5, None],
    "double": [2.25, None],
    "str": ['a\n"b', None],
    "char": ["c", None],
    "bool": [True, None],
    "time": [dt.time(1, 2, 3, 456000), None],
    "date": [dt.date(2024, 1, 2), None],
    "datetime_utc": [dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC), None],
    "datetime_nyt": [dt.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC), None],
    "list[str]": [["a", "b"], None],
    "list[int]": [[1, 2], None],
    "list[double]": [[1.5], None],
}
COLUMNS = {f"c_{name.replace('[', '_').replace(']', '')}": name for name in DTYPES}
EVERY_DTYPE = pl.DataFrame(
    {column: pl.Series(VALUES[name], dtype=DTYPES[name]) for column, name in COLUMNS.items()}
)
EVERY_DTYPE_MODEL = "model:\n  m:\n" + "".join(
    f"    {column}: {{ dtype: '{name}' }}\n" for column, name in COLUMNS.items()
)
PEOPLE = pl.DataFrame({"id": [1, 2], "name": ["ann", None]})


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    return {"CONFIG_DIR": str(tmp_path / "config"), "OUTPUT_DIR": str(tmp_path / "out")}


def test_every_dtype_lists_every_model_dtype():
    assert set(COLUMNS.values()) == set(DTYPES) == set(VALUES)


@pytest.mark.parametrize("lines", ["true", "false"])
@ALL_MODES
def test_every_model_dtype_round_trips_exactly(write_config, tmp_path, variables, mode, lines):
    EVERY_DTYPE.write_parquet(tmp_path / "src.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: src.parquet, df_name: A,"
                " model: m } }",
                f"{{ label: s, task: save_json, args: {{ filepath: out.json, df_name: A, model: m,"
                f" lines: {lines} }} }}",
                "{ label: l2, task: load_json, args: { filepath: out.json, df_name: B,"
                " model: m } }",
            )
            + EVERY_DTYPE_MODEL
        }
    )
    graph = load_project(config).graphs["p"]
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "B"), EVERY_DTYPE)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ("false", '[{"id":1,"name":"ann"},{"id":2,"name":null}]'),
        ("true", '{"id":1,"name":"ann"}\n{"id":2,"name":null}\n'),
    ],
    ids=["array", "ndjson"],
)
@ALL_MODES
def test_save_json_writes_an_array_or_ndjson(
    write_config, tmp_path, variables, mode, lines, expected
):
    PEOPLE.write_parquet(tmp_path / "p.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: p.parquet, df_name: P } }",
                f"{{ label: s, task: save_json, args: {{ filepath: o/p.json, from_df: P,"
                f" lines: {lines} }} }}",
            )
        }
    )
    run_in_order(load_project(config).graphs["p"], variables, mode)
    assert (tmp_path / "o" / "p.json").read_text() == expected
    # Byte for byte what Polars' own writers give.
    polars_own = PEOPLE.write_json() if lines == "false" else PEOPLE.write_ndjson()
    assert expected == polars_own


def test_an_empty_frame_is_an_empty_array(write_config, tmp_path, variables):
    PEOPLE.clear().write_parquet(tmp_path / "p.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: p.parquet, df_name: P } }",
                "{ label: s, task: save_json, args: { filepath: p.json, df_name: P } }",
            )
        }
    )
    run_in_order(load_project(config).graphs["p"], variables)
    assert (tmp_path / "p.json").read_text() == "[]"


@pytest.mark.parametrize(
    ("content", "lines"),
    [
        ('  \n[{"id":1,"name":"ann"},{"id":2,"name":null}]', ""),
        ('\n{"id":1,"name":"ann"}\n{"id":2,"name":null}\n', ""),
        ('[{"id":1,"name":"ann"},{"id":2,"name":null}]', ", lines: false"),
        ('{"id":1,"name":"ann"}\n{"id":2,"name":null}', ", lines: true"),
    ],
    ids=["array-detected", "ndjson-detected", "array-told", "ndjson-told"],
)
@ALL_MODES
def test_load_json_reads_an_array_or_ndjson(
    write_config, tmp_path, variables, mode, content, lines
):
    (tmp_path / "p.json").write_text(content)
    config = write_config(
        {
            "p.yml": pipeline(
                f"{{ label: l, task: load_json, args: {{ filepath: p.json, save_df: P{lines} }} }}"
            )
        }
    )
    graph = load_project(config).graphs["p"]
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "P"), PEOPLE)


def test_load_json_of_ndjson_is_lazy_and_of_an_array_eager(write_config, tmp_path, variables):
    (tmp_path / "a.json").write_text('[{"id":1}]')
    (tmp_path / "n.json").write_text('{"id":1}\n')
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: [{ filepath: a.json, df_name: A },"
                " { filepath: n.json, df_name: N }] }"
            )
        }
    )
    graph = load_project(config).graphs["p"]
    frames = run_stages(graph, RunMode.SYNC_LAZY, variables)
    ndjson = frames[graph.final_versions["N"]]
    array = frames[graph.final_versions["A"]]
    assert isinstance(ndjson, pl.LazyFrame) and "SCAN" in ndjson.explain()
    assert isinstance(array, pl.LazyFrame) and "SCAN" not in array.explain()


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"", "load_json: {path}: the file is empty (an empty JSON array is '[]')"),
        (b"  \n ", "load_json: {path}: the file is empty (an empty JSON array is '[]')"),
        (
            b"id,name\n1,ann\n",
            "load_json: {path} is neither a JSON array nor NDJSON: it starts with 'i', not '[' "
            "or '{{' (give a JSON file)",
        ),
    ],
    ids=["empty", "blank", "csv"],
)
@ALL_MODES
def test_a_file_that_is_not_json_is_blamed_on_its_load(
    write_config, tmp_path, variables, mode, content, said
):
    (tmp_path / "p.json").write_bytes(content)
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: { filepath: p.json, df_name: P } }",
                "{ label: s, task: save_json, args: { filepath: o.json, df_name: P } }",
            )
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    path = tmp_path / "p.json"
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'l' (#1): {said.format(path=path)}"
    )


@ALL_MODES
def test_a_bad_ndjson_line_is_blamed_on_its_load_and_file(write_config, tmp_path, variables, mode):
    """Lazy modes read the file only in the sink after a transform: the load is still named."""
    (tmp_path / "p.json").write_text('{"a":1}\n{"a":2\n')
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: { filepath: p.json, df_name: P } }",
                "{ label: t, task: transform, args: { name: keep, input: P, save_df: K } }",
                "{ label: s, task: save_json, args: { filepath: o.json, df_name: K } }",
            ),
            "t.yml": "transform:\n  keep:\n    - select: { a: null }\n",
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    assert str(info.value).startswith(
        f"config/p.yml:3, pipeline 'p', stage 'l' (#1): load_json: {tmp_path / 'p.json'}: "
    )
    assert not (tmp_path / "o.json").exists()


@ALL_MODES
def test_a_value_the_model_refuses_is_blamed_on_the_load(write_config, tmp_path, variables, mode):
    (tmp_path / "p.json").write_text('{"d":"2024-01-02"}\n{"d":"soon"}\n')
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: { filepath: p.json, df_name: P, model: m } }",
                "{ label: s, task: save_json, args: { filepath: o.json, df_name: P } }",
            )
            + "model:\n  m:\n    d: date\n"
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    # Every mode names the file: the runtime executes a failed eager load again as a source.
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'l' (#1): load_json: {tmp_path / 'p.json'}: model "
        "'m', column 'd': cannot cast value 'soon' to date (at least 1 value failed)"
    )


def test_load_json_of_a_missing_file_names_it(write_config, tmp_path, variables):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: { filepath: no.json, df_name: P } }"
            )
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables)
    assert str(info.value) == (
        "config/p.yml:3, pipeline 'p', stage 'l' (#1): load_json: no such file "
        f"{tmp_path / 'no.json'}"
    )


def test_json_args_are_checked_when_validating(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: { filepath: a.json, df_name: A,"
                " lines: maybe } }",
                "{ label: s, task: save_json, args: { filepath: b.json, df_name: A, line: true } }",
            )
        }
    )
    assert errors(config) == [
        "error: config/p.yml:3, pipeline 'p', stage 'l' (#1): malformed args for task "
        "'load_json': lines: input should be a valid boolean, unable to interpret input",
        "error: config/p.yml:4, pipeline 'p', stage 's' (#2): malformed args for task "
        "'save_json': unknown key 'line' - did you mean 'lines'? (keys: df_name, filepath, "
        "from_df, lines, merge_type, mode, model)",
    ]


@pytest.mark.parametrize("content", ['[{"id":1}]', '{"id":1}\n'], ids=["array", "ndjson"])
@ALL_MODES
def test_a_model_column_the_file_lacks_is_null_if_optional_else_said(
    write_config, tmp_path, variables, mode, content
):
    (tmp_path / "p.json").write_text(content)
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: [{ filepath: p.json, df_name: P, model: m },"
                " { filepath: p.json, df_name: Q, model: strict }] }",
            )
            + "model:\n  m:\n    id: uint8\n    day?: date\n  strict:\n    id: int\n    day: date\n"
        }
    )
    graph = load_project(config).graphs["p"]
    with pytest.raises(TaskError) as info:
        run_in_order(graph, variables, mode)
    assert str(info.value) == (
        "config/p.yml:3, pipeline 'p', stage 'l' (#1): model 'strict': required column 'day' is "
        "missing (the data has columns: id)"
    )
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_json, args: { filepath: p.json, df_name: P, model: m } }"
            )
            + "model:\n  m:\n    id: uint8\n    day?: date\n"
        }
    )
    graph = load_project(config).graphs["p"]
    assert_frame_equal(
        final(graph, run_in_order(graph, variables, mode), "P"),
        pl.DataFrame({"id": [1], "day": [None]}, schema={"id": pl.UInt8, "day": pl.Date}),
    )
