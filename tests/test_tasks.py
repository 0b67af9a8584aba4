"""The built-in tasks (SPEC 4): their args, what they read and write, and what they do."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core import sinks
from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.graph import FrameVersion, PipelineGraph, Project, load_project
from capport_dagster.core.loader import load_config
from capport_dagster.core.modes import RunMode
from capport_dagster.errors import ModelCastError, TaskError, ValidationError
from tests.conftest import run_stages

LAZY_AND_EAGER = pytest.mark.parametrize("mode", [RunMode.SYNC_LAZY, RunMode.SYNC_EAGER])


def run_in_order(
    graph: PipelineGraph, variables: Mapping[str, str], mode: RunMode = RunMode.SYNC_LAZY
) -> dict[FrameVersion, pl.DataFrame]:
    """Every stage in list order without Dagster; each written frame version, collected."""
    return {v: frame.lazy().collect() for v, frame in run_stages(graph, mode, variables).items()}


def final(graph: PipelineGraph, frames: Mapping[FrameVersion, pl.DataFrame], name: str):
    return frames[graph.final_versions[name]]


def pipeline(*stages: str) -> str:
    return "pipeline:\n  p:\n" + "".join(f"    - {stage}\n" for stage in stages)


def errors(config: Path) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_project(config)
    return [str(problem) for problem in info.value.errors]


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    """The built-in variables of a run, given explicitly (no environment)."""
    return {
        "CONFIG_DIR": str(tmp_path / "config"),
        "OUTPUT_DIR": str(tmp_path / "out"),
        "REF_DATE": "2024-03-05",
        "REF_DATETIME": "2024-03-05T06:30:00+08:00",
    }


PEOPLE = pl.DataFrame({"id": [1, 2], "name": ["ann", "bob"]})
TEAMS = pl.DataFrame({"team": ["red", "blue"], "size": [3, 4]})


@pytest.fixture
def data(tmp_path: Path) -> Path:
    PEOPLE.write_csv(tmp_path / "people.csv")
    TEAMS.write_csv(tmp_path / "teams.csv")
    return tmp_path


# --- load_csv -------------------------------------------------------------------------------


@LAZY_AND_EAGER
def test_load_csv_with_one_mapping(write_config, data, variables, mode):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: people.csv, df_name: PEOPLE } }"
            )
        }
    )
    graph = load_project(config).graphs["p"]
    node = graph.by_label["load"]
    assert (node.reads, node.writes) == ((), ("PEOPLE",))
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "PEOPLE"), PEOPLE)


def test_load_csv_with_a_list(write_config, data, variables):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: [{ filepath: people.csv, df_name: P }, "
                "{ filepath: teams.csv, df_name: T }] }"
            )
        }
    )
    graph = load_project(config).graphs["p"]
    assert graph.by_label["load"].writes == ("P", "T")
    frames = run_in_order(graph, variables)
    assert_frame_equal(final(graph, frames, "P"), PEOPLE)
    assert_frame_equal(final(graph, frames, "T"), TEAMS)


def test_load_csv_save_df_is_an_alias_of_df_name(write_config, data, variables):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: people.csv, save_df: P } }"
            )
        }
    )
    graph = load_project(config).graphs["p"]
    assert graph.by_label["load"].writes == ("P",)
    assert_frame_equal(final(graph, run_in_order(graph, variables), "P"), PEOPLE)


@pytest.mark.parametrize(("task", "alias"), [("load_csv", "save_df"), ("save_csv", "from_df")])
def test_df_name_and_its_alias_together_are_refused(write_config, task, alias):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: [{ filepath: a.csv, df_name: A }, "
                "{ filepath: b.csv, df_name: B }] }",
                f"{{ label: both, task: {task}, args: [{{ filepath: a.csv, df_name: A }}, "
                f"{{ filepath: b.csv, df_name: A, {alias}: B }}] }}",
            )
        }
    )
    assert errors(config) == [
        f"error: config/p.yml:4, pipeline 'p', stage 'both' (#2): task '{task}': give df_name "
        f"or {alias}, not both"
    ]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ("[]", "[]"),
        ("null", "None"),
        ("a.csv", "'a.csv'"),
        ("7", "7"),
        ("[a.csv]", "['a.csv']"),
        (
            "[{ filepath: a.csv, df_name: A }, null]",
            "[{'filepath': 'a.csv', 'df_name': 'A'}, None]",
        ),
    ],
)
@pytest.mark.parametrize(("task", "alias"), [("load_csv", "save_df"), ("save_csv", "from_df")])
def test_file_task_args_must_be_a_mapping_or_a_non_empty_list_of_them(
    write_config, task, alias, args, shown
):
    # A load first: what a malformed save evidently reads is still checked (and written).
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }",
                f"{{ label: io, task: {task}, args: {args} }}",
            )
        }
    )
    assert errors(config) == [
        f"error: config/p.yml:4, pipeline 'p', stage 'io' (#2): task '{task}' takes a mapping "
        f"or a non-empty list of {{filepath, df_name, model?}} ({alias} is an alias of "
        f"df_name), got {shown}"
    ]


def test_load_csv_entry_keys_are_checked(write_config):
    config = write_config(
        {"p.yml": pipeline("{ label: io, task: load_csv, args: { file: a.csv, from_df: A } }")}
    )
    assert errors(config) == [
        "error: config/p.yml:3, pipeline 'p', stage 'io' (#1): malformed args for task "
        "'load_csv': filepath: field required; df_name: field required; unknown key 'file' - did "
        "you mean 'filepath'? (keys: df_name, encoding, filepath, has_header, model, null_values, "
        "quote_char, save_df, separator); unknown key 'from_df' (keys: df_name, encoding, "
        "filepath, has_header, model, null_values, quote_char, save_df, separator)"
    ]


@LAZY_AND_EAGER
def test_load_csv_with_a_model_reshapes_after_loading(write_config, tmp_path, variables, mode):
    (tmp_path / "raw.csv").write_text("extra,name,id,born\nx,ann,1,2000-01-02\ny,bob,2,\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: raw.csv, df_name: P, "
                "model: person } }"
            ),
            "m.yml": """
                model:
                  person:
                    id: uint64
                    name: str
                    born: date
                    nick?: str
            """,
        }
    )
    graph = load_project(config).graphs["p"]
    expected = pl.DataFrame(
        {
            "id": pl.Series([1, 2], dtype=pl.UInt64),
            "name": ["ann", "bob"],
            "born": pl.Series([dt.date(2000, 1, 2), None], dtype=pl.Date),
            "nick": pl.Series([None, None], dtype=pl.String),
        }
    )
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "P"), expected)


@LAZY_AND_EAGER
def test_load_csv_reads_the_text_columns_of_its_model_as_text(
    write_config, tmp_path, variables, mode
):
    # Inferred from the first rows these would be integers: 00123 -> 123, and A7 would not parse.
    codes = [f"{i:05d}" for i in range(150)] + ["A7"]
    (tmp_path / "raw.csv").write_text(
        "zip,n\n" + "".join(f"{c},{i}\n" for i, c in enumerate(codes))
    )
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: raw.csv, df_name: P, "
                "model: zips } }"
            ),
            "m.yml": "model:\n  zips:\n    zip: str\n    n: uint8\n",
        }
    )
    graph = load_project(config).graphs["p"]
    expected = pl.DataFrame({"zip": codes, "n": pl.Series(range(151), dtype=pl.UInt8)})
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "P"), expected)


@pytest.mark.parametrize("mode", list(RunMode))
def test_load_csv_with_a_model_fails_on_a_bad_value(write_config, tmp_path, variables, mode):
    # Lazy: the cast is part of the plan and fails where the plan runs, in the sink; the error
    # is still blamed on the load that applied the model, naming the file, as in eager modes.
    (tmp_path / "raw.csv").write_text("id\n1\ntwo\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: raw.csv, df_name: P, "
                "model: ids } }",
                "{ label: save, task: save_csv, args: { filepath: out.csv, df_name: P } }",
            ),
            "m.yml": "model:\n  ids:\n    id: uint64\n",
        }
    )
    graph = load_project(config).graphs["p"]
    with pytest.raises(ModelCastError) as info:
        run_in_order(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: {tmp_path / 'raw.csv'}: "
        "model 'ids', column 'id': cannot cast value 'two' to uint64 (at least 1 value failed)"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "raw.csv"]


def _typed_csv_rows() -> tuple[str, pl.DataFrame]:
    """150 rows whose first 100 mislead inference for every column, and the frame a model
    reading them must give."""
    n = 150
    doubles = [str(i) for i in range(n - 1)] + ["1.5"]
    floats = [str(i) for i in range(n - 1)] + ["2.5"]
    codes = [f"{i:05d}" for i in range(n)]
    bigs = [str(i) for i in range(n - 1)] + [str(2**64 - 1)]
    sparse = [""] * 120 + [str(i) for i in range(n - 120)]
    flags = ["1", "0"] * 70 + ["TRUE", "false"] * 5
    chars = [str(i % 10) for i in range(n - 1)] + ["A"]
    dates = ["03/10/2024"] * n
    moments = ["2024-01-02 09:30"] * (n - 1) + ["2024-01-02T09:30:00+02:00"]
    times = ["10:00"] * (n - 1) + ["10:00:01.5"]
    columns = [doubles, floats, codes, bigs, sparse, flags, chars, dates, moments, times]
    text = "d,f,code,big,sparse,flag,c,born,at,t\n" + "".join(
        ",".join(row) + "\n" for row in zip(*columns, strict=True)
    )
    utc = dt.UTC
    expected = pl.DataFrame(
        {
            "d": pl.Series([float(v) for v in doubles], dtype=pl.Float64),
            "f": pl.Series([float(v) for v in floats], dtype=pl.Float32),
            "code": codes,
            "big": pl.Series([int(v) for v in bigs], dtype=pl.UInt64),
            "sparse": pl.Series([int(v) if v else None for v in sparse], dtype=pl.Int64),
            "flag": [v.lower() in ("1", "true") for v in flags],
            "c": chars,
            "born": pl.Series([dt.date(2024, 3, 10)] * n),
            "at": pl.Series(
                [dt.datetime(2024, 1, 2, 9, 30, tzinfo=utc)] * (n - 1)
                + [dt.datetime(2024, 1, 2, 7, 30, tzinfo=utc)],
                dtype=pl.Datetime("ms", "UTC"),
            ),
            "t": [dt.time(10)] * (n - 1) + [dt.time(10, 0, 1, 500000)],
        }
    )
    return text, expected


TYPED_MODEL = """
    model:
      typed:
        d: double
        f: float
        code: str
        big: uint64
        sparse: int
        flag: bool
        c: char
        born: { dtype: date, format: "%m/%d/%Y" }
        at: datetime_utc
        t: time
