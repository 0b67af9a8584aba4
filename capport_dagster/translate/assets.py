"""The asset view: every frame version of a pipeline is a Dagster asset, lineage from the graph.

Built from the same validated `PipelineGraph` as the jobs (no second resolver):

- a stage that writes frames is one multi-asset, one asset per frame version it writes, keyed by
  `CapportTranslator.get_asset_key` (`[pipeline, FRAME]`, and `[pipeline, FRAME, stage]` for a
  rewrite of the same frame);
- a stage that writes no frame (a sink such as `save_csv`) is one asset standing for what it
  writes, keyed `[pipeline, stage]`, so the lineage ends at the files;
- a model applied by a stage adds Dagster asset checks for its `primary`, `unique` and
  `not_null` columns, blocking: a violation fails the step, so downstream assets are not built;
- one asset job per pipeline, `<pipeline>__assets`, selects them; materialising it gives exactly
  the job's results.

Asset runs persist frames as Parquet (dagster-polars) so that any asset can be re-materialised
alone, reading its upstream frames back lazily.

(No `from __future__ import annotations` here: Dagster inspects the context annotation.)
"""

from collections.abc import Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    AssetsDefinition,
    AssetSelection,
    ConfigMapping,
    FreshnessPolicy,
    MaterializeResult,
    Nothing,
    Output,
    PartitionedConfig,
    PartitionsDefinition,
    define_asset_job,
    multi_asset,
)

from capport_dagster.core.constraints import ConstraintError
from capport_dagster.core.graph import PipelineGraph, StageNode
from capport_dagster.core.registry import RunContext
from capport_dagster.core.runtime import run_stage
from capport_dagster.core.secrets import RedactingLog, Redactor
from capport_dagster.translate.catalog import StageCatalog, check_result
from capport_dagster.translate.frame_type import PolarsFrame
from capport_dagster.translate.ops import RUN_RESOURCE_KEY
from capport_dagster.translate.resources import CapportRun
from capport_dagster.translate.translator import CapportTranslator, TranslatorNaming

__all__ = ["build_pipeline_assets"]


def build_pipeline_assets(
    graph: PipelineGraph,
    *,
    translator: CapportTranslator,
    config: ConfigMapping | PartitionedConfig,
    redact: Redactor,
    freshness: FreshnessPolicy | None = None,
) -> tuple[list[AssetsDefinition], Any]:
    """The assets of one pipeline and the asset job that materialises them all. A
    `PartitionedConfig` (a partitioned pipeline's) partitions every asset alike."""
    keys = _asset_keys(graph, translator)
    partitions = config.partitions_def if isinstance(config, PartitionedConfig) else None
    assets = [
        _stage_assets(graph, node, keys, translator, redact, partitions, freshness)
        for node in graph.nodes
    ]
    job = define_asset_job(
        name=translator.get_asset_job_name(graph),
        selection=AssetSelection.assets(*[key for node_keys in keys.values() for key in node_keys]),
        description=f"Materialise every frame of capport pipeline '{graph.name}' as assets.",
        tags=dict(translator.get_job_tags(graph)),
        config=config,
    )
    return assets, job


def _asset_keys(
    graph: PipelineGraph, translator: CapportTranslator
) -> dict[str, tuple[AssetKey, ...]]:
    """Each stage's asset keys: one per frame version written, or one for a sink. (Unique:
    `core.names.dagster_name_problems` checked them with the translator's names.)"""
    return {
        node.label: (
            tuple(translator.get_asset_key(graph, version) for version in node.outputs)
            if node.outputs
            else (translator.get_sink_asset_key(graph, node),)
        )
        for node in graph.nodes
    }


def _stage_assets(
    graph: PipelineGraph,
    node: StageNode,
    keys: Mapping[str, tuple[AssetKey, ...]],
    translator: CapportTranslator,
    redact: Redactor,
    partitions: PartitionsDefinition | None = None,
    freshness: FreshnessPolicy | None = None,
) -> AssetsDefinition:
    node_keys = keys[node.label]
    input_keys = {
        frame: translator.get_asset_key(graph, version) for frame, version in node.inputs.items()
    }
    ins = {
        translator.get_input_name(frame): AssetIn(key=key, dagster_type=PolarsFrame)
        for frame, key in input_keys.items()
    }
    input_frames = {translator.get_input_name(frame): frame for frame in node.inputs}
    catalog = StageCatalog.build(graph, node, translator)
    # Files written by earlier stages that this one reads or overwrites: their assets are
    # upstream of this one, without a value passing (the lineage shows the file edge).
    file_deps = {key for edge in node.after for key in keys[edge.writer]}
    out_names = (
        [translator.get_output_name(version) for version in node.outputs]
        if node.outputs
        else [translator.get_op_name(node)]
    )
    # Frames are values for the IO manager; a sink's asset holds no value (Nothing).
    outs = {
        out_name: AssetOut(
            key=key,
            group_name=translator.get_group_name(graph),
            description=translator.get_asset_description(node),
            # Definitions are shown to anyone with the UI: a secret written in a stage's args
            # (a literal webhook URL, say) is masked like everywhere else.
            metadata={
                name: redact(value) if isinstance(value, str) else value
                for name, value in translator.get_asset_metadata(node).items()
            },
            tags=dict(translator.get_asset_tags(node)),
            dagster_type=PolarsFrame if node.outputs else Nothing,
            freshness_policy=freshness,
        )
        for out_name, key in zip(out_names, node_keys, strict=True)
    }

    @multi_asset(
        name=TranslatorNaming(translator).asset_op_definition(graph, node),
        partitions_def=partitions,
        outs=outs,
        ins=ins,
        # A file dependency on an asset this stage also reads as a frame is that input already
        # (Dagster refuses a key both as a typed input and as a dependency).
        deps=sorted(file_deps - set(input_keys.values()), key=AssetKey.to_user_string),
        internal_asset_deps={name: {*input_keys.values(), *file_deps} for name in outs},
        check_specs=catalog.check_specs,
        required_resource_keys={RUN_RESOURCE_KEY},
        op_tags=dict(translator.get_op_tags(node)),
    )
    async def stage_assets(context: AssetExecutionContext, **inputs: Any):  # type: ignore[no-untyped-def]
        run: CapportRun = getattr(context.resources, RUN_RESOURCE_KEY)
        log = RedactingLog(context.log, redact)  # type: ignore[arg-type]
        ctx = RunContext(run.run_mode, run.variables(), node.location, log, redact)
        frames = {input_frames[name]: value for name, value in inputs.items()}
        try:
            result = await run_stage(node, frames, ctx)
        except ConstraintError as exc:
            # The stage stopped before its data landed; the failed check shows in the catalog.
            for spec, violation in catalog.failed(exc):
                yield check_result(spec, violation)
            raise
        if node.outputs:
            metadata = catalog.frame_metadata(result, frames)
            for version, out_name in zip(node.outputs, out_names, strict=True):
                yield Output(
                    result.frames[version.name],
                    output_name=out_name,
                    metadata=metadata[version.name],
                )
        else:
            yield MaterializeResult(
                asset_key=node_keys[0], metadata=catalog.sink_metadata(result, frames)
            )
        for spec, violation in await catalog.check_outcomes(result, frames):
            yield check_result(spec, violation)

    return stage_assets
