"""The `sort`, `limit`, `head` and `tail` steps: exact row orders in every mode (a stable sort,
nulls first unless asked), and every parse and check error with its exact message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps import ordering
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import parse_errors, run_transform

LOC = Location(file="t.yml", section="transform", name="t")
PLAYERS = pl.DataFrame(
    {
        "name": ["a", "b", "c", "d", "e", "f"],
        "team": ["X", "Y", "X", None, "Y", "X"],
        "age": [30, None, 20, 25, 30, 20],
        "home": [{"city": "Oslo"}, {"city": "Rome"}, {"city": "Bern"}] * 2,
    }
)
COLUMNS = "name, team, age, home"


def named(*names: str) -> pl.DataFrame:
    """The input's rows of these names, in this order."""
    return PLAYERS[["abcdef".index(name) for name in names]]


def test_public_api() -> None:
    assert set(ordering.__all__) == {"KINDS", "HeadStep", "LimitStep", "SortStep", "TailStep"}


# -- running -------------------------------------------------------------------------------------

CASES = [
    pytest.param([{"sort": "age"}], named("b", "c", "f", "d", "a", "e"), id="one-key-nulls-first"),
    pytest.param(
        [{"sort": [{"age": "desc"}]}], named("b", "a", "e", "d", "c", "f"), id="desc-stable"
    ),
    pytest.param(
        [{"sort": {"by": [{"age": "DESC"}], "nulls_last": True}}],
        named("a", "e", "d", "c", "f", "b"),
        id="nulls-last",
    ),
    pytest.param(
        [{"sort": ["team", {"age": "desc"}]}],
        named("d", "a", "c", "f", "b", "e"),
        id="two-keys",
    ),
    pytest.param(
        [{"sort": {"by": ["team", "age"], "descending": True, "nulls_last": True}}],
        named("e", "b", "a", "c", "f", "d"),
        id="descending-default",
    ),
    pytest.param(
        [{"sort": {"by": ["team", {"age": "asc"}], "descending": True}}],
        named("d", "b", "e", "c", "f", "a"),
        id="own-direction-beats-default",
    ),
    pytest.param(
        [{"sort": [{"sql": "age * -1"}]}], named("b", "a", "e", "d", "c", "f"), id="sql-key"
    ),
    pytest.param(
        [{"sort": [{"home.city": "asc"}]}], named("c", "f", "a", "d", "b", "e"), id="struct-path"
    ),
    pytest.param([{"sort": "^gone$"}], named(*"abcdef"), id="optional-missing-keeps-order"),
    pytest.param([{"limit": 2}], named("a", "b"), id="limit"),
    pytest.param([{"limit": "3"}], named("a", "b", "c"), id="limit-digits"),
    pytest.param([{"limit": 10}], named(*"abcdef"), id="limit-more-than-rows"),
    pytest.param([{"head": 0}], named(), id="head-zero"),
    pytest.param([{"head": 1}], named("a"), id="head"),
    pytest.param([{"tail": 2}], named("e", "f"), id="tail"),
    pytest.param([{"sort": "age"}, {"tail": 2}], named("a", "e"), id="sort-then-tail"),
    pytest.param(
        [{"sort": {"by": {"age": "desc"}, "nulls_last": True}}, {"limit": 3}],
        named("a", "e", "d"),
        id="top-3",
    ),
]


@pytest.mark.parametrize("mode", list(RunMode))
@pytest.mark.parametrize(("steps", "expected"), CASES)
def test_rows_come_in_exactly_this_order(
    tmp_path: Path, mode: RunMode, steps: list, expected: pl.DataFrame
) -> None:
    assert_frame_equal(run_transform(tmp_path, steps, {"P": PLAYERS}, mode), expected)


@pytest.mark.parametrize("mode", list(RunMode))
def test_a_sort_is_stable_on_many_rows(tmp_path: Path, mode: RunMode) -> None:
    """Equal keys keep their input order beyond what one thread sorts, in every mode (Polars'
    multi-key sort is not stable without maintain_order)."""
    size = 60_000
    frame = pl.DataFrame({"a": [i % 7 for i in range(size)], "b": [i % 3 for i in range(size)]})
    frame = frame.with_row_index("n")
    steps = [{"sort": [{"a": "desc"}, "b"]}]
    result = run_transform(tmp_path, steps, {"F": frame}, mode)
    order = sorted(range(size), key=lambda n: (-(n % 7), n % 3, n))
    assert_frame_equal(result, frame[order])


