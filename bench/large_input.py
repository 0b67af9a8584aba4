"""Peak memory of a lazy run on a large CSV: capport `sync_lazy` / `sync_eager` vs plain Polars.

    python -m bench.large_input --rows 60000000    # ~2.3 GB of CSV
    python -m bench.large_input --quick            # 2M rows

The pipeline loads the CSV, builds one column from two (`concat`) and saves three columns: it
allows streaming, so `sync_lazy` hands Polars one plan from scan to sink and memory stays bounded
while `sync_eager` holds the whole frame. Each variant runs as its own process under
`/usr/bin/time -v`; the figure is its peak RSS.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import polars as pl

PIPELINE = """pipeline:
  big:
    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/big.csv, df_name: B } }
    - { label: pick, task: transform, args: { name: pick, input: B, save_df: P } }
    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/p.csv, df_name: P } }
transform:
  pick:
    - select: { id: null, label: { action: concat, args: { cols: [c, a], separator: "-" } },
                b: null }
"""

PLAIN = """import polars as pl, sys
pl.scan_csv(sys.argv[1]).select(
    "id", pl.concat_str(["c", "a"], separator="-").alias("label"), "b"
).sink_csv(sys.argv[2])
"""


def generate(path: Path, rows: int) -> None:
    pl.LazyFrame().select(pl.int_range(0, rows).alias("id")).with_columns(
        (pl.col("id") * 7919 % 1000).alias("a"),
        ((pl.col("id") * 104729 % 100000) / 100000.0).alias("b"),
        pl.format("player_{}", pl.col("id") % 5000).alias("c"),
    ).sink_csv(path)


def measure(command: list[str]) -> tuple[float, int, int]:
    """Wall seconds, peak RSS (MB) and peak anonymous RSS (MB) of one process.

    RSS counts the pages of the CSV that Polars maps into memory (file-backed, reclaimable by
    the kernel); anonymous RSS is the memory the process really allocated, sampled every 20 ms.
    """
    started = time.perf_counter()
    process = subprocess.Popen(
        ["/usr/bin/time", "-v", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak_anon = 0
    while process.poll() is None:
        for child in _children(process.pid):
            peak_anon = max(peak_anon, _anon_kb(child))
        time.sleep(0.02)
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode:
        raise SystemExit(f"{command} failed:\n{stderr[-2000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)[1])
    return time.perf_counter() - started, peak_kb // 1024, peak_anon // 1024


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _anon_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"RssAnon:\s+(\d+) kB", status)
    return int(found[1]) if found else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=60_000_000)
    parser.add_argument("--quick", action="store_true", help="2M rows")
    args = parser.parse_args()
    rows = 2_000_000 if args.quick else args.rows
    capport = [sys.executable, "-m", "capport_dagster.cli", "run", "-p", "big", "--no-preview"]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config").mkdir()
        (work / "config" / "p.yml").write_text(PIPELINE)
        generate(work / "config" / "big.csv", rows)
        size = os.path.getsize(work / "config" / "big.csv") / 1e9
        (work / "plain.py").write_text(PLAIN)
        variants = {
            "plain Polars, lazy (scan -> sink)": [
                sys.executable,
                str(work / "plain.py"),
                str(work / "config" / "big.csv"),
                str(work / "plain.csv"),
            ],
            "capport sync_lazy": [
                *capport,
                "-c",
                str(work / "config"),
                "-o",
                str(work / "lazy"),
                "--mode",
                "sync_lazy",
            ],
            "capport sync_eager": [
                *capport,
                "-c",
                str(work / "config"),
                "-o",
                str(work / "eager"),
                "--mode",
                "sync_eager",
            ],
        }
        print(f"{rows:,} rows, {size:.2f} GB of CSV")
        print(f"  {'':36} {'wall':>8}   {'peak RSS':>12}   {'peak anonymous':>14}")
        for name, command in variants.items():
            seconds, peak, anon = measure(command)
            print(f"  {name:36} {seconds:6.1f} s   {peak:9,} MB   {anon:11,} MB")


if __name__ == "__main__":
    main()
