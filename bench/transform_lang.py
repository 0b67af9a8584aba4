"""The transform language: the example `goals` pipeline vs the same work in plain Polars.

`goals` (config/goals.yml) loads the events, teams and players, and in one transform keeps the
shots and goals (`filter`), joins the team abbreviations (`join`), joins the players' names (a
`sql` step with the players in its `sql_context`, ordered by event), counts shots and goals per
game, team and player (`group_by`) and orders the box scores (`sort`), then saves them with a
model. It runs unchanged on generated event rows, in process (the run only: everything already
imported), against `bench/plain_goals.py`: the same operations in the same order written by
hand as one lazy (or eager) Polars query, with expressions where the config has SQL. Box scores
rather than season totals: at 5M event rows they are ~1.25M groups and rows written, so the
steps' own work is measured, not only Dagster's fixed cost of a run (~0.1 s, measured by the
overhead suite; the lazy group shows it beside a hand-written Dagster job of the same four ops
running the plain code, the framework floor). Lazy and eager are compared in separate groups, as
in the data path benchmark. Every variant's output file must be byte-identical to the plain lazy
one, or the benchmark stops.
"""

from __future__ import annotations

import functools
import shutil
from collections.abc import Callable
from pathlib import Path

from dagster import (
    In,
    JobDefinition,
    Nothing,
    Out,
    in_process_executor,
    job,
    mem_io_manager,
    op,
)

from bench.data import enrich_config
from bench.data_path import _check_identical
from bench.harness import (
    Comparison,
    Sample,
    alternate,
    run_capport_job,
    run_hand_written,
    timed,
)
from bench.plain_enrich import load
from bench.plain_goals import box_scores, goals, save_box_scores

__all__ = ["box_scores_job", "transform_lang"]

PIPELINE = "goals"
OUTPUT = Path(PIPELINE) / "box_scores.csv"
#: The issue's goal (sync_lazy within 5% of plain lazy Polars) is for 5M event rows.
GOAL_ROWS = 5_000_000
HAND_WRITTEN = "hand-written Dagster job (lazy)"


def transform_lang(work: Path, rows: int, rounds: int) -> list[Comparison]:
    config = enrich_config(work / f"goals_{rows}", rows)
    data, out = config / "data", work / f"out_{rows}"
    out.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {}

    def plain(lazy: bool) -> Callable[[], Sample]:
        path = outputs.setdefault(f"plain_{'lazy' if lazy else 'eager'}", out / f"plain_{lazy}.csv")
        return timed(lambda: goals(data, path, lazy=lazy))

    def capport(mode: str) -> Callable[[], Sample]:
        outputs[mode] = out / mode / OUTPUT
        settings = {"mode": mode, "output_dir": str(out / mode)}
        return timed(lambda: run_capport_job(config, PIPELINE, settings))

    def hand_written() -> None:
        outputs["dagster"] = out / "dagster.csv"
        run_hand_written(
            "bench.transform_lang", "box_scores_job", str(data), str(outputs["dagster"])
        )

    title = f"Transform language (filter, join, sql, group_by, sort), {rows:,} event rows"
    lazy = Comparison(f"{title}, in process, lazy")
    lazy.medians = alternate(
        {
            "plain lazy": plain(True),
            HAND_WRITTEN: timed(hand_written),
            "capport sync_lazy": capport("sync_lazy"),
            "capport async_lazy": capport("async_lazy"),
        },
        rounds,
    )
    goal = 1.05 if rows == GOAL_ROWS else None
    lazy.ratio("sync_lazy / plain lazy", "capport sync_lazy", "plain lazy", goal)
    lazy.ratio("sync_lazy / hand-written Dagster job", "capport sync_lazy", HAND_WRITTEN)
    lazy.ratio("async_lazy / plain lazy", "capport async_lazy", "plain lazy")
    eager = Comparison(f"{title}, in process, eager")
    eager.medians = alternate(
        {"plain eager": plain(False), "capport sync_eager": capport("sync_eager")}, rounds
    )
    eager.ratio("sync_eager / plain eager", "capport sync_eager", "plain eager")
    _check_identical(outputs)
    shutil.rmtree(out)
    return [lazy, eager]


@functools.cache
def box_scores_job(data: str, out: str) -> JobDefinition:
    """The pipeline's op graph (two loads, the transform, the save) around the plain code, as a
    Dagster user would write it without capport: frames passed in memory, in process. A
    factory so that Dagster can rebuild it (`build_reconstructable_job`), built once per
    process."""

    @op(name="load_events")
    def load_events():  # type: ignore[no-untyped-def]
        return load(Path(data), lazy=True)[0]

    @op(name="load_reference", out={"teams": Out(), "players": Out()})
    def load_reference():  # type: ignore[no-untyped-def]
        _, teams, players = load(Path(data), lazy=True)
        return teams, players

    @op(name="box_scores", ins={"events": In(), "teams": In(), "players": In()})
    def scores(events, teams, players):  # type: ignore[no-untyped-def]
        return box_scores(events, teams, players)

    @op(name="save_box_scores", ins={"frame": In()}, out=Out(Nothing))
    def save(frame) -> None:  # type: ignore[no-untyped-def]
        save_box_scores(frame, Path(out))

    @job(
        name="box_scores",
        executor_def=in_process_executor,
        resource_defs={"io_manager": mem_io_manager},
    )
    def box_scores_graph() -> None:
        teams, players = load_reference()
        save(scores(load_events(), teams, players))

    return box_scores_graph
