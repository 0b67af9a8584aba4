"""Predicate pushdown: a `filter` written after a join reaches the CSV scans, so rows the filter
drops are never joined (issue 14, item 5), the way a `select` pushes its projection down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from capport_dagster.core.transforms import parse_transform
from capport_dagster.errors import Location
from tests.conftest import run_stages

PLAYERS = pl.DataFrame(
    {
        "id": [1, 2, 3, 4],
        "team": ["a", "b", "a", "c"],
        "age": [20, 15, 31, 40],
        **{f"extra{i}": [i] * 4 for i in range(6)},
    }
)
TEAMS = pl.DataFrame({"code": ["a", "b", "c"], "title": ["Aces", "Bees", "Cats"]})
STEPS = [
    {"join": {"right": "TEAMS", "left_on": "team", "right_on": "code", "how": "inner"}},
    {"filter": {"age": {"ge": 18}, "or": [{"title": {"eq": "Aces"}}, "title = 'Cats'"]}},
    {"select": {"id": None, "title": None}},
]
EXPECTED = pl.DataFrame({"id": [1, 3, 4], "title": ["Aces", "Aces", "Cats"]})


def scans(plan: pl.LazyFrame) -> dict[str, str]:
    """Each CSV scan of the optimised plan (by file name), with the lines Polars prints under it."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in plan.explain().splitlines():
        text = line.strip()
        if text.startswith("Csv SCAN ["):
            current = found.setdefault(Path(text.removeprefix("Csv SCAN [")[:-1]).name, [])
        elif current is not None and text.split()[0].rstrip(":") in ("PROJECT", "SELECTION"):
            current.append(text)
        else:
            current = None
    return {name: "\n".join(lines) for name, lines in found.items()}


def check_pushed(plan: pl.LazyFrame) -> None:
    assert "FILTER" not in plan.explain()  # no filter is left above the join
    assert scans(plan) == {
        "players.csv": 'PROJECT 3/9 COLUMNS\nSELECTION: col("age") >= 18',
        "teams.csv": "PROJECT */2 COLUMNS\n"
        'SELECTION: (col("title") == "Aces") | (col("title") == "Cats")',
    }
    assert_frame_equal(plan.collect(), EXPECTED)


def test_a_filter_after_a_join_is_pushed_into_both_csv_scans(tmp_path: Path) -> None:
    PLAYERS.write_csv(tmp_path / "players.csv")
    TEAMS.write_csv(tmp_path / "teams.csv")
    transform = parse_transform("t", STEPS, Location(file="t.yml"))
    teams = pl.scan_csv(tmp_path / "teams.csv")
    plan = transform.apply(pl.scan_csv(tmp_path / "players.csv"), {"TEAMS": teams})
    check_pushed(plan)


@pytest.mark.parametrize("mode", [RunMode.SYNC_LAZY, RunMode.ASYNC_LAZY])
def test_the_pushdown_spans_stages_in_the_lazy_modes(
    write_config: Callable[..., Path], tmp_path: Path, mode: RunMode
) -> None:
    """The loads and the transform are separate stages; the plan handed on still starts at the
    scans, with the filter inside them."""
    import json

    PLAYERS.write_csv(tmp_path / "players.csv")
    TEAMS.write_csv(tmp_path / "teams.csv")
    loads = [
        {"filepath": "players.csv", "df_name": "PLAYERS"},
        {"filepath": "teams.csv", "df_name": "TEAMS"},
    ]
    stages = [
        {"label": "load", "task": "load_csv", "args": loads},
        {
            "label": "pick",
            "task": "transform",
            "args": {"name": "adults", "input": "PLAYERS", "save_df": "ADULTS"},
        },
    ]
    config = write_config(
        {"p.yml": json.dumps({"pipeline": {"p": stages}, "transform": {"adults": STEPS}})}
    )
    store = run_stages(load_project(config).graphs["p"], mode, {})
    (plan,) = [frame for version, frame in store.items() if version.name == "ADULTS"]
    assert isinstance(plan, pl.LazyFrame)
    check_pushed(plan)


def test_a_left_join_lets_a_filter_on_its_left_columns_reach_the_left_scan(tmp_path: Path) -> None:
    PLAYERS.write_csv(tmp_path / "players.csv")
    TEAMS.write_csv(tmp_path / "teams.csv")
    steps = [
        {"join": {"right": "TEAMS", "left_on": "team", "right_on": "code", "how": "left"}},
        {"filter": "age < 30 AND team <> 'b'"},
    ]
    transform = parse_transform("t", steps, Location(file="t.yml"))
    teams = pl.scan_csv(tmp_path / "teams.csv")
    plan = transform.apply(pl.scan_csv(tmp_path / "players.csv"), {"TEAMS": teams})
    assert "FILTER" not in plan.explain()
    assert scans(plan) == {
        "players.csv": 'PROJECT */9 COLUMNS\nSELECTION: (col("age") < 30) & (col("team") != "b")',
        # Polars carries the key's condition over to the right side too
        "teams.csv": 'PROJECT */2 COLUMNS\nSELECTION: col("code") != "b"',
    }
    expected = PLAYERS[[0]].with_columns(title=pl.lit("Aces"))
    assert_frame_equal(plan.collect(), expected)
