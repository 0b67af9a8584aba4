"""The `rename` step: columns keep their place and values, renames happen at once (a swap works),
in every mode; its parse and check errors with their exact messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.steps import rename
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location, TaskError, ValidationError
from tests.conftest import parse_errors, run_transform

LOC = Location(file="t.yml", section="transform", name="t")
FRAME = pl.DataFrame({"a": [1, None], "b": ["x", "y"], "c.d": [True, False]})


def test_public_api() -> None:
    assert set(rename.__all__) == {"KINDS", "RenameStep"}


CASES = [
    pytest.param({"a": "id"}, ["id", "b", "c.d"], id="one"),
    pytest.param({"b": "a", "a": "b"}, ["b", "a", "c.d"], id="swap"),
    pytest.param({"a": "a"}, ["a", "b", "c.d"], id="same-name"),
    pytest.param({"c.d": "flag", "b": "c.d"}, ["a", "c.d", "flag"], id="dotted-name-is-exact"),
    pytest.param({"a": "b", "b": "c", "c.d": "a"}, ["b", "c", "a"], id="rotation"),
]


@pytest.mark.parametrize("mode", list(RunMode))
@pytest.mark.parametrize(("mapping", "names"), CASES)
def test_rename_keeps_places_and_values(
    tmp_path: Path, mode: RunMode, mapping: dict[str, str], names: list[str]
) -> None:
    result = run_transform(tmp_path, [{"rename": mapping}], {"F": FRAME}, mode)
    assert_frame_equal(result, FRAME.rename(dict(zip(FRAME.columns, names, strict=True))))


@pytest.mark.parametrize("mode", list(RunMode))
def test_later_steps_see_the_new_names(tmp_path: Path, mode: RunMode) -> None:
    steps = [{"rename": {"a": "id"}}, {"select": {"key": "id"}}]
    result = run_transform(tmp_path, steps, {"F": FRAME}, mode)
    assert_frame_equal(result, pl.DataFrame({"key": [1, None]}))


@pytest.mark.parametrize(
    ("args", "messages"),
    [
        ({}, ["expected a mapping of old name -> new name, got an empty mapping"]),
        (["a"], ["expected a mapping of old name -> new name, got a list"]),
        (
            {"a": 3},
            ["column 'a': the new name must be a non-empty string, got int 3 (quote it: '3')"],
        ),
        ({"a": ""}, ["column 'a': the new name must be a non-empty string, got an empty string"]),
        (
            {"a": None, "b": ["x"]},
            [
                "column 'a': the new name must be a non-empty string, got null",
                "column 'b': the new name must be a non-empty string, got a list",
            ],
        ),
        ({"a": "x", "b": "x"}, ["'a', 'b' are all renamed to 'x'; give each its own"]),
    ],
)
def test_parse_errors(args: Any, messages: list[str]) -> None:
    assert parse_errors({"rename": args}) == [f"step 1 (rename): {message}" for message in messages]


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"aa": "x"}, "column 'aa' not found - did you mean 'a'? (columns: a, b, c.d)"),
        (
            {"a": "b"},
            "'a' cannot be renamed to 'b': the frame already has a column 'b' (drop or rename"
            " it first)",
        ),
        (
            {"c": "x", "b": "c.d"},
            "column 'c' not found (columns: a, b, c.d); 'b' cannot be renamed to 'c.d': the"
            " frame already has a column 'c.d' (drop or rename it first)",
        ),
    ],
)
def test_check_errors(mapping: dict[str, str], message: str) -> None:
    with pytest.raises(TaskError) as info:
        parse_transform("t", [{"rename": mapping}], LOC).apply(FRAME.lazy(), {})
    assert info.value.message == f"transform 't', step 1 (rename): {message}"


@pytest.mark.parametrize("mode", list(RunMode))
def test_validate_finds_a_clash(tmp_path: Path, mode: RunMode) -> None:
    with pytest.raises(ValidationError) as info:
        run_transform(tmp_path, [{"rename": {"b": "a"}}], {"F": FRAME}, mode)
    (error,) = info.value.errors
    assert str(error).split(", ", 1)[1] == (
        "transform 't' (used by pipeline 'p', stage 'apply' (#2)): step 1 (rename): 'b' cannot"
        " be renamed to 'a': the frame already has a column 'a' (drop or rename it first)"
    )
