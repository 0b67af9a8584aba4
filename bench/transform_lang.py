"""The transform language: the example `goals` pipeline vs the same work in plain Polars.

`goals` (config/goals.yml) loads the events, teams and players, and in one transform keeps the
shots and goals (`filter`), joins the team abbreviations (`join`), joins the players' names (a
`sql` step with the players in its `sql_context`), counts shots and goals per team and player
(`group_by`) and orders the result (`sort`), then saves it with a model. It runs unchanged on
generated event rows, in process (the run only: everything already imported), against
`bench/plain_goals.py`: the same steps written by hand as one lazy (or eager) Polars query, with
expressions where capport's config has SQL. Lazy and eager are compared in separate groups, as
in the data path benchmark. Every variant's output file must be byte-identical to the plain lazy
one, or the benchmark stops.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from bench.data import enrich_config
from bench.data_path import _check_identical
from bench.harness import Comparison, Sample, alternate, run_capport_job, timed
from bench.plain_goals import goals

__all__ = ["transform_lang"]

PIPELINE = "goals"
OUTPUT = Path(PIPELINE) / "box_scores.csv"
#: The issue's goal (sync_lazy within 5% of plain lazy Polars) is for 5M event rows.
GOAL_ROWS = 5_000_000


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

    title = f"Transform language (filter, join, sql, group_by, sort), {rows:,} event rows"
    lazy = Comparison(f"{title}, in process, lazy")
    lazy.medians = alternate(
        {
            "plain lazy": plain(True),
            "capport sync_lazy": capport("sync_lazy"),
            "capport async_lazy": capport("async_lazy"),
        },
        rounds,
    )
    goal = 1.05 if rows == GOAL_ROWS else None
    lazy.ratio("sync_lazy / plain lazy", "capport sync_lazy", "plain lazy", goal)
    lazy.ratio("async_lazy / plain lazy", "capport async_lazy", "plain lazy")
    eager = Comparison(f"{title}, in process, eager")
    eager.medians = alternate(
        {"plain eager": plain(False), "capport sync_eager": capport("sync_eager")}, rounds
    )
    eager.ratio("sync_eager / plain eager", "capport sync_eager", "plain eager")
    _check_identical(outputs)
    shutil.rmtree(out)
    return [lazy, eager]
