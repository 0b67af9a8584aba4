"""The `filter` step: capport's planned `{col: {op: value}}` form, and/or/not, SQL strings; null
semantics; every parse and check error with its exact message."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps import filters
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import parse_errors, run_transform

LOC = Location(file="t.yml", section="transform", name="t")
PLAYERS = pl.DataFrame(
    {
        "name": ["Ann", "Bob", "Cy", "Di", "J.R."],
        "age": [20, 15, None, 30, 18],
        "team": ["EDM", "EDM", "CGY", None, "EDM"],
        "rival": ["CGY", "EDM", "CGY", "VAN", None],
        "score": [1.5, 2.0, None, 0.5, 3.0],
        "born": [
            datetime.date(2004, 5, 1),
            None,
            datetime.date(1999, 1, 2),
            datetime.date(1994, 3, 3),
            datetime.date(2006, 7, 7),
        ],
        "home": [{"city": "Oslo"}, {"city": "Rome"}, {"city": None}, None, {"city": "Oslo"}],
        "ok": [True, False, None, True, False],
    }
).with_columns(
    wait=pl.duration(days=pl.col("age")),
    seen=pl.datetime(2006, 1, 1),
    seen_utc=pl.datetime(2006, 1, 1, time_zone="UTC"),
)
COLUMNS = "name, age, team, rival, score, born, home, ok, wait, seen, seen_utc"
OPERATORS = "eq, ne, gt, ge, lt, le, in, not_in, is_null, not_null, contains, starts_with"


def rows(*indexes: int) -> pl.DataFrame:
    """The input's rows at these indexes, in this order: what a filter keeps."""
    return PLAYERS[list(indexes)]


def check_error(step: dict[str, Any]) -> str:
    with pytest.raises(TaskError) as info:
        parse_transform("t", [step], LOC).apply(PLAYERS.lazy(), {})
    return info.value.message


def test_public_api() -> None:
    assert set(filters.__all__) == {
        "KINDS",
        "OPERATORS",
        "ORDERED",
        "FilterStep",
        "dtype_of",
        "family",
        "show",
    }
    assert ", ".join(filters.OPERATORS) == OPERATORS


# -- running: exact rows, in every mode -----------------------------------------------------------

CASES = [
    pytest.param({"age": {"ge": 18}}, rows(0, 3, 4), id="ge-drops-null"),
    pytest.param({"age": {"ge": 18}, "team": {"eq": "EDM"}}, rows(0, 4), id="keys-are-anded"),
    pytest.param({"age": {"ge": 18, "lt": 30}}, rows(0, 4), id="ops-are-anded"),
    pytest.param({"age": {"gt": 18, "le": 30}}, rows(0, 3), id="gt-le"),
    pytest.param({"team": {"ne": "EDM"}}, rows(2), id="ne-drops-null"),
    pytest.param({"team": {"eq": {"col": "rival"}}}, rows(1, 2), id="column-vs-column"),
    pytest.param({"rival": {"eq": "EDM"}}, rows(1), id="plain-string-is-literal"),
    pytest.param({"team": {"in": ["CGY", "VAN"]}}, rows(2), id="in"),
    pytest.param({"team": {"not_in": ["EDM"]}}, rows(2), id="not-in-drops-null"),
    pytest.param({"age": {"in": [15, 30.0]}}, rows(1, 3), id="in-numbers"),
    pytest.param(
        {"born": {"in": [{"date": "1994-03-03"}, {"date": "2004-05-01"}]}},
        rows(0, 3),
        id="in-typed-literals",
    ),
    pytest.param({"age": {"is_null": True}}, rows(2), id="is-null"),
    pytest.param({"team": {"not_null": None}}, rows(0, 1, 2, 4), id="not-null-no-value"),
    pytest.param({"name": {"contains": "."}}, rows(4), id="contains-is-literal"),
    pytest.param({"name": {"starts_with": "B"}}, rows(1), id="starts-with"),
    pytest.param({"rival": {"contains": {"col": "team"}}}, rows(1, 2), id="contains-column"),
    pytest.param({"score": {"gt": 1}}, rows(0, 1, 4), id="float-vs-int"),
    pytest.param({"age": {"gt": 17.5}}, rows(0, 3, 4), id="int-vs-float"),
    pytest.param({"age": {"eq": {"int64": 20}}}, rows(0), id="typed-literal"),
    pytest.param({"born": {"lt": {"date": "2000-01-01"}}}, rows(2, 3), id="date"),
    pytest.param({"ok": {"eq": False}}, rows(1, 4), id="bool"),
    pytest.param({"home.city": {"eq": "Oslo"}}, rows(0, 4), id="struct-path"),
    pytest.param({"^gone$": {"is_null": True}}, rows(0, 1, 2, 3, 4), id="optional-column"),
    pytest.param({"or": [{"age": {"lt": 16}}, {"team": {"is_null": True}}]}, rows(1, 3), id="or"),
    pytest.param({"not": {"team": {"eq": "EDM"}}}, rows(2), id="not-of-null-is-null"),
    pytest.param(
        {"and": [{"age": {"gt": 15}}, "team = 'EDM'"], "name": {"ne": "Ann"}},
        rows(4),
        id="and-with-sql-and-keys",
    ),
    pytest.param(
        {"or": [{"and": [{"team": {"eq": "EDM"}}, {"age": {"lt": 18}}]}, {"age": {"ge": 30}}]},
        rows(1, 3),
        id="nested",
    ),
    pytest.param("age >= 18 AND team = 'EDM'", rows(0, 4), id="sql"),
    pytest.param("age IS NULL OR score < 1", rows(2, 3), id="sql-nulls"),
]


