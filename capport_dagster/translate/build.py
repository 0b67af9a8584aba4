"""Build Dagster `Definitions` from a capport config directory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from dagster import AssetsDefinition, Definitions, JobDefinition

from capport_dagster.core.graph import Project, load_project
from capport_dagster.core.registry import DEFAULT_REGISTRY, TaskRegistry, import_task_modules
from capport_dagster.translate.assets import build_pipeline_assets
from capport_dagster.translate.executor import capport_executor
from capport_dagster.translate.jobs import LOGGER_DEFS, build_job, run_resources
from capport_dagster.translate.run_config import run_config_mapping
from capport_dagster.translate.schedules import build_schedules
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["build_definitions", "job_for", "load_definitions"]


def build_definitions(
    *, project: Project, translator: CapportTranslator | None = None
) -> Definitions:
    """One job per pipeline of a validated project, the schedules and sensors of its
    runners, and the asset view: every frame version an asset, one asset job per pipeline."""
    translator = translator or CapportTranslator()
    config_dir = str(Path(project.config.config_dir).absolute())
    jobs = {
        name: build_job(
            graph,
            config_dir=config_dir,
            runner=project.runner_for(name),
            loggers=project.loggers,
            translator=translator,
            redact=project.redactor,
        )
        for name, graph in project.graphs.items()
    }
    schedules, sensors = build_schedules(project=project, jobs=jobs, translator=translator)
    assets: list[AssetsDefinition] = []
    asset_jobs = []
    for name, graph in project.graphs.items():
        pipeline_assets, asset_job = build_pipeline_assets(
            graph,
            translator=translator,
            config=run_config_mapping(
                config_dir=config_dir,
                runner=project.runner_for(name),
                loggers=project.loggers,
                persist=True,
            ),
            redact=project.redactor,
        )
        assets.extend(pipeline_assets)
        asset_jobs.append(asset_job)
    return Definitions(
        assets=assets,
        jobs=[*jobs.values(), *asset_jobs],
        schedules=schedules,
        sensors=sensors,
        resources=run_resources(config_dir),
        loggers=LOGGER_DEFS,
        executor=capport_executor,
    )


def load_definitions(
    config_dir: str | os.PathLike[str],
    *,
    translator: CapportTranslator | None = None,
    registry: TaskRegistry = DEFAULT_REGISTRY,
) -> Definitions:
    """Dagster definitions for every pipeline in `config_dir`.

    Raises `capport_dagster.ValidationError` listing every problem when the config is invalid.
    """
    return build_definitions(project=load_project(config_dir, registry), translator=translator)


def job_for(config_dir: str, pipeline: str, modules: Sequence[str] = ()) -> JobDefinition:
    """The job of one pipeline: the target `capport run` reconstructs in worker processes."""
    import_task_modules(modules)
    project = load_project(config_dir, pipelines=[pipeline])
    graph = project.graphs[pipeline]
    return build_job(
        graph,
        config_dir=str(Path(config_dir).absolute()),
        runner=project.runner_for(pipeline),
        loggers=project.loggers,
        translator=CapportTranslator(),
        redact=project.redactor,
    )
