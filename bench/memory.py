"""Memory of the data path alone: a run's peak RSS above what the process held before it.

    python -m bench.memory plain|sync_lazy|sync_eager CONFIG_DIR OUTPUT

Imports come first (Polars; and Dagster with capport), then the resident size is noted, then
the run, then the peak. The difference is what the work itself needed, which is what lazy
streaming can keep small; the whole process' peak adds a fixed ~60 MB of Dagster's modules and
its run storage that no pipeline can avoid. Prints `baseline_kb peak_kb`.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> None:
    variant, config, output = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    if variant == "plain":
        from bench.plain_enrich import enrich

        def run() -> None:
            output.mkdir(parents=True, exist_ok=True)
            enrich(config / "data", output / "plain.csv", lazy=True)
    else:
        import capport_dagster.translate.build  # noqa: F401  (what the run imports: before)
        from bench.harness import run_capport_job

        def run() -> None:
            settings = {"mode": variant, "output_dir": str(output)}
            run_capport_job(config, "enrich_events", settings)

    baseline = _status("VmRSS")
    run()
    print(baseline, _status("VmHWM"))


if __name__ == "__main__":
    main()
