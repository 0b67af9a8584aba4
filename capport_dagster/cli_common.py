"""What the `capport` commands share: exit codes, defaults, how warnings print.

Its own module so that `cli` (the parser) and `cli_run` (the run), which `cli` imports only when a
run is asked for, do not import each other.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from capport_dagster.errors import Problem

__all__ = ["DEFAULT_OUTPUT", "EXIT_INVALID", "EXIT_OK", "EXIT_RUN_FAILED", "print_warnings"]

EXIT_OK, EXIT_RUN_FAILED, EXIT_INVALID = 0, 1, 2
DEFAULT_OUTPUT = Path("output")


def print_warnings(warnings: Sequence[Problem]) -> None:
    for warning in warnings:
        print(warning, file=sys.stderr)
