"""How capport names and describes things in Dagster; subclass to change it.

Every mapping is one public method taking one core object and returning one value, whose body
calls a default function kept beside it (the dagster-dbt `DagsterDbtTranslator` pattern):

    class MyTranslator(CapportTranslator):
        def get_op_tags(self, node):
            return {**super().get_op_tags(node), "team": "data-eng"}

    defs = load_definitions("config", translator=MyTranslator())
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from dagster import AssetKey

from capport_dagster.core.graph import FrameVersion, PipelineGraph, StageNode
from capport_dagster.core.runners import Runner

__all__ = ["IO_TAG", "CapportTranslator", "dagster_name"]

#: Op tag telling executors whether a stage waits on I/O (async task) or computes.
IO_TAG = "capport/io"

_INVALID = re.compile(r"[^A-Za-z0-9_]")


def dagster_name(name: str) -> str:
    """Dagster names allow letters, digits and `_`; anything else becomes `_`."""
    cleaned = _INVALID.sub("_", name)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def default_job_name(graph: PipelineGraph) -> str:
    return dagster_name(graph.name)


def default_op_name(node: StageNode) -> str:
    return dagster_name(node.label)


def default_frame_name(frame: str) -> str:
    return dagster_name(frame)


def default_op_description(node: StageNode) -> str:
    reads = ", ".join(node.reads) or "nothing"
    writes = ", ".join(node.writes) or "nothing"
    task = node.stage.task
    return f"Stage {node.index} `{node.label}`: task `{task}`, reads {reads}, writes {writes}."


def default_op_tags(node: StageNode) -> Mapping[str, str]:
    # Higher priority for earlier stages: executors start the earliest ready stage first, so
    # sync modes run in list order.
    return {
        "dagster/priority": str(-node.index),
        "capport/task": node.stage.task,
        IO_TAG: "true" if node.spec.waits_on_io else "false",
    }


def default_job_tags(graph: PipelineGraph) -> Mapping[str, str]:
    return {"capport/pipeline": graph.name}


def default_asset_key(graph: PipelineGraph, version: FrameVersion) -> AssetKey:
    # The first write of a frame is `[pipeline, FRAME]`; a rewrite adds the stage that made it.
    if version.version == 0:
        return AssetKey([graph.name, version.name])
    return AssetKey([graph.name, version.name, version.writer])


def default_sink_asset_key(graph: PipelineGraph, node: StageNode) -> AssetKey:
    return AssetKey([graph.name, node.label])


def default_group_name(graph: PipelineGraph) -> str:
    return dagster_name(graph.name)


def default_asset_metadata(node: StageNode) -> Mapping[str, Any]:
    return {
        "capport/task": node.stage.task,
        "capport/stage": f"{node.label} (#{node.index})",
        "capport/args": repr(node.stage.args),
        "capport/location": str(node.location),
    }


def default_schedule_name(runner: Runner, pipeline: str) -> str:
    return dagster_name(f"{pipeline}__{runner.name}")


def default_schedule_tags(runner: Runner, pipeline: str) -> Mapping[str, str]:
    return {"capport/runner": runner.name, "capport/pipeline": pipeline}


class CapportTranslator:
    """Maps pipelines, stages and frames to Dagster names, descriptions and tags."""

    def get_job_name(self, graph: PipelineGraph) -> str:
        return default_job_name(graph)

    def get_job_tags(self, graph: PipelineGraph) -> Mapping[str, str]:
        return default_job_tags(graph)

    def get_op_name(self, node: StageNode) -> str:
        return default_op_name(node)

    def get_op_description(self, node: StageNode) -> str:
        return default_op_description(node)

    def get_op_tags(self, node: StageNode) -> Mapping[str, str]:
        return default_op_tags(node)

    def get_input_name(self, frame: str) -> str:
        return default_frame_name(frame)

    def get_output_name(self, version: FrameVersion) -> str:
        return default_frame_name(version.name)

    def get_schedule_name(self, runner: Runner, pipeline: str) -> str:
        """Name of the schedule or sensor that fires `pipeline` for `runner`."""
        return default_schedule_name(runner, pipeline)

    def get_schedule_tags(self, runner: Runner, pipeline: str) -> Mapping[str, str]:
        """Tags of the runs a runner's schedule or sensor launches."""
        return default_schedule_tags(runner, pipeline)

    def get_asset_key(self, graph: PipelineGraph, version: FrameVersion) -> AssetKey:
        """Key of the asset a frame version is; override to add a prefix:

        def get_asset_key(self, graph, version):
            return super().get_asset_key(graph, version).with_prefix("warehouse")
        """
        return default_asset_key(graph, version)

    def get_sink_asset_key(self, graph: PipelineGraph, node: StageNode) -> AssetKey:
        """Key of the asset a stage that writes no frame is (`save_csv`: the file it writes)."""
        return default_sink_asset_key(graph, node)

    def get_group_name(self, graph: PipelineGraph) -> str:
        return default_group_name(graph)

    def get_asset_description(self, node: StageNode) -> str:
        return default_op_description(node)

    def get_asset_metadata(self, node: StageNode) -> Mapping[str, Any]:
        return default_asset_metadata(node)

    def get_asset_tags(self, node: StageNode) -> Mapping[str, str]:
        return {"capport/task": node.stage.task}
