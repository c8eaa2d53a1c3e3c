"""The Celery application of the lowincome workers: `celery -A pipelines.celery_app worker`.

dagster-celery's own `dagster_celery.app` reads its broker from a per-instance config file; this one
reads LOWINCOME_CELERY_BROKER, like the executor that sends the tasks (pipelines/celery_definitions.py),
so a worker and the runs it serves cannot disagree on where the queue is. The queue (`dagster`), the
task names and the one-task-at-a-time prefetch are dagster-celery's.

A worker runs each step it takes in its own process, from the job it loads by name
(pipelines.executors.celery_nightly_job), with the LOWINCOME_* settings of its own environment: every
worker must see the same inbox, warehouse and policy paths as the machine that starts the run.
"""

from dagster_celery.config import DEFAULT_CONFIG, dict_wrapper
from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from pipelines.celery_definitions import _broker
from pipelines.executors import celery_backend

_BROKER = _broker()
app = make_app({"broker": _BROKER, "backend": celery_backend(_BROKER), "include": [],
                "config_source": dict_wrapper(dict(DEFAULT_CONFIG))})
execute_plan = create_task(app)
