"""Model constraints on data: counts, examples by key, one pass with the sink."""

from __future__ import annotations

import pickle

import polars as pl
import pytest

from capport_dagster.core import constraints
from capport_dagster.core.config import Entry
from capport_dagster.core.constraints import (
    ConstraintError,
    Violation,
    check_constraints,
    constraint_check,
)
from capport_dagster.core.models import Model, parse_model
from capport_dagster.errors import Location

STAGE = Location(stage="load", index=1)


def model(body: dict, name: str = "person") -> Model:
    return parse_model(Entry("model", name, body, Location()))


CONSTRAINED = model(
    {
        "id": {"dtype": "int", "constraints": ["primary"]},
        "email": {"dtype": "str", "constraints": ["unique", "indexed"]},
        "name": {"dtype": "str", "constraints": ["not_null"]},
        "team": {"dtype": "str", "constraints": ["foreign"]},
    }
)


def test_public_api() -> None:
    assert set(constraints.__all__) == {
        "ConstraintCheck",
        "ConstraintError",
        "Violation",
        "check_constraints",
        "constraint_check",
    }


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_clean_data_passes(lazy: bool) -> None:
    frame = pl.DataFrame(
        {"id": [1, 2, 3], "email": ["a", None, None], "name": ["x", "y", "x"], "team": ["t"] * 3}
    )
    check_constraints(frame.lazy() if lazy else frame, CONSTRAINED, "PEOPLE", STAGE)


def test_violations_name_the_rows_by_key_and_the_duplicated_values() -> None:
    frame = pl.LazyFrame(
        {
            "id": [1, 1, None, 2, 2, 3, None],
            "email": ["b", "b", "a", None, None, "a", "c"],
            "name": ["x", None, "y", None, "z", "w", None],
            "team": [None] * 7,
        }
    )
    with pytest.raises(ConstraintError) as caught:
        check_constraints(frame, CONSTRAINED, "PEOPLE", STAGE)
    error = caught.value
    assert error.violations == (
        # duplicated keys (4 rows), then the rows without a key by number (2 rows)
        Violation("id", "primary", 6, ("id=1", "id=2", "row 3", "row 7")),
        Violation("email", "unique", 4, ("email='a'", "email='b'")),
        # a null name is shown by the row's primary key; a row without a key by None
        Violation("name", "not_null", 3, ("id=1", "id=2", "id=None")),
    )
    assert (error.frame, error.model, error.location) == ("PEOPLE", "person", STAGE)
    assert error.message == (
        "model 'person': frame 'PEOPLE' breaks its constraints: column 'id' breaks 'primary' in"
        " 6 rows (e.g. id=1, id=2, row 3, row 7); column 'email' breaks 'unique' in 4 rows"
        " (e.g. email='a', email='b'); column 'name' breaks 'not_null' in 3 rows"
        " (e.g. id=1, id=2, id=None)"
    )
    assert pickle.loads(pickle.dumps(error)).violations == error.violations


def test_without_a_primary_key_rows_are_numbered_from_one() -> None:
    frame = pl.DataFrame({"name": ["a", None, "b", None]})
    with pytest.raises(ConstraintError) as caught:
        check_constraints(frame, model({"name": {"dtype": "str", "constraints": ["not_null"]}}),
                          "P", STAGE)  # fmt: skip
    assert caught.value.violations == (Violation("name", "not_null", 2, ("row 2", "row 4")),)


def test_examples_are_the_five_smallest_so_every_run_shows_the_same() -> None:
    frame = pl.DataFrame({"id": [9, 9, 8, 8, 7, 7, 6, 6, 5, 5, 4, 4, 3, 3]})
    check = constraint_check(frame, model({"id": {"dtype": "int", "constraints": ["unique"]}}), "F")
    found = check.violations(pl.collect_all(list(check.queries)))
    assert found == [Violation("id", "unique", 14, ("id=3", "id=4", "id=5", "id=6", "id=7"))]


def test_a_model_without_checked_constraints_queries_nothing() -> None:
    check = constraint_check(pl.LazyFrame({"x": [1, 1]}), model({"x": "int"}), "F")
    assert check.queries == ()


def test_checks_stream_with_a_sink_in_one_pass(tmp_path) -> None:
    """The checks are streamable queries: with the sink in one `collect_all` the data is read
    once (a scan shared by the sink and the checks)."""
    csv = tmp_path / "in.csv"
    pl.DataFrame({"id": [1, 2, 2]}).write_csv(csv)
    frame = pl.scan_csv(csv)
    check = constraint_check(
        frame, model({"id": {"dtype": "int", "constraints": ["primary"]}}), "F"
    )
    results = pl.collect_all(
        [frame.sink_csv(tmp_path / "out.csv", lazy=True), *check.queries], engine="streaming"
    )
    assert check.violations(results[1:]) == [Violation("id", "primary", 2, ("id=2",))]
    assert pl.read_csv(tmp_path / "out.csv")["id"].to_list() == [1, 2, 2]
