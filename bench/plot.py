"""The figure of docs/benchmarks.md: time vs event rows (data path) and vs stages."""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from bench.harness import Comparison

__all__ = ["plot"]


def plot(comparisons: list[Comparison], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no screen
    import matplotlib.pyplot as plt

    rows: dict[str, list[tuple[int, float]]] = defaultdict(list)
    stages: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for comparison in comparisons:
        size = _number(comparison.title)
        if comparison.title.startswith("Data path in process"):  # lazy and eager
            for name, sample in comparison.medians.items():
                rows[name].append((size, sample.seconds))
        elif comparison.title.startswith("Framework overhead"):
            for name, sample in comparison.medians.items():
                stages[f"run: {name}"].append((size, sample.seconds))
        elif comparison.title.startswith("Load time"):
            for name, sample in comparison.medians.items():
                what, _, count = name.partition(", ")
                stages[f"load: {what}"].append((_number(count), sample.seconds))

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, points in sorted(rows.items()):
        left.plot(*zip(*sorted(points), strict=True), marker="o", label=name)
    left.set(title="Data path (enrich_events), in process", xlabel="event rows",
             ylabel="seconds (median)")  # fmt: skip
    for name, points in sorted(stages.items()):
        right.plot(*zip(*sorted(points), strict=True), marker="o", label=name)
    right.set(title="Stages: run (cheap chain) and load", xlabel="stages", ylabel="seconds",
              xscale="log", yscale="log")  # fmt: skip
    for axes in (left, right):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _number(text: str) -> int:
    found = re.search(r"(\d[\d,]*) (?:event rows|cheap stages|stages)", text)
    return int(found[1].replace(",", "")) if found else 0
