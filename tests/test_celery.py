"""`executor: celery`: capport runs on real Celery workers, with runs in PostgreSQL.

The module starts its own cluster on 127.0.0.1 and stops it by pid: two Celery worker processes,
each in its own working directory without the config directory (they rebuild the run's config
from the text the run carries), listening on a queue of their own on the machine's Redis, and a
PostgreSQL database of their own holding the Dagster instance. Frames persist in a directory
both can reach; tests/test_celery_s3.py does the same with frames and data on S3.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dagster import DagsterEvent, DagsterEventType, DagsterInstance, RunsFilter

from bench.celery_workers import celery_workers, pool_processes
from capport_dagster.core.graph import load_project
from capport_dagster.translate.translator import CapportTranslator
from tests.conftest import EXAMPLE_CONFIG, capport, free_port
from tests.s3_server import ACCESS_KEY, REGION, S3Server
from tests.services import require_service, skip_for_service
from tests.test_jobs import EXAMPLE_PIPELINES, MODES

REDIS = "redis://127.0.0.1:6379/0"
POSTGRES = "postgresql+psycopg2://postgres@127.0.0.1:5432"
#: Seconds a run may take.
RUN_TIMEOUT = 240


@dataclass
class Cluster:
    """What the tests need of the cluster: its environment, workers and instance."""

    home: Path
    queue: str
    #: A local directory every worker reaches, and a bucket of moto's S3 server.
    frames: Path
    bucket: str
    s3: S3Server
    tasks: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The environment of `capport run`, and of the workers (the object store's too)."""
        missing = str(self.home / "no-aws-config")
        return {
            "DAGSTER_HOME": str(self.home),
            "CAPPORT_CELERY_BROKER": REDIS,
            "CAPPORT_CELERY_QUEUE": self.queue,
            "PYTHONPATH": str(self.tasks),
            "AWS_ENDPOINT_URL": self.s3.endpoint,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": "capport-celery-secret",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": missing,
            "AWS_SHARED_CREDENTIALS_FILE": missing,
        }

    @property
    def s3_frames(self) -> str:
        return f"s3://{self.bucket}/frames"

    def frame_keys(self) -> list[str]:
        listed = self.s3.client().list_objects_v2(Bucket=self.bucket, Prefix="frames/")
        return sorted(item["Key"] for item in listed.get("Contents", []))

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))

    def worker_of(self, pid: int) -> int | None:
        """The worker (its index) whose pool process `pid` is, if any."""
        for index, worker in enumerate(self.workers):
            if pid in pool_processes(worker):
                return index
        return None


def _create_database(name: str) -> None:
    _postgres(f'CREATE DATABASE "{name}"')


def _drop_database(name: str) -> None:
    _postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _postgres(statement: str) -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=5432, user="postgres", dbname="postgres")
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute(statement)
    finally:
        connection.close()


SLOW_TASKS = '''
import time
from pathlib import Path

from capport_dagster import task


@task("wait_for_go", reads=lambda a: [a["input"]], writes=lambda a: [a["save_df"]])
def wait_for_go(args, frames, ctx):
    """Passes its frame on once the file `go` exists (bounded), so a test can kill it."""
    go = ctx.path(args["go"])
    deadline = time.monotonic() + 120
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return {args["save_df"]: frames[args["input"]]}
'''


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, s3_server: S3Server) -> Iterator[Cluster]:
    require_service("redis")
    require_service("postgres")
    try:
        import dagster_celery  # noqa: F401
        import dagster_postgres  # noqa: F401
    except ImportError as exc:
        skip_for_service(f"{exc.name} is not installed (pip install -e '.[test]')")
    root = tmp_path_factory.mktemp("celery")
    suffix = uuid.uuid4().hex[:10]
    database = f"capport_celery_{suffix}"
    cluster = Cluster(
        home=root / "home",
        queue=f"capport-test-{suffix}",
        frames=root / "frames",
        bucket=f"capport-celery-{suffix}",
        s3=s3_server,
        tasks=root / "tasks",
    )
    s3_server.client().create_bucket(Bucket=cluster.bucket)
    cluster.home.mkdir()
    cluster.tasks.mkdir()
    (cluster.tasks / "slow_tasks.py").write_text(SLOW_TASKS)
    (cluster.home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        f"storage:\n  postgres:\n    postgres_url: {POSTGRES}/{database}\n"
    )
    _create_database(database)
    try:
        with celery_workers(root / "workers", cluster.env, cluster.queue) as workers:
            cluster.workers = workers
            yield cluster
    finally:
        _drop_database(database)


