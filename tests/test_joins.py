"""Join `left_prefix` / `right_prefix` (capport's): prefixed copies of every column of a side,
its own columns kept, added before the join. The other join behaviour: tests/test_transforms.py."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.joins import JoinStep, prefixed
from capport_dagster.core.modes import RunMode
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import ConfigError, Location, TaskError
from tests.conftest import run_transform

LOC = Location(file="t.yml", section="transform", name="t")
MODES = pytest.mark.parametrize("mode", list(RunMode))

LEFT = pl.DataFrame({"col": [1, 2], "data_2": ["a", "b"]})
RIGHT = pl.DataFrame({"col": [2, 3], "v": ["x", "y"]})


def join(tmp_path: Path, mode: RunMode, **args: object) -> pl.DataFrame:
    step = {"join": {"join": "RIGHT", **args}}
    return run_transform(tmp_path, [step], {"LEFT": LEFT, "RIGHT": RIGHT}, mode)


@MODES
def test_left_prefix_adds_prefixed_copies_and_keeps_the_columns_as_capport(
    tmp_path: Path, mode: RunMode
) -> None:
    """capport's example: `left_prefix: left_` on `col, data_2` gives `col, data_2, left_col,
    left_data_2`; a key may name the copy; left keys are coalesced (the right `col` goes)."""
    got = join(tmp_path, mode, left_on="left_col", right_on="col", how="left", left_prefix="left_")
    expected = pl.DataFrame(
        {
            "col": [1, 2],
            "data_2": ["a", "b"],
            "left_col": [1, 2],
            "left_data_2": ["a", "b"],
            "v": [None, "x"],
        }
    )
    assert_frame_equal(got, expected)


@MODES
def test_right_prefix_copies_stay_beside_the_right_columns_and_suffixes_still_apply(
    tmp_path: Path, mode: RunMode
) -> None:
    got = join(tmp_path, mode, left_on="col", right_on="r_col", how="inner", right_prefix="r_")
    expected = pl.DataFrame(
        {"col": [2], "data_2": ["b"], "col_right": [2], "v": ["x"], "r_v": ["x"]}
    )
    assert_frame_equal(got, expected)


@MODES
def test_a_full_join_with_both_prefixes_keeps_both_keys(tmp_path: Path, mode: RunMode) -> None:
    got = join(
        tmp_path,
        mode,
        left_on="l_col",
        right_on="r_col",
        how="full",
        left_prefix="l_",
        right_prefix="r_",
    )
    expected = pl.DataFrame(
        {
            "col": [1, 2, None],
            "data_2": ["a", "b", None],
            "l_col": [1, 2, None],
            "l_data_2": ["a", "b", None],
            "col_right": [None, 2, 3],
            "v": [None, "x", "y"],
            "r_col": [None, 2, 3],
            "r_v": [None, "x", "y"],
        }
    )
    assert_frame_equal(got, expected)


@MODES
def test_the_right_prefix_applies_after_right_select(tmp_path: Path, mode: RunMode) -> None:
    got = join(
        tmp_path,
        mode,
        left_on="col",
        right_on="r_k",
        how="left",
        right_select={"k": "col"},
        right_prefix="r_",
    )
    expected = pl.DataFrame({"col": [1, 2], "data_2": ["a", "b"], "k": [None, 2]})
    assert_frame_equal(got, expected)


@MODES
def test_a_cross_join_with_a_prefix(tmp_path: Path, mode: RunMode) -> None:
    got = join(tmp_path, mode, how="cross", right_prefix="r_")
    expected = pl.DataFrame(
        {
            "col": [1, 1, 2, 2],
            "data_2": ["a", "a", "b", "b"],
            "col_right": [2, 3, 2, 3],
            "v": ["x", "y", "x", "y"],
            "r_col": [2, 3, 2, 3],
            "r_v": ["x", "y", "x", "y"],
        }
    )
    assert_frame_equal(got, expected)


def test_parsed_prefixes() -> None:
    step = {"join": "R", "left_on": "a", "right_on": "b", "how": "left", "left_prefix": "l_"}
    transform = parse_transform("t", [{"join": step}], LOC)
    assert transform.steps == (JoinStep("R", "left", ("a",), ("b",), None, "l_", ""),)


def test_prefixed() -> None:
    schema = {"a": pl.Int64, "b": None}
    assert prefixed(schema, "p_") == {"a": pl.Int64, "b": None, "p_a": pl.Int64, "p_b": None}
    assert prefixed(schema, "") == schema


# -- errors --------------------------------------------------------------------------------------

KEYS = {"join": "R", "left_on": "id", "right_on": "id", "how": "left"}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"left_prefix": ""},
            "left_prefix must be a non-empty text: a copy of each left column is added under it"
            " (e.g. left_prefix: left_), got an empty string",
        ),
        (
            {"right_prefix": 3},
            "right_prefix must be a non-empty text: a copy of each right column is added under"
            " it (e.g. right_prefix: right_), got int 3",
        ),
        (
            {"leftprefix": "l_"},
            "unknown key 'leftprefix' - did you mean 'left_prefix'? (a join takes join, right,"
            " right_select, left_on, right_on, how, left_prefix, right_prefix)",
        ),
    ],
)
def test_parse_errors(extra: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_transform("t", [{"join": {**KEYS, **extra}}], LOC)
    assert info.value.message == f"step 1 (join): {message}"


@pytest.mark.parametrize(
    ("extra", "left", "right", "message"),
    [
        (
            {"left_prefix": "l_", "right_prefix": "r_"},
            {"id": [1], "l_id": [5]},
            {"id": [1], "r_id": [2]},
            "left_prefix 'l_' makes 'l_id', a column the left frame already has: choose another"
            " prefix, or rename the column first; right_prefix 'r_' makes 'r_id', a column frame"
            " 'R' already has: choose another prefix, or rename the column first",
        ),
        (
            {"left_on": "l_idd", "right_on": "r_id", "left_prefix": "l_", "right_prefix": "r_"},
            {"id": [1]},
            {"id": [1]},
            "left_on column 'l_idd' not found in the left frame - did you mean 'l_id'?"
            " (columns: id, l_id)",
        ),
        (
            {"right_select": {"k": "id"}, "right_on": "r_id", "right_prefix": "r_"},
            {"id": [1]},
            {"id": [1]},
            "right_on column 'r_id' not found in frame 'R' (after right_select) (columns: k, r_k)",
        ),
        (
            {"left_on": "l_id", "right_on": "r_id", "left_prefix": "l_", "right_prefix": "r_"},
            {"id": [1]},
            {"id": ["1"]},
            "join keys of different types (left_on 'l_id' is Int64 but right_on 'r_id' is"
            " String): give both sides the same dtype, with a model where the frames are loaded",
        ),
    ],
)
def test_check_errors(extra: dict, left: dict, right: dict, message: str) -> None:
    transform = parse_transform("t", [{"join": {**KEYS, **extra}}], LOC)
    with pytest.raises(TaskError) as info:
        transform.apply(pl.LazyFrame(left), {"R": pl.LazyFrame(right)})
    assert info.value.message == f"transform 't', step 1 (join): {message}"


def test_a_transform_whose_columns_are_known_validates_a_prefixed_join() -> None:
    join = {
        **KEYS,
        "left_on": "l_id",
        "right_on": "r_k",
        "left_prefix": "l_",
        "right_prefix": "r_",
        "right_select": {"k": "id", "t": "title"},
    }
    body = [{"select": {"id": None}}, {"join": join}, {"select": {"x": "r_t", "y": "l_id"}}]
    transform = parse_transform("t", body, LOC)
    got = transform.apply(
        pl.LazyFrame({"id": [1, 2]}), {"R": pl.LazyFrame({"id": [2], "title": ["T"]})}
    )
    assert_frame_equal(got.collect(), pl.DataFrame({"x": [None, "T"], "y": [1, 2]}))
