"""JSON and Parquet loads and saves vs the same reads and writes in plain Polars, in process.

Each pipeline is a load and a save of one file format, run by capport (`sync_lazy`, in process,
on the shared instance), by a hand-written Dagster job of the same two ops (the framework floor:
`bench.dagster_jobs.copy_job`) and by the plain Polars code doing the same work:

- NDJSON to NDJSON: `pl.scan_ndjson(...).sink_ndjson(...)`;
- a JSON array to a JSON array: `pl.read_json(...).write_json(...)` (Polars has no lazy scan or
  sink of an array: capport reads it eagerly and streams the array out through its own writer);
- Parquet to Parquet: `pl.scan_parquet(...).sink_parquet(...)`, on ten times the rows.

The outputs are checked: the JSON files byte for byte, the Parquet files frame for frame.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from bench.dagster_jobs import COPIES
from bench.data import mixed_rows
from bench.harness import Comparison, alternate, run_capport_job, run_hand_written, timed

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


#: Parquet reads and writes ~10x faster per row than JSON: it is measured on 10x the rows.
#: The sizes (5M rows, 50M for Parquet) are the data path's largest, and large enough that the
#: goal judges the data path: any Dagster run, capport's or a hand-written one, costs a fixed
#: ~60-80 ms around its ops, which alone is 5% of a 1.5 s copy (docs/benchmarks.md).
PARQUET_SCALE = 10
NAMES = {"ndjson": "rows.ndjson", "array": "rows.json", "parquet": "rows.parquet"}


def files(work: Path, rows: int, rounds: int) -> list[Comparison]:
    config = work / "config"
    config.mkdir()
    data = mixed_rows(rows)
    data.write_ndjson(config / NAMES["ndjson"])
    data.write_json(config / NAMES["array"])
    del data
    mixed_rows(rows * PARQUET_SCALE).write_parquet(config / NAMES["parquet"])
    (config / "pipeline.yml").write_text(PIPELINE.format())
    plain_out, hand_out, out = work / "plain", work / "dagster", work / "capport"
    plain_out.mkdir()
    hand_out.mkdir()
    sizes = {"ndjson": rows, "array": rows, "parquet": rows * PARQUET_SCALE}
    titles = {
        "ndjson": "NDJSON load and save, {:,} rows, in process",
        "array": "JSON array load and save, {:,} rows, in process",
        "parquet": "Parquet load and save, {:,} rows, in process",
    }
    comparisons = []
    for form, (read, write) in COPIES.items():
        source, name = str(config / NAMES[form]), NAMES[form]

        def capport(form: str = form) -> None:
            run_capport_job(config, form, {"mode": "sync_lazy", "output_dir": str(out)})

        def plain(read=read, write=write, source=source, name=name) -> None:  # type: ignore[no-untyped-def]
            write(read(source), str(plain_out / name))

        def hand(form: str = form, source: str = source, name: str = name) -> None:
            run_hand_written("bench.dagster_jobs", "copy_job", form, source, str(hand_out / name))

        comparison = Comparison(titles[form].format(sizes[form]))
        comparison.medians = alternate(
            {
                "capport sync_lazy": timed(capport),
                "hand-written Dagster job": timed(hand),
                "plain Polars": timed(plain),
            },
            rounds,
        )
        comparison.ratio("capport / plain Polars", "capport sync_lazy", "plain Polars", 1.05)
        comparison.ratio("capport / hand-written", "capport sync_lazy", "hand-written Dagster job")
        for reference in (plain_out, hand_out):
            _check(form, out, reference)
        comparisons.append(comparison)
    return comparisons


def _check(pipeline: str, out: Path, plain_out: Path) -> None:
    name = NAMES[pipeline]
    if pipeline == "parquet":
        assert_frame_equal(pl.read_parquet(out / name), pl.read_parquet(plain_out / name))
    elif not filecmp.cmp(out / name, plain_out / name, shallow=False):
        raise RuntimeError(f"capport and plain Polars wrote different {name} files")
