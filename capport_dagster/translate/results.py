"""The frames a run produced, as its Dagster events tell: what `capport run` prints.

A result frame's row count and head come from the pass that computed it (see
`core/sinkpass.py`): the frame's materialization (or, when the run records no catalog, its step
output's metadata) when its stage has the frame in memory (eager modes) or executed it (nobody
reads it), else the `AssetObservation` the first sink reading it logged for the frame's asset.
Events, not return values: with the multiprocess executor the stages ran in other processes,
and the instance's event log is what they share.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from dagster import AssetKey, DagsterEventType

from capport_dagster.core.graph import PipelineGraph
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["ResultFrame", "result_frames"]


@dataclass(frozen=True)
class ResultFrame:
    name: str
    rows: int | None
    columns: int | None
    preview: str | None

    @property
    def shape(self) -> str:
        if self.rows is None or self.columns is None:
            return "(not collected)"
        return f"({self.rows}, {self.columns})"


def result_frames(
    graph: PipelineGraph, events: Iterable[Any], translator: CapportTranslator | None = None
) -> list[ResultFrame]:
    """Each result of `graph` that the run's `events` describe, in pipeline order."""
    translator = translator or CapportTranslator()
    outputs: dict[tuple[str, str], Mapping[str, Any]] = {}
    materialized: dict[AssetKey, Mapping[str, Any]] = {}
    observed: dict[AssetKey, Mapping[str, Any]] = {}
    for event in events:
        if event.event_type == DagsterEventType.STEP_OUTPUT:
            handle = event.event_specific_data.step_output_handle
            outputs[(event.step_key, handle.output_name)] = event.event_specific_data.metadata
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.event_specific_data.materialization
            materialized[materialization.asset_key] = materialization.metadata
        elif event.event_type == DagsterEventType.ASSET_OBSERVATION:
            observation = event.event_specific_data.asset_observation
            observed[observation.asset_key] = observation.metadata
    found = []
    for version in graph.results:
        node = graph.by_label[version.writer]
        output = outputs.get((translator.get_op_name(node), translator.get_output_name(version)))
        if output is None:
            continue  # the stage did not finish
        key = translator.get_asset_key(graph, version)
        metadata = materialized.get(key, output)
        if "dagster/row_count" not in metadata:
            metadata = observed.get(key, metadata)
        rows, columns = metadata.get("dagster/row_count"), metadata.get("capport/columns")
        preview = metadata.get("capport/preview")
        found.append(
            ResultFrame(
                version.name,
                rows.value if rows is not None else None,
                columns.value if columns is not None else None,
                preview.value if preview is not None else None,
            )
        )
    return found
