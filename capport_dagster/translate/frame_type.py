"""The Dagster type of capport's frames: what an op's inputs and outputs are in the UI.

A stage passes a Polars `LazyFrame` (a plan, in lazy modes) or `DataFrame` (eager modes, and
frames a later stage overwrites the files of); the runtime already refuses anything else at the
stage (`core/runtime.py`). The type names that in the UI instead of `Any`, and its check is one
`isinstance`. The columns are in each output's `dagster/column_schema` (`metadata.py`).
"""

from __future__ import annotations

import polars as pl
from dagster import PythonObjectDagsterType

__all__ = ["PolarsFrame"]

PolarsFrame = PythonObjectDagsterType(
    python_type=(pl.LazyFrame, pl.DataFrame),
    name="PolarsFrame",
    description=(
        "A Polars frame: a LazyFrame in capport's lazy modes, a DataFrame in the eager ones."
        " Its columns and dtypes are in the output's column schema."
    ),
)