@pytest.mark.parametrize("mode", list(RunMode))
@pytest.mark.parametrize(("condition", "expected"), CASES)
def test_filter_keeps_exactly_these_rows(
    tmp_path: Path, mode: RunMode, condition: Any, expected: pl.DataFrame
) -> None:
    result = run_transform(tmp_path, [{"filter": condition}], {"P": PLAYERS}, mode)
    assert_frame_equal(result, expected)


# -- parse errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "messages"),
    [
        (
            {},
            [
                "a condition is a mapping of column -> {operator: value} (or and, or, not),"
                " or a SQL string, got an empty mapping"
            ],
        ),
        (
            3,
            [
                "a condition is a mapping of column -> {operator: value} (or and, or, not),"
                " or a SQL string, got int 3"
            ],
        ),
        (
            {"age": 18},
            [
                "column 'age': expected a mapping of operator -> value (e.g. {eq: 18}), got"
                f" int 18 (operators: {OPERATORS})"
            ],
        ),
        (
            {"age": {"gte": 18}},
            [f"column 'age': unknown operator 'gte' - did you mean 'ge'? (operators: {OPERATORS})"],
        ),
        (
            {"age": {"eqq": 18}},
            [f"column 'age': unknown operator 'eqq' - did you mean 'eq'? (operators: {OPERATORS})"],
        ),
        (
            {"age": {"is_null": False}},
            [
                "column 'age': is_null takes true (or no value), got false; for the opposite"
                " write not_null: true"
            ],
        ),
        ({"age": {"not_null": 3}}, ["column 'age': not_null takes true (or no value), got 3"]),
        (
            {"age": {"eq": None}},
            [
                "column 'age': eq null is never true (a comparison with null is null):"
                " write is_null: true"
            ],
        ),
        (
            {"age": {"ne": None}},
            [
                "column 'age': ne null is never true (a comparison with null is null):"
                " write not_null: true"
            ],
        ),
        (
            {"age": {"gt": None}},
            [
                "column 'age': gt null is never true (a comparison with null is null):"
                " compare with a value"
            ],
        ),
        (
            {"age": {"in": []}},
            ["column 'age': in takes a non-empty list of values, got an empty list"],
        ),
        (
            {"team": {"not_in": "EDM"}},
            ["column 'team': not_in takes a non-empty list of values, got str 'EDM'"],
        ),
        (
            {"age": {"in": ["a", 1]}},
            [
                "column 'age': in: the values ['a', 1] mix numbers and strings; give values of"
                " one type"
            ],
        ),
        (
            {"age": {"in": [1, None]}},
            ["column 'age': in: null cannot be a value: null never matches (write is_null: true)"],
        ),
        (
            {"age": {"in": [{"col": "score"}]}},
            [
                "column 'age': in: column 'score' cannot be a value: it is not a literal (a plain"
                " value, or a typed one such as {date: ...})"
            ],
        ),
        (
            {"age": {"in": [1, {"str": None}]}},
            [
                "column 'age': in: {str: null} cannot be a value: null never matches (write"
                " is_null: true)"
            ],
        ),
        ({"and": []}, ["and takes a non-empty list of conditions, got an empty list"]),
        ({"or": "x"}, ["or takes a non-empty list of conditions, got str 'x'"]),
        (
            {"or": [{"age": {"lt": 1}}, {"age": {"lte": 1}}]},
            [
                "or item 2: column 'age': unknown operator 'lte' - did you mean 'le'?"
                f" (operators: {OPERATORS})"
            ],
        ),
        (
            {"not": []},
            [
                "not: a condition is a mapping of column -> {operator: value} (or and, or, not),"
                " or a SQL string, got a list"
            ],
        ),
        ("  ", ["a SQL condition is empty"]),
        ({"a..b": {"eq": 1}}, ["column 'a..b': column path 'a..b' has an empty part"]),
        (
            {"age": {"gte": 1}, "team": 3},
            [
                "column 'age': unknown operator 'gte' - did you mean 'ge'?"
                f" (operators: {OPERATORS})",
                "column 'team': expected a mapping of operator -> value (e.g. {eq: 3}), got"
                f" int 3 (operators: {OPERATORS})",
            ],
        ),
    ],
)
def test_parse_errors(condition: Any, messages: list[str]) -> None:
    assert parse_errors({"filter": condition}) == [
        f"step 1 (filter): {message}" for message in messages
    ]


