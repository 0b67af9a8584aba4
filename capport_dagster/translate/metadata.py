"""Dagster metadata for a stage's output frames, from the core's `FrameSummary`.

Schema always; row count and a preview when the frame is in memory or the run asked for a
preview. Lazy frames are never collected just to describe them.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

from capport_dagster.core.sinkpass import PREVIEW_ROWS, FrameSummary

__all__ = ["frame_metadata"]


def frame_metadata(summary: FrameSummary) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "dagster/column_schema": MetadataValue.table_schema(
            TableSchema(
                columns=[TableColumn(name, str(dtype)) for name, dtype in summary.schema.items()]
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


def _table(head: pl.DataFrame) -> str:
    with pl.Config(
        tbl_rows=PREVIEW_ROWS,
        tbl_cols=12,
        fmt_str_lengths=24,
        tbl_width_chars=160,
        tbl_hide_dataframe_shape=True,
    ):
        return str(head)
