"""One Dagster op per stage: inputs are the frames it reads, outputs the frames it writes.

(No `from __future__ import annotations` here: Dagster inspects the op's context annotation.)
"""

from collections.abc import Mapping

from dagster import (
    AssetObservation,
    In,
    Nothing,
    OpDefinition,
    OpExecutionContext,
    Out,
    Output,
    op,
)

from capport_dagster.core.constraints import ConstraintError
from capport_dagster.core.graph import PipelineGraph, StageNode
from capport_dagster.core.names import FILES_READY, FILES_WRITTEN
from capport_dagster.core.registry import RunContext
from capport_dagster.core.runtime import run_stage
from capport_dagster.core.secrets import RedactingLog, Redactor
from capport_dagster.translate.catalog import StageCatalog
from capport_dagster.translate.frame_type import PolarsFrame
from capport_dagster.translate.metadata import frame_metadata
from capport_dagster.translate.resources import CapportRun
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["RUN_RESOURCE_KEY", "build_op"]

RUN_RESOURCE_KEY = "capport"


def build_op(
    graph: PipelineGraph,
    node: StageNode,
    *,
    name: str,
    translator: CapportTranslator,
    redact: Redactor,
) -> OpDefinition:
    """The op for `node`.

    The frames the pipeline produces (`graph.results`) are part of the run: the op writing one
    that nobody reads executes it (lazy modes), and when the run asks for previews (`capport
    run` prints results) its head and length come from the pass that executes it: that op's,
    or the first sink's, which reports them as an `AssetObservation` of the frame's asset.

    The op records the stage's assets in the catalog (`translate/catalog.py`) unless the run
    says `catalog: false`.

    `name` is the op *definition* name, unique in the code location; the job invokes it under
    the stage's op name (its label), which is what the UI, step keys and run config show.
    """
    input_names = {translator.get_input_name(frame): frame for frame in node.reads}
    output_names = {translator.get_output_name(v): v for v in node.outputs}
    unread = frozenset(v.name for v in node.outputs if not graph.readers[v])
    catalog = StageCatalog.build(graph, node, translator)
    previewed = {
        frame: translator.get_asset_key(graph, version)
        for frame, version in node.inputs.items()
        if graph.previewed_by.get(version) == node.label
    }
    ins = {
        name: In(PolarsFrame, description=f"frame {frame}") for name, frame in input_names.items()
    }
    out = {
        name: Out(PolarsFrame, description=f"frame {version.name} (version {version.version})")
        for name, version in output_names.items()
    }
    # Files a later stage reads or overwrites: Nothing edges order the stages, carry no value.
    if node.after:
        waits = ", ".join(edge.writer for edge in node.after)
        ins[FILES_READY] = In(Nothing, description=f"files written by {waits}")
    if node.signals_files:
        out[FILES_WRITTEN] = Out(Nothing, description="its files are written")

    @op(
        name=name,
        description=translator.get_op_description(node),
        ins=ins,
        out=out,
        tags=dict(translator.get_op_tags(node)),
        required_resource_keys={RUN_RESOURCE_KEY},
    )
    async def stage_op(context: OpExecutionContext, **inputs):  # type: ignore[no-untyped-def]
        run: CapportRun = getattr(context.resources, RUN_RESOURCE_KEY)
        ctx = RunContext(
            mode=run.run_mode,
            variables=run.variables(),
            location=node.location,
            log=RedactingLog(context.log, redact),  # type: ignore[arg-type]
            redact=redact,
        )
        frames: Mapping[str, object] = {input_names[k]: v for k, v in inputs.items()}
        partition = context.partition_key if context.has_partition_key else None
        try:
            result = await run_stage(
                node,
                frames,  # type: ignore[arg-type]
                ctx,
                unread=unread,
                preview=run.preview,
                preview_inputs=previewed,
            )
        except ConstraintError as exc:
            # The data did not land; the failed checks still show in the catalog.
            if run.catalog:
                for evaluation in catalog.failed_checks(exc, partition):
                    yield evaluation
            raise
        for frame, summary in result.previews.items():
            yield AssetObservation(asset_key=previewed[frame], metadata=frame_metadata(summary))
        for name, version in output_names.items():
            yield Output(
                result.frames[version.name],
                name,
                # The frame's materialization carries its metadata when the run records them.
                metadata=None if run.catalog else frame_metadata(result.summaries[version.name]),
            )
        if node.signals_files:
            yield Output(None, FILES_WRITTEN)
        if run.catalog:
            for event in await catalog.events(result, frames, partition):  # type: ignore[arg-type]
                yield event

    return stage_op
