"""A validated pipeline graph becomes a Dagster job: op per stage, edges from frame versions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dagster import (
    DependencyDefinition,
    GraphDefinition,
    JobDefinition,
    MultiDependencyDefinition,
    NodeInvocation,
    colored_console_logger,
)
from dagster._core.definitions.dependency import IDependencyDefinition

from capport_dagster.core.graph import PipelineGraph
from capport_dagster.core.loggers import LoggerSpec
from capport_dagster.core.names import FILES_READY, FILES_WRITTEN, dagster_name_problems
from capport_dagster.core.partitions import Cadence
from capport_dagster.core.runners import Runner
from capport_dagster.core.secrets import Redactor
from capport_dagster.errors import ValidationError
from capport_dagster.translate.executor import capport_executor
from capport_dagster.translate.io_manager import capport_io_manager
from capport_dagster.translate.loggers import file_logger
from capport_dagster.translate.ops import RUN_RESOURCE_KEY, build_op
from capport_dagster.translate.partitions import job_config
from capport_dagster.translate.progress import progress_logger
from capport_dagster.translate.resources import capport_run_resource
from capport_dagster.translate.run_config import run_config_mapping
from capport_dagster.translate.translator import CapportTranslator, TranslatorNaming

__all__ = ["LOGGER_DEFS", "build_job", "check_names", "run_resources"]

#: The loggers every capport run can use; the run config mapping picks which are on.
LOGGER_DEFS = {
    "console": colored_console_logger,
    "capport_progress": progress_logger,
    "capport_file": file_logger,
}


def run_resources(config_dir: str) -> dict[str, Any]:
    """The resources of every capport run; their config comes from the run config mapping."""
    return {RUN_RESOURCE_KEY: capport_run_resource(config_dir), "io_manager": capport_io_manager}


def build_job(
    graph: PipelineGraph,
    *,
    config_dir: str,
    runner: Runner | None,
    loggers: Mapping[str, LoggerSpec],
    translator: CapportTranslator,
    redact: Redactor,
    partitions: Cadence | None = None,
) -> JobDefinition:
    """`partitions`: the pipeline's (`core/partitions.py`), which make it a partitioned job;
    its config is then Dagster's per-partition form (`translate/partitions.py` says why)."""
    naming = TranslatorNaming(translator)
    op_names = {node.label: naming.op(node) for node in graph.nodes}
    ops = {
        node.label: build_op(
            graph,
            node,
            name=naming.op_definition(graph, node),
            translator=translator,
            redact=redact,
        )
        for node in graph.nodes
    }
    dependencies: dict[NodeInvocation, dict[str, IDependencyDefinition]] = {}
    for node in graph.nodes:
        edges: dict[str, IDependencyDefinition] = {
            translator.get_input_name(frame): DependencyDefinition(
                op_names[version.writer], translator.get_output_name(version)
            )
            for frame, version in node.inputs.items()
        }
        if node.after:  # files: a Nothing input fanned in from every stage it waits for
            edges[FILES_READY] = MultiDependencyDefinition(
                [DependencyDefinition(op_names[edge.writer], FILES_WRITTEN) for edge in node.after]
            )
        invocation = NodeInvocation(ops[node.label].name, alias=op_names[node.label])
        dependencies[invocation] = edges
    job_graph = GraphDefinition(
        name=naming.job(graph),
        node_defs=list(ops.values()),
        dependencies=dependencies,
        description=f"capport pipeline '{graph.name}' ({len(graph.nodes)} stages)",
    )
    config = job_config(
        run_config_mapping(
            config_dir=config_dir, runner=runner, loggers=loggers, partitions=partitions
        ),
        partitions,
    )
    return job_graph.to_job(
        resource_defs=run_resources(config_dir),
        executor_def=capport_executor,
        logger_defs=LOGGER_DEFS,
        config=config,
        tags=dict(translator.get_job_tags(graph)),
    )


def check_names(
    graphs: Mapping[str, PipelineGraph], runners: Iterable[Runner], translator: CapportTranslator
) -> None:
    """Raise `ValidationError` when a translator subclass's names are invalid or clash in
    Dagster, before Dagster fails on them with a less precise message. The default names need
    no second look: validating the project checked them (`core/names.py`)."""
    if type(translator) is CapportTranslator:
        return
    problems = dagster_name_problems(graphs, runners, TranslatorNaming(translator))
    if problems:
        raise ValidationError(problems)
