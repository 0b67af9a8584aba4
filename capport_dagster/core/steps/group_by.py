"""(being built for issue 14)"""

from __future__ import annotations

from capport_dagster.core.steps.base import StepKind

__all__ = ["KINDS"]

KINDS: tuple[StepKind, ...] = ()
