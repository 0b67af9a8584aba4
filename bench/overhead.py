"""Framework overhead: a chain of cheap stages, capport's job vs a hand-written Dagster job.

Both have the same op graph (load a 3-row CSV, `stages - 2` selects one after another, save) and
the same executor (Dagster's in-process one, frames in memory, lazy), both are rebuilt by Dagster
from a reconstructable target and run on an ephemeral instance: what differs is only what
capport adds per op (its op body, metadata, progress and logging). Each is measured without and
with the asset catalog recorded (capport's default; by hand, an `AssetMaterialization` per op
with the frame's schema and column lineage), so that like is compared with like.
"""

from __future__ import annotations

import filecmp
import os
from collections.abc import Callable
from pathlib import Path

from dagster import DagsterInstance

from bench.harness import (
    Comparison,
    Ratio,
    Sample,
    alternate,
    run_capport_job,
    run_hand_written,
    timed,
)

__all__ = ["chain_config", "chain_variants", "overhead", "recording_cost", "same_outputs"]


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


#: The chain's variants: capport and the hand-written job, each without and with the asset
#: catalog recorded (capport's `catalog:`; an `AssetMaterialization` per op by hand).
CAPPORT, HAND_WRITTEN = "capport sync_lazy, catalog {}", "hand-written Dagster job, catalog {}"


def chain_variants(
    work: Path, stages: int, instance: DagsterInstance | None = None
) -> dict[str, Callable[[], Sample]]:
    """The four variants on `instance` (default: the shared ephemeral one); each writes its
    own `chain.csv` under `work/chain_out_<stages>/`, compared by :func:`same_outputs`."""
    config = chain_config(work, stages)
    out = work / f"chain_out_{stages}"
    variants: dict[str, Callable[[], Sample]] = {}
    for recorded in (False, True):
        state = "on" if recorded else "off"
        settings = {
            "mode": "sync_lazy",
            "output_dir": str(out / f"capport_{state}"),
            "log_level": "ERROR",
            "catalog": recorded,
        }
        variants[CAPPORT.format(state)] = timed(
            lambda s=settings: run_capport_job(config, "chain", s, instance=instance)
        )
        hand = out / f"dagster_{state}" / "chain.csv"
        hand.parent.mkdir(parents=True, exist_ok=True)
        variants[HAND_WRITTEN.format(state)] = timed(
            lambda h=hand, r=recorded: _hand_written(stages, config, h, r, instance)
        )
    return variants


def _hand_written(
    stages: int, config: Path, out: Path, materialize: bool, instance: DagsterInstance | None
) -> None:
    os.environ["BENCH_OUT"] = str(out)
    run_hand_written(
        "bench.dagster_jobs",
        "chain_job",
        stages,
        str(config / "tiny.csv"),
        materialize,
        instance=instance,
    )


def recording_cost(comparison: Comparison, stages: int, store: str, goal: float) -> None:
    """The catalog's cost per stage, capport's against a hand-written job's (its floor)."""
    medians = comparison.medians
    ours = (medians[CAPPORT.format("on")].seconds - medians[CAPPORT.format("off")].seconds) / stages
    floor = (
        medians[HAND_WRITTEN.format("on")].seconds - medians[HAND_WRITTEN.format("off")].seconds
    ) / stages
    comparison.notes.append(
        f"recording the catalog costs a stage, on the {store} instance: capport"
        f" {ours * 1000:.1f} ms, a hand-written job's AssetMaterialization {floor * 1000:.1f} ms"
    )
    if ours <= 0 or floor <= 0:  # below the runs' spread (--quick's one round): no ratio
        comparison.notes.append("too small to compare at this size")
        return
    comparison.ratios.append(
        Ratio(f"catalog cost per stage / hand-written's ({store})", ours / floor, goal)
    )


def same_outputs(work: Path, stages: int) -> None:
    """Every variant wrote the same bytes: a fast wrong answer is not a result."""
    files = sorted((work / f"chain_out_{stages}").glob("*/chain.csv"))
    if len(files) < 2 or not all(filecmp.cmp(files[0], f, shallow=False) for f in files[1:]):
        raise RuntimeError(f"the chain's variants wrote different (or no) files: {files}")


def overhead(work: Path, stages: int, rounds: int) -> Comparison:
    comparison = Comparison(f"Framework overhead, {stages} cheap stages in a chain, in process")
    comparison.medians = alternate(chain_variants(work, stages), rounds)
    for state in ("off", "on"):
        comparison.ratio(
            f"capport / hand-written, catalog {state}",
            CAPPORT.format(state),
            HAND_WRITTEN.format(state),
            goal=1.10,
        )
    recording_cost(comparison, stages, "ephemeral", goal=1.25)
    same_outputs(work, stages)
    return comparison
