"""Models: parsing the `model` section, reshaping frames strictly, explaining lazy cast failures,
and checking constraints."""

from __future__ import annotations

from datetime import date, datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from polars.testing import assert_frame_equal, assert_series_equal

from capport_dagster.core import models
from capport_dagster.core.config import Entry
from capport_dagster.core.models import (
    DTYPES,
    FORMAT_DTYPES,
    Model,
    ModelColumn,
    explain_cast_failure,
    parse_model,
    reshape,
)
from capport_dagster.core.yaml_source import parse_yaml
from capport_dagster.errors import (
    ConfigError,
    Location,
    ModelCastError,
    TaskError,
    ValidationError,
)

LOC = Location(file="models.yml", section="model", name="person")
STAGE = Location(stage="load", index=1)
UTC = ZoneInfo("UTC")
NYC = ZoneInfo("America/New_York")
VALID = ", ".join(DTYPES)


def model(body: Any, name: str = "person") -> Model:
    return parse_model(Entry("model", name, body, LOC))


def one(dtype: str, name: str = "c") -> Model:
    return model({name: dtype})


def test_public_api() -> None:
    assert set(models.__all__) == {
        "CHECKED_CONSTRAINTS",
        "DTYPES",
        "FORMAT_DTYPES",
        "Model",
        "ModelColumn",
        "explain_cast_failure",
        "parse_model",
        "reshape",
    }


# -- parsing: valid ------------------------------------------------------------------------------

EXPECTED_DTYPES = {
    "int": pl.Int64(),
    "int8": pl.Int8(),
    "int16": pl.Int16(),
    "int32": pl.Int32(),
    "int64": pl.Int64(),
    "uint8": pl.UInt8(),
    "uint16": pl.UInt16(),
    "uint32": pl.UInt32(),
    "uint64": pl.UInt64(),
    "float": pl.Float32(),
    "double": pl.Float64(),
    "str": pl.String(),
    "char": pl.String(),
    "bool": pl.Boolean(),
    "time": pl.Time(),
    "date": pl.Date(),
    "datetime_utc": pl.Datetime("ms", "UTC"),
    "datetime_nyt": pl.Datetime("ms", "America/New_York"),
    "list[str]": pl.List(pl.String()),
    "list[int]": pl.List(pl.Int64()),
    "list[double]": pl.List(pl.Float64()),
}


def test_every_dtype_of_the_spec_and_nothing_else() -> None:
    assert list(DTYPES) == list(EXPECTED_DTYPES)


@pytest.mark.parametrize(("name", "dtype"), EXPECTED_DTYPES.items())
def test_parse_each_dtype(name: str, dtype: pl.DataType) -> None:
    assert one(name).columns == (ModelColumn("c", name, dtype),)


def test_parse_full_model() -> None:
    parsed = model(
        {
            "id": {"dtype": "uint64", "constraints": ["primary", "foreign", "primary"]},
            "full_name": "str",
            "deathdate?": "date",
            "code": {"dtype": "char", "constraints": "unique"},
            "tags?": {"dtype": "list[str]", "constraints": None},
        }
    )
    assert parsed == Model(
        "person",
        (
            ModelColumn("id", "uint64", pl.UInt64(), False, ("primary", "foreign")),
            ModelColumn("full_name", "str", pl.String()),
            ModelColumn("deathdate", "date", pl.Date(), True),
            ModelColumn("code", "char", pl.String(), False, ("unique",)),
            ModelColumn("tags", "list[str]", pl.List(pl.String()), True),
        ),
        LOC,
    )
    assert parsed.names == ("id", "full_name", "deathdate", "code", "tags")
    assert parsed.checks == (("id", "primary"), ("code", "unique"))


@pytest.mark.parametrize(
    ("dtype", "text_format"),
    [
        ("date", "%m/%d/%Y"),
        ("time", "%I:%M %p"),
        ("datetime_utc", "%d.%m.%Y %H:%M"),
        ("datetime_nyt", "%Y-%m-%dT%H:%M:%S%#z"),
        ("datetime_utc", "%s"),
    ],
)
def test_parse_a_format(dtype: str, text_format: str) -> None:
    parsed = model({"c": {"dtype": dtype, "format": text_format, "constraints": ["not_null"]}})
    assert parsed.columns == (
        ModelColumn("c", dtype, DTYPES[dtype], False, ("not_null",), text_format),
    )


