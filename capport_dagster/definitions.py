"""The Dagster code location: `defs` for the config directory in `$CAPPORT_CONFIG_DIR`.

`dagster dev`, `dagster job execute -m capport_dagster.definitions -j PIPELINE` and the daemon
load this module (see `workspace.yaml` and `[tool.dagster]` in `pyproject.toml`). The directory
defaults to `config/` under the working directory; `$CAPPORT_TASK_MODULES` (comma-separated)
names modules to import first, so that a user's own tasks are registered; `$CAPPORT_PIPELINES`
(comma-separated) loads only those pipelines: an invalid config fails the whole code location
(one `ValidationError` listing every problem), and this keeps the others running meanwhile.
"""

from __future__ import annotations

import os

from capport_dagster.core.registry import import_task_modules
from capport_dagster.translate.build import load_definitions

import_task_modules(
    (m.strip() for m in os.environ.get("CAPPORT_TASK_MODULES", "").split(",") if m.strip()),
    given_as="$CAPPORT_TASK_MODULES module '{}'",
)

_SELECTED = [p.strip() for p in os.environ.get("CAPPORT_PIPELINES", "").split(",") if p.strip()]

defs = load_definitions(os.environ.get("CAPPORT_CONFIG_DIR", "config"), pipelines=_SELECTED or None)
