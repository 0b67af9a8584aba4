"""A frame read by two stages: what lazy modes pay for staying lazy.

The pipeline loads the events, shapes them (a formatted string column) and saves the shaped
frame twice: whole, and narrowed to two columns. In lazy modes each save executes its own plan,
so the CSV is read and the column formatted twice (Polars shares work within one query, not
between two); eager modes compute the shaped frame once and hold it in memory. capport keeps
lazy modes lazy (collecting only at sinks, so that memory stays bounded); this measures the cost.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

from bench.data import write_enrich_data
from bench.harness import Comparison, alternate, run_capport_job, timed

__all__ = ["shared_frame"]

PIPELINE = """pipeline:
  shared:
    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/data/events.csv, df_name: E } }
    - { label: shape, task: transform, args: { name: shape, input: E, save_df: S } }
    - { label: narrow, task: transform, args: { name: narrow, input: S, save_df: N } }
    - { label: save_all, task: save_csv, args: { filepath: $OUTPUT_DIR/all.csv, df_name: S } }
    - { label: save_two, task: save_csv, args: { filepath: $OUTPUT_DIR/two.csv, df_name: N } }
transform:
  shape:
    - select:
        event_id:
        game_id:
        url: { action: format, args: { template: "https://example.org/{}/{}",
               cols: [game_id, event_id] } }
  narrow:
    - select: { event_id: null, url: null }
"""

MODES = ("sync_lazy", "sync_eager", "async_lazy", "async_eager")


def shared_frame(work: Path, rows: int, rounds: int) -> Comparison:
    config = work / f"shared_{rows}"
    write_enrich_data(config / "data", rows)
    (config / "pipeline.yml").write_text(PIPELINE)
    out = work / f"shared_out_{rows}"

    def run(mode: str):  # type: ignore[no-untyped-def]
        settings = {"mode": mode, "output_dir": str(out / mode)}
        return timed(lambda: run_capport_job(config, "shared", settings))

    comparison = Comparison(f"A frame read by two saves, {rows:,} event rows, in process")
    comparison.medians = alternate({mode: run(mode) for mode in MODES}, rounds)
    comparison.ratio("sync_lazy / sync_eager", "sync_lazy", "sync_eager")
    for mode in MODES[1:]:
        for name in ("all.csv", "two.csv"):
            if not filecmp.cmp(out / "sync_lazy" / name, out / mode / name, shallow=False):
                raise RuntimeError(f"{mode} wrote a different {name}")
    return comparison
