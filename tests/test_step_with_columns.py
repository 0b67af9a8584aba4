"""The `with_columns` step: columns replaced where they stand, new ones appended in YAML order."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.modes import RunMode
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import ConfigError, Location, TaskError
from tests.conftest import run_transform

LOC = Location(file="t.yml", section="transform", name="t")
MODES = pytest.mark.parametrize("mode", list(RunMode))

PLAYERS = pl.DataFrame(
    {
        "id": [1, 2, 3],
        "team": [{"code": "EDM"}, {"code": None}, None],
        "name": ["Ann", None, "Cy"],
    }
)


def with_columns(tmp_path: Path, mode: RunMode, mapping: dict) -> pl.DataFrame:
    return run_transform(tmp_path, [{"with_columns": mapping}], {"PLAYERS": PLAYERS}, mode)


@MODES
def test_an_existing_column_is_replaced_in_place_and_new_ones_appended_in_order(
    tmp_path: Path, mode: RunMode
) -> None:
    got = with_columns(
        tmp_path, mode, {"z_code": "team.code", "name": {"sql": "upper(name)"}, "a_id": "id"}
    )
    expected = PLAYERS.with_columns(
        name=pl.Series(["ANN", None, "CY"]),
        z_code=pl.Series(["EDM", None, None]),
        a_id=pl.Series([1, 2, 3]),
    )
    assert got.columns == ["id", "team", "name", "z_code", "a_id"]
    assert_frame_equal(got, expected)


@MODES
def test_every_expression_reads_the_input_not_another_entry_of_the_step(
    tmp_path: Path, mode: RunMode
) -> None:
    got = with_columns(tmp_path, mode, {"id": {"sql": "id * 10"}, "copy": "id"})
    assert_frame_equal(got, PLAYERS.with_columns(id=pl.Series([10, 20, 30]), copy=pl.col("id")))


@MODES
def test_capport_nulls_an_optional_column_and_any_null_in_a_format(
    tmp_path: Path, mode: RunMode
) -> None:
    mapping = {
        "maybe": "^nickname$",
        "label": {"format": {"template": "{}#{}", "columns": ["name", "id"]}},
    }
    got = with_columns(tmp_path, mode, mapping)
    expected = PLAYERS.with_columns(maybe=pl.lit(None), label=pl.Series(["Ann#1", None, "Cy#3"]))
    assert_frame_equal(got, expected)


def test_parse_errors() -> None:
    for raw, message in [
        (None, "expected a mapping of new column -> source, got null"),
        ({}, "expected a mapping of new column -> source, got an empty mapping"),
    ]:
        with pytest.raises(ConfigError) as info:
            parse_transform("t", [{"with_columns": raw}], LOC)
        assert info.value.message == f"step 1 (with_columns): {message}"


def test_check_names_each_unknown_column_with_a_did_you_mean() -> None:
    transform = parse_transform(
        "t", [{"with_columns": {"a": "nmae", "b": "team.cod", "c": {"sql": "idd + 1"}}}], LOC
    )
    with pytest.raises(TaskError) as info:
        transform.apply(PLAYERS.lazy(), {})
    assert info.value.message == (
        "transform 't', step 1 (with_columns): column 'nmae' not found - did you mean 'name'?"
        " (columns: id, team, name); column path 'team.cod': struct 'team' has no field 'cod'"
        " - did you mean 'code'? (fields: code); sql 'idd + 1': column 'idd' not found - did"
        " you mean 'id'? (columns: id, team, name)"
    )