"""


@pytest.mark.parametrize("mode", list(RunMode))
def test_load_csv_reads_every_column_as_its_model_says(write_config, tmp_path, variables, mode):
    """Inferred from the first 100 rows, each of these columns got a dtype that refused or
    changed a later valid value (1.5 in integers, 00123 -> 123, a u64 above the i64 range,
    empty first rows -> str, 1/0 then TRUE, digits then a letter)."""
    text, expected = _typed_csv_rows()
    (tmp_path / "raw.csv").write_text(text)
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: raw.csv, df_name: P, "
                "model: typed } }"
            ),
            "m.yml": TYPED_MODEL,
        }
    )
    graph = load_project(config).graphs["p"]
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "P"), expected)


@pytest.mark.parametrize(
    ("dtype", "good", "bad", "shown"),
    [
        # integers are read as their own dtype: the CSV reader refuses these itself
        ("int8", "1", "300", "'300'"),
        ("uint64", "1", "-1", "'-1'"),
        ("int", "1", "1.5", "'1.5'"),
        ("int16", "1", '"x,y"', "'x,y'"),  # shown as the reader unquotes it
        # floats are read as f64, then refused by the model
        ("float", "1", "1e40", "'1e+40'"),
        # the rest is read as text, for the model's rules: ISO 8601 unless a format is given
        ("date", "2024-01-02", "03/10/2024", "'03/10/2024'"),
        ("datetime_utc", "2024-01-02 10:00", "1700000000", "'1700000000'"),
        ("bool", "true", "yes", "'yes'"),
    ],
)
@pytest.mark.parametrize("mode", list(RunMode))
def test_load_csv_refuses_a_value_its_model_cannot_hold(
    write_config, tmp_path, variables, mode, dtype, good, bad, shown
):
    rows = "".join(f"{good},ok\n" for _ in range(120))
    (tmp_path / "raw.csv").write_text(f"v,other\n{rows}{bad},ok\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: raw.csv, df_name: P, "
                "model: m } }",
                "{ label: save, task: save_csv, args: { filepath: out.csv, df_name: P } }",
            ),
            "m.yml": f"model:\n  m:\n    other: str\n    v: {dtype}\n",
        }
    )
    graph = load_project(config).graphs["p"]
    with pytest.raises(ModelCastError) as info:
        run_in_order(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: {tmp_path / 'raw.csv'}: "
        f"model 'm', column 'v': cannot cast value {shown} to {dtype} (at least 1 value failed)"
    )
    assert not (tmp_path / "out.csv").exists()


def test_load_csv_of_a_missing_file_is_a_task_error(write_config, variables):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: nope/gone.csv, df_name: P } }"
            )
        }
    )
    graph = load_project(config).graphs["p"]
    with pytest.raises(TaskError) as info:
        run_in_order(graph, variables)
    assert str(info.value) == (
        "config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: no such file "
        f"{Path.cwd() / 'nope' / 'gone.csv'}"
    )


# --- save_csv -------------------------------------------------------------------------------


@LAZY_AND_EAGER
def test_save_csv_from_df_alias_creates_parent_directories(
    write_config, data, tmp_path, variables, mode
):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: people.csv, df_name: P } }",
                "{ label: save, task: save_csv, args: { filepath: deep/er/out.csv, from_df: P } }",
            )
        }
    )
    graph = load_project(config).graphs["p"]
    node = graph.by_label["save"]
    assert (node.reads, node.writes, node.upstream) == (("P",), (), ("load",))
    frames = run_in_order(graph, variables, mode)
    assert_frame_equal(frames[FrameVersion("P", "load", 1, 0)], PEOPLE)
    written = tmp_path / "deep" / "er" / "out.csv"
    assert written.read_text() == "id,name\n1,ann\n2,bob\n"
    assert sorted(p.name for p in written.parent.iterdir()) == ["out.csv"]


@LAZY_AND_EAGER
def test_save_csv_with_a_model_writes_the_model_columns_in_order(
    write_config, tmp_path, variables, mode
):
    (tmp_path / "raw.csv").write_text("name,extra,id\nann,x,1\nbob,y,2\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: raw.csv, df_name: P } }",
                "{ label: save, task: save_csv, args: [{ filepath: out.csv, df_name: P, "
                "model: out }] }",
            ),
            "m.yml": """
                model:
                  out:
                    id: uint8
                    name: str
                    nick?: str
            """,
        }
    )
    run_in_order(load_project(config).graphs["p"], variables, mode)
    assert (tmp_path / "out.csv").read_text() == "id,name,nick\n1,ann,\n2,bob,\n"
    assert_frame_equal(
        pl.read_csv(tmp_path / "out.csv", schema_overrides={"id": pl.UInt8, "nick": pl.String}),
        pl.DataFrame(
            {
                "id": pl.Series([1, 2], dtype=pl.UInt8),
                "name": ["ann", "bob"],
                "nick": pl.Series([None, None], dtype=pl.String),
            }
        ),
    )


def test_paths_expand_the_run_variables(write_config, tmp_path, variables):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: $CONFIG_DIR/data/people.csv, "
                "df_name: P } }",
                "{ label: save, task: save_csv, args: { "
                "filepath: '$OUTPUT_DIR/${REF_DATE}/people_$REF_DATE.csv', df_name: P } }",
            ),
            "data/people.csv": "id,name\n1,ann\n2,bob\n",
        }
    )
    run_in_order(load_project(config).graphs["p"], variables)
    out = tmp_path / "out"
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == [
        "2024-03-05",
        "2024-03-05/people_2024-03-05.csv",
    ]
    assert (out / "2024-03-05" / "people_2024-03-05.csv").read_text() == "id,name\n1,ann\n2,bob\n"


def test_an_undefined_variable_in_a_path_is_a_validation_error(write_config, monkeypatch):
    monkeypatch.delenv("CAPPORT_TEST_NOT_SET", raising=False)
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: a.csv, df_name: P } }",
                "{ label: save, task: save_csv, args: { "
                "filepath: $OUTPUT_DIR/$CAPPORT_TEST_NOT_SET/x.csv, df_name: P } }",
            )
        }
    )
    assert errors(config) == [
        "error: config/p.yml:4, pipeline 'p', stage 'save' (#2): undefined variable "
        "$CAPPORT_TEST_NOT_SET in '$OUTPUT_DIR/$CAPPORT_TEST_NOT_SET/x.csv' (define it in the "
        "environment; built-ins: CONFIG_DIR, OUTPUT_DIR, REF_DATE, REF_DATETIME)"
    ]


# --- transform ------------------------------------------------------------------------------

TEMPLATES = """
transform:
  attach:
    - join:
        right: $$right
        right_select: $$select
        left_on: $$key
        right_on: $$key
        how: left
  label:
    - select:
        id:
        $$new: $$col
        tag: { action: format, args: { template: "$$prefix-{}", cols: [name] } }
