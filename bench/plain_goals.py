"""The example `goals` pipeline (box scores) written by hand in plain Polars: the speed limit.

    python -m bench.plain_goals DATA_DIR OUT.csv [--eager]

The same work as the capport pipeline (config/goals.yml): load events, teams and players
(players cast to the `player` model and their key checked, as `bench/plain_enrich.py` does),
keep shots and goals, join the team abbreviations, join the players' names, count shots and
goals per game, team and player, sort, cast to the `box_score` model and write a CSV. Each step
is written as a Polars user would, with expressions where the pipeline has SQL (the same
operations in the same order), so the comparison measures what capport adds around them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

import polars as pl

from bench.plain_enrich import load

__all__ = ["box_scores", "goals", "save_box_scores"]

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)


def box_scores(events: FrameT, teams: FrameT, players: FrameT) -> FrameT:
    """Shots and goals per game, team and player; in a game and team, most goals first (then
    most shots, then the name)."""
    attempts = events.filter(pl.col("event_type").is_in(["shot", "goal"]))
    with_teams = attempts.join(
        teams.select("team_id", pl.col("abbrev").alias("team")),
        on="team_id",
        how="left",
        coalesce=True,
        maintain_order="left",
    )
    # The sql step: its JOIN, its SELECT (names and the goal flag after the join), ORDER BY.
    named = (
        with_teams.join(
            players.select("player_id", "first_name", "last_name"), on="player_id", how="inner"
        )
        .select(
            "game_id",
            "team",
            pl.concat_str("first_name", "last_name", separator=" ").alias("player"),
            "event_id",
            pl.when(pl.col("event_type") == "goal").then(1).otherwise(0).alias("goal"),
        )
        .sort("event_id")
    )
    return (
        named.group_by("game_id", "team", "player", maintain_order=True)
        .agg(pl.col("goal").sum().alias("goals"), pl.col("event_id").count().alias("shots"))
        .sort(
            "game_id",
            "team",
            "goals",
            "shots",
            "player",
            descending=[False, False, True, True, False],
            maintain_order=True,
        )
    )


def save_box_scores(scores: pl.DataFrame | pl.LazyFrame, out: Path) -> None:
    """Cast to the `box_score` model and write the CSV (executing the plan when lazy)."""
    report = scores.select(
        pl.col("game_id").cast(pl.Int64, strict=True),
        pl.col("team").cast(pl.String),
        pl.col("player").cast(pl.String),
        pl.col("goals").cast(pl.Int64, strict=True),
        pl.col("shots").cast(pl.Int64, strict=True),
    )
    if isinstance(report, pl.LazyFrame):
        temporary = out.with_name(f".{out.name}.tmp")
        pl.collect_all([report.sink_csv(temporary, lazy=True)], engine="streaming")
        temporary.replace(out)
    else:
        report.write_csv(out)


def goals(data: Path, out: Path, *, lazy: bool = True) -> None:
    events, teams, players = load(data, lazy=lazy)
    save_box_scores(box_scores(events, teams, players), out)  # type: ignore[type-var]


if __name__ == "__main__":
    goals(Path(sys.argv[1]), Path(sys.argv[2]), lazy="--eager" not in sys.argv[3:])
