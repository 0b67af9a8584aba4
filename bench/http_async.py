"""8 independent HTTP stages against a local server that answers after 1 s: sync vs async.

    python -m bench.http_async            # 3 alternating rounds, medians
    python -m bench.http_async --quick    # 1 round

Each stage fetches one URL; the server (scripts/fixture_server.py) sleeps `--delay` seconds before
answering. `sync_lazy` runs the stages one after another; `async_eager` starts them all at once
(HTTP stages await the network, so `max_concurrent` does not hold them back). The goal on a
2-core machine: async/sync <= 0.35. Everything runs in this process on an ephemeral instance,
the way `capport run` does without `DAGSTER_HOME`.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.harness import run_capport_job

REPO = Path(__file__).resolve().parent.parent
STAGES = 8


def fixture_server():
    spec = importlib.util.spec_from_file_location(
        "fixture_server", REPO / "scripts" / "fixture_server.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(directory: Path, port: int) -> Path:
    """A pipeline: load one row of URLs, then 8 independent `http_request` stages and saves."""
    (directory / "api" / "item").mkdir(parents=True)
    for i in range(STAGES):
        (directory / "api" / "item" / f"{i}.json").write_text(json.dumps({"id": i, "v": i * i}))
    config = directory / "config"
    config.mkdir()
    header = ",".join(f"u{i}" for i in range(STAGES))
    urls = ",".join(f"http://127.0.0.1:{port}/item/{i}" for i in range(STAGES))
    (config / "urls.csv").write_text(f"{header}\n{urls}\n")
    stages = [
        "    - { label: load, task: load_csv, "
        "args: { filepath: $CONFIG_DIR/urls.csv, df_name: URLS } }"
    ]
    for i in range(STAGES):
        stages.append(
            f"    - {{ label: fetch_{i}, task: http_request, "
            f"args: {{ df_from: URLS, url_column: u{i}, df_to: ITEM_{i} }} }}"
        )
    for i in range(STAGES):
        stages.append(
            f"    - {{ label: save_{i}, task: save_csv, "
            f"args: {{ filepath: $OUTPUT_DIR/item_{i}.csv, df_name: ITEM_{i} }} }}"
        )
    (config / "pipeline.yml").write_text("pipeline:\n  fanout:\n" + "\n".join(stages) + "\n")
    return config


def run_once(config: Path, variant: str, output: Path) -> float:
    """Seconds one run of `variant` (`mode` or `mode+executor`) takes."""
    mode, _, executor = variant.partition("+")
    run_config = {
        "mode": mode,
        "executor": executor or "in_process",
        "max_concurrent": STAGES if executor else None,
        "output_dir": str(output),
    }
    started = time.perf_counter()
    # Worker processes need run storage they can share: a temporary SQLite instance.
    run_capport_job(config, "fanout", run_config, temp_instance=bool(executor))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round instead of three")
    parser.add_argument("--delay", type=float, default=1.0, help="server delay in seconds")
    parser.add_argument(
        "--multiprocess",
        action="store_true",
        help="also time async_eager on the multiprocess executor (max_concurrent 8)",
    )
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server = fixture_server().start_in_thread(root=work / "api", port=0, delay=args.delay)
        config = write_config(work, server.server_address[1])
        times: dict[str, list[float]] = {"sync_lazy": [], "async_eager": []}
        if args.multiprocess:
            times["async_eager+multiprocess"] = []
        for _ in range(rounds):  # alternate, so drift affects both sides alike
            for mode in times:
                times[mode].append(run_once(config, mode, work / "out" / mode))
        server.shutdown()
    medians = {variant: statistics.median(values) for variant, values in times.items()}
    print(f"{STAGES} HTTP stages, server delay {args.delay:.1f} s, {rounds} round(s), medians:")
    for variant, seconds in medians.items():
        print(f"  {variant:26} {seconds:6.2f} s")
    ratio = medians["async_eager"] / medians["sync_lazy"]
    print(f"  {'async_eager / sync_lazy':26} {ratio:6.2f}   (goal <= 0.35)")


if __name__ == "__main__":
    main()
