"""Local Celery workers for capport, started and stopped by pid: what the benchmark and the
tests (tests/test_celery.py) run their `executor: celery` pipelines on.

Each worker is `celery -A capport_dagster.celery_worker worker` in a working directory of its
own, listening on the queue given (one per benchmark or test module, so that runs side by side
never take each other's stages), with the settings docs/deploy.md recommends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

__all__ = ["READY_DEADLINE", "celery_workers", "pool_processes"]

#: Seconds a worker may take to say it is ready.
READY_DEADLINE = 60


@contextmanager
def celery_workers(
    root: Path, env: Mapping[str, str], queue: str, count: int = 2, concurrency: int = 1
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` workers under `root` (`worker_<i>/`, each with its `worker.log`), ready when
    this yields, killed (their whole process groups) when it ends."""
    workers: list[subprocess.Popen[bytes]] = []
    try:
        for index in range(count):
            workers.append(_start(root / f"worker_{index}", env, queue, index, concurrency))
        for index, worker in enumerate(workers):
            _wait_ready(worker, root / f"worker_{index}" / "worker.log")
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
        _forget_queue(env.get("CAPPORT_CELERY_BROKER", ""), queue)


def _forget_queue(broker: str, queue: str) -> None:
    """Remove what the queue left on a Redis broker (kombu's bindings, the queue's lists): the
    queue name is unique to its workers, so nothing else is touched. Task results expire by
    themselves (Celery's `result_expires`, a day)."""
    if not broker.startswith(("redis://", "rediss://")):
        return
    import redis

    client = redis.Redis.from_url(broker)
    try:
        keys = list(client.scan_iter(match=f"*{queue}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def pool_processes(worker: subprocess.Popen[bytes]) -> set[int]:
    """The pids of a worker's pool processes, the ones that run the stages."""
    found: set[int] = set()
    for task in Path(f"/proc/{worker.pid}/task").glob("*"):
        try:
            found.update(int(pid) for pid in (task / "children").read_text().split())
        except OSError:  # the thread ended meanwhile
            continue
    return found


def _start(
    directory: Path, env: Mapping[str, str], queue: str, index: int, concurrency: int
) -> subprocess.Popen[bytes]:
    directory.mkdir(parents=True)
    command = [
        *(str(Path(sys.executable).parent / "celery"), "-A", "capport_dagster.celery_worker"),
        *("worker", "-Q", queue, "-n", f"capport{index}-{queue}@%h"),
        *("--concurrency", str(concurrency), "--prefetch-multiplier", "1"),
        *("--without-mingle", "--without-gossip", "-l", "INFO"),
    ]
    environment = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | dict(env)
    with (directory / "worker.log").open("wb") as log:
        return subprocess.Popen(
            command,
            cwd=directory,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _wait_ready(worker: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_DEADLINE
    while b" ready." not in log.read_bytes():
        if worker.poll() is not None:
            raise RuntimeError(f"a Celery worker died while starting:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"a Celery worker was not ready in time:\n{log.read_text()}")
        time.sleep(0.1)
