"""The example `enrich_events` pipeline written by hand in plain Polars: the speed limit.

    python bench/plain_enrich.py DATA_DIR OUT.csv [--eager]

The same work as the capport pipeline (config/pipeline.yml, transform.yml, model.yml): load
events, teams and players (players cast to the `player` model), shape the events, join team
names and player details, drop the team id, cast to the `event_report` model, write a CSV. The
models' checks included: strict casts, `char` columns hold at most one character, and the
`primary` keys (`player_id` when the players are loaded, `event_id` in the same pass that writes
the report, before the file is in place). The lazy version hands Polars one plan; the eager one
reads and computes frame by frame.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

import polars as pl

__all__ = ["enrich", "join_players", "join_teams", "load", "save_report", "shape"]

Frame = pl.DataFrame | pl.LazyFrame
FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

TEXT = {"first_name": pl.String, "last_name": pl.String, "position": pl.String, "shoots": pl.String}


def char(name: str) -> pl.Expr:
    """The model's `char` contract: at most one character, or the query fails (a strict cast of
    the longer values to an enum that has none of them: the cheapest check Polars can stream).
    """
    text = pl.col(name)
    longer = pl.when(text.str.len_chars() > 1).then(text)
    return pl.when(longer.cast(_NO_VALUE, strict=True).is_null()).then(text).alias(name)


_NO_VALUE = pl.Enum(["\x00no value is valid here\x00"])


def load(data: Path, *, lazy: bool) -> tuple[Frame, Frame, Frame]:
    """Events, teams, and players cast to the `player` model."""
    if lazy:
        events, teams = pl.scan_csv(data / "events.csv"), pl.scan_csv(data / "teams.csv")
        players = pl.scan_csv(data / "players.csv", schema_overrides=TEXT)
    else:
        events, teams = pl.read_csv(data / "events.csv"), pl.read_csv(data / "teams.csv")
        players = pl.read_csv(data / "players.csv", schema_overrides=TEXT)
    players = players.select(
        pl.col("player_id").cast(pl.UInt64, strict=True),
        "first_name",
        "last_name",
        pl.col("team_id").cast(pl.Int64, strict=True),
        char("position"),
        pl.col("birth_date").str.to_date(strict=True),
        char("shoots"),
        pl.lit(None, dtype=pl.String).alias("nickname"),
    )
    check(primary_key(players, "player_id"))
    return events, teams, players


def primary_key(frame: Frame, column: str) -> list[pl.LazyFrame]:
    """Queries counting duplicated and null keys (streamable: a group_by, not a window)."""
    lazy = frame.lazy()
    repeated = lazy.group_by(column).agg(pl.len()).filter(pl.col("len") > 1)
    return [repeated.select(pl.col("len").sum()), lazy.select(pl.col(column).null_count())]


def check(queries: list[pl.LazyFrame], results: list[pl.DataFrame] | None = None) -> None:
    if results is None:
        results = pl.collect_all(queries, engine="streaming")
    if any(result.item() for result in results):
        raise ValueError("primary key broken")


def shape(events: FrameT) -> FrameT:
    return events.select(
        "event_id",
        "game_id",
        "period",
        pl.col("time_in_period").alias("clock"),
        pl.col("event_type").alias("event"),
        "player_id",
        "team_id",
        pl.format("https://example.org/games/{}/events/{}", "game_id", "event_id").alias(
            "event_url"
        ),
    )


def join_teams(shaped: FrameT, teams: FrameT) -> FrameT:
    return shaped.join(
        teams.select("team_id", pl.col("name").alias("team")),
        on="team_id",
        how="left",
        coalesce=True,
        maintain_order="left",
    )


def join_players(with_teams: FrameT, players: FrameT) -> FrameT:
    return with_teams.join(
        players.select(
            "player_id",
            pl.concat_str("first_name", "last_name", separator=" ").alias("player_name"),
            "position",
        ),
        on="player_id",
        how="left",
        coalesce=True,
        maintain_order="left",
    ).drop("team_id")


def save_report(enriched: Frame, out: Path) -> None:
    """Cast to the `event_report` model and write the CSV (executing the plan when lazy)."""
    report = enriched.select(
        pl.col("event_id").cast(pl.UInt64, strict=True),
        pl.col("game_id").cast(pl.Int64, strict=True),
        pl.col("period").cast(pl.Int8, strict=True),
        "clock",
        "event",
        "team",
        "player_name",
        char("position"),
        "event_url",
    )
    checks = primary_key(report, "event_id")
    if isinstance(report, pl.LazyFrame):
        temporary = out.with_name(f".{out.name}.tmp")
        sink = report.sink_csv(temporary, lazy=True)
        written = pl.collect_all([sink, *checks], engine="streaming")
        check(checks, written[1:])
        temporary.replace(out)
    else:
        check(checks)
        report.write_csv(out)


def enrich(data: Path, out: Path, *, lazy: bool = True) -> None:
    events, teams, players = load(data, lazy=lazy)
    save_report(join_players(join_teams(shape(events), teams), players), out)


if __name__ == "__main__":
    enrich(Path(sys.argv[1]), Path(sys.argv[2]), lazy="--eager" not in sys.argv[3:])
