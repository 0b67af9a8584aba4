"""`executor: k8s`: each stage a Kubernetes Job, through dagster-k8s's `k8s_job_executor`.

capport's jobs carry one executor (`translate/executor.py`) that follows the run config, so
Kubernetes is one more choice there rather than another job: the run config's `k8s:` block is
exactly `k8s_job_executor`'s own config (image pull policy, namespace, env from secrets, step
resources, ...), checked against dagster-k8s's schema before the run starts
(`run_config.py`), and handed to it unchanged. Frames cross pods, so they persist in
`frames_dir` (an object-store URI: pods share no disk); docs/deploy.md has the Helm values.

dagster-k8s is an optional extra (`pip install 'capport-dagster[k8s]'`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

from dagster import Executor, InitExecutorContext

__all__ = ["K8S_MISSING_EXTRA", "k8s_available", "k8s_config_problems", "k8s_executor"]

K8S_MISSING_EXTRA = (
    "executor 'k8s' needs dagster-k8s, which is not installed: pip install 'capport-dagster[k8s]'"
)


def k8s_available() -> bool:
    return importlib.util.find_spec("dagster_k8s") is not None


def k8s_config_problems(config: Mapping[str, Any]) -> list[str]:
    """Why a `k8s:` block is not a valid `k8s_job_executor` config, one line per problem ([]
    when it is): dagster-k8s's schema, then each raw Kubernetes block (`step_k8s_config`,
    `per_step_k8s_config.<op>`), which that schema lets through, against the Kubernetes API
    models dagster-k8s builds the pods from. Else a typo there fails every stage's pod."""
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor
    from dagster_k8s.job import UserDefinedDagsterK8sConfig

    result = process_config(k8s_job_executor.config_schema.config_type, dict(config))
    if not result.success:
        return [error.message for error in result.errors or ()]
    value = result.value or {}
    blocks = {"step_k8s_config": value["step_k8s_config"]}
    blocks |= {f"per_step_k8s_config.{k}": v for k, v in value["per_step_k8s_config"].items()}
    problems = []
    for where, block in blocks.items():
        try:
            UserDefinedDagsterK8sConfig.from_dict(block)
        except Exception as exc:  # dagster-k8s raises a bare Exception for an unknown field
            problems.append(f"{where}: {exc}")
    return problems


def k8s_executor(init_context: InitExecutorContext, config: Mapping[str, Any]) -> Executor:
    """dagster-k8s's step-per-pod executor, built with the `k8s:` block as its config."""
    from dagster._config import process_config
    from dagster_k8s import k8s_job_executor

    processed = process_config(k8s_job_executor.config_schema.config_type, dict(config))
    assert processed.success, "checked by the run config mapping"
    context = InitExecutorContext(
        job=init_context.job,
        executor_def=k8s_job_executor,
        executor_config=processed.value,  # type: ignore[arg-type]
        instance=init_context.instance,
    )
    return k8s_job_executor.executor_creation_fn(context)  # type: ignore[misc]
