"""The CSV options of `load_csv` and `save_csv` (core/files/csv_files.py), checked when the
config is validated and applied when it runs. The tasks' other behaviour: tests/test_tasks.py."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from tests.test_json_files import COLUMNS, EVERY_DTYPE
from tests.test_tasks import errors, final, pipeline, run_in_order

ALL_MODES = pytest.mark.parametrize("mode", list(RunMode))


@pytest.fixture
def variables(tmp_path: Path) -> dict[str, str]:
    return {"CONFIG_DIR": str(tmp_path / "config"), "OUTPUT_DIR": str(tmp_path / "out")}


def load(write_config, content: bytes, options: str, model: str = "") -> pl.DataFrame:
    config = write_config(
        {
            "p.yml": pipeline(
                f"{{ label: l, task: load_csv, args: {{ filepath: $CONFIG_DIR/p.csv, df_name: P"
                f"{options} }} }}"
            )
            + model
        }
    )
    (config / "p.csv").write_bytes(content)
    graph = load_project(config).graphs["p"]
    variables = {"CONFIG_DIR": str(config), "OUTPUT_DIR": str(config.parent / "out")}
    return final(graph, run_in_order(graph, variables), "P")


def test_separator_and_quote_char(write_config):
    frame = load(write_config, b"a;b\n1;'x;y'\n", ", separator: ';', quote_char: \"'\"")
    assert_frame_equal(frame, pl.DataFrame({"a": [1], "b": ["x;y"]}))


def test_quote_char_null_reads_quotes_as_text(write_config):
    frame = load(write_config, b'a,b\n1,"x"\n', ", quote_char: null")
    assert_frame_equal(frame, pl.DataFrame({"a": [1], "b": ['"x"']}))


def test_null_values_as_a_string_or_a_list(write_config):
    one = load(write_config, b"a,b\n1,NA\nNA,x\n", ", null_values: NA")
    assert_frame_equal(one, pl.DataFrame({"a": [1, None], "b": [None, "x"]}))
    many = load(write_config, b"a\n1\n-\nn/a\n", ", null_values: ['-', 'n/a']")
    # YAML's null is no text: quoted, NULL is the text.
    quoted = load(write_config, b"a\n1\nNULL\n", ", null_values: 'NULL'")
    assert_frame_equal(quoted, pl.DataFrame({"a": [1, None]}))
    assert_frame_equal(many, pl.DataFrame({"a": [1, None, None]}))


def test_no_header_names_columns_as_polars_does(write_config):
    frame = load(write_config, b"1,x\n2,y\n", ", has_header: false")
    assert_frame_equal(frame, pl.DataFrame({"column_1": [1, 2], "column_2": ["x", "y"]}))


def test_no_header_with_a_model_names_columns_by_the_model(write_config):
    model = "model:\n  m:\n    id: int8\n    name: str\n"
    frame = load(write_config, b"1,x\n2,y\n", ", has_header: false, model: m", model)
    assert_frame_equal(
        frame,
        pl.DataFrame({"id": [1, 2], "name": ["x", "y"]}, schema={"id": pl.Int8, "name": pl.String}),
    )


def test_utf8_lossy_reads_bad_bytes_as_the_replacement_character(write_config):
    frame = load(write_config, b"a\nx\xffy\n", ", encoding: utf8-lossy")
    assert_frame_equal(frame, pl.DataFrame({"a": ["x\ufffdy"]}))


@ALL_MODES
def test_save_csv_options(write_config, tmp_path, variables, mode):
    pl.DataFrame({"a": [1, None], "b": ["x;y", "z"]}).write_parquet(tmp_path / "p.parquet")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: p.parquet, df_name: P } }",
                "{ label: s, task: save_csv, args: [{ filepath: h.csv, df_name: P,"
                " separator: ';', null_value: 'NULL' }, { filepath: n.csv, df_name: P,"
                " include_header: false }] }",
            )
        }
    )
    run_in_order(load_project(config).graphs["p"], variables, mode)
    assert (tmp_path / "h.csv").read_text() == 'a;b\n1;"x;y"\nNULL;z\n'
    assert (tmp_path / "n.csv").read_text() == "1,x;y\n,z\n"


def test_csv_options_are_checked_when_validating(write_config):
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_csv, args: { filepath: a.csv, df_name: A,"
                " separator: ';;', quote_char: '', encoding: latin1, has_header: maybe } }",
                "{ label: s, task: save_csv, args: { filepath: b.csv, df_name: A,"
                " separator: 'é', null_values: x } }",
                "{ label: t, task: save_csv, args: { filepath: c.csv, df_name: A,"
                " null_value: NULL } }",
            )
        }
    )
    assert errors(config) == [
        "error: config/p.yml:3, pipeline 'p', stage 'l' (#1): malformed args for task "
        "'load_csv': separator: a separator must be one byte (a single ASCII character such as "
        "',' or ';'), got ';;'; has_header: input should be a valid boolean, unable to "
        "interpret input; encoding: input should be 'utf8' or 'utf8-lossy'; quote_char: a "
        "quote_char (null: no quoting) must be one byte (a single ASCII character such as ',' "
        "or ';'), got ''",
        "error: config/p.yml:4, pipeline 'p', stage 's' (#2): malformed args for task "
        "'save_csv': separator: a separator must be one byte (a single ASCII character such as "
        "',' or ';'), got 'é'; unknown key 'null_values' - did you mean 'null_value'? (keys: "
        "df_name, filepath, from_df, include_header, merge_type, mode, model, null_value, "
        "separator)",
        "error: config/p.yml:5, pipeline 'p', stage 't' (#3): malformed args for task "
        "'save_csv': null_value: YAML reads NULL, Null, null and ~ as no value: quote the text "
        "('NULL')",
    ]


@pytest.mark.parametrize("options", ["", ", separator: ';', null_value: 'NA'"])
@ALL_MODES
def test_every_flat_model_dtype_round_trips_exactly(
    write_config, tmp_path, variables, mode, options
):
    """Every model dtype but lists (a CSV file holds no nested values), with the default options
    and with others on both sides."""
    flat = [c for c, name in COLUMNS.items() if not name.startswith("list")]
    model = "model:\n  m:\n" + "".join(
        f"    {column}: {{ dtype: '{COLUMNS[column]}' }}\n" for column in flat
    )
    expected = EVERY_DTYPE.select(flat)
    expected.write_parquet(tmp_path / "src.parquet")
    load_options = options.replace("null_value", "null_values")
    config = write_config(
        {
            "p.yml": pipeline(
                "{ label: l, task: load_parquet, args: { filepath: src.parquet, df_name: A } }",
                f"{{ label: s, task: save_csv, args: {{ filepath: o.csv, df_name: A, model: m"
                f"{options} }} }}",
                f"{{ label: l2, task: load_csv, args: {{ filepath: o.csv, df_name: B, model: m"
                f"{load_options} }} }}",
            )
            + model
        }
    )
    graph = load_project(config).graphs["p"]
    assert_frame_equal(final(graph, run_in_order(graph, variables, mode), "B"), expected)