def test_format_dtypes() -> None:
    assert FORMAT_DTYPES == ("date", "time", "datetime_utc", "datetime_nyt")


def test_reading_dtypes_keep_every_valid_value() -> None:
    """What `load_csv` asks the CSV reader for: integers as themselves, floats as f64 (an f32
    overflow is then refused by the model), everything the model parses itself as text."""
    parsed = model({name: name for name in DTYPES})
    assert parsed.reading_dtypes() == {
        "int": pl.Int64(),
        "int8": pl.Int8(),
        "int16": pl.Int16(),
        "int32": pl.Int32(),
        "int64": pl.Int64(),
        "uint8": pl.UInt8(),
        "uint16": pl.UInt16(),
        "uint32": pl.UInt32(),
        "uint64": pl.UInt64(),
        "float": pl.Float64(),
        "double": pl.Float64(),
        "str": pl.String(),
        "char": pl.String(),
        "bool": pl.String(),
        "time": pl.String(),
        "date": pl.String(),
        "datetime_utc": pl.String(),
        "datetime_nyt": pl.String(),
        "list[str]": pl.String(),
        "list[int]": pl.String(),
        "list[double]": pl.String(),
    }


# -- parsing: invalid ----------------------------------------------------------------------------

FORMAT_FOR = (
    "format is for date, time, datetime_utc and datetime_nyt columns (how their text is read)"
)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (["id"], "a model is a mapping of column name -> dtype, got a list"),
        (None, "a model is a mapping of column name -> dtype, got null"),
        ({}, "a model needs at least one column"),
        (
            {"id": "uint46"},
            f"column 'id': unknown dtype 'uint46' - did you mean 'uint64'? (valid dtypes: {VALID})",
        ),
        (
            {"id": "integer"},
            f"column 'id': unknown dtype 'integer' - did you mean 'int'? (valid dtypes: {VALID})",
        ),
        ({"id": "blob"}, f"column 'id': unknown dtype 'blob' (valid dtypes: {VALID})"),
        (
            {"id": 5},
            "column 'id': dtype must be a name or a mapping with dtype, constraints and format,"
            f" got int 5 (valid dtypes: {VALID})",
        ),
        (
            {"id": {"constraints": ["primary"]}},
            f"column 'id': dtype is required (valid dtypes: {VALID})",
        ),
        (
            {"id": {"dtype": "int", "constraint": ["primary"]}},
            "column 'id': unknown key 'constraint' - did you mean 'constraints'?"
            " (a column mapping takes dtype, constraints and format)",
        ),
        (
            {"id": {"dtype": "int", "constraints": [1]}},
            "column 'id': constraints must be a list of names such as"
            " [primary, unique, not_null], got a list",
        ),
        ({"id": "int", "id?": "str"}, "column 'id' is defined twice"),
        ({"?": "int"}, "column name '?' must be a non-empty string"),
        ({3: "int"}, "column name 3 must be a non-empty string"),
        # formats
        ({"id": {"dtype": "int", "format": "%Y"}}, f"column 'id': {FORMAT_FOR}, not int"),
        ({"id": {"dtype": "char", "format": "%Y"}}, f"column 'id': {FORMAT_FOR}, not char"),
        (
            {"d": {"dtype": "date", "format": 5}},
            "column 'd': format must be a strftime pattern such as '%m/%d/%Y', got int 5",
        ),
        (
            {"d": {"dtype": "date", "format": ""}},
            "column 'd': format must be a strftime pattern such as '%m/%d/%Y', got str ''",
        ),
        (
            {"d": {"dtype": "date", "format": "%Q"}},
            "column 'd': format '%Q' is not a strftime pattern Polars knows (cannot format"
            " timezone-aware Datetime with format '%Q')",
        ),
        (
            {"d": {"dtype": "date", "format": "%Y-%m"}},
            "column 'd': format '%Y-%m' does not read a whole date: '2001-02', a value written"
            " with it, reads back as 2001-02-01",
        ),
        (
            {"d": {"dtype": "datetime_utc", "format": "%H:%M"}},
            "column 'd': format '%H:%M' does not read a whole date: '04:05', a value written"
            " with it, reads back as 0001-01-01 04:05:00+00:00",
        ),
        (
            {"t": {"dtype": "time", "format": "%M:%S"}},
            "column 't': format '%M:%S' does not read a time of day: '05:06', a value written"
            " with it, reads back as None",
        ),
        (
            {"d": {"dtype": "datetime_utc", "constraints": ["unique"], "fmt": "%Y"}},
            "column 'd': unknown key 'fmt' - did you mean 'format'? (a column mapping takes"
            " dtype, constraints and format)",
        ),
    ],
)
def test_parse_errors(body: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        model(body)
    assert type(info.value) is ConfigError
    assert info.value.message == message
    assert info.value.location == LOC


def test_parse_reports_every_bad_column_with_its_line() -> None:
    text = "model:\n  person:\n    id: uint46\n    name: str\n    born: daet\n"
    body = parse_yaml(text, "models.yml")["model"]["person"]
    with pytest.raises(ValidationError) as info:
        model(body)
    assert [(p.location.line, p.message) for p in info.value.problems] == [
        (
            3,
            f"column 'id': unknown dtype 'uint46' - did you mean 'uint64'? (valid dtypes: {VALID})",
        ),
        (5, f"column 'born': unknown dtype 'daet' - did you mean 'date'? (valid dtypes: {VALID})"),
    ]
    assert str(info.value).startswith("the configuration has 2 errors:\n  error: models.yml:3:5,")


# -- reshape: valid ------------------------------------------------------------------------------

CONVERSIONS = [
    ("int", pl.Series(["1", "-2", None]), pl.Series([1, -2, None], dtype=pl.Int64)),
    ("int8", pl.Series([1, -128]), pl.Series([1, -128], dtype=pl.Int8)),
    ("int16", pl.Series(["300"]), pl.Series([300], dtype=pl.Int16)),
    ("int32", pl.Series([1.9]), pl.Series([1], dtype=pl.Int32)),
    ("int64", pl.Series([True, False]), pl.Series([1, 0], dtype=pl.Int64)),
    ("uint8", pl.Series([255]), pl.Series([255], dtype=pl.UInt8)),
    ("uint16", pl.Series(["65535"]), pl.Series([65535], dtype=pl.UInt16)),
    ("uint32", pl.Series([7]), pl.Series([7], dtype=pl.UInt32)),
    ("uint64", pl.Series(["18446744073709551615"]), pl.Series([2**64 - 1], dtype=pl.UInt64)),
    ("float", pl.Series(["1.5"]), pl.Series([1.5], dtype=pl.Float32)),
    ("double", pl.Series([1, None]), pl.Series([1.0, None], dtype=pl.Float64)),
    ("str", pl.Series([1, None]), pl.Series(["1", None], dtype=pl.String)),
    ("char", pl.Series(["a", "", None]), pl.Series(["a", "", None])),
    ("char", pl.Series([7]), pl.Series(["7"])),
    (
        "bool",
        pl.Series(["true", "FALSE", "1", "0", None]),
        pl.Series([True, False, True, False, None]),
    ),
    ("bool", pl.Series([0, 2]), pl.Series([False, True])),
    (
        "time",
        pl.Series(["10:00", "10:00:01.5", None]),
        pl.Series([time(10), time(10, 0, 1, 500000), None]),
    ),
    ("time", pl.Series([datetime(2024, 1, 2, 9, 30)]), pl.Series([time(9, 30)])),
    ("date", pl.Series(["2024-01-02", None]), pl.Series([date(2024, 1, 2), None])),
    ("date", pl.Series([datetime(2024, 1, 2, 23, 59)]), pl.Series([date(2024, 1, 2)])),
    # naive text is a wall time in the model's zone; an offset keeps the instant
    (
        "datetime_utc",
        pl.Series(["2024-01-02 09:30:00.123456"]),
        pl.Series(
            [datetime(2024, 1, 2, 9, 30, 0, 123000, tzinfo=UTC)], dtype=pl.Datetime("ms", "UTC")
        ),
    ),
    (
        "datetime_utc",
        pl.Series(["2024-01-02T09:30:00+02:00"]),
        pl.Series([datetime(2024, 1, 2, 7, 30, tzinfo=UTC)], dtype=pl.Datetime("ms", "UTC")),
    ),
    (
        "datetime_nyt",
        pl.Series(["2024-01-02 09:30:00", None]),
        pl.Series(
            [datetime(2024, 1, 2, 9, 30, tzinfo=NYC), None],
            dtype=pl.Datetime("ms", "America/New_York"),
        ),
    ),
    (
        "datetime_nyt",
        pl.Series([datetime(2024, 1, 2, 9, 30)]),
        pl.Series(
            [datetime(2024, 1, 2, 9, 30, tzinfo=NYC)], dtype=pl.Datetime("ms", "America/New_York")
        ),
    ),
    (
        "datetime_nyt",
        pl.Series([datetime(2024, 1, 2, 14, 30)], dtype=pl.Datetime("us", "UTC")),
        pl.Series(
            [datetime(2024, 1, 2, 9, 30, tzinfo=NYC)], dtype=pl.Datetime("ms", "America/New_York")
        ),
    ),
    (
        "datetime_utc",
        pl.Series([date(2024, 1, 2)]),
        pl.Series([datetime(2024, 1, 2, tzinfo=UTC)], dtype=pl.Datetime("ms", "UTC")),
    ),
    ("list[str]", pl.Series([["a", None], None]), pl.Series([["a", None], None])),
    ("list[int]", pl.Series([["1", "2"], []]), pl.Series([[1, 2], []], dtype=pl.List(pl.Int64))),
    ("list[double]", pl.Series([[1, 2]]), pl.Series([[1.0, 2.0]])),
    ("date", pl.Series([None, None]), pl.Series([None, None], dtype=pl.Date)),
    # ISO 8601 shapes, each value on its own: wall times in the model's zone, offsets instants
    (
        "datetime_utc",
        pl.Series(
            [
                "2024-01-02T09:30:00+02:00",
                "2024-01-02 09:30",
                "2024-01-02",
                "2024-01-02T09:30:00.5Z",
                "2024-01-02T09:30-0500",
                "2024-01-02T09:30:00",
                "2024-01-02 09:30:00.25+01",
                None,
            ]
        ),
        pl.Series(
            [
                datetime(2024, 1, 2, 7, 30, tzinfo=UTC),
                datetime(2024, 1, 2, 9, 30, tzinfo=UTC),
                datetime(2024, 1, 2, tzinfo=UTC),
                datetime(2024, 1, 2, 9, 30, 0, 500000, tzinfo=UTC),
                datetime(2024, 1, 2, 14, 30, tzinfo=UTC),
                datetime(2024, 1, 2, 9, 30, tzinfo=UTC),
                datetime(2024, 1, 2, 8, 30, 0, 250000, tzinfo=UTC),
                None,
            ],
            dtype=pl.Datetime("ms", "UTC"),
        ),
    ),
    (
        "datetime_nyt",
        pl.Series(["2024-07-02 09:30:00", "2024-07-02T09:30:00Z", "2024-01-02"]),
        pl.Series(
            [
                datetime(2024, 7, 2, 9, 30, tzinfo=NYC),
                datetime(2024, 7, 2, 5, 30, tzinfo=NYC),
                datetime(2024, 1, 2, tzinfo=NYC),
            ],
            dtype=pl.Datetime("ms", "America/New_York"),
        ),
    ),
    # numbers are epoch seconds, in UTC
    (
        "datetime_utc",
        pl.Series([1_700_000_000, -1, None]),
        pl.Series(
            [
                datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC),
                datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
                None,
            ],
            dtype=pl.Datetime("ms", "UTC"),
        ),
    ),
    (
        "datetime_nyt",
        pl.Series([1_700_000_000], dtype=pl.UInt64),
        pl.Series(
            [datetime(2023, 11, 14, 17, 13, 20, tzinfo=NYC)],
            dtype=pl.Datetime("ms", "America/New_York"),
        ),
    ),
    (
        "datetime_utc",
        pl.Series([1_700_000_000.25, -0.0015]),
        pl.Series(
            [
                datetime(2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC),
                datetime(1969, 12, 31, 23, 59, 59, 998000, tzinfo=UTC),
            ],
            dtype=pl.Datetime("ms", "UTC"),
        ),
    ),
    (
        "datetime_utc",
        pl.Series([-62_135_596_800, 253_402_300_799]),
        pl.Series(
            [datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)],
            dtype=pl.Datetime("ms", "UTC"),
        ),
    ),
    ("date", pl.Series([1_700_000_000, 86_399]), pl.Series([date(2023, 11, 14), date(1970, 1, 1)])),
    # floats: infinity only from infinity
    (
        "float",
        pl.Series(["inf", "-Infinity", "3.4e38", "NaN"]),
        pl.Series([float("inf"), float("-inf"), 3.4e38, float("nan")], dtype=pl.Float32),
    ),
    ("float", pl.Series([float("-inf"), 1.5]), pl.Series([float("-inf"), 1.5], dtype=pl.Float32)),
    ("double", pl.Series(["1e300", "-INF"]), pl.Series([1e300, float("-inf")])),
]