def test_a_value_that_is_not_an_expression_is_reported_where_it_is() -> None:
    (message,) = parse_errors({"filter": {"not": {"age": {"eq": [1]}}}})
    assert message.startswith("step 1 (filter): not: column 'age': eq: a list is not an expression")


def test_a_sql_syntax_error_is_found_when_the_config_loads_with_its_position() -> None:
    assert parse_errors({"filter": {"or": ["age = 1", "team = = 'EDM'"]}}) == [
        "step 1 (filter): or item 2: sql \"team = = 'EDM'\" is not a SQL expression: at"
        " character 8, expected an expression, found '='"
    ]


def test_a_filter_step_takes_no_sibling_key() -> None:
    assert parse_errors({"filter": {"age": {"eq": 1}}, "extra": 1}) == [
        "step 1 (filter): unknown key 'extra' (a filter step takes no other key)"
    ]


# -- check errors: against the input's schema, before Polars runs ----------------------------------


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        (
            {"aeg": {"ge": 18}},
            f"column 'aeg' not found - did you mean 'age'? (columns: {COLUMNS})",
        ),
        (
            {"team": {"gt": 18}},
            "column 'team' is String and cannot be compared with 18 (Int32): quote the value to"
            " compare text",
        ),
        ({"age": {"eq": "x"}}, "column 'age' is Int64 and cannot be compared with 'x' (String)"),
        (
            {"born": {"ge": "2000-01-01"}},
            "column 'born' is Date and cannot be compared with '2000-01-01' (String): write a"
            " typed literal, e.g. {date: '2024-01-31'}",
        ),
        (
            {"team": {"in": [1, 2]}},
            "column 'team' is String and cannot be compared with [1, 2] (Int64): quote the value"
            " to compare text",
        ),
        (
            {"born": {"not_in": ["2004-05-01"]}},
            "column 'born' is Date and cannot be compared with ['2004-05-01'] (String): write"
            " typed literals, e.g. [{date: '2024-01-31'}]",
        ),
        (
            {"age": {"eq": {"col": "team"}}},
            "column 'age' is Int64 and cannot be compared with column 'team' (String)",
        ),
        (
            {"or": [{"age": {"lt": 1}}, {"ok": {"eq": 1}}]},
            "or item 2: column 'ok' is Boolean and cannot be compared with 1 (Int32)",
        ),
        ({"age": {"contains": "1"}}, "column 'age' is Int64, but contains needs a string column"),
        (
            {"home": {"gt": {"col": "home"}}},
            "column 'home' is Struct({'city': String}), whose values have no order: gt compares"
            " numbers, text, booleans, dates, times or durations",
        ),
        (
            {"age": {"le": {"col": "home"}}},
            "column 'age': le compares with column 'home' (Struct({'city': String})), whose"
            " values have no order",
        ),
        (
            {"born": {"eq": {"col": "wait"}}},
            "column 'born' is Date and cannot be compared with column 'wait'"
            " (Duration(time_unit='us')): write a typed literal, e.g. {date: '2024-01-31'}",
        ),
        (
            {"seen": {"lt": {"col": "seen_utc"}}},
            "column 'seen' is Datetime(time_unit='us', time_zone=None) and cannot be compared"
            " with column 'seen_utc' (Datetime(time_unit='us', time_zone='UTC')): write a typed"
            " literal, e.g. {datetime: '2024-01-31'}",
        ),
        (
            {"name": {"starts_with": 1}},
            "column 'name': starts_with needs a string to look for, got 1 (Int32)",
        ),
        (
            {"name": {"eq": {"col": "nam"}}},
            f"column 'nam' not found - did you mean 'name'? (columns: {COLUMNS})",
        ),
        (
            {"home.town": {"eq": "Oslo"}},
            "column path 'home.town': struct 'home' has no field 'town' (fields: city)",
        ),
        (
            "agee >= 18",
            f"sql 'agee >= 18': column 'agee' not found - did you mean 'age'? (columns: {COLUMNS})",
        ),
        (
            "team >= 18",
            "sql 'team >= 18' does not fit the frame: cannot compare string with numeric type"
            " (i32)",
        ),
        (
            'team = "EDM"',
            f"sql 'team = \"EDM\"': column 'EDM' not found (columns: {COLUMNS}); in SQL, \"EDM\""
            " names a column: write 'EDM' for text",
        ),
        (
            "age + 1",
            "sql 'age + 1' gives Int64, not true or false: a filter keeps the rows its condition"
            " is true for",
        ),
        (
            {"or": ["name", "age > 1"]},
            "or item 1: sql 'name' gives String, not true or false: a filter keeps the rows its"
            " condition is true for",
        ),
        (
            {"not": "age >= 'x'"},
            "not: sql \"age >= 'x'\" does not fit the frame: cannot compare string with numeric"
            " type (i64)",
        ),
    ],
)
def test_check_errors(condition: Any, message: str) -> None:
    assert check_error({"filter": condition}) == f"transform 't', step 1 (filter): {message}"


