"""Lazy vs eager where a later stage keeps 2 of 20 columns: `sync_lazy` reads only those two.

The pipeline loads a 20-column CSV, renames in one stage, keeps two columns in the next and
saves. Lazily, Polars pushes the projection through both stages down to the CSV scan; eagerly,
every column is parsed and materialised in each stage.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

from bench.data import write_wide_csv
from bench.harness import Comparison, alternate, run_capport_job, timed

__all__ = ["projection"]

PIPELINE = """pipeline:
  narrow:
    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/wide.csv, df_name: WIDE } }
    - { label: rename, task: transform, args: { name: rename, input: WIDE, save_df: RENAMED } }
    - { label: keep_two, task: transform, args: { name: keep_two, input: RENAMED, save_df: TWO } }
    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/two.csv, df_name: TWO } }
transform:
  rename:
    - select: { %s }
  keep_two:
    - select: { id: null, label: { action: concat, args: { cols: [id, name], separator: "-" } } }
"""


def projection(work: Path, rows: int, rounds: int) -> Comparison:
    config = work / f"narrow_{rows}"
    write_wide_csv(config / "wide.csv", rows)
    renames = ", ".join(
        ["id: c0", "name: c3", *(f"c{i}: null" for i in range(20) if i not in (0, 3))]
    )
    (config / "pipeline.yml").write_text(PIPELINE % renames)
    out = work / f"narrow_out_{rows}"

    def run(mode: str):  # type: ignore[no-untyped-def]
        settings = {"mode": mode, "output_dir": str(out / mode)}
        return timed(lambda: run_capport_job(config, "narrow", settings))

    comparison = Comparison(f"Projection: keep 2 of 20 columns, {rows:,} rows, in process")
    comparison.medians = alternate(
        {"sync_eager": run("sync_eager"), "sync_lazy": run("sync_lazy")}, rounds
    )
    comparison.ratio("sync_lazy / sync_eager", "sync_lazy", "sync_eager", 0.7)
    if not filecmp.cmp(out / "sync_lazy" / "two.csv", out / "sync_eager" / "two.csv", False):
        raise RuntimeError("sync_lazy and sync_eager wrote different files")
    return comparison
