"""The `uniform_id_type` step: a non-strict cast of id columns (default uint64), as capport."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.models import DTYPES
from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps.uniform_id import UniformIdStep
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import ConfigError, Location, TaskError
from tests.conftest import run_transform

LOC = Location(file="t.yml", section="transform", name="t")
MODES = pytest.mark.parametrize("mode", list(RunMode))


@MODES
def test_default_is_uint64_and_a_value_that_does_not_convert_is_null(
    tmp_path: Any, mode: RunMode
) -> None:
    frame = pl.DataFrame(
        {"a": ["12", "x", None, "-1"], "name": ["p", "q", "r", "s"], "b": [1, 2, -3, 4]}
    )
    steps = [{"uniform_id_type": {"include": ["a", "b"]}}]
    got = run_transform(tmp_path, steps, {"A": frame}, mode)
    expected = pl.DataFrame(
        {
            "a": pl.Series([12, None, None, None], dtype=pl.UInt64),
            "name": ["p", "q", "r", "s"],
            "b": pl.Series([1, 2, None, 4], dtype=pl.UInt64),
        }
    )
    assert_frame_equal(got, expected)


@MODES
def test_into_names_a_model_dtype(tmp_path: Any, mode: RunMode) -> None:
    frame = pl.DataFrame({"id": [1, 300], "other": ["7", "8"]})
    steps = [
        {"uniform_id_type": {"include": "id", "into": "uint8"}},
        {"uniform_id_type": {"include": "other", "into": "str"}},
        {"uniform_id_type": {"include": "other", "into": "int32"}},
    ]
    got = run_transform(tmp_path, steps, {"A": frame}, mode)
    expected = pl.DataFrame(
        {
            "id": pl.Series([1, None], dtype=pl.UInt8),
            "other": pl.Series([7, 8], dtype=pl.Int32),
        }
    )
    assert_frame_equal(got, expected)


def test_into_null_is_the_default() -> None:
    transform = parse_transform("t", [{"uniform_id_type": {"include": "a", "into": None}}], LOC)
    assert transform.steps == (UniformIdStep(("a",), "uint64"),)


# -- errors --------------------------------------------------------------------------------------

VALID = ", ".join(DTYPES)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            None,
            "expected a mapping with include (the columns) and into (a dtype, default uint64),"
            " got null",
        ),
        ({"into": "int32"}, "include is required (a list of columns)"),
        (
            {"include": "id", "into": "uint46"},
            f"into: unknown dtype 'uint46' - did you mean 'uint64'? (valid dtypes: {VALID})",
        ),
        ({"include": "id", "into": 5}, f"into: unknown dtype 5 (valid dtypes: {VALID})"),
        (
            {"include": "id", "to": "int32"},
            "unknown key 'to' - did you mean 'into'? (uniform_id_type takes include, into)",
        ),
    ],
)
def test_parse_errors(args: Any, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_transform("t", [{"uniform_id_type": args}], LOC)
    assert info.value.message == f"step 1 (uniform_id_type): {message}"


def test_check_errors() -> None:
    frame = pl.LazyFrame({"id": [1], "l": [[1]], "s": [{"a": 1}]})
    steps = [{"uniform_id_type": {"include": "idd, l, s"}}]
    with pytest.raises(TaskError) as info:
        parse_transform("t", steps, LOC).apply(frame, {})
    assert info.value.message == (
        "transform 't', step 1 (uniform_id_type): column 'idd' not found - did you mean 'id'?"
        " (columns: id, l, s); column 'l' is List(Int64), which cannot be cast to uint64;"
        " column 's' is Struct({'a': Int64}), which cannot be cast to uint64"
    )


def test_a_column_listed_twice_is_cast_once() -> None:
    transform = parse_transform("t", [{"uniform_id_type": {"include": ["a", "a"]}}], LOC)
    got = transform.apply(pl.LazyFrame({"a": ["7"]}), {}).collect()
    assert_frame_equal(got, pl.DataFrame({"a": pl.Series([7], dtype=pl.UInt64)}))
