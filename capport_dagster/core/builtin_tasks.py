"""The default task registry: every built-in task, and the `@task` decorator users register with.

Apart from `registry.py` so that the registry does not import the tasks that import it (the
cycle there was): each task module exports a `register_*` function and registers nothing on
import; this module, which the package's entry points and the graph's defaults import, calls
them all, in one fixed order (the file and transform tasks first).
"""

from __future__ import annotations

from capport_dagster.core.http import register_http_tasks
from capport_dagster.core.notify import register_notify_tasks
from capport_dagster.core.recon import register_recon_task
from capport_dagster.core.registry import TaskRegistry
from capport_dagster.core.sql import register_sql_tasks
from capport_dagster.core.tasks import register_builtin_tasks
from capport_dagster.core.unsupported import register_unsupported_tasks

__all__ = ["DEFAULT_REGISTRY", "task"]

#: The registry `load_definitions` uses unless given another; built-in tasks live here.
DEFAULT_REGISTRY = TaskRegistry()
for register in (
    register_builtin_tasks,
    register_http_tasks,
    register_notify_tasks,
    register_recon_task,
    register_sql_tasks,
    register_unsupported_tasks,
):
    register(DEFAULT_REGISTRY)

#: Register a task in the default registry: `@task("name", reads=..., writes=...)`.
task = DEFAULT_REGISTRY.task
