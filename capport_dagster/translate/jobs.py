"""A validated pipeline graph becomes a Dagster job: op per stage, edges from frame versions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import (
    DependencyDefinition,
    GraphDefinition,
    JobDefinition,
    NodeInvocation,
    colored_console_logger,
)

from capport_dagster.core.graph import PipelineGraph
from capport_dagster.core.loggers import LoggerSpec
from capport_dagster.core.runners import Runner
from capport_dagster.core.secrets import Redactor
from capport_dagster.errors import ConfigError
from capport_dagster.translate.executor import capport_executor
from capport_dagster.translate.io_manager import CapportIOManager
from capport_dagster.translate.loggers import file_logger
from capport_dagster.translate.ops import RUN_RESOURCE_KEY, build_op
from capport_dagster.translate.progress import progress_logger
from capport_dagster.translate.resources import CapportRun
from capport_dagster.translate.run_config import run_config_mapping
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["LOGGER_DEFS", "build_job", "run_resources"]

#: The loggers every capport run can use; the run config mapping picks which are on.
LOGGER_DEFS = {
    "console": colored_console_logger,
    "capport_progress": progress_logger,
    "capport_file": file_logger,
}


def run_resources(config_dir: str) -> dict[str, Any]:
    """The resources of every capport run; their config comes from the run config mapping."""
    return {RUN_RESOURCE_KEY: CapportRun(config_dir=config_dir), "io_manager": CapportIOManager()}


def build_job(
    graph: PipelineGraph,
    *,
    config_dir: str,
    runner: Runner | None,
    loggers: Mapping[str, LoggerSpec],
    translator: CapportTranslator,
    redact: Redactor,
) -> JobDefinition:
    _check_unique_names(graph, translator)
    results = frozenset(graph.results)
    job_name = translator.get_job_name(graph)
    op_names = {node.label: translator.get_op_name(node) for node in graph.nodes}
    # Dagster wants op definition names unique across a code location, and two pipelines may
    # both have a stage `load`: definitions get the job's prefix, invocations the stage's name.
    ops = {
        node.label: build_op(
            node,
            name=f"{job_name}__{op_names[node.label]}",
            translator=translator,
            redact=redact,
            results=results,
        )
        for node in graph.nodes
    }
    dependencies: dict[NodeInvocation, dict[str, DependencyDefinition]] = {}
    for node in graph.nodes:
        edges = {
            translator.get_input_name(frame): DependencyDefinition(
                op_names[version.writer], translator.get_output_name(version)
            )
            for frame, version in node.inputs.items()
        }
        invocation = NodeInvocation(ops[node.label].name, alias=op_names[node.label])
        dependencies[invocation] = edges
    job_graph = GraphDefinition(
        name=job_name,
        node_defs=list(ops.values()),
        dependencies=dependencies,
        description=f"capport pipeline '{graph.name}' ({len(graph.nodes)} stages)",
    )
    return job_graph.to_job(
        resource_defs=run_resources(config_dir),
        executor_def=capport_executor,
        logger_defs=LOGGER_DEFS,
        config=run_config_mapping(config_dir=config_dir, runner=runner, loggers=loggers),
        tags=dict(translator.get_job_tags(graph)),
    )


def _check_unique_names(graph: PipelineGraph, translator: CapportTranslator) -> None:
    """Labels and frame names that differ in capport may collide once made Dagster-safe."""
    seen: dict[str, str] = {}
    for node in graph.nodes:
        name = translator.get_op_name(node)
        if name in seen:
            raise ConfigError(
                f"stage '{node.label}' and stage '{seen[name]}' both become Dagster op '{name}'"
                " (Dagster names allow only letters, digits and _): rename one",
                node.location,
            )
        seen[name] = node.label
        for names in (node.reads, node.writes):
            frames: dict[str, str] = {}
            for frame in names:
                key = translator.get_input_name(frame)
                if key in frames:
                    raise ConfigError(
                        f"frames '{frame}' and '{frames[key]}' both become Dagster name '{key}'",
                        node.location,
                    )
                frames[key] = frame
