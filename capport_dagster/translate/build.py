"""Build Dagster `Definitions` from a capport config directory."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from dagster import (
    AssetsDefinition,
    Definitions,
    JobDefinition,
)

from capport_dagster.core.builtin_tasks import DEFAULT_REGISTRY
from capport_dagster.core.config import ConfigSnapshot
from capport_dagster.core.graph import Project, load_project
from capport_dagster.core.loader import config_stamp
from capport_dagster.core.registry import TaskRegistry, import_task_modules
from capport_dagster.core.runners import pipeline_overdue_after, pipeline_partitions
from capport_dagster.translate.assets import build_pipeline_assets
from capport_dagster.translate.executor import capport_executor
from capport_dagster.translate.jobs import LOGGER_DEFS, build_job, check_names, run_resources
from capport_dagster.translate.partitions import job_config
from capport_dagster.translate.run_config import run_config_mapping
from capport_dagster.translate.schedules import build_schedules
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["build_definitions", "job_for", "load_definitions", "project_for"]


def build_definitions(
    *, project: Project, translator: CapportTranslator | None = None
) -> Definitions:
    """One job per pipeline of a validated project, the schedules and sensors of its
    runners, and the asset view: every frame version an asset, one asset job per pipeline."""
    translator = translator or CapportTranslator()
    check_names(project.graphs, project.runners.values(), translator)
    config_dir = str(Path(project.config.config_dir).absolute())
    jobs = {
        name: build_job(
            graph,
            config_dir=config_dir,
            runner=project.runner_for(name),
            loggers=project.loggers,
            translator=translator,
            redact=project.redactor,
            partitions=pipeline_partitions(project.runners, name),
        )
        for name, graph in project.graphs.items()
    }
    schedules, sensors = build_schedules(project=project, jobs=jobs, translator=translator)
    assets: list[AssetsDefinition] = []
    asset_jobs = []
    for name, graph in project.graphs.items():
        partitions = pipeline_partitions(project.runners, name)
        config = job_config(
            run_config_mapping(
                config_dir=config_dir,
                runner=project.runner_for(name),
                loggers=project.loggers,
                persist=True,
                partitions=partitions,
            ),
            partitions,
        )
        overdue = pipeline_overdue_after(project.runners, name)
        pipeline_assets, asset_job = build_pipeline_assets(
            graph,
            translator=translator,
            config=config,
            redact=project.redactor,
            freshness=translator.get_freshness_policy(
                graph, None if overdue is None else timedelta(seconds=overdue)
            ),
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
    pipelines: Sequence[str] | None = None,
) -> Definitions:
    """Dagster definitions for every pipeline in `config_dir` (or only those in `pipelines`:
    the others are neither validated nor built, so one broken pipeline need not take the code
    location down while it is being fixed).

    Raises `capport_dagster.ValidationError` listing every problem when the config is invalid.
    """
    project = load_project(config_dir, registry, pipelines=pipelines)
    return build_definitions(project=project, translator=translator)


def project_for(config_dir: str, pipeline: str, snapshot: ConfigSnapshot | None = None) -> Project:
    """The validated project of one pipeline, loaded once per process while its files (or its
    snapshot) and the environment stay the same.

    Dagster rebuilds a reconstructable job several times in the process that launches a run
    (to check it, plan it, execute it): without this each rebuild re-read every YAML file.
    """
    return _cached(config_dir, pipeline, snapshot).project


def job_for(
    config_dir: str,
    pipeline: str,
    modules: Sequence[str] = (),
    snapshot: ConfigSnapshot | None = None,
) -> JobDefinition:
    """The job of one pipeline: the target `capport run` reconstructs (in worker processes too).

    `snapshot`: the config files' text as the run was launched (`capport run` passes it), so a
    process on another machine rebuilds the same job without the config directory, and edits
    to the YAML during the run do not reach its later stages. Built once per loaded project
    (see `project_for`), so rebuilds within a process are free.
    """
    import_task_modules(modules)
    cached = _cached(config_dir, pipeline, snapshot)
    if cached.job is None:
        project = cached.project
        cached.job = build_job(
            project.graphs[pipeline],
            config_dir=str(Path(config_dir).absolute()),
            runner=project.runner_for(pipeline),
            loggers=project.loggers,
            translator=CapportTranslator(),
            redact=project.redactor,
            partitions=pipeline_partitions(project.runners, pipeline),
        )
    return cached.job


@dataclass
class _Loaded:
    project: Project
    job: JobDefinition | None = None


_CACHE_SIZE = 8
_CACHE: dict[tuple[object, ...], _Loaded] = {}


def _cached(config_dir: str, pipeline: str, snapshot: ConfigSnapshot | None) -> _Loaded:
    directory = os.path.abspath(config_dir)
    if snapshot is not None:  # as pairs of strings again: Celery carries it as JSON lists
        snapshot = tuple((str(name), str(text)) for name, text in snapshot)
    files = config_stamp(directory) if snapshot is None else snapshot
    # The environment is part of the key: a config reads variables and secrets from it.
    key = (directory, pipeline, files, frozenset(os.environ.items()))
    loaded = _CACHE.get(key)
    if loaded is None:
        loaded = _Loaded(load_project(directory, pipelines=[pipeline], snapshot=snapshot))
        if len(_CACHE) >= _CACHE_SIZE:
            del _CACHE[next(iter(_CACHE))]
        _CACHE[key] = loaded
    return loaded
