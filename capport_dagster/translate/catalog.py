"""What a stage tells Dagster's asset catalog, whichever job ran it.

The asset view (`translate/assets.py`) defines an asset per frame version and per sink; a
pipeline job's op records a materialization of those same keys with the same metadata, and
the model constraints' check results, so the catalog, the lineage graph and asset history are
the truth of every run: `capport run`, a schedule, a sensor, the launchpad or `dagster job
execute`. Pipeline jobs stay op jobs rather than becoming asset jobs: docs/catalog.md gives
the measurements behind that choice, and how to turn the recording off (`catalog: false`).

The metadata of a frame is its schema (with the model's dtypes and constraints as column
descriptions where a model shaped it), its row count where the run knows it without extra
work, and its column lineage: for each column, the columns of the frames the stage read that it
was computed from (`core/lineage.py`), keyed by those frames' asset keys.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import polars as pl
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetMaterialization,
    MetadataValue,
    TableColumnDep,
    TableColumnLineage,
)

from capport_dagster.core.constraints import ConstraintError, Violation, check_constraints
from capport_dagster.core.graph import PipelineGraph, StageNode
from capport_dagster.core.lineage import FrameLineage, stage_lineage
from capport_dagster.core.models import Model, reshape
from capport_dagster.core.runtime import StageResult
from capport_dagster.core.sinkpass import FrameSummary
from capport_dagster.translate.metadata import frame_metadata
from capport_dagster.translate.translator import CapportTranslator

__all__ = ["ModelChecks", "StageCatalog", "check_result"]

Frames = Mapping[str, pl.DataFrame | pl.LazyFrame]


@dataclass(frozen=True)
class ModelChecks:
    """The asset checks of one model applied to one frame of a stage."""

    frame: str
    model: Model
    specs: tuple[tuple[AssetCheckSpec, str, str], ...]  # (spec, column, constraint)

    def outcomes(
        self, violations: tuple[Violation, ...]
    ) -> Iterator[tuple[AssetCheckSpec, Violation | None]]:
        found = {(v.column, v.constraint): v for v in violations}
        for spec, column, constraint in self.specs:
            yield spec, found.get((column, constraint))


def check_result(spec: AssetCheckSpec, violation: Violation | None) -> AssetCheckResult:
    """A check's result as an asset returns it."""
    return AssetCheckResult(**_outcome(spec, violation))


def _check_evaluation(
    spec: AssetCheckSpec, violation: Violation | None, partition: str | None
) -> AssetCheckEvaluation:
    """A check's result as an op reports it (an op has no check specs to resolve it against)."""
    return AssetCheckEvaluation(
        **_outcome(spec, violation), blocking=spec.blocking, partition=partition
    )


def _outcome(spec: AssetCheckSpec, violation: Violation | None) -> dict[str, Any]:
    return {
        "asset_key": spec.asset_key,
        "check_name": spec.name,
        "passed": violation is None,
        "severity": AssetCheckSeverity.ERROR,
        "metadata": _check_metadata(violation),
    }


def _check_metadata(violation: Violation | None) -> dict[str, MetadataValue]:
    return {
        "violations": MetadataValue.int(violation.count if violation else 0),
        "examples": MetadataValue.text(", ".join(violation.examples) if violation else ""),
    }


