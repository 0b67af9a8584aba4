"""A frame read by two stages: what lazy modes pay for staying lazy.

The pipeline loads the events, shapes them (a formatted string column) and saves the shaped
frame twice: whole, and narrowed to two columns. In lazy modes each save executes its own plan,
so the CSV is read and the column formatted twice (Polars shares work within one query, not
between two); eager modes compute the shaped frame once and hold it in memory. capport keeps
lazy modes lazy (collecting only at sinks, so that memory stays bounded); this measures the cost.

The second comparison is the same work in plain Polars, as whole processes with their peak RSS,
done the three ways capport could do it: two sinks (what lazy modes do), the frame materialised
once and written twice (what materialising a frame with several readers would do), and both
sinks in one `pl.collect_all` sharing the common plan (the best case, which capport cannot reach
while each save is its own stage: its first save would have to wait for the second):

    python -m bench.shared two_sinks|materialise|collect_all DATA_DIR OUT_DIR
"""

from __future__ import annotations

import filecmp
import sys
from pathlib import Path

import polars as pl

from bench.data import write_enrich_data
from bench.harness import Comparison, alternate, run_capport_job, run_process, timed

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


def shared_frame(work: Path, rows: int, rounds: int) -> list[Comparison]:
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

    def plain(variant: str):  # type: ignore[no-untyped-def]
        command = [sys.executable, "-m", "bench.shared", variant, str(config / "data")]
        return lambda: run_process([*command, str(out / variant)])

    plain_ways = Comparison(f"The same in plain Polars, {rows:,} event rows, whole processes")
    plain_ways.medians = alternate({way: plain(way) for way in PLAIN_WAYS}, rounds)
    plain_ways.ratio("materialise / two sinks", "materialise", "two_sinks")
    plain_ways.rss_ratio("peak RSS: materialise / two sinks", "materialise", "two_sinks")
    plain_ways.ratio("collect_all / two sinks", "collect_all", "two_sinks")
    plain_ways.rss_ratio("peak RSS: collect_all / two sinks", "collect_all", "two_sinks")
    for run_dir in [*MODES[1:], *PLAIN_WAYS]:
        for name in ("all.csv", "two.csv"):
            if not filecmp.cmp(out / "sync_lazy" / name, out / run_dir / name, shallow=False):
                raise RuntimeError(f"{run_dir} wrote a different {name}")
    return [comparison, plain_ways]


PLAIN_WAYS = ("two_sinks", "materialise", "collect_all")


def plain_shared(way: str, data: Path, out: Path) -> None:
    """The pipeline's work in plain Polars, one of three ways (see the module docstring)."""
    out.mkdir(parents=True, exist_ok=True)
    url = pl.format("https://example.org/{}/{}", "game_id", "event_id").alias("url")
    shaped = pl.scan_csv(data / "events.csv").select("event_id", "game_id", url)
    narrow = shaped.select("event_id", "url")
    if way == "two_sinks":
        shaped.sink_csv(out / "all.csv")
        narrow.sink_csv(out / "two.csv")
    elif way == "materialise":
        frame = shaped.collect()
        frame.write_csv(out / "all.csv")
        frame.select("event_id", "url").write_csv(out / "two.csv")
    else:
        sinks = [shaped.sink_csv(out / "all.csv", lazy=True)]
        sinks.append(narrow.sink_csv(out / "two.csv", lazy=True))
        pl.collect_all(sinks, engine="streaming")


if __name__ == "__main__":
    plain_shared(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