@pytest.mark.parametrize(("dtype", "given", "expected"), CONVERSIONS)
@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_reshape_converts(dtype: str, given: pl.Series, expected: pl.Series, lazy: bool) -> None:
    frame = pl.DataFrame({"c": given})
    result = reshape(frame.lazy(), one(dtype)).collect() if lazy else reshape(frame, one(dtype))
    assert_series_equal(result["c"], expected.alias("c"))


def test_reshape_selects_model_columns_in_order_and_fills_optional() -> None:
    parsed = model({"id": "int", "name": "str", "born?": "date", "tags?": "list[int]"})
    frame = pl.DataFrame({"extra": [0, 0], "name": ["a", "b"], "id": ["2", "1"]})
    expected = pl.DataFrame(
        {"id": [2, 1], "name": ["a", "b"], "born": [None, None], "tags": [None, None]},
        schema={"id": pl.Int64, "name": pl.String, "born": pl.Date, "tags": pl.List(pl.Int64)},
    )
    assert_frame_equal(reshape(frame, parsed), expected)
    assert_frame_equal(reshape(frame.lazy(), parsed).collect(), expected)


def test_reshape_of_a_lazy_frame_reads_no_data() -> None:
    calls: list[int] = []

    def spy(series: pl.Series) -> pl.Series:
        calls.append(len(series))
        return series

    lazy = pl.LazyFrame({"id": ["1", "x"]}).with_columns(pl.col("id").map_batches(spy, pl.String))
    result = reshape(lazy, one("int", "id"))
    assert isinstance(result, pl.LazyFrame)
    assert calls == []
    with pytest.raises(pl.exceptions.InvalidOperationError):
        result.collect()
    assert calls == [2]


