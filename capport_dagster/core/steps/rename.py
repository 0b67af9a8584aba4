"""`rename: {old: new}`: one `LazyFrame.rename`; the column keeps its place and its values.

Names are exact column names, not paths (a struct's fields are renamed with a select). All
renames happen at once, so `{a: b, b: a}` swaps two columns; a new name already taken by a
column that is not itself renamed away is an error, as is a name given twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.selects import Findings
from capport_dagster.core.steps.base import Schema, StepKind, StepLineage, missing_columns
from capport_dagster.core.yaml_source import describe

__all__ = ["KINDS", "RenameStep"]


@dataclass(frozen=True)
class RenameStep:
    """`rename`: `pairs` are (old, new) in YAML order."""

    kind: ClassVar[str] = "rename"
    pairs: tuple[tuple[str, str], ...]

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        problems = missing_columns((old for old, _ in self.pairs), schema)
        renamed = {old for old, new in self.pairs if old != new}
        kept = [name for name in schema if name not in renamed]
        for old, new in self.pairs:
            if old != new and new in kept:
                problems.append(
                    f"'{old}' cannot be renamed to '{new}': the frame already has a column"
                    f" '{new}' (drop or rename it first)"
                )
        return problems

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        return frame.rename(dict(self.pairs))

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Each column in its place under its new name, from the column of its old name (all
        renames at once, so a swap is two columns each from the other)."""
        new = dict(self.pairs)
        return {new.get(name, name): ((None, name),) for name in schema}


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> RenameStep | None:
    args = step["rename"]
    if not isinstance(args, Mapping) or not args:
        got = "an empty mapping" if isinstance(args, Mapping) else describe(args)
        found.errors.append(f"{context}: expected a mapping of old name -> new name, got {got}")
        return None
    errors = len(found.errors)
    pairs: list[tuple[str, str]] = []
    for old, new in args.items():
        if not isinstance(new, str) or not new:
            got = "an empty string" if new == "" else describe(new)
            quote = f" (quote it: '{new}')" if isinstance(new, (int, float)) else ""
            found.errors.append(
                f"{context}: column '{old}': the new name must be a non-empty string,"
                f" got {got}{quote}"
            )
            continue
        pairs.append((str(old), new))
    for new, times in Counter(new for _, new in pairs).items():
        if times > 1:
            olds = ", ".join(f"'{old}'" for old, name in pairs if name == new)
            found.errors.append(f"{context}: {olds} are all renamed to '{new}'; give each its own")
    if len(found.errors) > errors:
        return None
    return RenameStep(tuple(pairs))


KINDS = (StepKind("rename", ("rename",), _parse),)
