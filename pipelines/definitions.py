"""The one place that assembles the code location."""

from dagster import Definitions, ExecutorDefinition

from assets.ingest import ingest_assets
from assets.rules import flags
from assets.publish import analysts_parts, published_warehouse
from checks.freshness import freshness_checks
from pipelines.jobs import nightly_job
from pipelines.resources import LowincomeResource, WarehouseIOManager
from pipelines.run_logging import concise_console_logger
from pipelines.schedules import nightly_schedule
from pipelines.sensors import inbox_sensor, record_failed_runs


def build_definitions(executor: ExecutorDefinition | None = None) -> Definitions:
    """The code location, with Dagster's default executor (in-process, or multiprocess by run config) unless
    `executor` is given: the Celery code location (pipelines/celery_definitions.py) and the Kubernetes
    example (deploy/k8s/definitions.py) are the same assets, jobs, schedules and sensors on another executor."""
    return Definitions(
        assets=[*ingest_assets, flags, analysts_parts, published_warehouse],
        asset_checks=freshness_checks,
        jobs=[nightly_job],
        schedules=[nightly_schedule],
        sensors=[inbox_sensor, record_failed_runs],
        # Steps hand over small values (a feed's plan, each county's file results) through the warehouse,
        # the folder every machine shares, not through the instance's local storage.
        resources={"lowincome": LowincomeResource(), "io_manager": WarehouseIOManager()},
        # Every job's default logger: one line per message on the terminal, the full record in the log file.
        loggers={"console": concise_console_logger},
        executor=executor,
    )


defs = build_definitions()
