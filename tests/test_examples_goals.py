"""The `goals` example (config/goals.yml): box scores from filter, join, sql, group_by and sort in
one transform, run as users run it, in every mode, against the answer worked out by hand and in
plain Polars."""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pytest
from dagster import DagsterInstance
from polars.testing import assert_frame_equal

from bench.plain_goals import goals
from capport_dagster.core.graph import load_project
from capport_dagster.core.modes import RunMode
from tests.conftest import EXAMPLE_CONFIG, capport
from tests.test_jobs import run_job

DATA = EXAMPLE_CONFIG / "data"

#: The example data's shots and goals, counted by hand: each scorer scored once, McDavid and
#: Pastrnak also took a shot. In a game and team: most goals, then most shots, then the name.
EXPECTED = pl.DataFrame(
    [
        (2024020001, "EDM", "Connor McDavid", 1, 2),
        (2024020001, "EDM", "Leon Draisaitl", 1, 1),
        (2024020001, "TOR", "Auston Matthews", 1, 1),
        (2024020001, "TOR", "Mitch Marner", 0, 1),
        (2024020002, "BOS", "David Pastrnak", 1, 2),
        (2024020002, "BOS", "Charlie McAvoy", 0, 1),
        (2024020002, "NJD", "Jack Hughes", 1, 1),
        (2024020002, "NJD", "Nico Hischier", 1, 1),
    ],
    schema={
        "game_id": pl.Int64,
        "team": pl.String,
        "player": pl.String,
        "goals": pl.Int64,
        "shots": pl.Int64,
    },
    orient="row",
)


def plain_polars() -> pl.DataFrame:
    """The same question asked of the CSVs in plain Polars, written apart from the pipeline."""
    events = pl.read_csv(DATA / "events.csv")
    teams = pl.read_csv(DATA / "teams.csv").select("team_id", team="abbrev")
    players = pl.read_csv(DATA / "players.csv").select(
        "player_id", player=pl.col("first_name") + " " + pl.col("last_name")
    )
    attempts = events.filter(pl.col("event_type").is_in(["shot", "goal"]))
    joined = attempts.join(teams, on="team_id").join(players, on="player_id")
    return (
        joined.group_by("game_id", "team", "player")
        .agg(goals=(pl.col("event_type") == "goal").sum().cast(pl.Int64), shots=pl.len())
        .with_columns(pl.col("shots").cast(pl.Int64))
        .sort(
            pl.col("game_id"), pl.col("team"), -pl.col("goals"), -pl.col("shots"), pl.col("player")
        )
    )


def test_the_hand_count_is_what_plain_polars_computes():
    assert_frame_equal(plain_polars(), EXPECTED)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[RunMode, Path]:
    """The pipeline's CSV in each mode, as `capport run` runs it (a Dagster job, in process)."""
    root = tmp_path_factory.mktemp("goals")
    written = {}
    with DagsterInstance.ephemeral() as instance:
        for mode in RunMode:
            result = run_job(
                EXAMPLE_CONFIG, "goals", instance, mode=mode.value, output_dir=str(root / mode)
            )
            assert result.success, mode
            written[mode] = root / mode / "goals" / "box_scores.csv"
    return written


@pytest.mark.parametrize("mode", list(RunMode))
def test_the_goals_pipeline_writes_the_box_scores_in_every_mode(outputs, mode):
    assert_frame_equal(pl.read_csv(outputs[mode]), EXPECTED)


def test_every_mode_writes_the_same_bytes_as_the_benchmarks_plain_polars(outputs, tmp_path):
    """bench/plain_goals.py is the benchmark's reference: the same file, byte for byte."""
    for lazy in (True, False):
        plain = tmp_path / f"plain_{lazy}.csv"
        goals(DATA, plain, lazy=lazy)
        for mode, path in outputs.items():
            assert path.read_bytes() == plain.read_bytes(), (mode, lazy)


def test_the_transform_reads_the_teams_of_its_join_and_the_players_of_its_sql_context():
    graph = load_project(EXAMPLE_CONFIG).graphs["goals"]
    (stage,) = [node for node in graph.nodes if node.label == "box_scores"]
    assert sorted(stage.inputs) == ["EVENTS", "PLAYERS", "TEAMS"]


def test_capport_validate_passes_the_goals_example_without_a_warning(tmp_path):
    """Alone with the models it uses (config/model.yml), so no other example's output hides in
    what is compared."""
    config = tmp_path / "config"
    config.mkdir()
    for name in ("goals.yml", "model.yml"):
        shutil.copy(EXAMPLE_CONFIG / name, config / name)
    shutil.copytree(DATA, config / "data")
    result = capport("validate", "-c", str(config))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == f"valid: 1 pipeline, 4 stages in {config}\n"