"""


@LAZY_AND_EAGER
def test_transform_kwargs_fill_the_template(write_config, tmp_path, variables, mode):
    (tmp_path / "a.csv").write_text("id,name\n1,ann\n2,bob\n3,cid\n")
    (tmp_path / "b.csv").write_text("id,team,note\n3,blue,x\n1,red,y\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: a, task: load_csv, args: { filepath: a.csv, df_name: A } }",
                "{ label: b, task: load_csv, args: { filepath: b.csv, df_name: B } }",
                "{ label: j, task: transform, args: { name: attach, input: A, save_df: J, "
                "kwargs: { right: B, key: id, select: { id: null, team_name: team } } } }",
                "{ label: l, task: transform, args: { name: label, input: J, save_df: L, "
                "kwargs: { new: team, col: team_name, prefix: P } } }",
            ),
            "t.yml": TEMPLATES,
        }
    )
    graph = load_project(config).graphs["p"]
    assert graph.by_label["j"].reads == ("A", "B")
    assert graph.by_label["j"].upstream == ("a", "b")
    assert graph.by_label["l"].reads == ("J",)
    frames = run_in_order(graph, variables, mode)
    assert_frame_equal(
        final(graph, frames, "J"),
        pl.DataFrame(
            {"id": [1, 2, 3], "name": ["ann", "bob", "cid"], "team_name": ["red", None, "blue"]}
        ),
    )
    assert_frame_equal(
        final(graph, frames, "L"),
        pl.DataFrame(
            {"id": [1, 2, 3], "team": ["red", None, "blue"], "tag": ["P-ann", "P-bob", "P-cid"]}
        ),
    )


def test_transform_reads_its_input_and_every_joined_frame(write_config, tmp_path, variables):
    (tmp_path / "a.csv").write_text("id,x\n1,a\n2,b\n")
    (tmp_path / "b.csv").write_text("id,y\n1,c\n")
    (tmp_path / "c.csv").write_text("id,z\n2,d\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: c, task: load_csv, args: { filepath: c.csv, df_name: C } }",
                "{ label: a, task: load_csv, args: { filepath: a.csv, df_name: A } }",
                "{ label: b, task: load_csv, args: { filepath: b.csv, df_name: B } }",
                "{ label: t, task: transform, args: { name: three, input: A, save_df: A } }",
            ),
            "t.yml": """
                transform:
                  three:
                    - join: { right: B, left_on: id, right_on: id, how: left }
                    - join: { right: A, left_on: id, right_on: id, how: inner }
                    - join: { right: C, left_on: id, right_on: id, how: left }
                    - join: { right: B, left_on: id, right_on: id, how: left }
            """,
        }
    )
    graph = load_project(config).graphs["p"]
    node = graph.by_label["t"]
    assert node.reads == ("A", "B", "C")
    assert node.upstream == ("c", "a", "b")
    assert node.inputs["A"] == FrameVersion("A", "a", 2, 0)
    assert node.outputs == (FrameVersion("A", "t", 4, 1),)
    assert_frame_equal(
        final(graph, run_in_order(graph, variables), "A"),
        pl.DataFrame(
            {
                "id": [1, 2],
                "x": ["a", "b"],
                "y": ["c", None],
                "x_right": ["a", "b"],
                "z": [None, "d"],
                "y_right": ["c", None],
            }
        ),
    )


def test_transform_args_are_checked(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: t, task: transform, args: { name: label, input: A, save: B, "
                "kwargs: [1] } }"
            ),
            "t.yml": TEMPLATES,
        }
    )
    assert errors(config) == [
        "error: config/p.yml:3, pipeline 'p', stage 't' (#1): malformed args for task "
        "'transform': save_df: field required; kwargs: input should be a valid dictionary; "
        "unknown key 'save' - did you mean 'save_df'? (keys: input, kwargs, name, save_df)",
        # What the malformed args evidently read is still checked (section 7).
        "error: config/p.yml:3, pipeline 'p', stage 't' (#1): reads frame 'A' before any "
        "earlier stage writes it",
    ]


# --- noop -----------------------------------------------------------------------------------


@pytest.mark.parametrize("args", ["", ", args: null", ", args: {}", ", args: []"])
def test_noop_takes_no_args(write_config, variables, args):
    config = write_config({"p.yml": pipeline(f"{{ label: n, task: noop{args} }}")})
    graph = load_project(config).graphs["p"]
    node = graph.by_label["n"]
    assert (node.args, node.reads, node.writes) == (None, (), ())
    assert run_in_order(graph, variables) == {}


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        ("{ x: 1 }", "{'x': 1}"),
        ("[1]", "[1]"),
        ("[null]", "[None]"),
        ("0", "0"),
        ("false", "False"),
        ("''", "''"),
        ("go", "'go'"),
    ],
)
def test_noop_refuses_anything_else(write_config, args, shown):
    config = write_config({"p.yml": pipeline(f"{{ label: n, task: noop, args: {args} }}")})
    assert errors(config) == [
        f"error: config/p.yml:3, pipeline 'p', stage 'n' (#1): task 'noop' takes no args, "
        f"got {shown}"
    ]


# --- model constraints, wherever a model shapes a frame ---------------------------------------

CONSTRAINED_MODEL = """
model:
  person:
    id: { dtype: int, constraints: [primary] }
    name: { dtype: str, constraints: [not_null] }
