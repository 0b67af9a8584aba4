"""Dagster metadata for a stage's output frames: schema always, row count and preview when cheap.

A DataFrame is already in memory, so its row count and head cost nothing. A LazyFrame is a plan:
collecting it for metadata would defeat lazy mode, so it gets its schema (planning only) and,
when the run asks for a preview of final frames, its head and length in one `collect_all`.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from dagster import MetadataValue, TableColumn, TableSchema

__all__ = ["PREVIEW_ROWS", "frame_metadata"]

PREVIEW_ROWS = 5


def frame_metadata(frame: Any, *, preview: bool) -> dict[str, Any]:
    if isinstance(frame, pl.LazyFrame):
        schema = frame.collect_schema()
        metadata = {"capport/lazy": MetadataValue.bool(True)}
        if preview:
            head, length = pl.collect_all([frame.head(PREVIEW_ROWS), frame.select(pl.len())])
            metadata.update(_eager_metadata(head, length.item()))
    elif isinstance(frame, pl.DataFrame):
        schema = frame.schema
        metadata = _eager_metadata(frame.head(PREVIEW_ROWS), frame.height)
    else:
        return {}
    metadata["dagster/column_schema"] = MetadataValue.table_schema(
        TableSchema(columns=[TableColumn(name, str(dtype)) for name, dtype in schema.items()])
    )
    return metadata


def _eager_metadata(head: pl.DataFrame, rows: int) -> dict[str, Any]:
    with pl.Config(
        tbl_rows=PREVIEW_ROWS,
        tbl_cols=12,
        fmt_str_lengths=24,
        tbl_width_chars=160,
        tbl_hide_dataframe_shape=True,
    ):
        text = str(head)
    return {
        "dagster/row_count": MetadataValue.int(rows),
        "capport/columns": MetadataValue.int(head.width),
        "capport/preview": MetadataValue.text(text),
    }