def _run(cluster: Cluster, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return capport("run", *args, cwd=cwd, timeout=RUN_TIMEOUT, **cluster.env)


def _files(directory: Path) -> dict[str, bytes]:
    """The data files a run wrote (its log file aside: times and run ids differ)."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.suffix != ".log"
    }


def _step_starts(instance: DagsterInstance, run_id: str) -> list[tuple[str, int]]:
    """(step, pid of the process that ran it) of each step the run started."""
    entries = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
    return [(e.step_key or "", e.dagster_event.pid or 0) for e in entries if e.dagster_event]


def _last_run(cluster: Cluster, pipeline: str) -> str:
    with cluster.instance() as instance:
        return instance.get_runs(RunsFilter(job_name=pipeline), limit=1)[0].run_id


def _run_id(stderr: str) -> str | None:
    for line in stderr.splitlines():
        if line.startswith("resume with: --resume "):
            return line.rsplit(" ", 1)[1]
    return None


@pytest.mark.parametrize("index", range(len(EXAMPLE_PIPELINES)))
def test_every_example_pipeline_runs_on_the_workers_as_in_process(
    cluster, example_api, tmp_path, index
):
    """The same files as an in-process run, with the stages on the workers and the frames on
    S3 (each pipeline in another mode, so that all four are covered)."""
    pipeline, mode = EXAMPLE_PIPELINES[index], MODES[index % len(MODES)]
    here = capport(
        *("run", "-c", str(example_api), "-p", pipeline, "-o", str(tmp_path / "here")),
        *("--mode", mode, "--no-preview"),
        cwd=tmp_path,
    )
    assert here.returncode == 0, here.stderr
    there = _run(
        cluster,
        *("-c", str(example_api), "-p", pipeline, "-o", str(tmp_path / "there")),
        *("--mode", mode, "--executor", "celery", "--no-preview"),
        *("--frames-dir", cluster.s3_frames),
        cwd=tmp_path,
    )
    assert there.returncode == 0, there.stderr
    assert f"mode {mode}, executor celery" in there.stderr
    run_id = _last_run(cluster, pipeline)
    assert any(key.startswith(f"frames/{run_id}/") for key in cluster.frame_keys())
    # Each stage's progress, read back from the instance as the workers store their events.
    graph = load_project(example_api, pipelines=[pipeline]).graphs[pipeline]
    for node in graph.nodes:
        op = CapportTranslator().get_op_name(node)
        assert there.stderr.count(f"[capport] {op}: started\n") == 1, there.stderr
        assert there.stderr.count(f"[capport] {op}: done in ") == 1, there.stderr
    expected = _files(tmp_path / "here")
    assert expected, "the pipeline wrote nothing"
    assert _files(tmp_path / "there") == expected
    [log] = (tmp_path / "there" / "logs").glob("*.log")
    assert " WARNING " not in log.read_text()


def test_the_stages_ran_in_both_workers(cluster, example_api, tmp_path):
    """Two independent branches at once (async mode): each worker takes one, and the event log
    records the worker processes' pids, neither of them `capport run`'s."""
    before = {r.run_id for r in cluster.instance().get_runs()}
    pids: set[int] = set()
    for attempt in range(5):  # who takes which step is Celery's choice: a few runs suffice
        run = _run(
            cluster,
            *("-c", str(example_api), "-p", "branches", "-o", str(tmp_path / str(attempt))),
            *("--mode", "async_lazy", "--executor", "celery", "--no-preview"),
            *("--frames-dir", str(cluster.frames)),
            cwd=tmp_path,
        )
        assert run.returncode == 0, run.stderr
        with cluster.instance() as instance:
            [new] = [r for r in instance.get_runs() if r.run_id not in before]
            before.add(new.run_id)
            pids.update(pid for _, pid in _step_starts(instance, new.run_id))
        if {cluster.worker_of(pid) for pid in pids} == {0, 1}:
            break
    assert {cluster.worker_of(pid) for pid in pids} == {0, 1}, pids


def test_a_worker_killed_mid_stage_fails_the_run_naming_it_and_resume_completes_it(
    cluster, write_config, tmp_path
):
    config = write_config(
        {
            "data/a.csv": "x\n1\n2\n",
            "p.yml": """
                pipeline:
                  p:
                    - { label: load, task: load_csv, args: { filepath: $CONFIG_DIR/data/a.csv,
                        df_name: A } }
                    - { label: slow, task: wait_for_go, args: { input: A, save_df: B,
                        go: $CONFIG_DIR/../go } }
                    - { label: save, task: save_csv, args: { filepath: $OUTPUT_DIR/b.csv,
                        df_name: B } }
            """,
        }
    )
    out = tmp_path / "out"
    command = [
        *("-c", str(config), "-p", "p", "-m", "slow_tasks", "-o", str(out)),
        *("--executor", "celery", "--frames-dir", cluster.s3_frames, "--no-preview"),
    ]
    environment = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"} | cluster.env
    launched = subprocess.Popen(
        [sys.executable, "-m", "capport_dagster.cli", "run", *command],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + RUN_TIMEOUT
        victim = None
        while victim is None:
            assert launched.poll() is None, launched.communicate()
            assert time.monotonic() < deadline, "the slow stage never started"
            with cluster.instance() as instance:
                runs = [r for r in instance.get_runs() if r.job_name == "p"]
                if runs:
                    starts = dict(_step_starts(instance, runs[0].run_id))
                    victim = starts.get("slow")
            time.sleep(0.2)
        assert cluster.worker_of(victim) is not None
        os.kill(victim, signal.SIGKILL)
        _, stderr = launched.communicate(timeout=RUN_TIMEOUT)
    finally:
        if launched.poll() is None:
            os.killpg(launched.pid, signal.SIGKILL)
            launched.wait(timeout=30)
    assert launched.returncode == 1, stderr
    assert (
        "error: config/p.yml:5, pipeline 'p', stage 'slow' (#2): the Celery worker process"
        f" running it ({victim}) died: Worker exited prematurely: signal 9 (SIGKILL)\n"
    ) in stderr
    assert not out.exists() or not (out / "b.csv").exists()
    run_id = _run_id(stderr)
    assert run_id is not None, stderr

    # The finished stage's frame is on S3, where the resumed run reads it back.
    assert f"frames/{run_id}/load/A.parquet" in cluster.frame_keys()
    (tmp_path / "go").touch()
    resumed = _run(cluster, *command, "--resume", run_id, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert (out / "b.csv").read_text() == "x\n1\n2\n"
    with cluster.instance() as instance:
        [again] = [r for r in instance.get_runs() if r.parent_run_id == run_id]
        assert sorted(step for step, _ in _step_starts(instance, again.run_id)) == [
            "save",
            "slow",
        ]


# --- the pieces, without a cluster ------------------------------------------------------------


def test_the_poll_interval_is_dagster_celerys_module_global(monkeypatch):
    """The one private thing capport sets: if dagster-celery renames it, this fails first."""
    pytest.importorskip("dagster_celery")
    from dagster_celery import core_execution_loop

    from capport_dagster.translate.celery import set_poll_interval

    monkeypatch.setattr(core_execution_loop, "TICK_SECONDS", core_execution_loop.TICK_SECONDS)
    set_poll_interval(0.05)
    assert core_execution_loop.TICK_SECONDS == 0.05
    # and the loop still sleeps on it, under that name
    source = Path(core_execution_loop.__file__).read_text()
    assert "time.sleep(TICK_SECONDS)" in source
    monkeypatch.delattr(core_execution_loop, "TICK_SECONDS")
    with pytest.raises(RuntimeError, match="TICK_SECONDS is gone"):
        set_poll_interval(0.05)


@pytest.mark.parametrize(
    ("given", "environ", "expected"),
    [
        ((None, None), {}, ("pyamqp://guest@localhost:5672//", "rpc://")),
        ((None, None), {"CAPPORT_CELERY_BROKER": REDIS}, (REDIS, REDIS)),
        (
            (None, None),
            {"CAPPORT_CELERY_BROKER": REDIS, "CAPPORT_CELERY_BACKEND": "redis://h:6379/1"},
            (REDIS, "redis://h:6379/1"),
        ),
        (("amqp://h//", None), {"CAPPORT_CELERY_BROKER": REDIS}, ("amqp://h//", "rpc://")),
        (("amqp://h//", "redis://b/2"), {}, ("amqp://h//", "redis://b/2")),
    ],
    ids=["defaults", "redis broker", "both from the environment", "run config", "both given"],
)
def test_broker_and_backend(monkeypatch, given, environ, expected):
    pytest.importorskip("dagster_celery")
    from capport_dagster.translate.celery import broker_and_backend

    for name in ("CAPPORT_CELERY_BROKER", "CAPPORT_CELERY_BACKEND", "DAGSTER_CELERY_BROKER_HOST"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert broker_and_backend(*given) == expected


def test_celery_without_dagster_home_is_refused_before_anything_runs(tmp_path):
    run = capport(
        *("run", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "-o", str(tmp_path / "o")),
        *("--executor", "celery"),
        cwd=tmp_path,
    )
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (
        "error: executor 'celery' needs DAGSTER_HOME: an instance the workers can reach (its"
        " dagster.yaml with PostgreSQL storage, as deploy/dagster.yaml), set in this process and"
        " the workers' (docs/deploy.md)\n"
    )
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("credentials", ["", ":pAsSw0rd-of-the-broker@"], ids=["plain", "password"])
def test_an_unreachable_broker_is_said_before_anything_runs(tmp_path, credentials):
    port = free_port()
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    run = capport(
        *("run", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "-o", str(tmp_path / "o")),
        *("--executor", "celery"),
        cwd=tmp_path,
        DAGSTER_HOME=str(home),
        CAPPORT_CELERY_BROKER=f"redis://{credentials}127.0.0.1:{port}/0",
    )
    assert (run.returncode, run.stdout) == (2, "")
    shown = ":**@" if credentials else ""  # the password masked, as Celery's logs show it
    assert run.stderr == (
        f"error: executor 'celery': cannot reach the broker redis://{shown}127.0.0.1:{port}/0"
        f" (OperationalError: Error 111 connecting to 127.0.0.1:{port}. Connection refused.):"
        " set $CAPPORT_CELERY_BROKER, or the run config's celery.broker, to the broker the"
        " workers use (docs/deploy.md)\n"
    )
    assert not (tmp_path / "o").exists()


def test_a_stage_its_worker_could_not_run_is_named_with_the_workers_error(write_config):
    """Not every worker failure is a death: a worker on other code fails to rebuild the job.
    dagster-celery lists such errors per step in the run's failure; each is said at its stage."""
    from dagster._core.events import JobFailureData
    from dagster._utils.error import SerializableErrorInfo

    from capport_dagster.translate.worker_failures import worker_failures

    config = write_config(
        {
            "p.yml": """
                pipeline:
                  p:
                    - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
                    - { label: save, task: save_csv, args: { filepath: b.csv, df_name: A } }
            """
        }
    )
    graph = load_project(config).graphs["p"]
    message = (
        "dagster._core.errors.DagsterSubprocessError: During celery execution errors occurred in"
        " workers:\n[save]: TypeError: unhashable type: 'list'\n\nStack Trace:\n  File \"x\"\n"
    )
    failure = DagsterEvent(
        event_type_value=DagsterEventType.RUN_FAILURE.value,
        job_name="p",
        event_specific_data=JobFailureData(
            error=SerializableErrorInfo(message, [], "DagsterSubprocessError")
        ),
        message='Execution of run for "p" failed. An exception was thrown during execution.',
    )
    assert worker_failures(graph, [failure]) == [
        "config/p.yml:4, pipeline 'p', stage 'save' (#2): its worker could not run it:"
        " TypeError: unhashable type: 'list'"
    ]
    assert worker_failures(graph, []) == []
