"""Large inputs: a streaming plan in `sync_lazy` keeps memory bounded (bench/large_input.py)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench.large_input import PIPELINE, generate, measure


def test_sync_lazy_streams_a_large_csv_with_bounded_memory(tmp_path: Path):
    config = tmp_path / "config"
    config.mkdir()
    (config / "p.yml").write_text(PIPELINE)
    generate(config / "big.csv", 12_000_000)
    size_mb = (config / "big.csv").stat().st_size // 2**20  # ~440 MB
    run = [sys.executable, "-m", "capport_dagster.cli", "run", "-c", str(config), "-p", "big"]
    _, _, lazy = measure([*run, "-o", str(tmp_path / "lazy"), "--no-preview"])
    _, _, eager = measure(
        [*run, "-o", str(tmp_path / "eager"), "--no-preview", "--mode", "sync_eager"]
    )
    assert (tmp_path / "lazy" / "p.csv").stat().st_size > 0
    # Eager holds the frame (more than the CSV); lazy allocates what Dagster and a few Polars
    # batches need, independent of the file's size.
    assert eager > size_mb
    assert lazy < 300 < size_mb