def test_datetimes_compare_with_dates_and_in_one_time_zone() -> None:
    step = {"filter": {"seen": {"ge": {"col": "born"}}, "seen_utc": {"ge": {"col": "born"}}}}
    plan = parse_transform("t", [step], LOC).apply(PLAYERS.lazy(), {})
    assert_frame_equal(plan.collect(), rows(0, 2, 3))


def test_every_check_error_of_a_filter_is_reported() -> None:
    step = {"filter": {"team": {"gt": 18}, "age": {"eq": "x"}}}
    assert check_error(step) == (
        "transform 't', step 1 (filter): column 'team' is String and cannot be compared with 18"
        " (Int32): quote the value to compare text; column 'age' is Int64 and cannot be compared"
        " with 'x' (String)"
    )


@pytest.mark.parametrize("mode", list(RunMode))
def test_validate_finds_a_type_mismatch_before_any_stage_runs(
    tmp_path: Path, mode: RunMode
) -> None:
    with pytest.raises(ValidationError) as info:
        run_transform(tmp_path, [{"filter": {"team": {"ge": 18}}}], {"P": PLAYERS}, mode)
    (error,) = info.value.errors
    assert str(error).split(", ", 1)[1] == (
        "transform 't' (used by pipeline 'p', stage 'apply' (#2)): step 1 (filter): column"
        " 'team' is String and cannot be compared with 18 (Int32): quote the value to compare"
        " text"
    )


def test_a_number_key_names_the_column_of_that_name() -> None:
    """YAML reads `2024: {gt: 1}` with an int key; a CSV header `2024` is the column meant."""
    step = {"filter": {2024: {"gt": 1}}}
    plan = parse_transform("t", [step], LOC).apply(pl.LazyFrame({"2024": [1, 2]}), {})
    assert_frame_equal(plan.collect(), pl.DataFrame({"2024": [2]}))
