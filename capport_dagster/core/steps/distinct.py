"""`distinct`: drop repeated rows, as one `LazyFrame.unique` that keeps the input's row order.

    distinct := true | false                      all columns; false: the step does nothing
              | {subset: COLUMNS, keep: first | last | none}

`keep` is Polars' own: which row of each set of repeats stays (`none`: none of them). The
default is `first`, not Polars' `any`, so the result is the same in every run mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import polars as pl

from capport_dagster.core.selects import Findings, column_list, unknown_keys
from capport_dagster.core.steps.base import (
    Schema,
    StepKind,
    StepLineage,
    identity,
    missing_columns,
)
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import did_you_mean

__all__ = ["KINDS", "DistinctStep"]

Keep = Literal["first", "last", "none"]
_KEEPS: tuple[Keep, ...] = ("first", "last", "none")


@dataclass(frozen=True)
class DistinctStep:
    """`distinct`; `subset` None compares whole rows."""

    kind: ClassVar[str] = "distinct"
    subset: tuple[str, ...] | None = None
    keep: Keep = "first"
    enabled: bool = True

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        return missing_columns(self.subset or (), schema, label="subset: ")

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        if not self.enabled:
            return frame
        subset = list(self.subset) if self.subset else None
        return frame.unique(subset=subset, keep=self.keep, maintain_order=True)

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Repeated rows go, columns stay as they are."""
        return identity(schema)


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> DistinctStep | None:
    args = step["distinct"]
    if isinstance(args, bool):
        return DistinctStep(enabled=args)
    if not isinstance(args, Mapping):
        found.errors.append(
            f"{context}: expected true, false or a mapping with subset and keep,"
            f" got {describe(args)}"
        )
        return None
    errors = len(found.errors)
    unknown_keys(args, ("subset", "keep"), context, found.errors, "distinct")
    subset = column_list(args.get("subset"), "subset", context, found.errors)
    keep = args.get("keep", "first")
    if keep not in _KEEPS:
        why = (
            " (it picks any row of the repeats: not the same in every run)" if keep == "any" else ""
        )
        found.errors.append(
            f"{context}: keep {keep!r} is not one of {', '.join(_KEEPS)}"
            f"{did_you_mean(keep, _KEEPS) if isinstance(keep, str) else ''}{why}"
        )
    if len(found.errors) > errors:
        return None
    return DistinctStep(subset or None, keep)


KINDS = (StepKind("distinct", ("distinct",), _parse),)