# -- errors --------------------------------------------------------------------------------------

EXPRESSION_HELP = "quote it ('3') if it names a column, or write a typed literal such as {int64: 3}"


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ({"sort": []}, "step 1 (sort): a sort needs at least one key"),
        ({"sort": {"by": []}}, "step 1 (sort): a sort needs at least one key"),
        ({"sort": {}}, "step 1 (sort): by is required (a list of sort keys)"),
        (
            {"sort": {"by": "age", "nulls_last": "yes"}},
            "step 1 (sort): nulls_last is true or false, got str 'yes'",
        ),
        (
            {"sort": {"by": "age", "descending": 1}},
            "step 1 (sort): descending is true or false, got int 1",
        ),
        (
            {"sort": {"by": "age", "order": "desc"}},
            "step 1 (sort): unknown key 'order' (a sort mapping takes by, descending, nulls_last)",
        ),
        (
            {"sort": ["name", {"age": "down"}]},
            "step 1 (sort): key 2: 'age' takes asc or desc, got str 'down' (e.g. {age: desc})",
        ),
        (
            {"sort": [{"age": True}]},
            "step 1 (sort): 'age' takes asc or desc, got bool True (e.g. {age: desc})",
        ),
        (
            {"sort": ["age", 3]},
            f"step 1 (sort): key 2: int 3 is not a column path: {EXPRESSION_HELP}",
        ),
        ({"sort": 3}, f"step 1 (sort): int 3 is not a column path: {EXPRESSION_HELP}"),
        (
            {"limit": -1},
            "step 1 (limit): limit takes a number of rows (a whole number, 0 or more), got int -1",
        ),
        (
            {"limit": True},
            "step 1 (limit): limit takes a number of rows (a whole number, 0 or more), got bool"
            " True",
        ),
        (
            {"head": 1.5},
            "step 1 (head): head takes a number of rows (a whole number, 0 or more), got float 1.5",
        ),
        (
            {"tail": "x"},
            "step 1 (tail): tail takes a number of rows (a whole number, 0 or more), got str 'x'",
        ),
        ({"limit": 1, "head": 2}, "step 1: a step has one step key, got 2 keys: limit, head"),
        ({"tail": 1, "by": 2}, "step 1 (tail): unknown key 'by' (a tail step takes no other key)"),
        (
            {"order": ["age"]},
            "step 1: unknown step 'order' - did you mean 'sort'? (valid steps: select,"
            " with_columns, join, drop, sql, unnest_list, unnest_struct, unnest_list_of_struct,"
            " time, uniform_id_type, filter, sort, limit, head, tail, distinct, group_by,"
            " rename, fill_null)",
        ),
    ],
)
def test_parse_errors(step: dict[str, Any], message: str) -> None:
    assert parse_errors(step) == [message]


def test_every_bad_sort_key_is_reported() -> None:
    assert parse_errors({"sort": ["a..b", {"age": "up"}]}) == [
        "step 1 (sort): key 1: column path 'a..b' has an empty part",
        "step 1 (sort): key 2: 'age' takes asc or desc, got str 'up' (e.g. {age: desc})",
    ]


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (
            {"sort": ["aeg", {"nme": "desc"}]},
            f"column 'aeg' not found - did you mean 'age'? (columns: {COLUMNS}); column 'nme'"
            f" not found - did you mean 'name'? (columns: {COLUMNS})",
        ),
        (
            {"sort": "home.town"},
            "column path 'home.town': struct 'home' has no field 'town' (fields: city)",
        ),
    ],
)
def test_check_errors(step: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError) as info:
        parse_transform("t", [step], LOC).apply(PLAYERS.lazy(), {})
    assert info.value.message == f"transform 't', step 1 (sort): {message}"


@pytest.mark.parametrize("mode", list(RunMode))
def test_validate_finds_an_unknown_sort_key(tmp_path: Path, mode: RunMode) -> None:
    with pytest.raises(ValidationError) as info:
        run_transform(tmp_path, [{"limit": 3}, {"sort": "aeg"}], {"P": PLAYERS}, mode)
    (error,) = info.value.errors
    assert str(error).split(", ", 1)[1] == (
        "transform 't' (used by pipeline 'p', stage 'apply' (#2)): step 2 (sort): column 'aeg'"
        f" not found - did you mean 'age'? (columns: {COLUMNS})"
    )
