"""Load time: configs of 100, 1,000 and 5,000 stages, `load_definitions` and `capport validate`.

The generated pipelines look like real ones: loads, transforms from a few templates filled in by
kwargs, joins to earlier frames, saves with models, split over several pipelines of 50 stages
and two files, so every part of the loader and validator is exercised. Growth must be linear.
"""

from __future__ import annotations

from pathlib import Path

from bench.harness import Comparison, alternate, capport_command, run_process, timed

__all__ = ["generated_config", "load_time"]

STAGES_PER_PIPELINE = 50

TEMPLATES = """transform:
  pick:
    - select: { id: null, value: $$column, label: { action: format,
                args: { template: "item {}", cols: [id] } } }
  enrich:
    - join: { right: $$right, right_select: { id: null, other: value }, left_on: id,
              right_on: id, how: left }
    - drop: { other: true }
model:
  row:
    id: { dtype: int64, constraints: [primary] }
    value: int64
    label: str
"""


def generated_config(directory: Path, stages: int) -> Path:
    config = directory / f"stages_{stages}"
    config.mkdir(parents=True, exist_ok=True)
    (config / "templates.yml").write_text(TEMPLATES)
    lines = ["pipeline:"]
    for p in range(max(1, stages // STAGES_PER_PIPELINE)):
        lines.append(f"  generated_{p}:")
        count = min(STAGES_PER_PIPELINE, stages - p * STAGES_PER_PIPELINE)
        for i in range(count):
            lines.extend(_stage(i, count))
    (config / "pipeline.yml").write_text("\n".join(lines) + "\n")
    return config


def _stage(i: int, count: int) -> list[str]:
    if i == 0:
        args = "{ filepath: $CONFIG_DIR/in.csv, df_name: F0 }"
        return [f"    - {{ label: s{i}, task: load_csv, args: {args} }}"]
    if i == count - 1:
        args = f"{{ filepath: $OUTPUT_DIR/out.csv, df_name: F{i - 1}, model: row }}"
        return [f"    - {{ label: s{i}, task: save_csv, args: {args} }}"]
    if i % 3 == 1:
        kwargs = "{ column: value }"
        args = f"{{ name: pick, input: F{i - 1}, save_df: F{i}, kwargs: {kwargs} }}"
    else:
        kwargs = f"{{ right: F{max(0, i - 2)} }}"
        args = f"{{ name: enrich, input: F{i - 1}, save_df: F{i}, kwargs: {kwargs} }}"
    return [f"    - {{ label: s{i}, task: transform, args: {args} }}"]


def load_time(work: Path, sizes: tuple[int, ...], rounds: int) -> Comparison:
    from capport_dagster import load_definitions

    comparison = Comparison("Load time of generated configs")
    variants = {}
    for stages in sizes:
        config = generated_config(work, stages)
        variants[f"load_definitions, {stages:,} stages"] = timed(
            lambda config=config: load_definitions(config)
        )
        variants[f"capport validate, {stages:,} stages (process)"] = lambda config=config: (
            run_process(capport_command("validate", "-c", str(config)))
        )
    comparison.medians = alternate(variants, rounds)
    if len(sizes) > 1:
        small, big = sizes[-2], sizes[-1]
        goal = 6.0 if big / small == 5 else None
        for what in ("load_definitions, {:,} stages", "capport validate, {:,} stages (process)"):
            comparison.ratio(
                f"{what.format(big)} / {small:,}", what.format(big), what.format(small), goal
            )
    return comparison
