"""`select: {new_col: EXPR}`: the output has exactly these columns, in this order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.expressions import columns_read
from capport_dagster.core.selects import (
    Findings,
    SelectItem,
    check_items,
    parse_items,
    select_exprs,
)
from capport_dagster.core.steps.base import Schema, StepKind, StepLineage, sources_of

__all__ = ["KINDS", "ItemsStep", "SelectStep"]


@dataclass(frozen=True)
class ItemsStep:
    """A step of `{alias: EXPR}` items (select, with_columns): what they read is checked alike."""

    items: tuple[SelectItem, ...]

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        return check_items(self.items, schema)

    def items_lineage(self, schema: Schema) -> StepLineage:
        """Each item's column, from the columns its expression reads in the step's input."""
        return {item.name: sources_of(columns_read(item.expr, schema)) for item in self.items}


@dataclass(frozen=True)
class SelectStep(ItemsStep):
    """`select`: the output has exactly these columns, so later steps see a known shape."""

    kind: ClassVar[str] = "select"

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.select(select_exprs(self.items))

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Exactly the items, each from what its expression reads."""
        return self.items_lineage(schema)


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> SelectStep:
    return SelectStep(parse_items(step["select"], context, found))


KINDS = (StepKind("select", ("select",), _parse),)
