"""The `select` step with every expression form, run as a pipeline runs it in all four modes,
and its mistakes reported with the step, the column and the key."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core import expressions, selects
from capport_dagster.core.expressions import Column, Concat, Findings, Format, OptionalColumn
from capport_dagster.core.modes import RunMode
from capport_dagster.core.selects import SelectItem, check_items, parse_items, select_exprs
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import ConfigError, Location, TaskError, ValidationError
from tests.conftest import run_transform

LOC = Location(file="transforms.yml", section="transform", name="t")

PEOPLE = pl.DataFrame(
    {
        "id": [1, 2, 3],
        "first": ["Ann", None, "Cy"],
        "last": ["Lee", "Kim", None],
        "score": [1.5, None, 3.0],
        "team": [{"code": "EDM", "name": "Oilers"}, {"code": "TOR", "name": None}, None],
        "stats.goals": [4, 5, None],
        "n": ["1", "x", "3"],
    }
)

MODES = pytest.mark.parametrize("mode", list(RunMode))


def select(tmp_path: Path, mode: RunMode, mapping: dict, frame: pl.DataFrame = PEOPLE) -> Any:
    return run_transform(tmp_path, [{"select": mapping}], {"PEOPLE": frame}, mode)


def test_the_public_names() -> None:
    assert selects.__all__ == [
        "ACTIONS",
        "Findings",
        "SelectItem",
        "check_items",
        "column_list",
        "parse_items",
        "select_exprs",
        "unknown_keys",
    ]


# -- every form, in every mode ------------------------------------------------------------------

FORMS: list[tuple[Any, pl.Series]] = [
    (None, pl.Series([1, 2, 3])),  # the key's own name: `out` is renamed below
    ("id", pl.Series([1, 2, 3])),
    ("team.code", pl.Series(["EDM", "TOR", None])),
    ("stats\\.goals", pl.Series([4, 5, None])),
    ({"col": "last"}, pl.Series(["Lee", "Kim", None])),
    ("^last$", pl.Series(["Lee", "Kim", None])),
    ("^team$.name", pl.Series(["Oilers", None, None])),
    ("^stats\\.goals$", pl.Series([4, 5, None])),
    ("^nope$", pl.Series([None, None, None], dtype=pl.Null)),
    ("^nope$.deep.field", pl.Series([None, None, None], dtype=pl.Null)),
    (
        {"format": {"template": "{} {} #{}", "columns": ["first", "last", "id"]}},
        pl.Series(["Ann Lee #1", None, None]),
    ),
    (
        {"format": {"template": "{}/{}", "cols": "team.code, id"}},
        pl.Series(["EDM/1", "TOR/2", None]),
    ),
    (
        {"concat": {"separator": "-", "columns": ["first", "id"]}},
        pl.Series(["Ann-1", None, "Cy-3"]),
    ),
    (
        {"concat": {"separator": "-", "columns": ["first", "last"], "ignore_nulls": True}},
        pl.Series(["Ann-Lee", "Kim", "Cy"]),
    ),
    ({"concat": {"cols": ["id", "n"]}}, pl.Series(["1 1", "2 x", "3 3"])),
    (
        {
            "format": {
                "template": "<{}>",
                "columns": [
                    {
                        "concat": {
                            "separator": ":",
                            "columns": [{"coalesce": ["last", {"str": "?"}]}, "id"],
                        }
                    }
                ],
            }
        },
        pl.Series(["<Lee:1>", "<Kim:2>", "<?:3>"]),
    ),
    ({"cast": {"column": "n", "dtype": "int", "strict": False}}, pl.Series([1, None, 3])),
    ({"cast": {"column": "id", "dtype": "str"}}, pl.Series(["1", "2", "3"])),
    ({"cast": {"column": "id", "dtype": "uint8"}}, pl.Series([1, 2, 3], dtype=pl.UInt8)),
    ({"coalesce": ["last", "first", {"str": "-"}]}, pl.Series(["Lee", "Kim", "Cy"])),
    ({"coalesce": ["^nope$", "first"]}, pl.Series(["Ann", None, "Cy"])),
    ({"fill_null": {"column": "score", "value": 0.0}}, pl.Series([1.5, 0.0, 3.0])),
    ({"fill_null": {"column": "last", "value": "none"}}, pl.Series(["Lee", "Kim", "none"])),
    ({"fill_null": {"column": "last", "value": {"col": "first"}}}, pl.Series(["Lee", "Kim", "Cy"])),
    ({"int8": -5}, pl.Series([-5, -5, -5], dtype=pl.Int8)),
    ({"uint64": 34}, pl.Series([34, 34, 34], dtype=pl.UInt64)),
    ({"float": 0.5}, pl.Series([0.5, 0.5, 0.5], dtype=pl.Float32)),
    ({"double": 2}, pl.Series([2.0, 2.0, 2.0])),
    ({"bool": False}, pl.Series([False, False, False])),
    ({"str": "x"}, pl.Series(["x", "x", "x"])),
    ({"str": None}, pl.Series([None, None, None], dtype=pl.String)),
    ({"date": "2024-02-29"}, pl.Series([date(2024, 2, 29)] * 3)),
    (
        {"datetime": "2024-01-02T03:04:05"},
        pl.Series([datetime(2024, 1, 2, 3, 4, 5)] * 3, dtype=pl.Datetime("us")),
    ),
    (
        {"datetime": "2024-01-02 03:04+02:00"},
        pl.Series([datetime(2024, 1, 2, 1, 4, tzinfo=UTC)] * 3, dtype=pl.Datetime("us", "UTC")),
    ),
    ({"sql": "id * 10 + 1"}, pl.Series([11, 21, 31])),
    ({"sql": "CASE WHEN score > 2 THEN 'high' ELSE 'low' END"}, pl.Series(["low", "low", "high"])),
    ({"sql": "UPPER(first) AS ignored"}, pl.Series(["ANN", None, "CY"])),
    (
        {"action": "format", "args": {"template": "{}!", "cols": "first"}},
        pl.Series(["Ann!", None, "Cy!"]),
    ),
    ({"action": "concat", "args": {"cols": ["id", "last"]}}, pl.Series(["1 Lee", "2 Kim", None])),
    ({"action": None, "args": "^nope$"}, pl.Series([None, None, None], dtype=pl.Null)),
]  # fmt: skip


@MODES
@pytest.mark.parametrize(("source", "expected"), FORMS, ids=lambda v: repr(v)[:60])
def test_every_form_of_expression_in_a_select(
    tmp_path: Path, mode: RunMode, source: Any, expected: pl.Series
) -> None:
    frame = PEOPLE.with_columns(out=pl.col("id"))  # `out: null` is the column `out`
    result = select(tmp_path, mode, {"out": source, "first": None}, frame)
    assert_frame_equal(result, pl.DataFrame({"out": expected, "first": PEOPLE["first"]}))


@MODES
def test_columns_keep_the_order_of_the_mapping(tmp_path: Path, mode: RunMode) -> None:
    result = select(tmp_path, mode, {"z": "last", "a": "^absent$", "m": {"int8": 1}, "id": None})
    expected = pl.DataFrame(
        {
            "z": ["Lee", "Kim", None],
            "a": pl.Series([None, None, None], dtype=pl.Null),
            "m": pl.Series([1, 1, 1], dtype=pl.Int8),
            "id": [1, 2, 3],
        }
    )
    assert_frame_equal(result, expected)


@MODES
def test_a_missing_optional_column_keeps_the_inputs_rows_and_literals_alone_have_one(
    tmp_path: Path, mode: RunMode
) -> None:
    """capport gives one row for both (its fallback is a null literal); a missing column is a
    column here, so the row count does not depend on whether the file had it."""
    result = select(tmp_path, mode, {"a": "^absent$", "b": {"str": "x"}})
    expected = pl.DataFrame({"a": pl.Series([None] * 3, dtype=pl.Null), "b": ["x"] * 3})
    assert_frame_equal(result, expected)
    literals = select(tmp_path, mode, {"b": {"str": "x"}})
    assert_frame_equal(literals, pl.DataFrame({"b": ["x"]}))


@MODES
def test_an_optional_column_is_the_column_when_present_and_null_when_missing(
    tmp_path: Path, mode: RunMode
) -> None:
    mapping = {"id": None, "tag": "^tag$", "code": "^team$.code"}
    present = PEOPLE.with_columns(tag=pl.Series(["a", None, "c"]))
    assert_frame_equal(
        select(tmp_path, mode, mapping, present),
        pl.DataFrame({"id": [1, 2, 3], "tag": ["a", None, "c"], "code": ["EDM", "TOR", None]}),
    )
    missing = PEOPLE.drop("team")
    assert_frame_equal(
        select(tmp_path, mode, mapping, missing),
        pl.DataFrame(
            {
                "id": [1, 2, 3],
                "tag": pl.Series([None] * 3, dtype=pl.Null),
                "code": pl.Series([None] * 3, dtype=pl.Null),
            }
        ),
    )


@MODES
def test_an_optional_name_is_matched_literally_not_as_a_regex(
    tmp_path: Path, mode: RunMode
) -> None:
    frame = pl.DataFrame({"a+b (x)": [1], "aab (x)": [2], "a|b": [3], "c": [0]})
    mapping = {"p": "^a+b (x)$", "q": "^a|b$", "r": "^a\\.?b$", "c": None}
    expected = pl.DataFrame({"p": [1], "q": [3], "r": pl.Series([None], dtype=pl.Null), "c": [0]})
    assert_frame_equal(select(tmp_path, mode, mapping, frame), expected)


@MODES
def test_a_strict_cast_that_fails_stops_the_run(tmp_path: Path, mode: RunMode) -> None:
    """Eager modes fail at the stage; a lazy plan fails where it is collected (here, the test)."""
    failure = "conversion from `str` to `i64` failed in column 'n' for 1 out of 3 values: [\"x\"]"
    expected = pl.exceptions.InvalidOperationError if mode.is_lazy else TaskError
    with pytest.raises(expected) as info:
        select(tmp_path, mode, {"n": {"cast": {"column": "n", "dtype": "int"}}})
    if mode.is_lazy:
        assert str(info.value).startswith(failure)
    else:
        assert str(info.value).endswith(f"(#2): task 'transform' failed: {failure}")


# -- capport's null behaviour --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ({"format": {"template": "{}-{}", "columns": ["a", "b"]}}, ["x-1", None, None]),
        ({"concat": {"separator": "-", "columns": ["a", "b"]}}, ["x-1", None, None]),
        (
            {"concat": {"separator": "-", "columns": ["a", "b"], "ignore_nulls": True}},
            ["x-1", "2", ""],
        ),
    ],
)
def test_capport_null_behaviour_of_format_and_concat(
    tmp_path: Path, source: dict, expected: list
) -> None:
    """capport: a null input makes format and concat null, unless concat ignores nulls (then a
    row of nulls only is the empty string, as Polars' concat_str gives)."""
    frame = pl.DataFrame({"a": ["x", None, None], "b": [1, 2, None]})
    result = select(tmp_path, RunMode.SYNC_LAZY, {"o": source}, frame)
    assert_frame_equal(result, pl.DataFrame({"o": expected}, schema={"o": pl.String}))


# -- SelectItem and the helpers ------------------------------------------------------------------


def test_items_are_names_and_expressions() -> None:
    found = Findings()
    items = parse_items(
        {
            "a": None,
            "b": "x.y",
            "c": "^c$",
            "d": {"action": "concat", "args": {"cols": "a, ^b$"}},
            "e": {"format": {"template": "{}", "columns": ["a"]}},
        },
        "ctx",
        found,
    )
    assert found.errors == []
    assert items == (
        SelectItem("a", Column("a")),
        SelectItem("b", Column("x.y")),
        SelectItem("c", OptionalColumn("c")),
        SelectItem("d", Concat((Column("a"), OptionalColumn("b")), " ")),
        SelectItem("e", Format("{}", (Column("a"),))),
    )
    frame = pl.DataFrame({"a": ["p"], "x": [{"y": 1}]})
    assert check_items(items, frame.schema) == []
    assert_frame_equal(
        frame.select(select_exprs(items)),
        pl.DataFrame(
            {
                "a": ["p"],
                "b": [1],
                "c": pl.Series([None], dtype=pl.Null),
                "d": pl.Series([None], dtype=pl.String),
                "e": ["p"],
            }
        ),
    )


def test_check_items_reports_each_problem_once_and_never_a_missing_optional_column() -> None:
    found = Findings()
    items = parse_items(
        {"a": "tema", "b": {"concat": {"columns": ["tema", "^gone$", {"sql": "idd + 1"}]}}},
        "ctx",
        found,
    )
    schema = {"team": pl.String(), "id": pl.Int64()}
    assert check_items(items, schema) == [
        "column 'tema' not found - did you mean 'team'? (columns: team, id)",
        "sql 'idd + 1': column 'idd' not found - did you mean 'id'? (columns: team, id)",
    ]


# -- mistakes ------------------------------------------------------------------------------------

ENTRY = "step 1 (select): column 'a'"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            True,
            "a source is a column path, null or a mapping with action and args, got bool True",
        ),
        ("^$", "optional column '^$' has no name between ^ and $"),
        ({"formt": {"template": "{}", "columns": ["x"]}},
         "unknown expression 'formt' - did you mean 'format'? (an expression mapping has one key:"
         " col, format, concat, cast, coalesce, fill_null, sql, int8, int16, int32, int64, uint8,"
         " uint16, uint32, uint64, float, double, bool, str, date, datetime)"),
        (
            {"format": {"template": "{}", "columns": ["x"], "ignore_nulls": True}},
            "(format): unknown key 'ignore_nulls' (format takes template, columns, cols)",
        ),
        (
            {"format": {"template": "{}", "columns": ["x"], "cols": ["y"]}},
            "(format): write columns or cols, not both",
        ),
        (
            {"format": {"template": "{}{}", "columns": ["x"]}},
            "(format): template '{}{}' has 2 placeholders '{}' but columns has 1 column; they"
            " must match",
        ),
        (
            {"format": {"template": "{x}", "columns": ["x"]}},
            "(format): template '{x}' has an unmatched '{' at character 1 (write {} for a value,"
            " {{ and }} for a literal brace)",
        ),
        (
            {"format": {"columns": ["x"]}},
            "(format): template must be a string, got null",
        ),
        (
            {"concat": {"columns": []}},
            "(concat): columns must be a non-empty list of expressions, got an empty list",
        ),
        (
            {"concat": {"columns": ["x"], "ignore_nulls": "yes"}},
            "(concat): ignore_nulls must be true or false, got str 'yes'",
        ),
        (
            {"concat": {"columns": ["x"], "separator": 0}},
            "(concat): separator must be a string, got int 0",
        ),
        (
            {"concat": ["x"]},
            "(concat): concat takes a mapping of columns, cols, separator, ignore_nulls, got a"
            " list",
        ),
        (
            {"concat": {"columns": ["x", 7]}},
            "(concat), entry 2 of columns: int 7 is not a column path: quote it ('7') if it"
            " names a column, or write a typed literal such as {int64: 7}",
        ),
        (
            {"format": {"template": "{}", "columns": [{"cast": {"column": "x", "dtype": "i"}}]}},
            "(format), entry 1 of columns (cast): unknown dtype 'i' (valid dtypes: int, int8,"
            " int16, int32, int64, uint8, uint16, uint32, uint64, float, double, str, char, bool,"
            " time, date, datetime_utc, datetime_nyt, list[str], list[int], list[double])",
        ),
        ({"coalesce": "x"}, "(coalesce): expected a non-empty list of expressions, got str 'x'"),
        (
            {"coalesce": ["x", False]},
            "(coalesce), entry 2: bool False is not a column path: quote it ('false') if it names"
            " a column, or write a typed literal such as {bool: false}",
        ),
        ({"fill_null": {"value": 1}}, "(fill_null): column is required (an expression)"),
        ({"int16": 40000}, "int 40000 is not a valid int16 (a whole number from -32768 to 32767)"),
        ({"sql": "id +* 2"}, "sql 'id +* 2' is not a SQL expression: at character 5, expected an"
                             " expression, found '*'"),
        ({"action": "concat", "args": {"cols": ["x"], "ignore_nulls": True}},
         "(concat): unknown key 'ignore_nulls' (concat args takes cols, separator)"),
    ],
)  # fmt: skip
def test_select_mistakes_name_the_step_the_column_and_the_key(source: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_transform("t", [{"select": {"a": source}}], LOC)
    separator = " " if message.startswith("(") else ": "
    assert info.value.message == f"{ENTRY}{separator}{message}"


def test_every_mistake_of_a_select_is_reported() -> None:
    body = [{"select": {"a": {"int8": 1000}, "b": {"concat": {"columns": ["x", 1.5], "sep": 1}}}}]
    with pytest.raises(ValidationError) as info:
        parse_transform("t", body, LOC)
    assert [problem.message for problem in info.value.problems] == [
        "step 1 (select): column 'a': int 1000 is not a valid int8 (a whole number from -128"
        " to 127)",
        "step 1 (select): column 'b' (concat): unknown key 'sep' (concat takes columns, cols,"
        " separator, ignore_nulls)",
    ]


@MODES
def test_a_column_an_expression_names_that_the_frame_lacks_is_found_before_the_run(
    tmp_path: Path, mode: RunMode
) -> None:
    """The input's schema is known from its Parquet file, so `validate` finds it."""
    mapping = {"a": {"concat": {"columns": ["first", {"sql": "scor * 2"}, "^gone$"]}}}
    with pytest.raises(ValidationError) as info:
        select(tmp_path, mode, mapping)
    (error,) = [problem for problem in info.value.problems if problem.severity == "error"]
    assert str(error.location).endswith(
        ", transform 't' (used by pipeline 'p', stage 'apply' (#2))"
    )
    assert error.message == (
        "step 1 (select): sql 'scor * 2': column 'scor' not found - did you mean 'score'?"
        " (columns: id, first, last, score, team, stats\\.goals, n)"
    )


def test_optional_columns_and_sql_keep_the_projection_pushed_into_the_scan(tmp_path: Path) -> None:
    path = tmp_path / "wide.csv"
    pl.DataFrame({f"c{i}": [i] for i in range(6)}).write_csv(path)
    found = Findings()
    items = parse_items({"a": "^c2$", "b": "^zz$", "c": {"sql": "c3 + 1"}}, "ctx", found)
    plan = pl.scan_csv(path).select(select_exprs(items))
    assert "PROJECT 2/6 COLUMNS" in plan.explain()
    expected = pl.DataFrame({"a": [2], "b": pl.Series([None], dtype=pl.Null), "c": [4]})
    assert_frame_equal(plan.collect(), expected)


def test_findings_and_unknown_keys_are_the_expression_modules_own() -> None:
    """Moved to core/expressions.py (which selects.py builds on); still importable here."""
    assert selects.Findings is Findings
    assert selects.unknown_keys is expressions.unknown_keys
