"""Measuring: alternate the variants of a comparison, take medians, time whole processes.

Variants run alternately (A B C, A B C, ...) after one unmeasured warm-up round, so that drift on
the machine (page cache, CPU frequency, another process) lands on every side alike; the figure is
the median of the rounds.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dagster import DagsterInstance, build_reconstructable_job, execute_job

__all__ = [
    "QUIET_CONSOLE",
    "Comparison",
    "Ratio",
    "Sample",
    "alternate",
    "capport_command",
    "run_capport_job",
    "run_hand_written",
    "run_process",
    "shared_instance",
    "timed",
]

BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Sample:
    seconds: float
    rss_mb: float | None = None  # peak resident memory of a whole process


@dataclass(frozen=True)
class Ratio:
    name: str
    value: float
    goal: float | None = None  # at most

    @property
    def met(self) -> bool | None:
        return None if self.goal is None else self.value <= self.goal


@dataclass
class Comparison:
    """One side-by-side measurement: its variants' medians and the ratios its goals are on."""

    title: str
    medians: dict[str, Sample] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def ratio(self, name: str, numerator: str, denominator: str, goal: float | None = None) -> None:
        value = self.medians[numerator].seconds / self.medians[denominator].seconds
        self.ratios.append(Ratio(name, value, goal))

    def rss_ratio(
        self, name: str, numerator: str, denominator: str, goal: float | None = None
    ) -> None:
        top, bottom = self.medians[numerator].rss_mb, self.medians[denominator].rss_mb
        assert top is not None and bottom is not None, "peak RSS is measured for processes only"
        self.ratios.append(Ratio(name, top / bottom, goal))


def timed(fn: Callable[[], object]) -> Callable[[], Sample]:
    def run() -> Sample:
        started = time.perf_counter()
        fn()
        return Sample(time.perf_counter() - started)

    return run


#: Whether comparisons start with their unmeasured warm-up round. `--quick` turns it off: its
#: one round only shows that everything runs, and is not judged, so warming up would only double
#: its time (the quick benchmark is part of the test suite).
WARM_UP = True


def alternate(
    variants: Mapping[str, Callable[[], Sample]], rounds: int, *, warm_up: bool | None = None
) -> dict[str, Sample]:
    """Median time (and peak RSS) of each variant over `rounds` alternating rounds, after a
    warm-up round unless `warm_up` (default: `WARM_UP`) says otherwise."""
    warm_up = WARM_UP if warm_up is None else warm_up
    samples: dict[str, list[Sample]] = {name: [] for name in variants}
    for round_ in range(rounds + (1 if warm_up else 0)):
        for name, run in variants.items():
            sample = run()
            if warm_up and round_ == 0:
                continue
            samples[name].append(sample)
    return {name: _median(values) for name, values in samples.items()}


def _median(samples: Sequence[Sample]) -> Sample:
    rss = [s.rss_mb for s in samples if s.rss_mb is not None]
    return Sample(
        statistics.median(s.seconds for s in samples), statistics.median(rss) if rss else None
    )


def run_process(
    command: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Sample:
    """Wall time and peak RSS of one whole process.

    The peak is the kernel's high-water mark of the process' own memory (`VmHWM`), read every
    10 ms until it exits (it only grows, so the last reading misses at most the last 10 ms).
    Not `wait4`'s `ru_maxrss`: Linux carries the parent's resident size over the fork into it.
    """
    environment = {**os.environ, **(env or {})}
    # As on a user's machine, modules are compiled to bytecode once (in the warm-up round) and
    # then loaded from the cache, even where the environment says not to write it.
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    for key, value in (env or {}).items():
        if value == "":
            environment.pop(key, None)  # "" unsets: e.g. DAGSTER_HOME for a one-off run
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            list(command), env=environment, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors
        )
        peak_kb = 0
        while process.poll() is None:
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        if process.returncode:
            errors.seek(0)
            tail = errors.read().decode(errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)} exited {process.returncode}:\n{tail}")
    return Sample(elapsed, peak_kb / 1024)


def _high_water_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:  # exited between poll() and here
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0  # a zombie has no memory lines


def capport_command(*args: str) -> list[str]:
    """The installed `capport` script of this interpreter's environment."""
    return [str(BIN / "capport"), *args]


def shared_instance() -> DagsterInstance:
    """One ephemeral instance for every in-process run of the benchmark process.

    Creating one costs ~0.13 s (in-memory SQLite storage set up with its migrations): a cost of
    the process, like importing Dagster, which whole-process comparisons include; in-process
    comparisons time the run itself, as Dagster's own in-process runs on a long-lived instance.
    It is created during the unmeasured warm-up round.
    """
    global _SHARED
    if _SHARED is None:
        _SHARED = DagsterInstance.ephemeral()
    return _SHARED


_SHARED: DagsterInstance | None = None
#: Run config of a hand-written job: console at ERROR, as capport's runs in the benchmark.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
#: `capport run` always passes the reference date-time (`-d`, default now), so a run never
#: looks up its creation time in run storage: the benchmark passes a fixed one.
REFERENCE = "2026-01-05T00:00:00+00:00"


def run_hand_written(
    module: str, factory: str, *args: object, instance: DagsterInstance | None = None
) -> None:
    """Run a hand-written Dagster job (the framework floor) in this process on the shared
    instance (or `instance`): `module.factory(*args)` builds it, cached, so that Dagster can
    rebuild it."""
    job = build_reconstructable_job(module, factory, reconstructable_args=args)
    run = execute_job(job, instance=instance or shared_instance(), run_config=QUIET_CONSOLE)
    if not run.success:
        raise RuntimeError(f"the hand-written job {module}.{factory}{args} failed")


def run_capport_job(
    config: Path,
    pipeline: str,
    run_config: Mapping[str, object],
    *,
    temp_instance: bool = False,
    instance: DagsterInstance | None = None,
) -> None:
    """Run a pipeline's job in this process as `capport run` does: a reconstructable job, on
    the shared ephemeral instance (or a temporary SQLite one, which worker processes need, or
    the `instance` given).
    """
    job = build_reconstructable_job(
        "capport_dagster.translate.build",
        "job_for",
        reconstructable_args=(str(config), pipeline, ()),
    )
    settings = {"log_level": "ERROR", "preview": False, "ref_datetime": REFERENCE, **run_config}
    if temp_instance:
        quiet = {"python_logs": {"python_log_level": "WARNING"}}  # as `capport run` sets it
        with DagsterInstance.local_temp(overrides=quiet) as instance:
            result = execute_job(job, instance=instance, run_config=settings)
    else:
        result = execute_job(job, instance=instance or shared_instance(), run_config=settings)
    if not result.success:
        raise RuntimeError(f"{pipeline} with {dict(run_config)} failed")
