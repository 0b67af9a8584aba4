"""Deterministic benchmark data: no downloads, the same bytes on every machine and every run.

Values come from integer arithmetic on the row number (multiplicative hashing modulo a prime), so
they look varied to Polars (joins match, strings differ) without a random generator whose output
could change between library versions.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl

__all__ = [
    "EXAMPLE_CONFIG",
    "TEAMS",
    "enrich_config",
    "mixed_rows",
    "write_enrich_data",
    "write_wide_csv",
]

REPO = Path(__file__).resolve().parent.parent
#: The repository's example config: the benchmarks run its `enrich_events` pipeline unchanged.
EXAMPLE_CONFIG = REPO / "config"
TEAMS = 32
PLAYERS = 2_000
EVENT_TYPES = ["shot", "goal", "hit", "faceoff", "giveaway", "takeaway", "block", "miss"]
POSITIONS = ["C", "L", "R", "D", "G"]


def _pick(values: list[str], index: pl.Expr) -> pl.Expr:
    return pl.lit(pl.Series(values)).gather(index % len(values))


def _two_digits(value: pl.Expr) -> pl.Expr:
    return value.cast(pl.String).str.zfill(2)


def write_enrich_data(directory: Path, events: int) -> Path:
    """`events.csv` (`events` rows), `teams.csv` and `players.csv` in the example's columns."""
    directory.mkdir(parents=True, exist_ok=True)
    team = pl.int_range(0, TEAMS, eager=False)
    pl.LazyFrame().select(
        (team + 1).alias("team_id"),
        pl.format("T{}", team).alias("abbrev"),
        pl.format("Team {}", team).alias("name"),
        pl.format("City {}", team * 7 % TEAMS).alias("city"),
    ).sink_csv(directory / "teams.csv")
    player = pl.int_range(0, PLAYERS)
    pl.LazyFrame().select(
        (player + 8_470_000).alias("player_id"),
        pl.format("First{}", player * 31 % 997).alias("first_name"),
        pl.format("Last{}", player * 17 % 1499).alias("last_name"),
        (player % TEAMS + 1).alias("team_id"),
        _pick(POSITIONS, player).alias("position"),
        pl.format("19{}-0{}-1{}", 80 + player % 20, 1 + player % 9, player % 10).alias(
            "birth_date"
        ),
        _pick(["L", "R"], player // 3).alias("shoots"),
    ).sink_csv(directory / "players.csv")
    row = pl.int_range(0, events)
    player_of_row = row * 7_919 % PLAYERS
    pl.LazyFrame().select(
        (row + 1).alias("event_id"),
        (2_024_020_001 + row // 300).alias("game_id"),
        (row % 3 + 1).alias("period"),
        pl.format(
            "{}:{}",
            (row % 20).cast(pl.String).str.zfill(2),
            (row % 60).cast(pl.String).str.zfill(2),
        ).alias("time_in_period"),
        _pick(EVENT_TYPES, row * 104_729 % 7_907).alias("event_type"),
        (player_of_row + 8_470_000).alias("player_id"),
        (player_of_row % TEAMS + 1).alias("team_id"),
    ).sink_csv(directory / "events.csv")
    return directory


def enrich_config(directory: Path, events: int) -> Path:
    """A copy of the example config whose `data/` holds `events` generated event rows."""
    config = directory / "config"
    if config.exists():
        shutil.rmtree(config)
    shutil.copytree(EXAMPLE_CONFIG, config, ignore=shutil.ignore_patterns("data", "http"))
    write_enrich_data(config / "data", events)
    return config


def write_wide_csv(path: Path, rows: int, columns: int = 20) -> Path:
    """`rows` rows of `columns` columns (`c0`.. ints, every fourth a string): projection cases."""
    row = pl.int_range(0, rows)
    exprs = [
        pl.format("v{}", row * (i + 3) % 10_007).alias(f"c{i}")
        if i % 4 == 3
        else (row * (i + 7) % 100_003).alias(f"c{i}")
        for i in range(columns)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.LazyFrame().select(exprs).sink_csv(path)
    return path


def mixed_rows(rows: int, *, nullable_team: bool = True) -> pl.DataFrame:
    """Mixed columns, deterministic: integers, text, floats, dates, booleans and, unless asked
    not to, an integer column with some nulls (the file and SQL benchmarks)."""
    index = pl.int_range(0, rows).alias("id")
    columns = {
        "name": "player_" + (index % 9973).cast(pl.String),
        "score": (index % 1000).cast(pl.Float64) / 7,
        "day": pl.date(2024, 1, 1) + pl.duration(days=index % 365),
        "active": index % 3 == 0,
    }
    if nullable_team:
        columns["team"] = pl.when(index % 11 == 0).then(None).otherwise(index % 17)
    return pl.select(index, **columns)