# -- reshape: invalid ----------------------------------------------------------------------------


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"ids": [1], "name": ["a"]},
            "model 'person': required column 'id' is missing - did you mean 'ids'?"
            " (the data has columns: ids, name)",
        ),
        (
            {"x": [1]},
            "model 'person': required columns 'id', 'name' are missing (the data has columns: x)",
        ),
    ],
)
def test_reshape_missing_required_column(columns: dict, message: str, lazy: bool) -> None:
    frame = pl.DataFrame(columns)
    with pytest.raises(TaskError) as info:
        reshape(
            frame.lazy() if lazy else frame,
            model({"id": "int", "name": "str", "b?": "int"}),
            location=STAGE,
        )
    assert info.value.message == message
    assert info.value.location == STAGE


@pytest.mark.parametrize(
    ("given", "dtype", "label"),
    [
        (pl.Series(["1,2"]), "list[int]", "str"),
        (pl.Series([5]), "time", "i64"),  # Polars: nanoseconds since midnight
        (pl.Series([5.5]), "time", "f64"),
    ],
)
def test_reshape_refuses_a_column_type_before_any_data(
    given: pl.Series, dtype: str, label: str
) -> None:
    for frame in (pl.DataFrame({"c": given}), pl.LazyFrame({"c": given})):
        with pytest.raises(ModelCastError) as info:
            reshape(frame, one(dtype), location=STAGE)
        assert info.value.message == (
            f"model 'person', column 'c': cannot cast a column of type {label} to {dtype}"
        )
        assert info.value.location == STAGE


