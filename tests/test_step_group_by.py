"""The `group_by` step: one row per group in the order groups first appear, Polars' functions
and null handling, in every mode; its parse and check errors with their exact messages."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps import group_by
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import parse_errors, run_transform

LOC = Location(file="t.yml", section="transform", name="t")
DAY = datetime.date(2024, 1, 1)
EVENTS = pl.DataFrame(
    {
        "team": ["X", "Y", "X", None, "Y", "X"],
        "player": ["a", "b", "a", "d", "b", "c"],
        "goals": [1, 2, None, 4, 0, 3],
        "xg": [0.5, 1.0, 0.25, None, 0.5, 1.5],
        "home": [True, False, True, None, True, False],
        "day": [DAY, DAY, DAY + datetime.timedelta(days=2), DAY, DAY, DAY],
        "info": [{"league": "N"}, {"league": "S"}, {"league": "N"}] * 2,
        "tags": [["p"], [], None, ["q", "r"], ["p"], []],
    }
)
COLUMNS = "team, player, goals, xg, home, day, info, tags"
FUNCTIONS = "sum, mean, min, max, count, n_unique, first, last, list"


def test_public_api() -> None:
    assert set(group_by.__all__) == {"FUNCTIONS", "KINDS", "Aggregation", "GroupByStep"}
    assert ", ".join(group_by.FUNCTIONS) == FUNCTIONS


EVERY_FUNCTION = {
    "total": {"sum": "goals"},
    "avg": {"mean": "goals"},
    "lo": {"min": "goals"},
    "hi": {"max": "goals"},
    "n": {"count": "goals"},
    "players": {"n_unique": "player"},
    "first": {"first": "goals"},
    "last": {"last": "goals"},
    "all": {"list": "goals"},
}
U32 = pl.UInt32

CASES = [
    pytest.param(
        {"by": ["team"], "agg": EVERY_FUNCTION},
        pl.DataFrame(
            {
                "team": ["X", "Y", None],
                "total": [4, 2, 4],
                "avg": [2.0, 1.0, 4.0],
                "lo": [1, 0, 4],
                "hi": [3, 2, 4],
                "n": pl.Series([2, 2, 1], dtype=U32),
                "players": pl.Series([2, 1, 1], dtype=U32),
                "first": [1, 2, 4],
                "last": [3, 0, 4],
                "all": [[1, None, 3], [2, 0], [4]],
            }
        ),
        id="every-function-groups-in-first-seen-order",
    ),
    pytest.param(
        {"by": "team, player", "agg": {"goals": {"sum": "goals"}}},
        pl.DataFrame(
            {"team": ["X", "Y", None, "X"], "player": ["a", "b", "d", "c"], "goals": [1, 2, 4, 3]}
        ),
        id="two-keys",
    ),
    pytest.param(
        {"by": "team", "agg": {"xg": {"sum": "xg"}, "mean": {"mean": "xg"}}},
        pl.DataFrame(
            {"team": ["X", "Y", None], "xg": [2.25, 1.5, 0.0], "mean": [0.75, 0.75, None]}
        ),
        id="only-nulls-sum-to-zero-mean-null",
    ),
    pytest.param(
        {"by": "info.league", "agg": {"n": {"count": "player"}}},
        pl.DataFrame({"league": ["N", "S"], "n": pl.Series([4, 2], dtype=U32)}),
        id="struct-path-key-named-by-its-field",
    ),
    pytest.param(
        {"by": "team", "agg": {"home": {"sum": "home"}, "share": {"mean": "home"}}},
        pl.DataFrame(
            {
                "team": ["X", "Y", None],
                "home": pl.Series([2, 1, 0], dtype=U32),
                "share": [2 / 3, 0.5, None],
            }
        ),
        id="booleans-sum-and-mean",
    ),
    pytest.param(
        {"by": "player", "agg": {"last": {"max": "day"}, "tags": {"first": "tags"}}},
        pl.DataFrame(
            {
                "player": ["a", "b", "d", "c"],
                "last": [DAY + datetime.timedelta(days=2), DAY, DAY, DAY],
                "tags": [["p"], [], ["q", "r"], []],
            }
        ),
        id="dates-and-lists",
    ),
    pytest.param(
        {"by": "team", "agg": {"double": {"sum": {"sql": "goals * 2"}}}},
        pl.DataFrame({"team": ["X", "Y", None], "double": [8, 4, 8]}),
        id="sql-expression",
    ),
    pytest.param(
        {"by": "^gone$", "agg": {"n": {"count": "player"}}},
        pl.DataFrame({"gone": [None], "n": pl.Series([6], dtype=U32)}),
        id="optional-key-missing-is-one-null-group",
    ),
]


@pytest.mark.parametrize("mode", list(RunMode))
@pytest.mark.parametrize(("args", "expected"), CASES)
def test_group_by_gives_exactly_this_frame(
    tmp_path: Path, mode: RunMode, args: dict[str, Any], expected: pl.DataFrame
) -> None:
    result = run_transform(tmp_path, [{"group_by": args}], {"E": EVENTS}, mode)
    assert_frame_equal(result, expected)


@pytest.mark.parametrize("mode", list(RunMode))
def test_groups_keep_their_first_seen_order_on_many_rows(tmp_path: Path, mode: RunMode) -> None:
    frame = pl.DataFrame({"k": [(i * 7919) % 5000 for i in range(40_000)], "v": [1] * 40_000})
    result = run_transform(
        tmp_path, [{"group_by": {"by": "k", "agg": {"n": {"sum": "v"}}}}], {"F": frame}, mode
    )
    expected = pl.DataFrame({"k": [(i * 7919) % 5000 for i in range(5000)], "n": [8] * 5000})
    assert_frame_equal(result, expected)


# -- errors --------------------------------------------------------------------------------------


NUMBER_HELP = "quote it ('3') if it names a column, or write a typed literal such as {int64: 3}"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            3,
            "expected a mapping with by (the key columns) and agg ({alias: {function: column}}),"
            " got int 3",
        ),
        ({"agg": {"n": {"count": "player"}}}, "by is required (a list of columns)"),
        (
            {"by": "team"},
            f"agg is required: a mapping of alias -> {{function: column}} ({FUNCTIONS}), got null"
            " (for the distinct keys alone, use distinct)",
        ),
        (
            {"by": "team", "agg": {}},
            f"agg is required: a mapping of alias -> {{function: column}} ({FUNCTIONS}), got an"
            " empty mapping (for the distinct keys alone, use distinct)",
        ),
        (
            {"by": "team", "agg": {"n": "player"}},
            "agg 'n': expected one {function: column}, e.g. {count: player}, got str 'player'"
            f" (functions: {FUNCTIONS})",
        ),
        (
            {"by": "team", "agg": {"n": {"count": "player", "sum": "goals"}}},
            "agg 'n': expected one {function: column}, e.g. {sum: price}, got 2 keys"
            f" (functions: {FUNCTIONS})",
        ),
        (
            {"by": "team", "agg": {"n": {"avg": "goals"}}},
            f"agg 'n': unknown function 'avg' - did you mean 'mean'? (functions: {FUNCTIONS})",
        ),
        (
            {"by": "team", "agg": {"n": {"summ": "goals"}}},
            f"agg 'n': unknown function 'summ' - did you mean 'sum'? (functions: {FUNCTIONS})",
        ),
        (
            {"by": "team", "agg": {"team": {"sum": "goals"}}},
            "agg 'team': 'team' is also a group_by key; give the aggregation another name",
        ),
        (
            {"by": ["info.league", "other.league"], "agg": {"n": {"sum": "goals"}}},
            "by: 2 keys are named 'league'; a group_by key is named by its path's last part, so"
            " give one of them another name in a select first",
        ),
        (
            {"by": "team", "agg": {"n": {"sum": 3}}},
            f"agg 'n' (sum): int 3 is not a column path: {NUMBER_HELP}",
        ),
        (
            {"by": "team", "having": 1, "agg": {"n": {"sum": "goals"}}},
            "unknown key 'having' (group_by takes by, agg)",
        ),
        (
            {"by": "a..b", "agg": {"n": {"sum": "goals"}}},
            "by: column path 'a..b' has an empty part",
        ),
    ],
)
def test_parse_errors(args: Any, message: str) -> None:
    assert parse_errors({"group_by": args}) == [f"step 1 (group_by): {message}"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            {"by": "teem", "agg": {"n": {"sum": "gaols"}}},
            f"by: column 'teem' not found - did you mean 'team'? (columns: {COLUMNS}); agg 'n':"
            f" column 'gaols' not found - did you mean 'goals'? (columns: {COLUMNS})",
        ),
        (
            {"by": "team", "agg": {"n": {"sum": "player"}, "m": {"mean": "player"}}},
            "agg 'n': sum needs a numeric column, but 'player' is String; agg 'm': mean needs a"
            " numeric or temporal column, but 'player' is String",
        ),
        (
            {"by": "team", "agg": {"n": {"sum": "day"}}},
            "agg 'n': sum needs a numeric column, but 'day' is Date",
        ),
        (
            {"by": "team", "agg": {"n": {"max": "tags"}}},
            "agg 'n': max needs a column whose values are ordered (numbers, text, booleans,"
            " dates, times, durations), but 'tags' is List(String)",
        ),
        (
            {"by": "team", "agg": {"n": {"min": "info"}}},
            "agg 'n': min needs a column whose values are ordered (numbers, text, booleans,"
            " dates, times, durations), but 'info' is Struct({'league': String})",
        ),
    ],
)
def test_check_errors(args: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError) as info:
        parse_transform("t", [{"group_by": args}], LOC).apply(EVENTS.lazy(), {})
    assert info.value.message == f"transform 't', step 1 (group_by): {message}"


@pytest.mark.parametrize("mode", list(RunMode))
def test_validate_finds_a_sum_of_text(tmp_path: Path, mode: RunMode) -> None:
    step = {"group_by": {"by": "team", "agg": {"n": {"sum": "player"}}}}
    with pytest.raises(ValidationError) as info:
        run_transform(tmp_path, [step], {"E": EVENTS}, mode)
    (error,) = info.value.errors
    assert str(error).split(", ", 1)[1] == (
        "transform 't' (used by pipeline 'p', stage 'apply' (#2)): step 1 (group_by): agg 'n':"
        " sum needs a numeric column, but 'player' is String"
    )
