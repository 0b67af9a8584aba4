"""The `fill_null` step: literals, other columns and expressions fill each null in place, with
Polars' dtypes, in every mode; its parse and check errors with their exact messages."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps import fill_null
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import parse_errors, run_transform

LOC = Location(file="t.yml", section="transform", name="t")
DAY = datetime.date(2024, 1, 1)
FRAME = pl.DataFrame(
    {
        "name": ["a", None, "c"],
        "nick": ["A", "B", None],
        "goals": [1, None, None],
        "xg": [None, 0.5, None],
        "home": [None, True, False],
        "day": [DAY, None, DAY],
    }
)
COLUMNS = "name, nick, goals, xg, home, day"


def test_public_api() -> None:
    assert set(fill_null.__all__) == {"KINDS", "Fill", "FillNullStep"}


def replaced(**columns: list[Any]) -> pl.DataFrame:
    """FRAME with these columns' values replaced (same places, dtypes inferred)."""
    return FRAME.with_columns(pl.Series(name, values) for name, values in columns.items())


CASES = [
    pytest.param({"goals": 0}, replaced(goals=[1, 0, 0]), id="number"),
    pytest.param(
        {"name": "unknown"}, replaced(name=["a", "unknown", "c"]), id="plain-string-is-literal"
    ),
    pytest.param({"name": {"col": "nick"}}, replaced(name=["a", "B", "c"]), id="other-column"),
    pytest.param(
        {"nick": {"col": "name"}, "name": {"col": "nick"}},
        replaced(nick=["A", "B", "c"], name=["a", "B", "c"]),
        id="every-fill-reads-the-input",
    ),
    pytest.param({"xg": 0}, replaced(xg=[0.0, 0.5, 0.0]), id="int-into-float-stays-float"),
    pytest.param({"goals": 0.5}, replaced(goals=[1.0, 0.5, 0.5]), id="float-into-int-is-float"),
    pytest.param({"home": False}, replaced(home=[False, True, False]), id="bool"),
    pytest.param(
        {"day": {"date": "2024-02-01"}},
        replaced(day=[DAY, datetime.date(2024, 2, 1), DAY]),
        id="typed-literal",
    ),
    pytest.param(
        {"goals": {"sql": "CAST(home AS INT) * 10"}}, replaced(goals=[1, 10, 0]), id="sql"
    ),
    pytest.param({"name": "^gone$"}, replaced(name=["a", "^gone$", "c"]), id="string-is-a-literal"),
]


@pytest.mark.parametrize("mode", list(RunMode))
@pytest.mark.parametrize(("args", "expected"), CASES)
def test_fill_null_gives_exactly_this_frame(
    tmp_path: Path, mode: RunMode, args: dict[str, Any], expected: pl.DataFrame
) -> None:
    result = run_transform(tmp_path, [{"fill_null": args}], {"F": FRAME}, mode)
    assert_frame_equal(result, expected)


@pytest.mark.parametrize(
    ("args", "messages"),
    [
        ({}, ["expected a mapping of column -> value, got an empty mapping"]),
        (3, ["expected a mapping of column -> value, got int 3"]),
        (
            {"goals": None, "name": {"col": "a..b"}},
            [
                "column 'goals': filling nulls with null changes nothing; give a value",
                "column 'name': column path 'a..b' has an empty part",
            ],
        ),
    ],
)
def test_parse_errors(args: Any, messages: list[str]) -> None:
    assert parse_errors({"fill_null": args}) == [f"step 1 (fill_null): {m}" for m in messages]


def test_a_value_that_is_not_an_expression_is_a_parse_error() -> None:
    (message,) = parse_errors({"fill_null": {"goals": [1]}})
    assert message.startswith("step 1 (fill_null): column 'goals': a list is not an expression")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"gaols": 0}, f"column 'gaols' not found - did you mean 'goals'? (columns: {COLUMNS})"),
        (
            {"goals": "x"},
            "column 'goals' is Int64 and cannot be filled with 'x' (String): give a value of the"
            " column's type",
        ),
        (
            {"name": 0},
            "column 'name' is String and cannot be filled with 0 (Int32): give a value of the"
            " column's type",
        ),
        (
            {"name": {"col": "goals"}},
            "column 'name' is String and cannot be filled with column 'goals' (Int64): give a"
            " value of the column's type",
        ),
        (
            {"day": "2024-01-01"},
            "column 'day' is Date and cannot be filled with '2024-01-01' (String): give a value"
            " of the column's type",
        ),
        (
            {"name": {"col": "nik"}},
            f"column 'name': column 'nik' not found - did you mean 'nick'? (columns: {COLUMNS})",
        ),
    ],
)
def test_check_errors(args: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError) as info:
        parse_transform("t", [{"fill_null": args}], LOC).apply(FRAME.lazy(), {})
    assert info.value.message == f"transform 't', step 1 (fill_null): {message}"


@pytest.mark.parametrize("mode", list(RunMode))
def test_validate_finds_a_value_of_another_type(tmp_path: Path, mode: RunMode) -> None:
    with pytest.raises(ValidationError) as info:
        run_transform(tmp_path, [{"fill_null": {"goals": "none"}}], {"F": FRAME}, mode)
    (error,) = info.value.errors
    assert str(error).split(", ", 1)[1] == (
        "transform 't' (used by pipeline 'p', stage 'apply' (#2)): step 1 (fill_null): column"
        " 'goals' is Int64 and cannot be filled with 'none' (String): give a value of the"
        " column's type"
    )
