"""The asset catalog's cost: pipeline jobs recording what they produced (issue #16, item 1).

Three ways to run a pipeline, in process, on the same instance:

- **op job, catalog off** (`catalog: false`): what runs cost before the catalog was recorded;
- **op job, catalog on** (the default, the choice made): each stage's op also records a
  materialization of each frame and sink it produced (schema, lineage, rows where known) and
  its model checks' results;
- **asset job** (the road not taken): the pipeline's `__assets` job, the same stages as
  Dagster assets, frames in memory like the op job's;
- **hand-written Dagster job**, with and without an `AssetMaterialization` per op (schema and
  column lineage): what recording costs in Dagster itself, the floor of the catalog's cost.

Measured on the 200-stage chain of `bench/overhead.py` on a SQLite instance (what `DAGSTER_HOME`
gives; its event log writes are what a deployed instance pays; the overhead suite measures the
same on the ephemeral instance `capport run` uses without `DAGSTER_HOME`), and on the 5M-row
`enrich_events` (the data path, on the ephemeral instance).
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
from bench.harness import (
    REFERENCE,
    Comparison,
    Sample,
    alternate,
    run_capport_job,
    shared_instance,
    timed,
)
from bench.overhead import CAPPORT, chain_config, chain_variants, recording_cost, same_outputs

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
    with DagsterInstance.local_temp() as sqlite:
        chain = _chain(work, stages, rounds, sqlite)
    return [chain, _enrich(work, rows, rounds, shared_instance())]


def _chain(work: Path, stages: int, rounds: int, sqlite: DagsterInstance) -> Comparison:
    """The chain of `bench/overhead.py` on a SQLite instance (what `DAGSTER_HOME` gives), and
    the same pipeline as an asset job."""
    variants = chain_variants(work, stages, sqlite)
    config = chain_config(work, stages)
    asset_settings = {
        "mode": "sync_lazy",
        "output_dir": str(work / f"chain_out_{stages}" / "asset"),
    }
    variants["asset job"] = timed(lambda: _asset_job(config, "chain", asset_settings, sqlite))
    comparison = Comparison(
        f"Asset catalog, {stages} cheap stages in a chain, in process, SQLite instance"
    )
    comparison.medians = alternate(variants, rounds)
    recording_cost(comparison, stages, "SQLite", goal=1.25)
    comparison.ratio("asset job / capport op job", "asset job", CAPPORT.format("on"))
    same_outputs(work, stages)
    return comparison


def _enrich(work: Path, rows: int, rounds: int, instance: DagsterInstance) -> Comparison:
    """The 5M-row data path: recording the catalog must not cost the data work anything. On
    the ephemeral instance `capport run` uses without `DAGSTER_HOME`: on a SQLite one each
    recorded event adds the fixed cost the chain measures (Dagster's own), whatever the rows."""
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
