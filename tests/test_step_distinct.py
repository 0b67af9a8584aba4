"""The `distinct` step: repeated rows dropped, input order kept, `keep` first/last/none, in every
mode; its parse and check errors with their exact messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps import distinct
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import parse_errors, run_transform

LOC = Location(file="t.yml", section="transform", name="t")
GOALS = pl.DataFrame(
    {
        "team": ["X", "Y", "X", "X", None, "Y", None],
        "player": ["a", "b", "a", "c", "d", "b", "d"],
        "n": [1, 2, 3, 1, 5, 2, 5],
    }
)


def rows(*indexes: int) -> pl.DataFrame:
    return GOALS[list(indexes)]


def test_public_api() -> None:
    assert set(distinct.__all__) == {"KINDS", "DistinctStep"}


CASES = [
    pytest.param(True, rows(0, 1, 2, 3, 4), id="whole-rows"),
    pytest.param(False, rows(0, 1, 2, 3, 4, 5, 6), id="false-does-nothing"),
    pytest.param({}, rows(0, 1, 2, 3, 4), id="empty-mapping-is-whole-rows"),
    pytest.param({"subset": ["team"]}, rows(0, 1, 4), id="subset-keeps-first-null-is-a-value"),
    pytest.param({"subset": "team", "keep": "last"}, rows(3, 5, 6), id="keep-last"),
    pytest.param(
        {"subset": "team, player", "keep": "none"},
        rows(
            3,
        ),
        id="keep-none",
    ),
    pytest.param({"subset": ["player", "n"], "keep": "first"}, rows(0, 1, 2, 3, 4), id="two"),
]


@pytest.mark.parametrize("mode", list(RunMode))
@pytest.mark.parametrize(("args", "expected"), CASES)
def test_distinct_keeps_exactly_these_rows(
    tmp_path: Path, mode: RunMode, args: Any, expected: pl.DataFrame
) -> None:
    result = run_transform(tmp_path, [{"distinct": args}], {"G": GOALS}, mode)
    assert_frame_equal(result, expected)


@pytest.mark.parametrize("mode", list(RunMode))
def test_distinct_keeps_the_input_order_on_many_rows(tmp_path: Path, mode: RunMode) -> None:
    frame = pl.DataFrame({"k": [(i * 7919) % 1000 for i in range(30_000)], "i": range(30_000)})
    result = run_transform(tmp_path, [{"distinct": {"subset": "k"}}], {"F": frame}, mode)
    assert_frame_equal(result, frame.head(1000))


@pytest.mark.parametrize(
    ("args", "messages"),
    [
        (3, ["expected true, false or a mapping with subset and keep, got int 3"]),
        (
            {"keep": "any"},
            [
                "keep 'any' is not one of first, last, none (it picks any row of the repeats:"
                " not the same in every run)"
            ],
        ),
        (
            {"keep": "frist"},
            ["keep 'frist' is not one of first, last, none - did you mean 'first'?"],
        ),
        (
            {"subset": 3},
            [
                "subset must be a column name, a comma-separated string or a list of names,"
                " got int 3"
            ],
        ),
        (
            {"sub": ["a"], "keep": 1},
            [  # sorted, as ValidationError lists them
                "keep 1 is not one of first, last, none",
                "unknown key 'sub' - did you mean 'subset'? (distinct takes subset, keep)",
            ],
        ),
    ],
)
def test_parse_errors(args: Any, messages: list[str]) -> None:
    assert parse_errors({"distinct": args}) == [
        f"step 1 (distinct): {message}" for message in messages
    ]


def test_check_reports_each_unknown_subset_column() -> None:
    step = {"distinct": {"subset": ["tem", "player", "m"]}}
    with pytest.raises(TaskError) as info:
        parse_transform("t", [step], LOC).apply(GOALS.lazy(), {})
    assert info.value.message == (
        "transform 't', step 1 (distinct): subset: column 'tem' not found - did you mean"
        " 'team'? (columns: team, player, n); subset: column 'm' not found (columns: team,"
        " player, n)"
    )


@pytest.mark.parametrize("mode", list(RunMode))
def test_validate_finds_an_unknown_subset_column(tmp_path: Path, mode: RunMode) -> None:
    with pytest.raises(ValidationError) as info:
        run_transform(tmp_path, [{"distinct": {"subset": "playr"}}], {"G": GOALS}, mode)
    (error,) = info.value.errors
    assert str(error).split(", ", 1)[1] == (
        "transform 't' (used by pipeline 'p', stage 'apply' (#2)): step 1 (distinct): subset:"
        " column 'playr' not found - did you mean 'player'? (columns: team, player, n)"
    )
