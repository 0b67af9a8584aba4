"""deploy/: the production files are what Dagster, dagster-k8s and Celery accept, and they work.

- deploy/dagster.yaml validates against Dagster's instance schema, keeps capport's run queue
  limit, and a real `capport run` stores its run through it in PostgreSQL;
- deploy/k8s/run_config.yaml (`executor: k8s`) and run_config_one_pod.yaml validate against a
  capport job's run config, the first's `k8s:` block against `k8s_job_executor`'s own schema
  and its Kubernetes blocks against the Kubernetes models; deploy/k8s/values.yaml agrees with
  the instance;
- deploy/start-worker.sh refuses to start without its environment, and starts a worker with it.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster import DagsterInvalidConfigError

from capport_dagster.translate.k8s import k8s_config_problems
from tests.conftest import REPO, capport
from tests.services import require_service

DEPLOY = REPO / "deploy"
WORKER_SCRIPT = DEPLOY / "start-worker.sh"
RUN_QUEUE_LIMIT = [
    {"key": "capport/pipeline", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
]


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _pg_env(database: str, host: str = "127.0.0.1") -> dict[str, str]:
    """What deploy/dagster.yaml reads from the environment. Trust auth: the password is unused,
    but its variable must be set (and quoting it into the URL must work)."""
    return {
        "DAGSTER_PG_HOST": host,
        "DAGSTER_PG_USER": "postgres",
        "DAGSTER_PG_PASSWORD": "p@ss word: unused with trust auth",
        "DAGSTER_PG_DB": database,
    }


# --- deploy/dagster.yaml ----------------------------------------------------------------------


def _instance_config(directory: Path) -> Any:
    from dagster._core.instance.config import dagster_instance_config

    value, custom_class = dagster_instance_config(str(directory))
    assert custom_class is None
    return value


def test_the_instance_config_validates_against_dagsters_schema(monkeypatch):
    from dagster._config import process_config
    from dagster._core.instance.ref import InstanceRef
    from dagster._core.run_coordinator import QueuedRunCoordinator
    from dagster_postgres import DagsterPostgresStorage
    from dagster_postgres.utils import pg_url_from_config

    for name, value in _pg_env("dagster").items():
        monkeypatch.setenv(name, value)
    config = _instance_config(DEPLOY)

    # capport's one run per pipeline at a time, the same limit as the repository's dagster.yaml.
    assert config["run_queue"]["tag_concurrency_limits"] == RUN_QUEUE_LIMIT
    assert _yaml(REPO / "dagster.yaml")["run_queue"]["tag_concurrency_limits"] == RUN_QUEUE_LIMIT
    assert config["telemetry"] == {"enabled": False}

    # The storage section as dagster-postgres reads it: env resolved, psycopg2 selected.
    storage = process_config(DagsterPostgresStorage.config_type(), config["storage"]["postgres"])
    assert storage.success, storage.errors
    assert pg_url_from_config(storage.value) == (
        "postgresql+psycopg2://postgres:p%40ss%20word%3A%20unused%20with%20trust%20auth"
        "@127.0.0.1:5432/dagster"
    )

    # What an instance built from it is made of (nothing here connects to a database).
    ref = InstanceRef.from_dir(str(DEPLOY))
    assert (ref.storage_data.module_name, ref.storage_data.class_name) == (  # type: ignore[union-attr]
        "dagster_postgres",
        "DagsterPostgresStorage",
    )
    assert ref.compute_logs_data.class_name == "NoOpComputeLogManager"
    coordinator = ref.run_coordinator_data.rehydrate(QueuedRunCoordinator)  # type: ignore[union-attr]
    assert coordinator.get_run_queue_config().tag_concurrency_limits == RUN_QUEUE_LIMIT


def test_a_typo_in_the_instance_config_is_caught(tmp_path, monkeypatch):
    """The check above has teeth: a misspelt key of the same file is refused."""
    for name, value in _pg_env("dagster").items():
        monkeypatch.setenv(name, value)
    text = (DEPLOY / "dagster.yaml").read_text()
    assert "    postgres_db:" in text
    (tmp_path / "dagster.yaml").write_text(text.replace("    postgres_db:", "    postgres_bd:"))
    with pytest.raises(DagsterInvalidConfigError, match="postgres_bd"):
        _instance_config(tmp_path)


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A database of this test's own on 127.0.0.1:5432, dropped afterwards."""
    host, port = require_service("postgres")
    import psycopg2

    name = f"capport_test_{uuid.uuid4().hex}"
    admin = psycopg2.connect(host=host, port=port, user="postgres", dbname="postgres")
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        yield name
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_capport_run_is_stored_in_postgresql_through_the_deploy_instance(
    write_config, tmp_path, monkeypatch, postgres_database
):
    """deploy/dagster.yaml as it is, in a DAGSTER_HOME: `capport run` with the multiprocess
    executor (whose stage processes open the instance themselves, as Celery workers do) stores
    the run and every stage's events in PostgreSQL, nothing in SQLite files."""
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus
    from dagster_postgres import PostgresRunStorage

    config = write_config(
        {
            "a.csv": "x\n1\n2\n3\n",
            "p.yml": """
                pipeline:
                  deployed:
                    - label: load
                      task: load_csv
                      args: { filepath: $CONFIG_DIR/a.csv, df_name: A }
                    - label: save
                      task: save_csv
                      args: { filepath: $OUTPUT_DIR/a.csv, df_name: A }
            """,
        }
    )
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {"DAGSTER_HOME": str(home), **_pg_env(postgres_database)}

    result = capport(
        "run", "-c", str(config), "-p", "deployed", "-o", str(tmp_path / "out"),
        "--executor", "multiprocess", "--no-preview", **env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "a.csv").read_text() == "x\n1\n2\n3\n"

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        (run,) = instance.get_runs()
        assert run.status == DagsterRunStatus.SUCCESS
        assert run.job_name == "deployed"
        assert run.tags["capport/pipeline"] == "deployed"
        steps = instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)
        assert sorted(event.step_key for event in steps) == ["load", "save"]
    assert not (home / "history").exists()  # SQLite's runs.db would be there


