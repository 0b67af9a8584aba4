"""Expressions: what each form parses to and gives on a frame, every parse error with its exact
message, and what `check` finds in a schema."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core import expressions
from capport_dagster.core.expressions import (
    Cast,
    Coalesce,
    Column,
    Concat,
    FillNull,
    Findings,
    Format,
    Lit,
    OptionalColumn,
    Sql,
    output_dtype,
    parse_expr,
)

FRAME = pl.DataFrame(
    {
        "a": ["x", None, "z"],
        "b": [1, 2, None],
        "s": [{"f": 1, "g.h": "p"}, {"f": None, "g.h": "q"}, None],
        "d.e": [7, 8, 9],
    }
)
KEYS = (
    "col, format, concat, cast, coalesce, fill_null, sql, int8, int16, int32, int64, uint8, uint16,"
    " uint32, uint64, float, double, bool, str, date, datetime"
)
DTYPES = (
    "int, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float, double, str, char,"
    " bool, time, date, datetime_utc, datetime_nyt, list[str], list[int], list[double]"
)


def parsed(raw: Any, scalars: Any = "path") -> Any:
    found = Findings()
    expr = parse_expr(raw, "here", found, scalars=scalars)
    assert found.errors == []
    assert expr is not None
    return expr


def errors(raw: Any, scalars: Any = "path") -> list[str]:
    found = Findings()
    assert parse_expr(raw, "here", found, scalars=scalars) is None
    return found.errors


def values(raw: Any, frame: pl.DataFrame = FRAME, scalars: Any = "path") -> pl.Series:
    return frame.select(parsed(raw, scalars).polars().alias("o"))["o"]


def test_the_public_names() -> None:
    assert expressions.__all__ == [
        "EXPRESSION_KEYS",
        "LITERAL_TYPES",
        "Cast",
        "Coalesce",
        "Column",
        "Concat",
        "Expr",
        "FillNull",
        "Findings",
        "Format",
        "Lit",
        "OptionalColumn",
        "Schema",
        "Sql",
        "format_template",
        "output_dtype",
        "parse_expr",
        "unknown_keys",
    ]


# -- what each form parses to --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a", Column("a")),
        ("s.f", Column("s.f")),
        ("d\\.e", Column("d\\.e")),
        ({"col": "s.f"}, Column("s.f")),
        ("^a$", OptionalColumn("a")),
        ("^s$.g\\.h", OptionalColumn("s", ("g.h",))),
        ("^d\\.e$", OptionalColumn("d.e")),
        ({"col": "^q$"}, OptionalColumn("q")),
        ("^a", Column("^a")),  # not ^...$: a plain name
        ("a$", Column("a$")),
        ("s.^f$", Column("s.^f$")),  # only the column may be optional, not a field
        (
            {"format": {"template": "{}-{}", "columns": ["a", "^b$"]}},
            Format("{}-{}", (Column("a"), OptionalColumn("b"))),
        ),
        ({"format": {"template": "{}", "cols": "a"}}, Format("{}", (Column("a"),))),
        ({"concat": {"columns": "a, b"}}, Concat((Column("a"), Column("b")), " ", False)),
        (
            {"concat": {"cols": ["a"], "separator": "", "ignore_nulls": True}},
            Concat((Column("a"),), "", True),
        ),
        ({"cast": {"column": "b", "dtype": "uint8"}}, Cast(Column("b"), "uint8", True)),
        (
            {"cast": {"column": {"sql": "b + 1"}, "dtype": "str", "strict": False}},
            Cast(Sql("b + 1", pl.lit(0)), "str", False),
        ),
        ({"coalesce": ["a", {"str": "-"}]}, Coalesce((Column("a"), Lit("-", pl.String())))),
        ({"fill_null": {"column": "b", "value": 0}}, FillNull(Column("b"), Lit(0))),
        ({"fill_null": {"column": "a", "value": "b"}}, FillNull(Column("a"), Lit("b"))),
        ({"fill_null": {"column": "a", "value": {"col": "b"}}}, FillNull(Column("a"), Column("b"))),
        ({"sql": "b * 2"}, Sql("b * 2", pl.lit(0))),
    ],
)
def test_each_form_parses_to(raw: Any, expected: Any) -> None:
    assert parsed(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"int8": -128}, Lit(-128, pl.Int8())),
        ({"int16": 32767}, Lit(32767, pl.Int16())),
        ({"int32": 0}, Lit(0, pl.Int32())),
        ({"int64": -(2**63)}, Lit(-(2**63), pl.Int64())),
        ({"uint8": 255}, Lit(255, pl.UInt8())),
        ({"uint16": 0}, Lit(0, pl.UInt16())),
        ({"uint32": 4294967295}, Lit(4294967295, pl.UInt32())),
        ({"uint64": 2**64 - 1}, Lit(2**64 - 1, pl.UInt64())),
        ({"float": 2}, Lit(2.0, pl.Float32())),
        ({"float": float("inf")}, Lit(float("inf"), pl.Float32())),
        ({"double": 1e300}, Lit(1e300, pl.Float64())),
        ({"bool": True}, Lit(True, pl.Boolean())),
        ({"str": ""}, Lit("", pl.String())),
        ({"date": "2024-02-29"}, Lit(date(2024, 2, 29), pl.Date())),
        ({"date": date(2024, 1, 1)}, Lit(date(2024, 1, 1), pl.Date())),
        ({"datetime": "2024-01-02"}, Lit(datetime(2024, 1, 2), pl.Datetime("us"))),
        (
            {"datetime": "2024-01-02T03:04:05.123456"},
            Lit(datetime(2024, 1, 2, 3, 4, 5, 123456), pl.Datetime("us")),
        ),
        (
            {"datetime": "2024-01-02T03:04Z"},
            Lit(datetime(2024, 1, 2, 3, 4, tzinfo=UTC), pl.Datetime("us", "UTC")),
        ),
        (
            {"datetime": "2024-01-02 03:04:05-0500"},
            Lit(datetime(2024, 1, 2, 8, 4, 5, tzinfo=UTC), pl.Datetime("us", "UTC")),
        ),
        ({"int8": None}, Lit(None, pl.Int8())),
        ({"datetime": None}, Lit(None, pl.Datetime("us"))),
    ],
)
def test_typed_literals(raw: Any, expected: Lit) -> None:
    literal = parsed(raw)
    assert literal == expected
    frame = pl.select(literal.polars().alias("o"))
    assert frame.schema["o"] == expected.dtype
    assert frame["o"].to_list() == [expected.value]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a", Lit("a")),
        ("a.b", Lit("a.b")),
        ("^a$", Lit("^a$")),
        (3, Lit(3)),
        (1.5, Lit(1.5)),
        (False, Lit(False)),
        (None, Lit(None)),
        ({"col": "a"}, Column("a")),
        ({"int8": 3}, Lit(3, pl.Int8())),
    ],
)
def test_where_scalars_are_literals_a_plain_scalar_is_a_literal(raw: Any, expected: Any) -> None:
    assert parsed(raw, "literal") == expected


# -- what each form gives on a frame -------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a", pl.Series(["x", None, "z"])),
        ("s.f", pl.Series([1, None, None])),
        ("s.g\\.h", pl.Series(["p", "q", None])),
        ("d\\.e", pl.Series([7, 8, 9])),
        ("^b$", pl.Series([1, 2, None])),
        ("^s$.f", pl.Series([1, None, None])),
        ("^nope$", pl.Series([None] * 3, dtype=pl.Null)),
        ("^nope$.f", pl.Series([None] * 3, dtype=pl.Null)),
        ({"format": {"template": "{}{}", "columns": ["a", "b"]}}, pl.Series(["x1", None, None])),
        ({"format": {"template": "{{{}}}", "columns": ["a"]}}, pl.Series(["{x}", None, "{z}"])),
        ({"concat": {"columns": ["a", "b"]}}, pl.Series(["x 1", None, None])),
        (
            {"concat": {"columns": ["a", "b"], "separator": "+", "ignore_nulls": True}},
            pl.Series(["x+1", "2", "z"]),
        ),
        (
            {"concat": {"columns": ["a", {"format": {"template": "<{}>", "columns": ["s.f"]}}]}},
            pl.Series(["x <1>", None, None]),
        ),
        ({"cast": {"column": "b", "dtype": "double"}}, pl.Series([1.0, 2.0, None])),
        ({"cast": {"column": "a", "dtype": "int", "strict": False}},
         pl.Series([None] * 3, dtype=pl.Int64)),
        ({"coalesce": ["^nope$", "a", {"str": "-"}]}, pl.Series(["x", "-", "z"])),
        ({"coalesce": ["s.f", "b"]}, pl.Series([1, 2, None])),
        ({"fill_null": {"column": "b", "value": -1}}, pl.Series([1, 2, -1])),
        ({"fill_null": {"column": "a", "value": {"cast": {"column": "b", "dtype": "str"}}}},
         pl.Series(["x", "2", "z"])),
        ({"sql": "b * 10"}, pl.Series([10, 20, None])),
        ({"sql": "COALESCE(a, 'none')"}, pl.Series(["x", "none", "z"])),
        ({"sql": "\"d.e\" + 1"}, pl.Series([8, 9, 10])),
    ],
)  # fmt: skip
def test_each_form_on_a_frame(raw: Any, expected: pl.Series) -> None:
    assert_frame_equal(FRAME.select(parsed(raw).polars().alias("o")), pl.DataFrame({"o": expected}))


def test_a_sql_alias_is_dropped_so_the_step_names_the_column() -> None:
    assert parsed({"sql": "b + 1 AS other"}).polars().meta.output_name() == "b"


def test_a_missing_optional_column_is_null_typed_and_present_keeps_its_dtype() -> None:
    schema = {"b": pl.Int32(), "s": pl.Struct({"f": pl.UInt8()})}
    assert output_dtype(parsed("^b$"), schema) == pl.Int32()
    assert output_dtype(parsed("^s$.f"), schema) == pl.UInt8()
    assert output_dtype(parsed("^nope$"), schema) == pl.Null()
    assert output_dtype(parsed({"coalesce": ["^nope$", "b"]}), schema) == pl.Int32()


def test_output_dtype_of_each_action() -> None:
    schema = {"a": pl.String(), "b": pl.Int16()}
    assert output_dtype(parsed({"concat": {"columns": ["a", "b"]}}), schema) == pl.String()
    assert output_dtype(parsed({"cast": {"column": "b", "dtype": "datetime_utc"}}), schema) == (
        pl.Datetime("ms", "UTC")
    )
    assert output_dtype(parsed({"fill_null": {"column": "b", "value": 0}}), schema) == pl.Int16()
    assert output_dtype(parsed({"sql": "b > 1"}), schema) == pl.Boolean()


def test_sql_expressions_compare_by_their_text() -> None:
    assert parsed({"sql": "b + 1"}) == Sql("b + 1", pl.lit(0))
    assert parsed({"sql": "b + 1"}) != Sql("b+1", pl.lit(0))
    assert hash(parsed({"sql": "b + 1"})) == hash(Sql("b + 1", pl.col("x")))


# -- paths and check -----------------------------------------------------------------------------


def test_paths_are_the_columns_read_in_order_without_optional_ones() -> None:
    raw = {
        "concat": {
            "columns": [
                "a",
                "^opt$",
                {"coalesce": ["s.f", {"int8": 1}]},
                {"sql": "b + \"d.e\""},
                {"fill_null": {"column": {"cast": {"column": "x", "dtype": "str"}},
                               "value": {"col": "y"}}},
            ]
        }
    }  # fmt: skip
    assert parsed(raw).paths() == ("a", "s.f", "b", "d\\.e", "x", "y")


SCHEMA = {"team": pl.String(), "id": pl.Int64(), "s": pl.Struct({"f": pl.Int8()}), "x.y": None}


@pytest.mark.parametrize(
    ("raw", "problems"),
    [
        ("team", []),
        ("^gone$", []),
        ("^gone$.deep", []),
        ("^s$.f", []),
        ("x\\.y.anything", []),  # a dtype of None is unknown: only the column is checked
        ("tema", ["column 'tema' not found - did you mean 'team'? (columns: team, id, s, x\\.y)"]),
        ("^s$.g", ["column path 's.g': struct 's' has no field 'g' (fields: f)"]),
        ("x.y", ["column 'x' not found (columns: team, id, s, x\\.y); to read the column 'x.y',"
                 " escape its dot: x\\.y (a dot goes into a struct field)"]),
        ({"sql": "idd + team"},
         ["sql 'idd + team': column 'idd' not found - did you mean 'id'? (columns: team, id, s,"
          " x\\.y)"]),
        (
            {"format": {"template": "{}{}{}", "columns": ["tema", {"cast": {"column": "tema",
             "dtype": "str"}}, {"coalesce": ["^q$", "s.g"]}]}},
            ["column 'tema' not found - did you mean 'team'? (columns: team, id, s, x\\.y)",
             "column path 's.g': struct 's' has no field 'g' (fields: f)"],
        ),
        ({"fill_null": {"column": "id", "value": {"col": "idd"}}},
         ["column 'idd' not found - did you mean 'id'? (columns: team, id, s, x\\.y)"]),
        ({"int8": 1}, []),
    ],
)  # fmt: skip
def test_check_finds_every_column_not_there(raw: Any, problems: list[str]) -> None:
    assert parsed(raw).check(SCHEMA) == problems


# -- parse errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (3, "int 3 is not a column path: quote it ('3') if it names a column, or write a typed"
            " literal such as {int64: 3}"),
        (-1.5, "float -1.5 is not a column path: quote it ('-1.5') if it names a column, or write"
               " a typed literal such as {double: -1.5}"),
        (True, "bool True is not a column path: quote it ('true') if it names a column, or write"
               " a typed literal such as {bool: true}"),
        (None, "null is not an expression: write a column path, or a typed null such as"
               " {str: null}"),
        (["a"], f"a list is not an expression (a column path, or a mapping of one key: {KEYS})"),
        ("a..b", "column path 'a..b' has an empty part"),
        ("a\\b", "column path 'a\\b': '\\b' at character 2: a backslash escapes a dot (\\.) or a"
                 " backslash (\\\\) in a column name"),
        ("^$", "optional column '^$' has no name between ^ and $"),
        ("^$.f", "optional column '^$.f' has no name between ^ and $"),
        ({}, f"an expression mapping has exactly one key ({KEYS}), got 0 keys: none"),
        ({"template": "{}", "columns": ["a"]},
         f"an expression mapping has exactly one key ({KEYS}), got 2 keys: template, columns"),
        ({"concats": {}}, f"unknown expression 'concats' - did you mean 'concat'? (an expression"
                          f" mapping has one key: {KEYS})"),
        ({"lit": 3}, f"unknown expression 'lit' (an expression mapping has one key: {KEYS})"),
        ({"col": 3}, "col takes a column path, got int 3"),
        ({"col": "a..b"}, "column path 'a..b' has an empty part"),
        # format
        ({"format": "{}"}, "(format): format takes a mapping of template, columns, cols, got str"
                           " '{}'"),
        ({"format": {"template": "{}", "columns": ["a"], "ignore_nulls": True}},
         "(format): unknown key 'ignore_nulls' (format takes template, columns, cols)"),
        ({"format": {"template": "{}", "column": ["a"]}},
         "(format): unknown key 'column' - did you mean 'columns'? (format takes template,"
         " columns, cols)"),
        ({"format": {"template": "{}"}},
         "(format): columns must be a non-empty list of expressions, got null"),
        ({"format": {"template": "{}", "columns": {"a": 1}}},
         "(format): columns must be a non-empty list of expressions, got a mapping"),
        ({"format": {"template": 1, "columns": ["a"]}}, "(format): template must be a string, got"
                                                        " int 1"),
        ({"format": {"template": "{} {}", "columns": ["a"]}},
         "(format): template '{} {}' has 2 placeholders '{}' but columns has 1 column; they must"
         " match"),
        ({"format": {"template": "x", "cols": ["a", "b"]}},
         "(format): template 'x' has 0 placeholders '{}' but cols has 2 columns; they must"
         " match"),
        ({"format": {"template": "}{}", "columns": ["a"]}},
         "(format): template '}{}' has an unmatched '}' at character 1 (write {} for a value, {{"
         " and }} for a literal brace)"),
        ({"format": {"template": "${X}{}", "columns": ["a"]}},
         "(format): template '${X}{}' has '${X}' at character 1, which a format template does"
         " not expand (write {} for a value, {{ and }} for a literal brace)"),
        ({"format": {"template": "{}", "columns": ["a"], "cols": ["a"]}},
         "(format): write columns or cols, not both"),
        # concat
        ({"concat": {"columns": ["a", ""]}}, "(concat), entry 2 of columns: column path '' is"
                                             " empty"),
        ({"concat": {"columns": "a,"}}, "(concat), entry 2 of columns: column path '' is empty"),
        ({"concat": {"columns": ["a"], "ignore_nulls": 1}},
         "(concat): ignore_nulls must be true or false, got int 1"),
        ({"concat": {"columns": ["a"], "separator": None}},
         "(concat): separator must be a string, got null"),
        # cast
        ({"cast": "a"}, "(cast): cast takes a mapping of column, dtype, strict, got str 'a'"),
        ({"cast": {"dtype": "int"}}, "(cast): column is required (an expression)"),
        ({"cast": {"column": "a"}}, f"(cast): dtype is required (valid dtypes: {DTYPES})"),
        ({"cast": {"column": "a", "dtype": "text"}},
         f"(cast): unknown dtype 'text' (valid dtypes: {DTYPES})"),
        ({"cast": {"column": "a", "dtype": "unit8"}},
         f"(cast): unknown dtype 'unit8' - did you mean 'uint8'? (valid dtypes: {DTYPES})"),
        ({"cast": {"column": "a", "dtype": 8}}, f"(cast): unknown dtype int 8 (valid dtypes:"
                                                f" {DTYPES})"),
        ({"cast": {"column": "a", "dtype": "int", "strict": "false"}},
         "(cast): strict must be true or false, got str 'false'"),
        ({"cast": {"column": 1, "dtype": "int"}},
         "(cast), column: int 1 is not a column path: quote it ('1') if it names a column, or"
         " write a typed literal such as {int64: 1}"),
        ({"cast": {"column": "a", "dtype": "int", "into": "x"}},
         "(cast): unknown key 'into' (cast takes column, dtype, strict)"),
        # coalesce
        ({"coalesce": []}, "(coalesce): expected a non-empty list of expressions, got an empty"
                           " list"),
        ({"coalesce": {"a": 1}}, "(coalesce): expected a non-empty list of expressions, got a"
                                 " mapping"),
        ({"coalesce": ["a", None]}, "(coalesce), entry 2: null is not an expression: write a"
                                    " column path, or a typed null such as {str: null}"),
        # fill_null
        ({"fill_null": ["a"]}, "(fill_null): fill_null takes a mapping of column, value, got a"
                               " list"),
        ({"fill_null": {"value": 0}}, "(fill_null): column is required (an expression)"),
        ({"fill_null": {"column": "a"}}, "(fill_null): value is required (the value that replaces"
                                         " a null)"),
        ({"fill_null": {"column": "a", "value": [0]}},
         f"(fill_null), value: a list is not an expression (a column path, or a mapping of one"
         f" key: {KEYS})"),
        # typed literals
        ({"int8": 128}, "int 128 is not a valid int8 (a whole number from -128 to 127)"),
        ({"uint8": -1}, "int -1 is not a valid uint8 (a whole number from 0 to 255)"),
        ({"uint64": 2**64}, "int 18446744073709551616 is not a valid uint64 (a whole number from"
                            " 0 to 18446744073709551615)"),
        ({"int64": 1.0}, "float 1.0 is not a valid int64 (a whole number from"
                         " -9223372036854775808 to 9223372036854775807)"),
        ({"int32": True}, "bool True is not a valid int32 (a whole number from -2147483648 to"
                          " 2147483647)"),
        ({"int16": "3"}, "str '3' is not a valid int16 (a whole number from -32768 to 32767)"),
        ({"float": 1e39}, "float 1e+39 is not a valid float (a number a 32-bit float holds: at"
                          " most 3.4e38 either side of 0)"),
        ({"double": 10**400}, f"int {10**400} is not a valid double (a number a 64-bit float"
                              " holds: at most 1.8e308 either side of 0)"),
        ({"double": "1.5"}, "str '1.5' is not a valid double (a number)"),
        ({"double": False}, "bool False is not a valid double (a number)"),
        ({"bool": "true"}, "str 'true' is not a valid bool (true or false)"),
        ({"bool": 1}, "int 1 is not a valid bool (true or false)"),
        ({"str": 34}, "int 34 is not a valid str (a string: quote it, '34')"),
        ({"date": "2024-02-30"}, "str '2024-02-30' is not a valid date (an ISO 8601 date,"
                                 " YYYY-MM-DD)"),
        ({"date": "20240102"}, "str '20240102' is not a valid date (an ISO 8601 date,"
                               " YYYY-MM-DD)"),
        ({"date": "2024-01-02T00:00"}, "str '2024-01-02T00:00' is not a valid date (an ISO 8601"
                                       " date, YYYY-MM-DD)"),
        ({"datetime": "2024-01-02T25:00"},
         "str '2024-01-02T25:00' is not a valid datetime (an ISO 8601 datetime,"
         " YYYY-MM-DD[THH:MM[:SS[.ffffff]]] with an optional offset (Z, +02:00))"),
        ({"datetime": "yesterday"},
         "str 'yesterday' is not a valid datetime (an ISO 8601 datetime,"
         " YYYY-MM-DD[THH:MM[:SS[.ffffff]]] with an optional offset (Z, +02:00))"),
        ({"datetime": 1700000000},
         "int 1700000000 is not a valid datetime (an ISO 8601 datetime,"
         " YYYY-MM-DD[THH:MM[:SS[.ffffff]]] with an optional offset (Z, +02:00))"),
        # sql
        ({"sql": 3}, "sql takes one SQL expression as a string, got int 3"),
        ({"sql": "  "}, "sql takes one SQL expression as a string, got an empty string"),
        ({"sql": "a +* b"}, "sql 'a +* b' is not a SQL expression: at character 4, expected an"
                            " expression, found '*'"),
        ({"sql": "a +\n * b"}, "sql 'a +\\n * b' is not a SQL expression: at line 2, character"
                               " 2, expected an expression, found '*'"),
        ({"sql": "b * (a"}, "sql 'b * (a' is not a SQL expression: it ends where ) was expected"),
        ({"sql": "a = 'x"}, "sql \"a = 'x\" is not a SQL expression: at character 5, unterminated"
                            " string literal"),
        ({"sql": "CAST(a AS)"}, "sql 'CAST(a AS)' is not a SQL expression: at character 10,"
                                " expected a data type name, found ')'"),
        ({"sql": "a, b"}, "sql 'a, b' is not a SQL expression Polars reads: invalid expression"
                          " (found unexpected token ',')"),
        ({"sql": "SELECT a"}, "sql 'SELECT a' is not a SQL expression Polars reads: expected an"
                              " expression (found 'SELECT' clause)"),
        ({"sql": "frobnicate(a)"}, "sql 'frobnicate(a)' is not a SQL expression Polars reads:"
                                   " unsupported function 'frobnicate'"),
    ],
)  # fmt: skip
def test_parse_errors(raw: Any, message: str) -> None:
    separator = " " if message.startswith("(") else ": "
    assert errors(raw) == [f"here{separator}{message}"]


def test_every_problem_of_a_nested_expression_is_reported() -> None:
    raw = {
        "format": {
            "template": "{} {} {",
            "columns": ["a", {"concat": {"columns": [1, {"int8": 999}], "sep": "-"}}, "b"],
        }
    }
    assert errors(raw) == [
        "here (format), entry 2 of columns (concat): unknown key 'sep' (concat takes columns,"
        " cols, separator, ignore_nulls)",
        "here (format): template '{} {} {' has an unmatched '{' at character 7 (write {} for a"
        " value, {{ and }} for a literal brace)",
    ]
    raw = {"coalesce": [{"concat": {"columns": [1, {"int8": 999}]}}, "a..b"]}
    assert errors(raw) == [
        "here (coalesce), entry 1 (concat), entry 1 of columns: int 1 is not a column path: quote"
        " it ('1') if it names a column, or write a typed literal such as {int64: 1}",
        "here (coalesce), entry 1 (concat), entry 2 of columns: int 999 is not a valid int8 (a"
        " whole number from -128 to 127)",
        "here (coalesce), entry 2: column path 'a..b' has an empty part",
    ]


@pytest.mark.parametrize("raw", [["a"], {"a": 1}])
def test_a_list_or_a_mapping_is_no_literal_where_scalars_are_literals(raw: Any) -> None:
    assert len(errors(raw, "literal")) == 1


def test_a_variable_in_a_format_template_is_warned_about() -> None:
    found = Findings(variables={"HOME"})
    raw = {"format": {"template": "$HOME/{}/$OTHER", "columns": ["a"]}}
    assert parse_expr(raw, "here", found) == Format("$HOME/{}/$OTHER", (Column("a"),))
    assert found.errors == []
    assert found.warnings == [
        "here (format): template '$HOME/{}/$OTHER' contains $HOME, which a format template does"
        " not expand: the text stays as written (variables are expanded in paths and URLs)"
    ]
