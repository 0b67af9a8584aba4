"""Async fan-out: independent branches run side by side in the async modes.

CPU-bound: 4 or 8 branches, each loading the generated events, formatting a string column from
two others, joining the teams and saving. I/O-bound: `bench.http_async`'s 8 HTTP stages against
a local server that answers after a delay. Each on the in-process executors (Dagster's own for
the sync modes, the asyncio one for the async modes) and, for CPU work, the multiprocess one.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

from bench import http_async
from bench.data import write_enrich_data
from bench.harness import Comparison, Sample, alternate, run_capport_job, timed

__all__ = ["cpu_fanout", "http_fanout"]

BRANCH = """    - {{ label: load_{i}, task: load_csv,
         args: {{ filepath: $CONFIG_DIR/data/events.csv, df_name: E{i} }} }}
    - {{ label: shape_{i}, task: transform,
         args: {{ name: shape, input: E{i}, save_df: S{i}, kwargs: {{ right: TEAMS }} }} }}
    - {{ label: save_{i}, task: save_csv,
         args: {{ filepath: $OUTPUT_DIR/branch_{i}.csv, df_name: S{i} }} }}
"""

CONFIG = """pipeline:
  fanout:
    - {{ label: load_teams, task: load_csv,
         args: {{ filepath: $CONFIG_DIR/data/teams.csv, df_name: TEAMS }} }}
{branches}
transform:
  shape:
    - select:
        event_id:
        team_id:
        url: {{ action: format, args: {{ template: "https://example.org/{{}}/{{}}/{{}}",
                cols: [game_id, event_id, event_type] }} }}
        who: {{ action: concat, args: {{ cols: [event_type, time_in_period, player_id] }} }}
    - join: {{ right: $$right, right_select: {{ team_id: null, team: name }},
               left_on: team_id, right_on: team_id, how: left }}
"""

VARIANTS = {
    "sync_lazy": ("sync_lazy", "in_process"),
    "sync_eager": ("sync_eager", "in_process"),
    "async_lazy": ("async_lazy", "in_process"),
    "async_eager": ("async_eager", "in_process"),
    "async_eager, multiprocess": ("async_eager", "multiprocess"),
}


def cpu_fanout(work: Path, branches: int, rows: int, rounds: int, multiprocess: bool) -> Comparison:
    config = work / f"fanout_{branches}_{rows}"
    write_enrich_data(config / "data", rows)
    body = "".join(BRANCH.format(i=i) for i in range(branches))
    (config / "pipeline.yml").write_text(CONFIG.format(branches=body))
    out = work / f"fanout_out_{branches}_{rows}"

    def run(mode: str, executor: str):  # type: ignore[no-untyped-def]
        settings = {"mode": mode, "executor": executor, "output_dir": str(out / mode / executor)}
        temp = executor == "multiprocess"
        return timed(lambda: run_capport_job(config, "fanout", settings, temp_instance=temp))

    variants = {
        name: run(mode, executor)
        for name, (mode, executor) in VARIANTS.items()
        if multiprocess or executor == "in_process"
    }
    comparison = Comparison(
        f"CPU-bound fan-out: {branches} branches over {rows:,} event rows each, 2 cores"
    )
    comparison.medians = alternate(variants, rounds)
    # Async against sync in the same frame form: lazy streams each branch, eager holds frames.
    comparison.ratio("async_lazy / sync_lazy", "async_lazy", "sync_lazy", 1.0)
    comparison.ratio("async_eager / sync_eager", "async_eager", "sync_eager", 1.0)
    reference = out / "sync_lazy" / "in_process"
    for name, (mode, executor) in VARIANTS.items():
        if name in variants:
            for i in range(branches):
                file = f"branch_{i}.csv"
                if not filecmp.cmp(reference / file, out / mode / executor / file, False):
                    raise RuntimeError(f"{name} wrote a different {file}")
    return comparison


def http_fanout(work: Path, rounds: int, delay: float, multiprocess: bool) -> Comparison:
    root = work / "http"
    root.mkdir(exist_ok=True)
    server = http_async.fixture_server().start_in_thread(root=root / "api", port=0, delay=delay)
    try:
        config = http_async.write_config(root, server.server_address[1])
        names = ["sync_lazy", "async_eager"] + (
            ["async_eager+multiprocess"] if multiprocess else []
        )
        variants = {
            name: (lambda name=name: Sample(http_async.run_once(config, name, root / "out" / name)))
            for name in names
        }
        comparison = Comparison(
            f"I/O-bound fan-out: {http_async.STAGES} HTTP stages, server answers after {delay:g} s"
        )
        comparison.medians = alternate(variants, rounds, warm_up=False)
    finally:
        server.shutdown()
    comparison.ratio("async_eager / sync_lazy", "async_eager", "sync_lazy", 0.35)
    return comparison
