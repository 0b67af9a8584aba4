"""`drop: {col: true|false}`: remove the columns flagged true (or null)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.selects import Findings
from capport_dagster.core.steps.base import Schema, StepKind, StepLineage, identity
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import did_you_mean

__all__ = ["KINDS", "DropStep"]


@dataclass(frozen=True)
class DropStep:
    """`drop`: only the columns flagged to drop; those flagged to keep need no work."""

    kind: ClassVar[str] = "drop"
    columns: tuple[str, ...]

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        missing = [name for name in dict.fromkeys(self.columns) if name not in schema]
        if not missing:
            return []
        columns = ", ".join(schema) or "none"
        if len(missing) > 1:
            names = ", ".join(f"'{name}'" for name in missing)
            return [f"columns {names} not found (columns: {columns})"]
        hint = did_you_mean(missing[0], schema)
        return [f"column '{missing[0]}' not found{hint} (columns: {columns})"]

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.drop(list(self.columns)) if self.columns else frame

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """The columns not dropped, each from itself."""
        dropped = set(self.columns)
        return {name: sources for name, sources in identity(schema).items() if name not in dropped}


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> DropStep:
    args = step["drop"]
    messages = found.errors
    if not isinstance(args, Mapping) or not args:
        got = "an empty mapping" if isinstance(args, Mapping) else describe(args)
        messages.append(f"{context}: expected a mapping of column -> true/false, got {got}")
        return DropStep(())
    dropped: list[str] = []
    for key, value in args.items():
        flag = value.lower() if isinstance(value, str) else value
        if flag is None or flag is True or flag == "true":
            dropped.append(str(key))
        elif not (flag is False or flag == "false"):
            messages.append(
                f"{context}: column '{key}': {value!r} is not a drop flag"
                " (true or null drops the column, false keeps it)"
            )
    return DropStep(tuple(dropped))


KINDS = (StepKind("drop", ("drop",), _parse),)
