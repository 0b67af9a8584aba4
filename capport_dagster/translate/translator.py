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
from datetime import timedelta
from typing import Any

from dagster import AssetKey, FreshnessPolicy

from capport_dagster.core.graph import FrameVersion, PipelineGraph, StageNode
from capport_dagster.core.names import DagsterNaming, dagster_name
from capport_dagster.core.runners import Runner

__all__ = ["IO_TAG", "CapportTranslator", "TranslatorNaming", "dagster_name"]

#: Op tag telling executors whether a stage waits on I/O (async task) or computes.
IO_TAG = "capport/io"

#: The default names (`core/names.py`): the same object `capport validate` checks them with.
DEFAULT_NAMING = DagsterNaming()


def default_job_name(graph: PipelineGraph) -> str:
    return DEFAULT_NAMING.job(graph)


def default_op_name(node: StageNode) -> str:
    return DEFAULT_NAMING.op(node)


def default_frame_name(frame: str) -> str:
    return DEFAULT_NAMING.input(frame)


def default_op_description(node: StageNode) -> str:
    reads = ", ".join(node.reads) or "nothing"
    writes = ", ".join(node.writes) or "nothing"
    task = node.stage.task
    return f"Stage {node.index} `{node.label}`: task `{task}`, reads {reads}, writes {writes}."


def default_op_tags(node: StageNode) -> Mapping[str, str]:
    # Higher priority for earlier stages: executors start the earliest ready stage first, so
    # sync modes run in list order. dagster-celery reads its own tag, on Celery's 0-10 scale
    # (and warns of a step with Dagster's tag alone): the first ten stages in order, then 0.
    return {
        "dagster/priority": str(-node.index),
        "dagster-celery/priority": str(max(0, 10 - node.index)),
        "capport/task": node.stage.task,
        "capport/stage": node.label,
        IO_TAG: "true" if node.spec.waits_on_io else "false",
    }


def default_job_tags(graph: PipelineGraph) -> Mapping[str, str]:
    return {"capport/pipeline": graph.name}


def default_asset_key(graph: PipelineGraph, version: FrameVersion) -> AssetKey:
    # The first write of a frame is `[pipeline, FRAME]`; a rewrite adds the stage that made it.
    return AssetKey(list(DEFAULT_NAMING.asset_key(graph, version)))


def default_sink_asset_key(graph: PipelineGraph, node: StageNode) -> AssetKey:
    return AssetKey(list(DEFAULT_NAMING.sink_asset_key(graph, node)))


def default_group_name(graph: PipelineGraph) -> str:
    return DEFAULT_NAMING.group(graph)


def default_asset_tags(node: StageNode) -> Mapping[str, str]:
    # Dagster is strict about asset tags (values of letters, digits, _ . - and at most 63
    # characters): a user's task named "my task" is tagged my_task; metadata keeps the name.
    return {"capport/task": _strict_tag_value(node.stage.task)}


def _strict_tag_value(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value)[:63]


def default_asset_metadata(node: StageNode) -> Mapping[str, Any]:
    # A sink's parsed args may describe what it writes (save_sql: table, mode, connection).
    describe = getattr(node.args, "asset_metadata", None)
    return {
        "capport/task": node.stage.task,
        "capport/stage": f"{node.label} (#{node.index})",
        "capport/args": repr(node.stage.args),
        "capport/location": str(node.location),
        **(describe() if callable(describe) else {}),
    }


#: The shortest freshness window Dagster accepts (it evaluates freshness by the minute).
SHORTEST_FRESHNESS_WINDOW = timedelta(minutes=1)


def default_freshness_policy(overdue_after: timedelta | None) -> FreshnessPolicy | None:
    # Fails when the last materialization is older than that (a schedule of seconds: a minute,
    # Dagster's least); no warning window: one period after a run the next tick's run is just
    # starting, and would warn every time.
    if overdue_after is None:
        return None
    return FreshnessPolicy.time_window(fail_window=max(overdue_after, SHORTEST_FRESHNESS_WINDOW))


def default_schedule_name(runner: Runner, pipeline: str) -> str:
    return DEFAULT_NAMING.schedule(runner, pipeline)


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
        return DEFAULT_NAMING.output(version)

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
        return default_asset_tags(node)

    def get_freshness_policy(
        self, graph: PipelineGraph, overdue_after: timedelta | None
    ) -> FreshnessPolicy | None:
        """Freshness of a pipeline's assets: `overdue_after` is how long its schedule may go
        without a run (longest gap between ticks plus the runner's grace; None when no runner
        schedules it)."""
        return default_freshness_policy(overdue_after)

    def get_asset_job_name(self, graph: PipelineGraph) -> str:
        """Name of the job materialising a pipeline's assets (`<job>__assets`)."""
        return f"{self.get_job_name(graph)}__assets"

    def get_asset_check_name(self, model: str, column: str, constraint: str) -> str:
        """Name of the asset check of one model constraint (`<model>__<column>__<constraint>`)."""
        return DEFAULT_NAMING.asset_check(model, column, constraint)


class TranslatorNaming(DagsterNaming):
    """A translator's names, seen as `core.names.DagsterNaming`, so that the names a subclass
    gives are checked (valid, unique) by the same code as the defaults."""

    def __init__(self, translator: CapportTranslator) -> None:
        self.translator = translator

    def job(self, graph: PipelineGraph) -> str:
        return self.translator.get_job_name(graph)

    def asset_job(self, graph: PipelineGraph) -> str:
        return self.translator.get_asset_job_name(graph)

    def op(self, node: StageNode) -> str:
        return self.translator.get_op_name(node)

    def input(self, frame: str) -> str:
        return self.translator.get_input_name(frame)

    def output(self, version: FrameVersion) -> str:
        return self.translator.get_output_name(version)

    def asset_key(self, graph: PipelineGraph, version: FrameVersion) -> tuple[str, ...]:
        return tuple(self.translator.get_asset_key(graph, version).path)

    def sink_asset_key(self, graph: PipelineGraph, node: StageNode) -> tuple[str, ...]:
        return tuple(self.translator.get_sink_asset_key(graph, node).path)

    def group(self, graph: PipelineGraph) -> str:
        return self.translator.get_group_name(graph)

    def schedule(self, runner: Runner, pipeline: str) -> str:
        return self.translator.get_schedule_name(runner, pipeline)

    def asset_check(self, model: str, column: str, constraint: str) -> str:
        return self.translator.get_asset_check_name(model, column, constraint)
