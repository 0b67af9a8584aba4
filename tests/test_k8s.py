"""`executor: k8s`: capport's executor builds dagster-k8s's step-per-pod executor from the run
config's `k8s:` block. No cluster here: the executor is built from a kubeconfig (which contacts
nothing), and no pod is started."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (
    DagsterInstance,
    DagsterInvalidConfigError,
    InitExecutorContext,
    build_reconstructable_job,
    validate_run_config,
)
from dagster._config import process_config

from capport_dagster.translate.executor import capport_executor
from tests.conftest import EXAMPLE_CONFIG, capport

pytest.importorskip("dagster_k8s")

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: "https://127.0.0.1:1" } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
"""


def test_the_k8s_block_configures_dagster_k8s_step_per_pod_executor(tmp_path):
    from dagster._core.executor.step_delegating import StepDelegatingExecutor
    from dagster_k8s.executor import K8sStepHandler

    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)
    job = build_reconstructable_job(
        "capport_dagster.translate.build",
        "job_for",
        reconstructable_args=(str(EXAMPLE_CONFIG), "label_teams", ()),
    )
    k8s = {
        "load_incluster_config": False,
        "kubeconfig_file": str(kubeconfig),
        "job_namespace": "capport",
        "job_image": "registry.example.com/capport:1",
        "max_concurrent": 3,
    }
    config = process_config(
        capport_executor.config_schema.config_type, {"executor": "k8s", "k8s": k8s}
    )
    assert config.success, config.errors
    (tmp_path / "home").mkdir()
    with DagsterInstance.local_temp(str(tmp_path / "home")) as instance:
        executor = capport_executor.executor_creation_fn(
            InitExecutorContext(
                job=job,
                executor_def=capport_executor,
                executor_config=config.value,
                instance=instance,
            )
        )
    assert isinstance(executor, StepDelegatingExecutor)
    handler = executor._step_handler
    assert isinstance(handler, K8sStepHandler)
    assert handler._executor_image == "registry.example.com/capport:1"
    assert handler._executor_container_context.namespace == "capport"
    assert handler._kubeconfig_file == str(kubeconfig)
    assert executor._max_concurrent == 3


@pytest.fixture
def job(write_config):
    from capport_dagster import load_definitions

    config = write_config(
        {"p.yml": "pipeline:\n  p:\n    - { label: load, task: load_csv, args: { filepath: a.csv,"
                  " df_name: A } }\n"}
    )  # fmt: skip
    return load_definitions(config).resolve_job_def("p")


def test_a_bad_k8s_block_is_a_config_error_before_the_run(job):
    with pytest.raises(DagsterInvalidConfigError) as raised:
        validate_run_config(
            job,
            {
                "executor": "k8s",
                "frames_dir": "s3://b/frames",
                "k8s": {"job_namespce": "capport"},
            },
        )
    [message] = raised.value.error_messages
    assert message.startswith("Invalid value at path root:k8s: ")
    assert 'Received unexpected config entry "job_namespce"' in message


def test_a_bad_kubernetes_block_inside_is_caught_too(job):
    with pytest.raises(DagsterInvalidConfigError) as raised:
        validate_run_config(
            job,
            {"executor": "k8s", "k8s": {"step_k8s_config": {"container_config": {"resorces": {}}}}},
        )
    [message] = raised.value.error_messages
    # Dagster's schema lets a Kubernetes block through: the Kubernetes models do not.
    assert message.startswith("Invalid value at path root:k8s: step_k8s_config: ")
    assert "resorces" in message


def test_k8s_without_dagster_home_is_refused_before_anything_runs(tmp_path: Path):
    run = capport(
        *("run", "-c", str(EXAMPLE_CONFIG), "-p", "label_teams", "-o", str(tmp_path / "o")),
        *("--executor", "k8s"),
        cwd=tmp_path,
    )
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.startswith("error: executor 'k8s' needs DAGSTER_HOME: ")
    assert not (tmp_path / "o").exists()
