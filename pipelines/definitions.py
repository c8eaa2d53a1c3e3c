"""The one place that assembles the code location."""

from dagster import Definitions

from assets.ingest import ingest_assets
from assets.rules import flags
from assets.publish import published_warehouse
from checks.freshness import freshness_checks
from pipelines.jobs import nightly_job
from pipelines.resources import LowincomeResource
from pipelines.run_logging import concise_console_logger
from pipelines.schedules import nightly_schedule
from pipelines.sensors import inbox_sensor, record_failed_runs

defs = Definitions(
    assets=[*ingest_assets, flags, published_warehouse],
    asset_checks=freshness_checks,
    jobs=[nightly_job],
    schedules=[nightly_schedule],
    sensors=[inbox_sensor, record_failed_runs],
    resources={"lowincome": LowincomeResource()},
    # Every job's default logger: one line per message on the terminal, the full record in the log file.
    loggers={"console": concise_console_logger},
)
