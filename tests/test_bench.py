"""`python -m bench --quick` runs every comparison end to end, so the benchmarks cannot rot.

Only that they run and check their outputs: timing goals are judged by the full benchmark on
a quiet machine (docs/benchmarks.md), never in tests.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.data_path import _check_identical
from tests.conftest import REPO
from tests.services import require_service

TITLES = [
    "Data path in process, lazy, 20,000 event rows",
    "Data path in process, eager, 20,000 event rows",
    "Whole processes, 20,000 event rows (peak RSS from the kernel's high-water mark)",
    "Memory of the run alone, 20,000 event rows (peak RSS above start)",
    "Framework overhead, 8 cheap stages in a chain, in process",
    "Framework overhead, 32 cheap stages in a chain, in process",
    "Projection: keep 2 of 20 columns, 20,000 rows, in process",
    "A frame read by two saves, 20,000 event rows, in process",
    "The same in plain Polars, 20,000 event rows, whole processes",
    "CPU-bound fan-out: 4 branches over 20,000 event rows each, 2 cores",
    "I/O-bound fan-out: 8 HTTP stages, server answers after 0.2 s",
    "Load time of generated configs",
    "NDJSON load and save, 20,000 rows, in process",
    "JSON array load and save, 20,000 rows, in process",
    "Parquet load and save, 200,000 rows, in process",
    "load_sql from PostgreSQL, 20,000 rows, in process",
    "save_sql to PostgreSQL, 20,000 rows, in process",
    "Transform language (filter, join, sql, group_by, sort), 20,000 event rows, in process, lazy",
    "Transform language (filter, join, sql, group_by, sort), 20,000 event rows, in process, eager",
    "Executors, 4 cheap stages in a chain, sync_lazy",
    "Frames between processes, enrich_events, 20,000 event rows, multiprocess",
    "Asset catalog, 8 cheap stages in a chain, in process, SQLite instance",
    "Asset catalog, enrich_events, 20,000 rows, sync_lazy, in process",
]


def test_the_quick_benchmark_runs_every_comparison(tmp_path: Path) -> None:
    require_service("postgres")  # the sql suite reads and writes a real PostgreSQL
    require_service("redis")  # the executors suite's Celery broker
    results = tmp_path / "results.json"
    process = subprocess.Popen(
        # faulthandler: a native crash prints every thread's Python stack, not just -11.
        [sys.executable, "-X", "faulthandler", "-m", "bench", "--quick", "--json", str(results)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=300)  # ~50 s alone on 2 cores
    except subprocess.TimeoutExpired:
        # A hang: SIGABRT makes faulthandler print where every thread of the bench stands,
        # and the processes it started say what it was waiting for.
        children = subprocess.run(
            ["ps", "-o", "pid,etime,args", "--ppid", str(process.pid)],
            capture_output=True,
            text=True,
        ).stdout
        process.send_signal(signal.SIGABRT)
        stdout, stderr = process.communicate(timeout=30)
        pytest.fail(f"the quick benchmark hung:\n{stdout[-1500:]}\n{children}\n{stderr[-6000:]}")
    assert process.returncode == 0, (stdout[-1000:], stderr[-3000:])
    comparisons = json.loads(results.read_text())
    assert [c["title"] for c in comparisons] == TITLES
    for comparison in comparisons:
        assert comparison["medians"], comparison["title"]
        assert all(s["seconds"] > 0 for s in comparison["medians"].values())
        assert all(r["value"] > 0 for r in comparison["ratios"])
    processes = comparisons[2]["medians"]
    assert all(s["rss_mb"] > 20 for s in processes.values())  # a Python process with Polars
    assert "| capport sync_lazy |" in stdout


def test_a_variant_that_writes_a_different_file_stops_the_benchmark(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.csv").write_text("x\n1\n")
    (tmp_path / "c.csv").write_text("x\n2\n")
    _check_identical({"plain_lazy": tmp_path / "a.csv", "same": tmp_path / "b.csv"})
    with pytest.raises(RuntimeError, match=r"^different wrote .*c\.csv, which differs from"):
        _check_identical({"plain_lazy": tmp_path / "a.csv", "different": tmp_path / "c.csv"})