@pytest.mark.parametrize(
    ("spec", "given", "expected"),
    [
        (
            {"dtype": "date", "format": "%m/%d/%Y"},
            pl.Series(["03/10/2024", None]),
            pl.Series([date(2024, 3, 10), None]),
        ),
        (
            {"dtype": "time", "format": "%I:%M %p"},
            pl.Series(["02:05 PM"]),
            pl.Series([time(14, 5)]),
        ),
        # a wall-clock pattern: a time in the model's zone
        (
            {"dtype": "datetime_nyt", "format": "%d.%m.%Y %H:%M"},
            pl.Series(["10.07.2024 14:00"]),
            pl.Series(
                [datetime(2024, 7, 10, 14, tzinfo=NYC)],
                dtype=pl.Datetime("ms", "America/New_York"),
            ),
        ),
        # an offset, or epoch seconds: an instant
        (
            {"dtype": "datetime_nyt", "format": "%d.%m.%Y %H:%M %z"},
            pl.Series(["10.07.2024 14:00 +0000"]),
            pl.Series(
                [datetime(2024, 7, 10, 10, tzinfo=NYC)],
                dtype=pl.Datetime("ms", "America/New_York"),
            ),
        ),
        (
            {"dtype": "datetime_nyt", "format": "%s"},
            pl.Series(["1700000000"]),
            pl.Series(
                [datetime(2023, 11, 14, 17, 13, 20, tzinfo=NYC)],
                dtype=pl.Datetime("ms", "America/New_York"),
            ),
        ),
        # a format describes text; other sources convert as usual
        (
            {"dtype": "date", "format": "%m/%d/%Y"},
            pl.Series([datetime(2024, 1, 2, 23, 59)]),
            pl.Series([date(2024, 1, 2)]),
        ),
    ],
)
@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_reshape_reads_text_with_the_columns_format(
    spec: dict, given: pl.Series, expected: pl.Series, lazy: bool
) -> None:
    parsed = model({"c": spec})
    frame = pl.DataFrame({"c": given})
    result = reshape(frame.lazy(), parsed).collect() if lazy else reshape(frame, parsed)
    assert_series_equal(result["c"], expected.alias("c"))


