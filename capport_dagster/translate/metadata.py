"""Dagster metadata for a stage's output frames, from the core's `FrameSummary`.

Schema always (with the model's dtype names and constraints as column descriptions where a
model shaped the frame); row count and a preview when the frame is in memory or the run asked
for a preview. Lazy frames are never collected just to describe them.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableColumnConstraints, TableSchema

from capport_dagster.core.models import Model, ModelColumn
from capport_dagster.core.sinkpass import PREVIEW_ROWS, FrameSummary

__all__ = ["frame_metadata"]


def frame_metadata(summary: FrameSummary, model: Model | None = None) -> dict[str, Any]:
    described = {column.name: column for column in model.columns} if model else {}
    metadata: dict[str, Any] = {
        "dagster/column_schema": MetadataValue.table_schema(
            TableSchema(
                columns=[
                    _column(name, dtype, described.get(name), model)
                    for name, dtype in summary.schema.items()
                ]
            )
        ),
        "capport/columns": MetadataValue.int(len(summary.schema)),
        "capport/lazy": MetadataValue.bool(summary.lazy),
    }
    if summary.rows is not None:
        metadata["dagster/row_count"] = MetadataValue.int(summary.rows)
    if summary.head is not None:
        metadata["capport/preview"] = MetadataValue.text(_table(summary.head))
    return metadata


def _column(
    name: str, dtype: pl.DataType, column: ModelColumn | None, model: Model | None
) -> TableColumn:
    """A column as the catalog shows it; a model's column says which model, its dtype name and
    its constraints (`primary` is unique and not null)."""
    if column is None or model is None:
        return TableColumn(name, str(dtype))
    constraints = set(column.constraints)
    said = ", ".join(
        [column.dtype_name, *column.constraints, *(["optional"] if column.optional else [])]
    )
    return TableColumn(
        name,
        str(dtype),
        description=f"model '{model.name}': {said}",
        constraints=TableColumnConstraints(
            nullable=not constraints & {"primary", "not_null"},
            unique=bool(constraints & {"primary", "unique"}),
            other=[c for c in column.constraints if c not in ("primary", "unique", "not_null")],
        ),
    )


def _table(head: pl.DataFrame) -> str:
    with pl.Config(
        tbl_rows=PREVIEW_ROWS,
        tbl_cols=12,
        fmt_str_lengths=24,
        tbl_width_chars=160,
        tbl_hide_dataframe_shape=True,
    ):
        return str(head)
