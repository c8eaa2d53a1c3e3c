"""The code location on Celery: the same assets, job, schedule and sensors, every step a Celery task.

Load this module instead of pipelines.definitions (deploy/workspace-celery.yaml, or
`dagster definitions validate -m pipelines.celery_definitions`) where the steps are to run on Celery
workers, on this machine or others sharing the warehouse folder. The broker is LOWINCOME_CELERY_BROKER,
the same setting the workers read (pipelines/celery_app.py); without it this code location refuses to
load with one line saying so, rather than sending tasks to a default broker no worker listens to.
"""

from dagster_celery import celery_executor

from lowincome.config import load_settings
from lowincome.errors import ConfigError
from pipelines.definitions import build_definitions
from pipelines.executors import celery_executor_config


def _broker() -> str:
    broker = load_settings().celery_broker
    if not broker:
        raise ConfigError("LOWINCOME_CELERY_BROKER is not set: the Celery code location needs the broker's URL "
                          "(e.g. redis://broker-host:6379/0), the same one its workers listen to")
    return broker


def build_celery_definitions():
    """The code location on the broker LOWINCOME_CELERY_BROKER names now (read at each call)."""
    return build_definitions(executor=celery_executor.configured(celery_executor_config(_broker()), name="celery"))


defs = build_celery_definitions()
