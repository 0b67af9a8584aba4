"""`with_columns: {alias: EXPR}`: add or replace columns, keeping every other one.

As capport (one Polars `with_columns`): a column the frame has is replaced where it stands, a
new one is appended, in the mapping's order (capport's order is a HashMap's; YAML order is the
deterministic one). Every expression reads the step's input, not a column another entry of the
same step makes: `{a: b, c: a}` gives `c` the input's `a` (chain steps for that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.selects import Findings, parse_items, select_exprs
from capport_dagster.core.steps.base import Schema, StepKind, StepLineage, identity
from capport_dagster.core.steps.select import ItemsStep

__all__ = ["KINDS", "WithColumnsStep"]


@dataclass(frozen=True)
class WithColumnsStep(ItemsStep):
    """`with_columns`: a select that keeps the columns it does not name."""

    kind: ClassVar[str] = "with_columns"

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.with_columns(select_exprs(self.items))

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """The input's columns as they are, each item replacing its column where it stands or
        appended; every item reads the step's input."""
        return identity(schema) | self.items_lineage(schema)


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> WithColumnsStep:
    return WithColumnsStep(parse_items(step["with_columns"], context, found))


KINDS = (StepKind("with_columns", ("with_columns",), _parse),)
