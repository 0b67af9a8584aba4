"""The asset catalog's cost: pipeline jobs recording what they produced (issue #16, item 1).

Three ways to run a pipeline, in process, on the same instance:

- **op job, catalog off** (`catalog: false`): what runs cost before the catalog was recorded;
- **op job, catalog on** (the default, the choice made): each stage's op also records a
  materialization of each frame and sink it produced (schema, lineage, rows where known) and
  its model checks' results;
- **asset job** (the road not taken): the pipeline's `__assets` job, the same stages as
  Dagster assets, frames in memory like the op job's.

Measured on the 200-stage chain of `bench/overhead.py` (per-stage cost; on the ephemeral
instance `capport run` uses without `DAGSTER_HOME`, and on a SQLite instance, whose event log
writes are what a deployed instance pays) and on the 5M-row `enrich_events` (the data path).
"""

from __future__ import annotations

import filecmp
from collections.abc import Callable
from pathlib import Path

from dagster import (
    DagsterInstance,
    Definitions,
    JobDefinition,
    build_reconstructable_job,
    execute_job,
)

from bench.data import enrich_config
from bench.harness import REFERENCE, Comparison, Sample, alternate, run_capport_job, timed
from bench.overhead import chain_config

__all__ = ["asset_job_for", "catalog"]


def asset_job_for(config_dir: str, pipeline: str) -> JobDefinition:
    """The pipeline's asset job, frames kept in memory (not the Parquet the asset view's job
    persists by default), so that it does the same work as the op job."""
    from capport_dagster.core.graph import load_project
    from capport_dagster.translate.assets import build_pipeline_assets
    from capport_dagster.translate.executor import capport_executor
    from capport_dagster.translate.jobs import LOGGER_DEFS, run_resources
    from capport_dagster.translate.run_config import run_config_mapping
    from capport_dagster.translate.translator import CapportTranslator

    key = (config_dir, pipeline)
    if key not in _ASSET_JOBS:
        project = load_project(config_dir, pipelines=[pipeline])
        assets, job = build_pipeline_assets(
            project.graphs[pipeline],
            translator=CapportTranslator(),
            config=run_config_mapping(
                config_dir=config_dir,
                runner=project.runner_for(pipeline),
                loggers=project.loggers,
            ),
            redact=project.redactor,
        )
        defs = Definitions(
            assets=assets,
            jobs=[job],
            resources=run_resources(config_dir),
            loggers=LOGGER_DEFS,
            executor=capport_executor,
        )
        _ASSET_JOBS[key] = defs.resolve_job_def(job.name)
    return _ASSET_JOBS[key]


_ASSET_JOBS: dict[tuple[str, str], JobDefinition] = {}


def _asset_job(
    config: Path, pipeline: str, settings: dict[str, object], instance: DagsterInstance
) -> None:
    job = build_reconstructable_job(
        "bench.catalog", "asset_job_for", reconstructable_args=(str(config), pipeline)
    )
    run_config = {"log_level": "ERROR", "preview": False, "ref_datetime": REFERENCE, **settings}
    if not execute_job(job, instance=instance, run_config=run_config).success:
        raise RuntimeError(f"the asset job of {pipeline} failed")


def catalog(work: Path, stages: int, rows: int, rounds: int) -> list[Comparison]:
    with DagsterInstance.ephemeral() as instance, DagsterInstance.local_temp() as sqlite:
        return [
            _chain(work, stages, rounds, instance, sqlite),
            _enrich(work, rows, rounds, instance),
        ]


def _chain(
    work: Path, stages: int, rounds: int, instance: DagsterInstance, sqlite: DagsterInstance
) -> Comparison:
    config = chain_config(work, stages)
    out = work / f"catalog_chain_{stages}"
    variants: dict[str, Callable[[], Sample]] = {}
    for store, on in (("ephemeral", instance), ("SQLite", sqlite)):
        for recorded in (False, True):
            name = f"op job, catalog {'on' if recorded else 'off'}, {store}"
            settings = {"mode": "sync_lazy", "output_dir": str(out / name), "catalog": recorded}
            variants[name] = timed(
                lambda s=settings, i=on: run_capport_job(config, "chain", s, instance=i)
            )
    asset_out = out / "asset job"
    variants["asset job, ephemeral"] = timed(
        lambda: _asset_job(
            config, "chain", {"mode": "sync_lazy", "output_dir": str(asset_out)}, instance
        )
    )
    comparison = Comparison(f"Asset catalog, {stages} cheap stages in a chain, in process")
    comparison.medians = alternate(variants, rounds)
    for store in ("ephemeral", "SQLite"):
        on = comparison.medians[f"op job, catalog on, {store}"].seconds
        off = comparison.medians[f"op job, catalog off, {store}"].seconds
        comparison.notes.append(
            f"catalog cost per stage, {store}: {(on - off) / stages * 1000:.1f} ms"
        )
    comparison.ratio(
        "catalog on / off (ephemeral)",
        "op job, catalog on, ephemeral",
        "op job, catalog off, ephemeral",
        goal=1.25,
    )
    comparison.ratio(
        "catalog on / off (SQLite)",
        "op job, catalog on, SQLite",
        "op job, catalog off, SQLite",
        goal=1.25,
    )
    comparison.ratio(
        "asset job / op job with catalog", "asset job, ephemeral", "op job, catalog on, ephemeral"
    )
    _same_files(out, "chain.csv")
    return comparison


def _enrich(work: Path, rows: int, rounds: int, instance: DagsterInstance) -> Comparison:
    config = enrich_config(work / f"catalog_enrich_{rows}", rows)
    out = work / f"catalog_enrich_out_{rows}"
    variants: dict[str, Callable[[], Sample]] = {}
    for recorded in (False, True):
        name = f"op job, catalog {'on' if recorded else 'off'}"
        settings = {"mode": "sync_lazy", "output_dir": str(out / name), "catalog": recorded}
        variants[name] = timed(
            lambda s=settings: run_capport_job(config, "enrich_events", s, instance=instance)
        )
    asset_settings = {"mode": "sync_lazy", "output_dir": str(out / "asset job")}
    variants["asset job"] = timed(
        lambda: _asset_job(config, "enrich_events", asset_settings, instance)
    )
    comparison = Comparison(f"Asset catalog, enrich_events, {rows:,} rows, sync_lazy, in process")
    comparison.medians = alternate(variants, rounds)
    comparison.ratio("catalog on / off", "op job, catalog on", "op job, catalog off", goal=1.03)
    comparison.ratio("asset job / op job with catalog", "asset job", "op job, catalog on")
    _same_files(out, "enrich_events/events_enriched.csv")
    return comparison


def _same_files(out: Path, relative: str) -> None:
    """Every variant wrote the same bytes: a fast wrong answer is not a result."""
    files = sorted(out.glob(f"*/{relative}"))
    if len(files) < 2 or not all(filecmp.cmp(files[0], f, shallow=False) for f in files[1:]):
        raise RuntimeError(f"the variants wrote different (or no) {relative}: {files}")
