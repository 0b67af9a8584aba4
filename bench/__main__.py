"""Benchmarks: capport vs plain Polars and vs hand-written Dagster, side by side in one run.

    python -m bench                 # the full set (about 13 minutes on 2 cores)
    python -m bench --quick         # small sizes, one round, no warm-up: everything still runs
    python -m bench --only data_path overhead --plot docs/benchmarks.png --json results.json

Data is generated (deterministically) in a temporary directory. Each comparison runs its
variants alternately after a warm-up round and reports medians; every variant's output is
checked against the others, so a fast wrong answer stops the run. Ratios that miss their goal
are marked and make the exit status 1 (not in --quick, whose sizes are too small to judge).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import polars as pl

from bench import harness
from bench.catalog import catalog
from bench.data_path import data_path
from bench.executors import executors, frames_on_s3
from bench.fanout import cpu_fanout, http_fanout
from bench.files import files
from bench.harness import Comparison
from bench.load_time import load_time
from bench.overhead import overhead
from bench.projection import projection
from bench.shared import shared_frame
from bench.sql import sql
from bench.transform_lang import transform_lang


@dataclass(frozen=True)
class Sizes:
    rounds: int
    event_rows: tuple[int, ...]
    chain_stages: tuple[int, ...]
    projection_rows: int
    fanout_branches: tuple[int, ...]
    fanout_rows: int
    http_delay: float
    config_stages: tuple[int, ...]
    multiprocess: bool
    executor_stages: int
    catalog_stages: int


FULL = Sizes(3, (1_000_000, 5_000_000), (32, 200), 2_000_000, (4, 8), 1_000_000, 1.0,
             (100, 1_000, 5_000), True, 16, 200)  # fmt: skip
QUICK = Sizes(1, (20_000,), (8, 32), 20_000, (4,), 20_000, 0.2, (20, 100), False, 4, 8)

Suite = Callable[[Path, Sizes], list[Comparison]]
SUITES: dict[str, Suite] = {
    "data_path": lambda work, s: [
        c for rows in s.event_rows for c in data_path(work, rows, s.rounds)
    ],
    "overhead": lambda work, s: [overhead(work, n, s.rounds) for n in s.chain_stages],
    "projection": lambda work, s: [projection(work, s.projection_rows, s.rounds)],
    "shared": lambda work, s: shared_frame(work, s.projection_rows, s.rounds),
    "fanout": lambda work, s: [
        *(
            cpu_fanout(work, n, s.fanout_rows, s.rounds, s.multiprocess and n == 4)
            for n in s.fanout_branches
        ),
        http_fanout(work, s.rounds, s.http_delay, s.multiprocess),
    ],
    "load_time": lambda work, s: [load_time(work, s.config_stages, s.rounds)],
    "files": lambda work, s: files(work, s.event_rows[-1], s.rounds),
    "sql": lambda work, s: sql(work, s.fanout_rows, s.rounds),
    "transform_lang": lambda work, s: transform_lang(work, s.event_rows[-1], s.rounds),
    "executors": lambda work, s: [
        executors(work, s.executor_stages, s.rounds),
        frames_on_s3(work, s.event_rows[-1], s.rounds),
    ],
    "catalog": lambda work, s: catalog(work, s.catalog_stages, s.event_rows[-1], s.rounds),
}


#: Room the benchmark needs for its data and outputs at once (the 5M-row suite is the largest).
FULL_BYTES = 8 * 2**30
QUICK_BYTES = 256 * 2**20


def in_memory_dir(needed: int) -> Path | None:
    """/dev/shm when it has `needed` bytes free, else None (the system's temporary directory)."""
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free >= needed:
        return shm
    return None


def render(comparison: Comparison, judge: bool = True) -> str:
    lines = [f"### {comparison.title}", "", "| variant | median | peak RSS |", "|---|---:|---:|"]
    for name, sample in comparison.medians.items():
        rss = f"{sample.rss_mb:,.0f} MB" if sample.rss_mb is not None else ""
        lines.append(f"| {name} | {sample.seconds:.3f} s | {rss} |")
    if comparison.ratios:
        lines += ["", "| ratio | value | goal |", "|---|---:|---|"]
        for ratio in comparison.ratios:
            goal = "" if ratio.goal is None else f"<= {ratio.goal:g}"
            mark = {True: " met", False: " **missed**", None: ""}[ratio.met] if judge else ""
            lines.append(f"| {ratio.name} | {ratio.value:.2f} | {goal}{mark} |")
    if comparison.notes:
        lines += ["", *(f"- {note}" for note in comparison.notes)]
    return "\n".join(lines) + "\n"


def machine() -> str:
    import dagster

    cores = len(__import__("os").sched_getaffinity(0))
    return (
        f"{platform.system()} {platform.machine()}, {cores} cores, Python "
        f"{platform.python_version()}, dagster {dagster.__version__}, polars {pl.__version__}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument("--only", nargs="+", choices=list(SUITES), help="run only these")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (after a warm-up)")
    parser.add_argument("--json", type=Path, help="write the medians and ratios here")
    parser.add_argument("--plot", type=Path, help="draw time vs rows and vs stages (PNG)")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where data and outputs go (default: /dev/shm, in memory, when it has room)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    harness.WARM_UP = not args.quick
    workdir = args.workdir or in_memory_dir(needed=QUICK_BYTES if args.quick else FULL_BYTES)
    if args.rounds:
        sizes = Sizes(**{**asdict(sizes), "rounds": args.rounds})
    print(f"# capport benchmarks ({'quick' if args.quick else 'full'})\n\n{machine()}\n")
    comparisons: list[Comparison] = []
    # Outputs of hundreds of MB written to disk leave the kernel flushing them while the next
    # variant runs, and whichever variant comes next pays: in memory, the comparisons measure
    # the work, which is what differs between the sides (every side writes the same bytes).
    with tempfile.TemporaryDirectory(prefix="capport-bench-", dir=workdir) as tmp:
        for name in args.only or SUITES:
            work = Path(tmp) / name
            work.mkdir()
            for comparison in SUITES[name](work, sizes):
                print(render(comparison, judge=not args.quick), flush=True)
                comparisons.append(comparison)
            shutil.rmtree(work)
            if args.json:  # after each suite: a run cut short keeps what it measured
                args.json.write_text(json.dumps([asdict(c) for c in comparisons], indent=2) + "\n")
    if args.plot:
        from bench.plot import plot

        plot(comparisons, args.plot)
    missed = [r.name for c in comparisons for r in c.ratios if r.met is False]
    if missed and not args.quick:
        print("missed goals: " + "; ".join(missed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
