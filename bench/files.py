"""JSON and Parquet loads and saves vs the same reads and writes in plain Polars, in process.

Each pipeline is a load and a save of one file format, run by capport (`sync_lazy`, in process,
on the shared instance) and by the plain Polars code doing the same work:

- NDJSON to NDJSON: `pl.scan_ndjson(...).sink_ndjson(...)`;
- a JSON array to a JSON array: `pl.read_json(...).write_json(...)` (Polars has no lazy scan or
  sink of an array: capport reads it eagerly and streams the array out through its own writer);
- Parquet to Parquet: `pl.scan_parquet(...).sink_parquet(...)`.

The outputs are checked: the JSON files byte for byte, the Parquet files frame for frame.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from bench.data import mixed_rows
from bench.harness import Comparison, alternate, run_capport_job, timed

__all__ = ["files"]

PIPELINE = """pipeline:
  ndjson:
    - {{ label: load, task: load_json, args: {{ filepath: $CONFIG_DIR/rows.ndjson, df_name: R }} }}
    - {{ label: save, task: save_json, args: {{ filepath: $OUTPUT_DIR/rows.ndjson, df_name: R,
         lines: true }} }}
  array:
    - {{ label: load, task: load_json, args: {{ filepath: $CONFIG_DIR/rows.json, df_name: R }} }}
    - {{ label: save, task: save_json, args: {{ filepath: $OUTPUT_DIR/rows.json, df_name: R }} }}
  parquet:
    - {{ label: load, task: load_parquet, args: {{ filepath: $CONFIG_DIR/rows.parquet,
         df_name: R }} }}
    - {{ label: save, task: save_parquet, args: {{ filepath: $OUTPUT_DIR/rows.parquet,
         df_name: R }} }}
"""


def files(work: Path, rows: int, rounds: int) -> list[Comparison]:
    config = work / "config"
    config.mkdir()
    data = mixed_rows(rows)
    data.write_ndjson(config / "rows.ndjson")
    data.write_json(config / "rows.json")
    data.write_parquet(config / "rows.parquet")
    (config / "pipeline.yml").write_text(PIPELINE.format())
    plain_out = work / "plain"
    plain_out.mkdir()

    plain = {
        "ndjson": lambda: pl.scan_ndjson(config / "rows.ndjson").sink_ndjson(
            plain_out / "rows.ndjson"
        ),
        "array": lambda: pl.read_json(config / "rows.json").write_json(plain_out / "rows.json"),
        "parquet": lambda: pl.scan_parquet(config / "rows.parquet").sink_parquet(
            plain_out / "rows.parquet"
        ),
    }
    titles = {
        "ndjson": f"NDJSON load and save, {rows:,} rows, in process",
        "array": f"JSON array load and save, {rows:,} rows, in process",
        "parquet": f"Parquet load and save, {rows:,} rows, in process",
    }
    out = work / "capport"
    comparisons = []
    for pipeline, plain_run in plain.items():

        def capport(pipeline: str = pipeline) -> None:
            run_capport_job(config, pipeline, {"mode": "sync_lazy", "output_dir": str(out)})

        comparison = Comparison(titles[pipeline])
        comparison.medians = alternate(
            {"capport sync_lazy": timed(capport), "plain Polars": timed(plain_run)}, rounds
        )
        comparison.ratio("capport / plain Polars", "capport sync_lazy", "plain Polars", 1.05)
        _check(pipeline, out, plain_out)
        comparisons.append(comparison)
    return comparisons


def _check(pipeline: str, out: Path, plain_out: Path) -> None:
    name = {"ndjson": "rows.ndjson", "array": "rows.json", "parquet": "rows.parquet"}[pipeline]
    if pipeline == "parquet":
        assert_frame_equal(pl.read_parquet(out / name), pl.read_parquet(plain_out / name))
    elif not filecmp.cmp(out / name, plain_out / name, shallow=False):
        raise RuntimeError(f"capport and plain Polars wrote different {name} files")
