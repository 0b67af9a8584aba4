"""The Celery app of capport's workers: `celery -A capport_dagster.celery_worker worker`.

dagster-celery's own app module reads its broker from a `dagster_celery_config` module on the
path; this one reads it as the launching process does (`$CAPPORT_CELERY_BROKER`,
`$CAPPORT_CELERY_BACKEND`, see `translate/celery.py`), so a worker needs only the environment.
It consumes the queues its command line names (`-Q`), else dagster-celery's `dagster`: give it
the queue the runs use (`$CAPPORT_CELERY_QUEUE`, else `dagster`).
`deploy/start-worker.sh` starts one with the settings docs/deploy.md explains.
"""

from __future__ import annotations

from dagster_celery.executor import CeleryExecutor
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from capport_dagster.translate.celery import broker_and_backend, queue_name

__all__ = ["app", "execute_plan"]

app = make_app(
    CeleryExecutor.for_cli(
        *broker_and_backend(), config_source={"task_default_queue": queue_name()}
    ).app_args()
)

#: The task dagster-celery's executor submits each step as.
execute_plan = create_task(app)