"""
ALL_MODES = pytest.mark.parametrize("mode", list(RunMode))


@ALL_MODES
def test_a_load_checks_its_models_constraints(write_config, variables, mode):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: $CONFIG_DIR/p.csv,"
                " df_name: P, model: person } }",
                "{ label: save, task: save_csv,"
                " args: { filepath: $OUTPUT_DIR/p.csv, df_name: P } }",
            )
            + CONSTRAINED_MODEL,
            "p.csv": "id,name\n1,Ann\n1,Bob\n2,\n",
        }
    )
    graph = load_project(config).graphs["p"]
    with pytest.raises(TaskError) as caught:
        run_in_order(graph, variables, mode)
    assert str(caught.value) == (
        "config/p.yml:3, pipeline 'p', stage 'load' (#1): model 'person': frame 'P' breaks its"
        " constraints: column 'id' breaks 'primary' in 2 rows (e.g. id=1); column 'name' breaks"
        " 'not_null' in 1 row (e.g. id=2)"
    )
    assert not (Path(variables["OUTPUT_DIR"]) / "p.csv").exists()


@ALL_MODES
def test_a_save_checks_its_models_constraints_before_the_file_lands(write_config, variables, mode):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv,"
                " args: { filepath: $CONFIG_DIR/p.csv, df_name: P } }",
                "{ label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/p.csv, df_name: P,"
                " model: person } }",
            )
            + CONSTRAINED_MODEL,
            "p.csv": "id,name\n1,Ann\n2,Bob\n2,Cy\n",
        }
    )
    out = Path(variables["OUTPUT_DIR"])
    out.mkdir()
    (out / "p.csv").write_text("id,name\n7,previous\n")
    graph = load_project(config).graphs["p"]
    with pytest.raises(TaskError) as caught:
        run_in_order(graph, variables, mode)
    assert str(caught.value) == (
        "config/p.yml:4, pipeline 'p', stage 'save' (#2): model 'person': frame 'P' breaks its"
        " constraints: column 'id' breaks 'primary' in 2 rows (e.g. id=2)"
    )
    # The check ran before the rename: the previous file is intact, no temporary file is left.
    assert sorted(p.name for p in out.iterdir()) == ["p.csv"]
    assert (out / "p.csv").read_text() == "id,name\n7,previous\n"


# --- a file that cannot be read is blamed on the stage that loaded it -----------------------

GOOD_CSV = b"a,b\n1,x\n2,y\n"
LATE_VALUE = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(150)) + b"1.5,y\n2,z\n"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            b"a,b\n1,x\n2,y,z\n3,w\n",
            "line 3 has 3 fields but the header has 2 (quote a field that holds a comma, or "
            "fix the row)",
        ),
        (
            b"a,b\n1,x\n2,\xff\xfe\n",
            "line 3 is not valid UTF-8 (save the file as UTF-8, or load it with encoding: "
            "utf8-lossy to read bad bytes as \ufffd)",
        ),
        (b"", "the file is empty (a CSV file needs at least its header line)"),
        (
            LATE_VALUE,
            "line 152: column 'a' holds '1.5', which does not parse as i64, the type inferred "
            "from the first 100 rows (give the file a model that says the column's type)",
        ),
        (
            LATE_VALUE.replace(b"1.5,y", b'"1,5",y'),
            "line 152: column 'a' holds '1,5', which does not parse as i64, the type inferred "
            "from the first 100 rows (give the file a model that says the column's type)",
        ),
    ],
    ids=["ragged", "utf8", "empty", "late-value", "late-quoted-value"],
)
@ALL_MODES
def test_a_bad_csv_is_blamed_on_its_load_and_file(
    write_config, tmp_path, variables, mode, content, reason
):
    """Lazy modes read the file only in the sink two stages later (after a transform), eager
    modes in the load: either way the load and the file are named, not the save; the failing
    file is the second of three loaded by one stage."""
    (tmp_path / "a.csv").write_bytes(GOOD_CSV)
    (tmp_path / "b.csv").write_bytes(content)
    (tmp_path / "c.csv").write_bytes(GOOD_CSV)
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: [{ filepath: a.csv, df_name: A }, "
                "{ filepath: b.csv, df_name: B }, { filepath: c.csv, df_name: C }] }",
                "{ label: pick, task: transform, args: { name: keep, input: B, save_df: K } }",
                "{ label: save, task: save_csv, args: [{ filepath: out/a.csv, df_name: A }, "
                "{ filepath: out/k.csv, df_name: K }, { filepath: out/c.csv, df_name: C }] }",
            ),
            "t.yml": "transform:\n  keep:\n    - select: { a: null, b: null }\n",
        }
    )
    graph = load_project(config).graphs["p"]
    with pytest.raises(TaskError) as info:
        run_in_order(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: {tmp_path / 'b.csv'}: {reason}"
    )
    assert not (tmp_path / "out" / "k.csv").exists()


@ALL_MODES
def test_a_failure_of_the_stage_itself_is_not_blamed_on_its_files(write_config, variables, mode):
    # The files read fine: the save's own model refuses a value, and the save says so.
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: $CONFIG_DIR/p.csv,"
                " df_name: P } }",
                "{ label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/p.csv, df_name: P,"
                " model: m } }",
            )
            + "model:\n  m:\n    v: date\n",
            "p.csv": "v\n2024-01-02\nsoon\n",
        }
    )
    graph = load_project(config).graphs["p"]
    with pytest.raises(ModelCastError) as info:
        run_in_order(graph, variables, mode)
    failed = "1 of 2 values" if not mode.is_lazy else "at least 1 value"  # eager: all counted
    assert str(info.value) == (
        "config/p.yml:4, pipeline 'p', stage 'save' (#2): model 'm', column 'v': cannot cast "
        f"value 'soon' to date ({failed} failed)"
    )


# --- destinations and sources that are not files ----------------------------------------------

SAVE_P = (
    "{ label: load, task: load_csv, args: { filepath: $CONFIG_DIR/p.csv, df_name: P } }",
    "{ label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/sub, df_name: P } }",
)


@ALL_MODES
def test_save_csv_to_a_directory_names_it_and_writes_nothing(write_config, variables, mode):
    config = write_config({"p.yml": pipeline(*SAVE_P), "p.csv": "id\n1\n"})
    sub = Path(variables["OUTPUT_DIR"]) / "sub"
    (sub / "kept").mkdir(parents=True)
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write {sub}: it is "
        "a directory (give filepath the file's name too)"
    )
    assert sorted(p.name for p in sub.parent.iterdir()) == ["sub"]
    assert [p.name for p in sub.iterdir()] == ["kept"]


@ALL_MODES
def test_save_csv_under_a_file_names_that_file(write_config, variables, mode):
    stages = (SAVE_P[0], SAVE_P[1].replace("$OUTPUT_DIR/sub", "$OUTPUT_DIR/sub/x/out.csv"))
    config = write_config({"p.yml": pipeline(*stages), "p.csv": "id\n1\n"})
    out = Path(variables["OUTPUT_DIR"])
    out.mkdir()
    (out / "sub").write_text("a file\n")
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables, mode)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write "
        f"{out / 'sub' / 'x' / 'out.csv'}: {out / 'sub'} is a file, not a directory (give a "
        "filepath in a directory)"
    )
    assert sorted(p.name for p in out.iterdir()) == ["sub"]


def test_save_csv_to_a_directory_it_may_not_write_names_that_directory(
    write_config, variables, monkeypatch
):
    def refuse(destination: Path) -> Path:  # tests run as root: the OS's refusal, simulated
        raise PermissionError(13, "Permission denied", str(destination.with_name(".t.capport-tmp")))

    monkeypatch.setattr(sinks, "_create_temporary", refuse)
    stages = (SAVE_P[0], SAVE_P[1].replace("$OUTPUT_DIR/sub", "$OUTPUT_DIR/out.csv"))
    config = write_config({"p.yml": pipeline(*stages), "p.csv": "id\n1\n"})
    out = Path(variables["OUTPUT_DIR"])
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables)
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write "
        f"{out / 'out.csv'}: directory {out} is not writable (choose another directory, or let "
        "capport's user write there)"
    )


@pytest.mark.parametrize("path", ["$OUTPUT_DIR/sub/", "out/.", "./", "sub/.."])
@pytest.mark.parametrize(
    ("task", "label", "line"), [("load_csv", "load", 3), ("save_csv", "save", 4)]
)
def test_a_filepath_naming_a_directory_is_a_config_error(write_config, path, task, label, line):
    stages = [
        "{ label: load, task: load_csv, args: { filepath: $CONFIG_DIR/p.csv, df_name: P } }",
        "{ label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/p.csv, df_name: P } }",
    ]
    stages[line - 3] = stages[line - 3].replace(
        "$CONFIG_DIR/p.csv" if task == "load_csv" else "$OUTPUT_DIR/p.csv", f"'{path}'"
    )
    config = write_config({"p.yml": pipeline(*stages)})
    assert errors(config) == [
        f"error: config/p.yml:{line}, pipeline 'p', stage '{label}' (#{line - 2}): task "
        f"'{task}': filepath '{path}' names a directory, not a file (add the file's name: "
        f"'{path.rstrip('/')}/name.csv')"
    ]


@pytest.mark.parametrize(("task", "label"), [("load_csv", "load"), ("save_csv", "save")])
def test_a_variable_that_makes_a_filepath_a_directory_fails_the_stage(
    write_config, variables, task, label
):
    # Only the run knows the value: the same rule, as a run error.
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: $CONFIG_DIR/p.csv, df_name: P"
                " } }",
                "{ label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/p.csv, df_name: P"
                " } }",
            ).replace("$CONFIG_DIR/p.csv" if task == "load_csv" else "$OUTPUT_DIR/p.csv", "$DEST"),
            "p.csv": "id\n1\n",
        }
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DEST", "somewhere")  # defined for validation; the run's value ends in '/'
        graph = load_project(config).graphs["p"]
    with pytest.raises(TaskError) as info:
        run_in_order(graph, {**variables, "DEST": "out/sub/"})
    line = 3 if task == "load_csv" else 4
    assert str(info.value) == (
        f"config/p.yml:{line}, pipeline 'p', stage '{label}' (#{line - 2}): {task}: filepath "
        "'$DEST' ('out/sub/') names a directory, not a file (add the file's name: "
        "'$DEST/name.csv')"
    )


def test_load_csv_of_a_directory_says_so(write_config, tmp_path, variables):
    (tmp_path / "data.csv").mkdir()
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: data.csv, df_name: P } }"
            )
        }
    )
    with pytest.raises(TaskError) as info:
        run_in_order(load_project(config).graphs["p"], variables)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: {tmp_path / 'data.csv'} is "
        "a directory, not a CSV file (give the file's path)"
    )


# --- save_csv of a frame CSV cannot hold ------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "said"),
    [
        (
            {"id": [1], "stats": [{"goals": 3, "team.name": "red"}]},
            "column 'stats' is a struct (fields: goals, team.name), and a CSV file holds no "
            "nested values: select its fields as columns of their own (stats.goals, "
            "stats.team\\.name), or join them into one text column with a select's 'format' or "
            "'concat' action",
        ),
        (
            {"id": [1], "tags": [["a", "b"]], "more": [[1]]},
            "column 'tags' (and 'more') is a list (List(String)), and a CSV file holds no nested "
            "values: drop it, or turn it into text in a task of your own",
        ),
    ],
    ids=["struct", "lists"],
)
@ALL_MODES
def test_save_csv_of_a_nested_column_names_it(write_config, variables, mode, columns, said):
    registry = DEFAULT_REGISTRY.copy()
    registry.task("make", reads=lambda a: [], writes=lambda a: ["N"])(
        lambda args, frames, ctx: {"N": pl.DataFrame(columns)}
    )
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: make, task: make }",
                "{ label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/n.csv, df_name: N"
                " } }",
            )
        }
    )
    graph = Project.from_config(load_config(config), registry).graphs["p"]
    with pytest.raises(TaskError) as info:
        run_in_order(graph, variables, mode)
    out = Path(variables["OUTPUT_DIR"])
    assert str(info.value) == (
        f"config/p.yml:4, pipeline 'p', stage 'save' (#2): save_csv: cannot write frame 'N' to "
        f"{out / 'n.csv'}: {said}"
    )
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("mode", [RunMode.SYNC_LAZY, RunMode.ASYNC_LAZY])
def test_a_file_removed_before_a_lazy_sink_reads_it_is_blamed_on_its_load(
    write_config, tmp_path, variables, mode
):
    registry = DEFAULT_REGISTRY.copy()

    @registry.task("remove", reads=lambda a: ["P"], writes=lambda a: ["Q"])
    def remove(args, frames, ctx):
        (tmp_path / "p.csv").unlink()
        return {"Q": frames["P"]}

    (tmp_path / "p.csv").write_text("id\n1\n")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: load, task: load_csv, args: { filepath: p.csv, df_name: P } }",
                "{ label: rm, task: remove }",
                "{ label: save, task: save_csv, args: { filepath: out.csv, df_name: Q } }",
            )
        }
    )
    graph = Project.from_config(load_config(config), registry).graphs["p"]
    with pytest.raises(TaskError) as info:
        run_in_order(graph, variables, mode)
    assert str(info.value) == (
        f"config/p.yml:3, pipeline 'p', stage 'load' (#1): load_csv: {tmp_path / 'p.csv'}: the "
        "file is gone: it was removed after this stage, and lazy modes read a file only when a "
        "later stage needs its data (keep it until the run ends)"
    )