@pytest.mark.parametrize(
    ("spec", "values", "value", "dtype"),
    [
        (
            {"dtype": "date", "format": "%m/%d/%Y"},
            ["03/10/2024", "2024-03-10"],
            "'2024-03-10'",
            "date",
        ),
        ({"dtype": "time", "format": "%I:%M %p"}, ["14:05"], "'14:05'", "time"),
        (
            {"dtype": "datetime_utc", "format": "%d.%m.%Y %H:%M"},
            ["10.07.2024 14:00", "2024-07-10 14:00"],
            "'2024-07-10 14:00'",
            "datetime_utc",
        ),
    ],
)
def test_text_not_in_the_columns_format_fails_eager_and_lazy(
    spec: dict, values: list, value: str, dtype: str
) -> None:
    parsed = model({"c": spec})
    message = f"model 'person', column 'c': cannot cast value {value} to {dtype}"
    with pytest.raises(ModelCastError) as info:
        reshape(pl.DataFrame({"c": values}), parsed)
    assert (
        info.value.message
        == f"{message} (1 of {len(values)} value{'s' * (len(values) > 1)} failed)"
    )
    for engine in ("in-memory", "streaming"):
        with pytest.raises(pl.exceptions.PolarsError) as lazy_info:
            reshape(pl.LazyFrame({"c": values}), parsed).collect(engine=engine)  # type: ignore[call-overload]
        explained = explain_cast_failure(lazy_info.value, [parsed], STAGE)
        assert explained is not None
        assert explained.message == f"{message} (at least 1 value failed)"


@pytest.mark.parametrize(
    ("field", "shown"),
    [("x", "'x'"), ('"x,y"', "'x,y'"), ('"say ""hi"""', "'say \"hi\"'"), ("3`0", "'3`0'")],
)
@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
def test_a_value_the_csv_reader_refuses_is_explained(
    tmp_path: Path, field: str, shown: str, engine: str
) -> None:
    """Integers are read as the model's dtype (`Model.reading_dtypes`): the reader refuses a
    bad one itself, naming the raw field, which the message shows as the reader unquotes it."""
    parsed = model({"id": "int8", "n": "int"})
    path = tmp_path / "raw.csv"
    path.write_text(f"n,id\n1,5\n2,{field}\n")
    plan = reshape(pl.scan_csv(path, schema_overrides=parsed.reading_dtypes()), parsed)
    with pytest.raises(pl.exceptions.PolarsError) as info:
        plan.collect(engine=engine)  # type: ignore[call-overload]
    explained = explain_cast_failure(info.value, [parsed], STAGE)
    assert explained is not None
    assert explained.message == (
        f"model 'person', column 'id': cannot cast value {shown} to int8 (at least 1 value failed)"
    )
    assert explain_cast_failure(info.value, [one("int8", "other")], STAGE) is None


