"""The nightly job: every asset for one as-of day."""

from dagster import AssetSelection, define_asset_job

from pipelines.partitions import daily_partitions

NIGHTLY_JOB_NAME = "nightly"

nightly_job = define_asset_job(
    NIGHTLY_JOB_NAME,
    selection=AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Ingest every feed, validate, flag and publish, as of the partition day.",
    # Transient failures (a file still being copied, a briefly locked file) get two more tries.
    # The lowincome/warehouse tag is limited to one run at a time by deploy/dagster.yaml's run queue.
    # Naming the `console` logger in the default run config is what makes Dagster use the code location's
    # concise logger (pipelines/run_logging.py) for schedule, sensor and launchpad runs: without it Dagster
    # 1.13 falls back to its own console logger, tracebacks and all.
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    tags={"dagster/max_retries": "2", "dagster/retry_strategy": "FROM_FAILURE", "lowincome/warehouse": "writer"},
)
