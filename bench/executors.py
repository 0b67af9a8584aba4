"""Beyond one machine: the cost of a stage on each executor, and of frames on object storage.

`executors`: a chain of cheap stages in process, as processes of this machine (multiprocess)
and on two local Celery workers (the machine's Redis as broker).

The chain is the overhead suite's (load a 3-row CSV, selects one after another, save), so its
time is almost all executor: per stage, the run's time over its stages. The goal (issue 15:
celery <= 0.3 s per stage on this 2-core machine) needs capport's poll interval (0.05 s; with
dagster-celery's own 1 s a 16-stage chain took 17.3 s). All three write the same file.

`frames_on_s3`: the 5M-row enrich pipeline with its frames persisted between processes in a
local directory vs on S3 (moto's server on 127.0.0.1); both write the same file.
"""

from __future__ import annotations

import filecmp
import socket
import tempfile
import uuid
from pathlib import Path

from bench.celery_workers import celery_workers
from bench.data import enrich_config
from bench.harness import (
    Comparison,
    Ratio,
    Sample,
    alternate,
    capport_command,
    run_capport_job,
    run_process,
    timed,
)
from bench.overhead import chain_config

__all__ = ["REDIS", "executors", "frames_on_s3"]

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


def frames_on_s3(work: Path, rows: int, rounds: int) -> Comparison:
    """The example `enrich_events` pipeline on `rows` event rows with the multiprocess executor
    (every frame persisted between its stages), frames in a local directory vs on S3 (moto's
    server on 127.0.0.1: the cost of the object-store path, not of a network). Whole `capport
    run` processes, each given the S3 environment: the stage processes come from a forkserver
    that keeps the environment it started with, so this process' own would not reach them."""
    from moto.server import ThreadedMotoServer

    config = enrich_config(work / f"s3_{rows}", rows)
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {**_S3_ENVIRONMENT, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "DAGSTER_HOME": ""}
    bucket = f"capport-bench-{uuid.uuid4().hex[:8]}"
    try:
        _s3_client(env).create_bucket(Bucket=bucket)
        frames = {"local": str(work / "frames"), "s3": f"s3://{bucket}/frames"}
        outputs = {where: work / f"out_{where}" for where in frames}

        def run(where: str) -> Sample:
            command = capport_command(
                *("run", "-c", str(config), "-p", PIPELINE, "-o", str(outputs[where])),
                *("--executor", "multiprocess", "--frames-dir", frames[where], "--no-preview"),
            )
            return run_process(command, env=env)

        comparison = Comparison(
            f"Frames between processes, enrich_events, {rows:,} event rows, multiprocess"
        )
        comparison.medians = alternate(
            {
                "frames in a local directory": lambda: run("local"),
                "frames on S3": lambda: run("s3"),
            },
            rounds,
        )
        comparison.ratio("S3 / local directory", "frames on S3", "frames in a local directory")
        expected = outputs["local"] / OUTPUT
        if not filecmp.cmp(expected, outputs["s3"] / OUTPUT, shallow=False):
            raise RuntimeError("frames on S3 gave another output than frames in a directory")
        return comparison
    finally:
        server.stop()


PIPELINE = "enrich_events"
OUTPUT = Path(PIPELINE) / "events_enriched.csv"
_S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "capport-bench",
    "AWS_SECRET_ACCESS_KEY": "capport-bench-secret",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _s3_client(env: dict[str, str]):  # type: ignore[no-untyped-def]
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
