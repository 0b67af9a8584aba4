"""The cost of a stage on each executor: a chain of cheap stages in process, as processes of
this machine (multiprocess) and on two local Celery workers (the machine's Redis as broker).

The chain is the overhead suite's (load a 3-row CSV, selects one after another, save), so its
time is almost all executor: per stage, the run's time over its stages. The goal (issue 15:
celery <= 0.3 s per stage on this 2-core machine) needs capport's poll interval (0.05 s; with
dagster-celery's own 1 s a 16-stage chain took 17.3 s). All three write the same file.
"""

from __future__ import annotations

import filecmp
import socket
import tempfile
import uuid
from pathlib import Path

from bench.celery_workers import celery_workers
from bench.harness import Comparison, Ratio, alternate, run_capport_job, timed
from bench.overhead import chain_config

__all__ = ["REDIS", "executors"]

REDIS = "redis://127.0.0.1:6379/0"
#: issue 15's goal for `executor: celery`, seconds per stage.
CELERY_GOAL = 0.3


def executors(work: Path, stages: int, rounds: int) -> Comparison:
    _require_redis()
    config = chain_config(work, stages)
    queue = f"capport-bench-{uuid.uuid4().hex[:8]}"
    outputs = {kind: work / f"out_{kind}" for kind in ("in_process", "multiprocess", "celery")}

    def run(kind: str) -> None:
        settings: dict[str, object] = {"executor": kind, "output_dir": str(outputs[kind])}
        if kind == "celery":
            settings["celery"] = {"broker": REDIS, "queue": queue}
        run_capport_job(config, "chain", settings, temp_instance=kind != "in_process")

    comparison = Comparison(f"Executors, {stages} cheap stages in a chain, sync_lazy")
    with tempfile.TemporaryDirectory(prefix="capport-workers-") as root:
        env = {"CAPPORT_CELERY_BROKER": REDIS, "CAPPORT_CELERY_QUEUE": queue}
        with celery_workers(Path(root), env, queue, count=2):
            comparison.medians = alternate(
                {f"capport {kind}": timed(lambda kind=kind: run(kind)) for kind in outputs},
                rounds,
            )
    for kind in outputs:
        per_stage = comparison.medians[f"capport {kind}"].seconds / stages
        goal = CELERY_GOAL if kind == "celery" else None
        comparison.ratios.append(Ratio(f"{kind}: seconds per stage", per_stage, goal))
    reference = outputs["in_process"] / "chain.csv"
    for kind, out in outputs.items():
        if not filecmp.cmp(reference, out / "chain.csv", shallow=False):
            raise RuntimeError(f"the {kind} chain wrote another file than the in-process one")
    return comparison


def _require_redis() -> None:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=2).close()
    except OSError as exc:
        raise RuntimeError(
            f"the executors benchmark needs Redis on 127.0.0.1:6379 (its Celery broker): {exc}"
        ) from None