CAST_FAILURES = [
    ("int", ["1", "x", None], "'x'", "1 of 3 values"),
    ("int8", [1, 300], "300", "1 of 2 values"),
    ("int16", ["1e9"], "'1e9'", "1 of 1 value"),
    ("int32", [float("nan")], "NaN", "1 of 1 value"),
    ("int64", ["9223372036854775808"], "'9223372036854775808'", "1 of 1 value"),
    ("uint8", [-1, 2, -3], "-1", "2 of 3 values"),
    ("uint16", ["-1"], "'-1'", "1 of 1 value"),
    ("uint32", ["a"], "'a'", "1 of 1 value"),
    ("uint64", ["1", "2", "x"], "'x'", "1 of 3 values"),
    ("float", ["1.5", "one"], "'one'", "1 of 2 values"),
    ("double", ["pi"], "'pi'", "1 of 1 value"),
    ("char", ["a", "ab"], "'ab'", "1 of 2 values"),
    ("bool", ["true", "yes"], "'yes'", "1 of 2 values"),
    ("time", ["10:00", "25:00"], "'25:00'", "1 of 2 values"),
    ("date", ["2024-01-02", "2024-02-30"], "'2024-02-30'", "1 of 2 values"),
    ("datetime_utc", ["2024-01-02 10:00:00", "soon"], "'soon'", "1 of 2 values"),
    ("datetime_nyt", ["2024-01-02 10:00:00", "later"], "'later'", "1 of 2 values"),
    ("list[int]", [["1", "x"]], "['1', 'x']", "1 of 1 value"),
    ("list[double]", [["1.5", "x"]], "['1.5', 'x']", "1 of 1 value"),
    # ISO 8601 only: no guessing of day- or month-first
    ("date", ["2024-01-02", "03/10/2024"], "'03/10/2024'", "1 of 2 values"),
    ("date", ["2024-01-02T00:00:00"], "'2024-01-02T00:00:00'", "1 of 1 value"),
    ("datetime_utc", ["2024-01-02", "03/10/2024 10:00"], "'03/10/2024 10:00'", "1 of 2 values"),
    ("datetime_nyt", ["2024-01-02T25:00"], "'2024-01-02T25:00'", "1 of 1 value"),
    ("datetime_utc", ["2024-01-02T10:00:00+25:00"], "'2024-01-02T10:00:00+25:00'", "1 of 1 value"),
    # epoch seconds outside years 1..9999
    ("datetime_utc", [0, 10**15], "'1000000000000000'", "1 of 2 values"),
    ("datetime_nyt", [-62_135_596_801], "'-62135596801'", "1 of 1 value"),
    ("date", [float("nan"), 1.0], "'NaN'", "1 of 2 values"),
    # a finite value that would become infinite
    ("float", ["1.5", "1e40", "inf"], "'1e40'", "1 of 3 values"),
    ("float", [1e40, -1e39, 1.5], "'1e+40'", "2 of 3 values"),
    ("double", ["1e400"], "'1e400'", "1 of 1 value"),
    # a lazy failure quotes the text a number was checked as, so the eager one does too
    ("char", [7, 77], "'77'", "1 of 2 values"),
]


@pytest.mark.parametrize(("dtype", "values", "value", "count"), CAST_FAILURES)
def test_eager_cast_failure_names_model_column_dtype_and_value(
    dtype: str, values: list, value: str, count: str
) -> None:
    with pytest.raises(ModelCastError) as info:
        reshape(pl.DataFrame({"c": values}), one(dtype), location=STAGE)
    assert info.value.message == (
        f"model 'person', column 'c': cannot cast value {value} to {dtype} ({count} failed)"
    )
    assert info.value.location == STAGE


