"""`uniform_id_type: {include: [COLUMN, ...], into: DTYPE}`: give id columns one dtype.

As capport: each included column is cast to `into` (a model dtype name, default `uint64`),
non-strictly, so a value that does not convert (`"abc"`, `-1` to uint64) becomes null rather
than failing the run: ids from several sources are made joinable, and a bad id matches nothing.
A cast Polars cannot do at all (a list or struct to a number) is refused when the step is
checked, since it would fail for every row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from capport_dagster.core.models import DTYPES
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

__all__ = ["KINDS", "UniformIdStep"]

_KEYS = ("include", "into")
_NESTED = (pl.List, pl.Array, pl.Struct)


@dataclass(frozen=True)
class UniformIdStep:
    """`uniform_id_type`: a non-strict cast of the included columns."""

    kind: ClassVar[str] = "uniform_id_type"
    include: tuple[str, ...]
    into: str = "uint64"

    def reads(self) -> tuple[str, ...]:
        return ()

    def check(self, schema: Schema, frames: Mapping[str, pl.LazyFrame]) -> list[str]:
        problems = missing_columns(self.include, schema)
        target = DTYPES[self.into]
        for name in dict.fromkeys(self.include):
            dtype = schema.get(name)
            if dtype is not None and isinstance(dtype, _NESTED) != isinstance(target, _NESTED):
                problems.append(f"column '{name}' is {dtype}, which cannot be cast to {self.into}")
        return problems

    def apply(self, frame: pl.LazyFrame, frames: Mapping[str, pl.LazyFrame]) -> pl.LazyFrame:
        target = DTYPES[self.into]
        names = dict.fromkeys(self.include)  # a column listed twice is cast once
        return frame.with_columns(pl.col(name).cast(target, strict=False) for name in names)

    def lineage(self, schema: Schema, frames: Mapping[str, Schema]) -> StepLineage:
        """Each included column is cast in place, from its own values."""
        return identity(schema)


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> UniformIdStep | None:
    args = step["uniform_id_type"]
    messages = found.errors
    if not isinstance(args, Mapping):
        messages.append(
            f"{context}: expected a mapping with include (the columns) and into (a dtype,"
            f" default uint64), got {describe(args)}"
        )
        return None
    errors = len(messages)
    unknown_keys(args, _KEYS, context, messages, "uniform_id_type")
    include = column_list(args.get("include"), "include", context, messages, required=True)
    into = args.get("into")
    if into is None:
        into = "uint64"
    elif not isinstance(into, str) or into not in DTYPES:
        hint = did_you_mean(into, DTYPES) if isinstance(into, str) else ""
        messages.append(
            f"{context}: into: unknown dtype {into!r}{hint} (valid dtypes: {', '.join(DTYPES)})"
        )
    if len(messages) > errors or include is None:
        return None
    return UniformIdStep(include, into)


KINDS = (StepKind("uniform_id_type", ("uniform_id_type",), _parse),)