# --- deploy/k8s --------------------------------------------------------------------------------


def _deployed_job(write_config):  # type: ignore[no-untyped-def]
    from capport_dagster import load_definitions

    config = write_config(
        {
            "p.yml": """
                pipeline:
                  deployed:
                    - { label: load, task: load_csv, args: { filepath: a.csv, df_name: A } }
            """
        }
    )
    return load_definitions(config).resolve_job_def("deployed")


def test_the_step_per_pod_run_config_is_a_capport_run_config_for_k8s_job_executor(write_config):
    from dagster import validate_run_config

    run_config = _yaml(DEPLOY / "k8s" / "run_config.yaml")
    assert run_config["executor"] == "k8s"
    assert k8s_config_problems(run_config["k8s"]) == []
    validate_run_config(_deployed_job(write_config), run_config)


@pytest.mark.parametrize(
    ("path", "typo"),
    [
        (["max_concurrent"], "max_concurent"),
        (["step_k8s_config", "container_config", "resources"], "resorces"),
        (["per_step_k8s_config", "join_players", "container_config"], "containr_config"),
    ],
)
def test_a_typo_in_the_step_per_pod_run_config_is_caught(write_config, path, typo):
    from dagster import validate_run_config

    run_config = _yaml(DEPLOY / "k8s" / "run_config.yaml")
    *parents, key = path
    parent = run_config["k8s"]
    for name in parents:
        parent = parent[name]
    parent[typo] = parent.pop(key)
    problems = k8s_config_problems(run_config["k8s"])
    assert problems and typo in " ".join(problems)
    # and capport says it before a run starts, under `k8s`
    with pytest.raises(DagsterInvalidConfigError, match=f"root:k8s: .*{typo}"):
        validate_run_config(_deployed_job(write_config), run_config)


def test_the_one_pod_run_config_is_a_capport_run_config(write_config):
    from dagster import validate_run_config

    job = _deployed_job(write_config)
    run_config = _yaml(DEPLOY / "k8s" / "run_config_one_pod.yaml")
    assert run_config["executor"] in ("in_process", "multiprocess")
    validate_run_config(job, run_config)
    with pytest.raises(DagsterInvalidConfigError, match="frame_dir"):
        validate_run_config(job, {**run_config, "frame_dir": run_config["frames_dir"]})