@pytest.mark.parametrize(("dtype", "values", "value", "count"), CAST_FAILURES)
@pytest.mark.parametrize("engine", ["in-memory", "streaming"])
def test_lazy_cast_failure_is_explained(
    dtype: str, values: list, value: str, count: str, engine: str
) -> None:
    plan = reshape(pl.LazyFrame({"c": values}), one(dtype))
    with pytest.raises(pl.exceptions.PolarsError) as info:
        plan.collect(engine=engine)  # type: ignore[call-overload]
    explained = explain_cast_failure(info.value, [one("int", "other"), one(dtype)], STAGE)
    assert explained is not None
    assert explained.location == STAGE
    # Polars counts failures per batch when it streams, so a lazy failure says "at least".
    failed = int(count.split()[0])
    tally = f"at least {failed} value{'s' if failed != 1 else ''} failed"
    if dtype.startswith("list"):  # recent Polars names the failing element, older the list
        assert explained.message in (
            f"model 'person', column 'c': cannot cast value 'x' to {dtype} (at least 1 value"
            " failed)",
            f"model 'person', column 'c': cannot cast value {value} to {dtype} ({tally})",
        )
    elif engine == "in-memory":
        assert explained.message == (
            f"model 'person', column 'c': cannot cast value {value} to {dtype} ({tally})"
        )
    else:  # the streaming engine's batches may split the failures differently
        prefix = f"model 'person', column 'c': cannot cast value {value} to {dtype} (at least "
        assert explained.message.startswith(prefix)


def test_eager_failure_with_a_dst_gap_in_another_column() -> None:
    frame = pl.DataFrame({"id": ["x"], "ts": ["2024-03-10 02:30:00"]})
    with pytest.raises(ModelCastError, match=r"column '(id|ts)': cannot cast value"):
        reshape(frame, model({"id": "int", "ts": "datetime_nyt"}))


def test_eager_failure_reports_the_first_bad_column_in_model_order() -> None:
    frame = pl.DataFrame({"a": ["1", "x"], "b": ["y", "2"]})
    with pytest.raises(ModelCastError, match=r"column 'b': cannot cast value 'y' to int \("):
        reshape(frame, model({"b": "int", "a": "int"}))


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("2024-03-10 02:30:00", "skips"),
        ("2024-11-03 01:30:00", "repeats"),
    ],
)
@pytest.mark.parametrize("source", ["text", "naive datetime"])
def test_daylight_saving_wall_times_fail_eager_and_lazy(value: str, why: str, source: str) -> None:
    frame = pl.DataFrame({"ts": [value]})
    if source != "text":
        frame = frame.with_columns(pl.col("ts").str.to_datetime())
    message = (
        f"model 'person', column 'ts': cannot cast value '{value}' to datetime_nyt"
        f" (a daylight saving change {why} that wall time in America/New_York)"
    )
    parsed = one("datetime_nyt", "ts")
    with pytest.raises(ModelCastError) as info:
        reshape(frame, parsed)
    assert info.value.message == message
    with pytest.raises(pl.exceptions.ComputeError) as lazy_info:
        reshape(frame.lazy(), parsed).collect()
    explained = explain_cast_failure(lazy_info.value, [parsed], STAGE)
    assert explained is not None and explained.message == message


@pytest.mark.parametrize(
    "error",
    [
        ValueError("boom"),
        pl.exceptions.ColumnNotFoundError('unable to find column "c"'),
        # a cast of another column, or of this column to another dtype, is not the model's
        pl.exceptions.InvalidOperationError(
            "conversion from `str` to `u64` failed in column 'other' for 1 out of 1 values: [\"x\"]"
        ),
        pl.exceptions.InvalidOperationError(
            "conversion from `str` to `i32` failed in column 'c' for 1 out of 1 values: [\"x\"]"
        ),
        pl.exceptions.ComputeError(
            "datetime '2024-03-10 02:30:00' is non-existent in time zone 'Europe/Paris'"
        ),
    ],
)
def test_explain_ignores_other_errors(error: Exception) -> None:
    assert explain_cast_failure(error, [one("uint64")], STAGE) is None


def test_explain_without_column_name_needs_one_candidate() -> None:
    error = pl.exceptions.InvalidOperationError(
        "conversion from `str` to `date` failed in column '_POLARS_TMP_0' for 2 out of 9 values:"
        ' ["x, \\"y\\"", "z"]'
    )
    explained = explain_cast_failure(error, [model({"a": "int", "b": "date"})], STAGE)
    assert explained is not None
    assert explained.message == (
        "model 'person', column 'b': cannot cast value 'x, \"y\"' to date"
        " (at least 2 values failed)"
    )
    assert explain_cast_failure(error, [model({"a": "date", "b": "date"})], STAGE) is None