@dataclass(frozen=True)
class StageCatalog:
    """One stage's assets (built once, with the op): their keys, the keys of the frames it
    reads (the lineage points at them), its models and their checks."""

    node: StageNode
    #: Asset key of each frame version the stage writes, by frame name.
    frame_keys: Mapping[str, AssetKey]
    #: Asset key of the stage itself when it writes no frame (a sink), else None.
    sink_key: AssetKey | None
    #: Asset key of each frame the stage reads, by frame name.
    input_keys: Mapping[str, AssetKey]
    models: Mapping[str, Model]
    checks: tuple[ModelChecks, ...]

    @classmethod
    def build(
        cls, graph: PipelineGraph, node: StageNode, translator: CapportTranslator
    ) -> StageCatalog:
        frame_keys = {v.name: translator.get_asset_key(graph, v) for v in node.outputs}
        sink_key = None if node.outputs else translator.get_sink_asset_key(graph, node)
        models = dict(node.spec.model_frames(node.args))
        checks = []
        for frame, model in models.items():
            # A sink's checks go on the sink asset; a model on a frame a writer only reads, on
            # its first asset (as the asset view puts them).
            key = frame_keys.get(frame) or sink_key or next(iter(frame_keys.values()))
            specs = tuple(
                (
                    AssetCheckSpec(
                        name=translator.get_asset_check_name(model.name, column, constraint),
                        asset=key,
                        blocking=True,
                        description=f"model '{model.name}': column '{column}' is {constraint}",
                    ),
                    column,
                    constraint,
                )
                for column, constraint in model.checks
            )
            if specs:
                checks.append(ModelChecks(frame, model, specs))
        return cls(
            node=node,
            frame_keys=frame_keys,
            sink_key=sink_key,
            input_keys={f: translator.get_asset_key(graph, v) for f, v in node.inputs.items()},
            models=models,
            checks=tuple(checks),
        )

    @property
    def check_specs(self) -> list[AssetCheckSpec]:
        return [spec for check in self.checks for spec, _, _ in check.specs]

    # -- metadata ---------------------------------------------------------------------------

    def frame_metadata(self, result: StageResult, frames: Frames) -> dict[str, dict[str, Any]]:
        """The metadata of each frame the stage wrote (by frame name): its summary, its model's
        column descriptions and its column lineage."""
        lineage = self._lineage(result, frames)
        return {
            name: {
                **frame_metadata(summary, self.models.get(name)),
                **_lineage_metadata(lineage.get(name, {}), self.input_keys),
            }
            for name, summary in result.summaries.items()
        }

    def sink_metadata(self, result: StageResult, frames: Frames) -> dict[str, Any]:
        """The metadata of what a sink wrote: what the sink reported (`save_sql`: table, mode,
        rows) and, when it wrote one frame, that frame as written (the model's columns, or the
        frame's), its row count where known, and lineage column for column."""
        metadata: dict[str, Any] = dict(result.metadata)
        if len(self.node.reads) != 1 or self.node.reads[0] not in frames:
            return metadata
        (frame,) = self.node.reads
        source = frames[frame]
        model = self.models.get(frame)
        present = _schema(source)
        schema = model.schema() if model else present
        previewed = result.previews.get(frame)
        if isinstance(source, pl.DataFrame):
            rows: int | None = source.height
        elif previewed is not None:
            rows = previewed.rows
        else:  # what the sink counted itself (save_sql), if it did
            reported = metadata.get("rows")
            rows = reported if isinstance(reported, int) else None
        summary = FrameSummary(schema, rows, None, isinstance(source, pl.LazyFrame))
        identity = {c: ((frame, c),) if c in present else () for c in schema}
        return {
            **frame_metadata(summary, model),
            **_lineage_metadata(identity, self.input_keys),
            **metadata,
        }

    def _lineage(self, result: StageResult, frames: Frames) -> dict[str, FrameLineage]:
        inputs = {name: _schema(frame) for name, frame in frames.items()}
        outputs = {name: pl.Schema(s.schema) for name, s in result.summaries.items()}
        return stage_lineage(self.node, inputs, outputs)

    # -- what an op of a pipeline job records -----------------------------------------------

    async def events(
        self,
        result: StageResult,
        frames: Frames,
        partition: str | None,
    ) -> list[AssetMaterialization | AssetCheckEvaluation]:
        """The materializations of what the stage wrote and its checks' results."""
        events: list[AssetMaterialization | AssetCheckEvaluation] = []
        if self.sink_key is not None:
            events.append(
                AssetMaterialization(
                    asset_key=self.sink_key,
                    metadata=self.sink_metadata(result, frames),
                    partition=partition,
                )
            )
        else:
            for name, metadata in self.frame_metadata(result, frames).items():
                events.append(
                    AssetMaterialization(
                        asset_key=self.frame_keys[name], metadata=metadata, partition=partition
                    )
                )
        events += [
            _check_evaluation(spec, found, partition)
            for spec, found in await self.check_outcomes(result, frames)
        ]
        return events

    def failed_checks(
        self, error: ConstraintError, partition: str | None
    ) -> list[AssetCheckEvaluation]:
        """What an op records when a constraint stopped its stage."""
        return [_check_evaluation(spec, found, partition) for spec, found in self.failed(error)]

    def failed(self, error: ConstraintError) -> list[tuple[AssetCheckSpec, Violation | None]]:
        """The outcomes of the checks of the model whose constraint stopped the stage."""
        return [
            outcome
            for check in self.checks
            if (check.frame, check.model.name) == (error.frame, error.model)
            for outcome in check.outcomes(error.violations)
        ]

    async def check_outcomes(
        self, result: StageResult, frames: Frames
    ) -> list[tuple[AssetCheckSpec, Violation | None]]:
        """The outcome of every check of the stage once it has run."""
        return [
            outcome
            for check in self.checks
            for outcome in check.outcomes(await self.violations(check, result, frames))
        ]

    async def violations(
        self, check: ModelChecks, result: StageResult, frames: Frames
    ) -> tuple[Violation, ...]:
        """The violations of a model the stage applied: none when the stage's own pass checked
        it (every built-in task does); a custom task that applies a model without checking
        it has what it wrote checked here."""
        if (check.frame, check.model.name) in result.checked:
            return ()
        source = result.frames.get(check.frame, frames.get(check.frame))
        shaped = reshape(source, check.model)
        try:
            await asyncio.to_thread(
                check_constraints, shaped, check.model, check.frame, self.node.location
            )
        except ConstraintError as exc:
            return exc.violations
        return ()


def _schema(frame: pl.DataFrame | pl.LazyFrame) -> pl.Schema:
    return frame.schema if isinstance(frame, pl.DataFrame) else frame.collect_schema()


def _lineage_metadata(
    lineage: FrameLineage, input_keys: Mapping[str, AssetKey]
) -> dict[str, TableColumnLineage]:
    """`dagster/column_lineage`, for the columns computed from frames the stage read (the
    columns of a load have no upstream asset: their lineage is not recorded)."""
    deps = {
        column: [TableColumnDep(input_keys[f], name) for f, name in sources if f in input_keys]
        for column, sources in lineage.items()
    }
    deps = {column: found for column, found in deps.items() if found}
    return {"dagster/column_lineage": TableColumnLineage(deps)} if deps else {}
