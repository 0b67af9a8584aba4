"""The transform steps, a module each, and the one place a step mapping is read.

A step is a mapping with one step key (`select: ...`), plus the sibling options its kind takes
(`sql: ...` beside `sql_context: [...]`). Adding a step kind is a new module here whose
`KINDS` this package collects; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capport_dagster.core.selects import Findings
from capport_dagster.core.steps import (
    distinct,
    drop,
    fill_null,
    filters,
    group_by,
    join,
    ordering,
    rename,
    select,
    sql,
    times,
    uniform_id,
    unnest,
    with_columns,
)
from capport_dagster.core.steps.base import Schema, Step, StepKind
from capport_dagster.core.yaml_source import describe
from capport_dagster.errors import count, did_you_mean

__all__ = ["KINDS", "PLANNED_STEPS", "STEPS", "Schema", "Step", "StepKind", "parse_step"]

_MODULES = (
    select, with_columns, join, drop, sql, unnest, times, uniform_id,
    filters, ordering, distinct, group_by, rename, fill_null,
)  # fmt: skip

#: Every step kind, by each key that makes a step of it.
KINDS: Mapping[str, StepKind] = {
    key: kind for module in _MODULES for kind in module.KINDS for key in kind.keys
}
#: The step keys of the language, in the order messages list them.
STEP_KEYS: tuple[str, ...] = (
    "select", "with_columns", "join", "drop", "sql", "unnest_list", "unnest_struct",
    "unnest_list_of_struct", "time", "uniform_id_type", "filter", "sort", "limit", "head",
    "tail", "distinct", "group_by", "rename", "fill_null",
)  # fmt: skip
STEPS: tuple[str, ...] = tuple(key for key in STEP_KEYS if key in KINDS)
PLANNED_STEPS: tuple[str, ...] = tuple(key for key in STEP_KEYS if key not in KINDS)
#: Names other tools use for a step of ours.
_ALIASES = {"order": "sort", "order_by": "sort", "where": "filter", "unique": "distinct"}


def parse_step(number: int, raw: Any, found: Findings) -> Step | None:
    """Read step `number` of a transform; None after reporting each problem to `found`."""
    if not isinstance(raw, Mapping) or not raw:
        got = "an empty mapping" if isinstance(raw, Mapping) else describe(raw)
        found.errors.append(
            f"step {number}: a step is a mapping with one step key"
            f" ({', '.join(STEP_KEYS)}), got {got}"
        )
        return None
    keys = [key for key in raw if key in STEP_KEYS]
    kinds = list(dict.fromkeys(KINDS[key].name for key in keys if key in KINDS))
    if len(kinds) > 1 or (not kinds and len(keys) > 1):
        named = ", ".join(map(str, keys))
        found.errors.append(
            f"step {number}: a step has one step key, got {count(len(keys), 'key')}: {named}"
        )
        return None
    if not keys:
        first = str(next(iter(raw)))
        alias = _ALIASES.get(first)
        hint = f" - did you mean '{alias}'?" if alias else did_you_mean(first, STEP_KEYS)
        found.errors.append(
            f"step {number}: unknown step {first!r}{hint} (valid steps: {', '.join(STEP_KEYS)})"
        )
        return None
    if not kinds:
        found.errors.append(f"step {number}: step '{keys[0]}' is not supported yet (planned)")
        return None
    kind = KINDS[keys[0]]
    context = f"step {number} ({kind.name})"
    allowed = (*kind.keys, *kind.options)
    unknown = [key for key in raw if key not in allowed]
    for key in unknown:
        takes = (
            f"takes {', '.join(kind.options)} beside it" if kind.options else "takes no other key"
        )
        found.errors.append(
            f"{context}: unknown key {str(key)!r}{did_you_mean(str(key), allowed)}"
            f" (a {kind.name} step {takes})"
        )
    if unknown:
        return None
    return kind.parse(raw, context, found)
