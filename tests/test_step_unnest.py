"""The `unnest_list`, `unnest_struct` and `unnest_list_of_struct` step (capport's, one step)."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps.unnest import UnnestStep
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import ConfigError, Location, TaskError
from tests.conftest import run_transform

LOC = Location(file="t.yml", section="transform", name="t")
MODES = pytest.mark.parametrize("mode", list(RunMode))


def parse_error(steps: list) -> str:
    with pytest.raises(ConfigError) as info:
        parse_transform("t", steps, LOC)
    return info.value.message


def check_error(steps: list, frame: pl.LazyFrame) -> str:
    with pytest.raises(TaskError) as info:
        parse_transform("t", steps, LOC).apply(frame, {})
    return info.value.message


PLAYER = pl.Struct({"first": pl.String, "age": pl.Int64})
GOAL = pl.Struct({"min": pl.Int64, "by": pl.String})


@MODES
def test_unnest_list_gives_a_row_per_element_and_a_null_row_for_an_empty_or_null_list(
    tmp_path: Any, mode: RunMode
) -> None:
    frame = pl.DataFrame({"id": [1, 2, 3, 4], "tags": [["a", "b"], [], None, ["c"]], "n": [9] * 4})
    got = run_transform(tmp_path, [{"unnest_list": "tags"}], {"A": frame}, mode)
    expected = pl.DataFrame(
        {"id": [1, 1, 2, 3, 4], "tags": ["a", "b", None, None, "c"], "n": [9] * 5}
    )
    assert_frame_equal(got, expected)


@MODES
def test_unnest_struct_puts_the_fields_where_the_column_was_and_a_null_struct_gives_nulls(
    tmp_path: Any, mode: RunMode
) -> None:
    players = [{"first": "Ann", "age": 30}, None, {"first": None, "age": 5}]
    frame = pl.DataFrame(
        {"id": [1, 2, 3], "player": players, "after": ["x", "y", "z"]},
        schema={"id": pl.Int64, "player": PLAYER, "after": pl.String},
    )
    got = run_transform(tmp_path, [{"unnest_struct": "player"}], {"A": frame}, mode)
    expected = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "first": ["Ann", None, None],
            "age": [30, None, 5],
            "after": ["x", "y", "z"],
        }
    )
    assert_frame_equal(got, expected)


@MODES
def test_unnest_list_of_struct_explodes_then_unnests(tmp_path: Any, mode: RunMode) -> None:
    goals = [
        [{"min": 1, "by": "x"}],
        [],
        None,
        [{"min": 2, "by": "y"}, {"min": 3, "by": None}, None],
    ]
    frame = pl.DataFrame(
        {"id": [1, 2, 3, 4], "goals": goals}, schema={"id": pl.Int64, "goals": pl.List(GOAL)}
    )
    got = run_transform(tmp_path, [{"unnest_list_of_struct": ["goals"]}], {"A": frame}, mode)
    expected = pl.DataFrame(
        {
            "id": [1, 2, 3, 4, 4, 4],
            "min": [1, None, None, 2, 3, None],
            "by": ["x", None, None, "y", None, None],
        }
    )
    assert_frame_equal(got, expected)


@MODES
def test_one_step_runs_list_then_struct_then_list_of_struct_whatever_the_yaml_order(
    tmp_path: Any, mode: RunMode
) -> None:
    frame = pl.DataFrame(
        {
            "id": [1, 2],
            "tags": [["a", "b"], None],
            "player": [{"first": "Ann", "age": 30}, None],
            "goals": [[{"min": 1, "by": "x"}, {"min": 2, "by": "y"}], []],
        },
        schema={
            "id": pl.Int64,
            "tags": pl.List(pl.String),
            "player": PLAYER,
            "goals": pl.List(GOAL),
        },
    )
    step = {"unnest_list_of_struct": "goals", "unnest_struct": "player", "unnest_list": "tags"}
    got = run_transform(tmp_path, [step], {"A": frame}, mode)
    # tags exploded first: each tag's row then gets every goal (goals first would interleave)
    expected = pl.DataFrame(
        {
            "id": [1, 1, 1, 1, 2],
            "tags": ["a", "a", "b", "b", None],
            "first": ["Ann", "Ann", "Ann", "Ann", None],
            "age": [30, 30, 30, 30, None],
            "min": [1, 2, 1, 2, None],
            "by": ["x", "y", "x", "y", None],
        }
    )
    assert_frame_equal(got, expected)


@MODES
def test_several_columns_in_one_key_explode_together(tmp_path: Any, mode: RunMode) -> None:
    frame = pl.DataFrame({"a": [[1, 2], [3]], "b": [["x", "y"], ["z"]]})
    got = run_transform(tmp_path, [{"unnest_list": "a, b"}], {"A": frame}, mode)
    assert_frame_equal(got, pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]}))


def test_a_column_named_with_a_dot_is_written_escaped() -> None:
    transform = parse_transform("t", [{"unnest_struct": "stats\\.goals"}], LOC)
    assert transform.steps == (UnnestStep(unnest_struct=("stats.goals",)),)
    frame = pl.LazyFrame({"stats.goals": [{"home": 1}]})
    assert_frame_equal(transform.apply(frame, {}).collect(), pl.DataFrame({"home": [1]}))


# -- errors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"unnest_list": 3},
            "step 1 (unnest): unnest_list: expected a column name or a list of them, got int 3",
        ),
        (
            {"unnest_struct": ""},
            "step 1 (unnest): unnest_struct: expected a column name or a list of them, got an"
            " empty string",
        ),
        (
            {"unnest_list": []},
            "step 1 (unnest): unnest_list: expected a column name or a list of them, got an"
            " empty list",
        ),
        (
            {"unnest_list_of_struct": "a.b"},
            "step 1 (unnest): unnest_list_of_struct: 'a.b' is a path into struct 'a'; unnest"
            " takes a column (unnest the struct first, then its field, or escape a dot that is"
            " part of the name: \\.)",
        ),
        (
            {"unnest_list": "a\\q"},
            "step 1 (unnest): unnest_list: column path 'a\\q': '\\q' at character 2: a backslash"
            " escapes a dot (\\.) or a backslash (\\\\) in a column name",
        ),
        (
            {"unnest_struct": ["a", "a"]},
            "step 1 (unnest): unnest_struct: a column is listed twice",
        ),
    ],
)
def test_parse_errors(step: dict, message: str) -> None:
    assert parse_error([step]) == message


FRAME = pl.LazyFrame(
    {"id": [1], "l": [[1]], "s": [{"x": 1, "id": 2}], "los": [[{"p": 1}]]},
)
COLUMNS = "(columns: id, l, s, los)"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"unnest_list": "ll"},
            f"unnest_list: column 'll' not found - did you mean 'l'? {COLUMNS}",
        ),
        (
            {"unnest_list": "s"},
            "unnest_list: column 's' is Struct({'x': Int64, 'id': Int64}), not a list",
        ),
        ({"unnest_struct": "l"}, "unnest_struct: column 'l' is List(Int64), not a struct"),
        (
            {"unnest_list_of_struct": "l"},
            "unnest_list_of_struct: column 'l' is List(Int64), not a list of structs",
        ),
        (
            {"unnest_list_of_struct": "s"},
            "unnest_list_of_struct: column 's' is Struct({'x': Int64, 'id': Int64}), not a list"
            " of structs",
        ),
        (
            {"unnest_struct": "s"},
            "unnest_struct: field 'id' of column 's' would replace the column 'id' the frame"
            " has: rename or drop one of them first",
        ),
        # each key sees the columns the keys before it leave: l holds its elements
        (
            {"unnest_list": "l", "unnest_struct": "l"},
            "unnest_struct: column 'l' is Int64, not a struct",
        ),
        # and s is gone, its fields there
        (
            {"unnest_struct": "los", "unnest_list_of_struct": "s"},
            "unnest_struct: column 'los' is List(Struct({'p': Int64})), not a struct;"
            " unnest_list_of_struct: column 's' is Struct({'x': Int64, 'id': Int64}), not a list"
            " of structs",
        ),
    ],
)
def test_check_errors(step: dict, message: str) -> None:
    assert check_error([step], FRAME) == f"transform 't', step 1 (unnest): {message}"


def test_a_struct_unnested_before_is_gone_for_the_next_key() -> None:
    frame = pl.LazyFrame({"s": [{"x": [{"p": 1}]}]})
    step = {"unnest_struct": "s", "unnest_list_of_struct": "s"}
    assert check_error([step], frame) == (
        "transform 't', step 1 (unnest): unnest_list_of_struct: column 's' not found (columns: x)"
    )
    ok = parse_transform("t", [{"unnest_struct": "s", "unnest_list_of_struct": "x"}], LOC)
    assert_frame_equal(ok.apply(frame, {}).collect(), pl.DataFrame({"p": [1]}))
