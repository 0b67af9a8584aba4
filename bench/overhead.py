"""Framework overhead: a chain of cheap stages, capport's job vs a hand-written Dagster job.

Both have the same op graph (load a 3-row CSV, `stages - 2` selects one after another, save) and
the same executor (Dagster's in-process one, frames in memory, lazy), both are rebuilt by Dagster
from a reconstructable target and run on an ephemeral instance: what differs is only what
capport adds per op (its op body, metadata, progress and logging).
"""

from __future__ import annotations

import filecmp
from pathlib import Path

from bench.harness import (
    Comparison,
    alternate,
    run_capport_job,
    run_hand_written,
    timed,
)

__all__ = ["chain_config", "overhead"]


def chain_config(directory: Path, stages: int) -> Path:
    """A config whose pipeline `chain` is `stages` stages long."""
    config = directory / f"chain_{stages}"
    config.mkdir(parents=True, exist_ok=True)
    (config / "tiny.csv").write_text("a,b\n1,x\n2,y\n3,z\n")
    lines = [
        "pipeline:",
        "  chain:",
        "    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/tiny.csv, "
        "df_name: F0 } }",
    ]
    for i in range(1, stages - 1):
        lines.append(
            f"    - {{ label: step_{i}, task: transform, "
            f"args: {{ name: swap, input: F{i - 1}, save_df: F{i} }} }}"
        )
    lines.append(
        "    - { label: save, task: save_csv, "
        f"args: {{ filepath: $OUTPUT_DIR/chain.csv, df_name: F{stages - 2} }} }}"
    )
    lines += ["transform:", "  swap:", "    - select: { a: b, b: a }", ""]
    (config / "pipeline.yml").write_text("\n".join(lines))
    return config


def _hand_written(stages: int, csv: Path, out: Path) -> None:
    import os

    os.environ["BENCH_OUT"] = str(out)
    run_hand_written("bench.dagster_jobs", "chain_job", stages, str(csv))


def overhead(work: Path, stages: int, rounds: int) -> Comparison:
    config = chain_config(work, stages)
    out = work / f"chain_out_{stages}"
    capport_out, hand_out = out / "capport", out / "dagster" / "chain.csv"
    hand_out.parent.mkdir(parents=True, exist_ok=True)
    settings = {"mode": "sync_lazy", "output_dir": str(capport_out), "log_level": "ERROR"}
    comparison = Comparison(f"Framework overhead, {stages} cheap stages in a chain, in process")
    comparison.medians = alternate(
        {
            "hand-written Dagster job": timed(
                lambda: _hand_written(stages, config / "tiny.csv", hand_out)
            ),
            "capport sync_lazy": timed(lambda: run_capport_job(config, "chain", settings)),
        },
        rounds,
    )
    comparison.ratio(
        "capport / hand-written", "capport sync_lazy", "hand-written Dagster job", goal=1.10
    )
    if not filecmp.cmp(hand_out, capport_out / "chain.csv", shallow=False):
        raise RuntimeError("the capport and hand-written chains wrote different files")
    return comparison