def test_the_helm_values_agree_with_the_instance_and_the_image():
    values = _yaml(DEPLOY / "k8s" / "values.yaml")
    instance = _yaml(DEPLOY / "dagster.yaml")

    coordinator = values["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] and coordinator["type"] == "QueuedRunCoordinator"
    limits = coordinator["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert limits == instance["run_queue"]["tag_concurrency_limits"] == RUN_QUEUE_LIMIT
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    scheme = instance["storage"]["postgres"]["postgres_db"]["scheme"]
    assert values["postgresql"]["postgresqlScheme"] == scheme == "postgresql+psycopg2"
    assert values["postgresql"]["postgresqlPassword"] == ""  # from the secret only
    assert values["telemetry"] == instance["telemetry"] == {"enabled": False}

    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "capport_dagster.definitions"]
    assert (REPO / "capport_dagster" / "definitions.py").is_file()
    env = {item["name"]: item["value"] for item in deployment["env"]}
    dockerfile = (DEPLOY / "k8s" / "Dockerfile").read_text()
    assert f"CAPPORT_CONFIG_DIR={env['CAPPORT_CONFIG_DIR']}" in dockerfile
    assert f"WORKDIR {Path(env['CAPPORT_CONFIG_DIR']).parent}" in dockerfile


# --- deploy/start-worker.sh --------------------------------------------------------------------


def _worker_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The script with bash and only `env` (no PATH: it must fail before running anything)."""
    return subprocess.run(
        ["/bin/bash", str(WORKER_SCRIPT), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_worker_script_is_executable():
    assert os.access(WORKER_SCRIPT, os.X_OK)
    assert WORKER_SCRIPT.read_text().startswith("#!/usr/bin/env bash\n")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "DAGSTER_HOME is not set: export DAGSTER_HOME=/absolute/dir"),
        ({"DAGSTER_HOME": "home"}, "DAGSTER_HOME=home is not an absolute path"),
        ({"DAGSTER_HOME": "/nonexistent/capport"}, "is not an existing directory"),
        ({"DAGSTER_HOME": "{home}"}, "CAPPORT_CELERY_BROKER is not set: export"),
        (
            {"DAGSTER_HOME": "{home}", "CAPPORT_CELERY_BROKER": "redis://127.0.0.1:6379/0",
             "CAPPORT_WORKER_CONCURRENCY": "0"},
            "concurrency must be a whole number of 1 or more, got '0'",
        ),
    ],
)  # fmt: skip
def test_the_worker_script_refuses_to_start_without_its_environment(tmp_path, env, message):
    env = {name: value.format(home=tmp_path) for name, value in env.items()}
    result = _worker_script(env=env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert message in result.stderr
    assert result.stderr.startswith("start-worker.sh: ")
    assert "Traceback" not in result.stderr


@pytest.fixture
def redis_queue() -> Iterator[tuple[str, int, str]]:
    """Redis on 127.0.0.1 and a queue name of this test's own; its keys removed afterwards."""
    host, port = require_service("redis")
    import redis

    name = f"capport_deploy_test_{uuid.uuid4().hex[:12]}"
    yield host, port, name
    client = redis.Redis(host=host, port=port, db=0)
    try:
        keys = client.keys(f"*{name}*")
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def test_the_worker_script_starts_a_celery_worker(tmp_path, redis_queue):
    """With its environment the script execs a Celery worker of capport's app, which connects
    to the broker and is ready; SIGTERM stops it. Its own queue and node name: it must not take
    the stages of another test's runs."""
    host, port, name = redis_queue
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(DEPLOY / "dagster.yaml", home / "dagster.yaml")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DAGSTER_HOME": str(home),
        "CAPPORT_CELERY_BROKER": f"redis://{host}:{port}/0",
        "CAPPORT_CELERY_QUEUE": name,
        "CAPPORT_PYTHON": sys.executable,
    }
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        worker = subprocess.Popen(
            ["/bin/bash", str(WORKER_SCRIPT), "1", "-n", f"{name}@%h", "--loglevel", "INFO"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while "ready." not in log.read_text() and worker.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert worker.poll() is None, text
        assert "concurrency: 1 (prefork)" in text
        assert f".> {name} " in text  # the queue it consumes
        assert "execute_plan" in text  # dagster-celery's task, registered by capport's app
    finally:
        worker.send_signal(signal.SIGTERM)  # bash exec'd celery: this is the worker itself
        try:
            returncode = worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
            raise
    assert returncode == 0, log.read_text()
