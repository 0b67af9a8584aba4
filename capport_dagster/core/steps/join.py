"""`join: {right, left_on, right_on, how, right_select?}` (the step itself: core/joins.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from capport_dagster.core.joins import JoinStep, parse_join
from capport_dagster.core.selects import Findings
from capport_dagster.core.steps.base import StepKind

__all__ = ["KINDS", "JoinStep"]


def _parse(step: Mapping[str, Any], context: str, found: Findings) -> JoinStep | None:
    return parse_join(step["join"], context, found)


KINDS = (StepKind("join", ("join",), _parse),)
