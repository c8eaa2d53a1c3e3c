"""The nightly job: every asset for one as-of day."""

from dagster import AssetSelection, define_asset_job

from pipelines.partitions import daily_partitions

NIGHTLY_JOB_NAME = "nightly"

nightly_job = define_asset_job(
    NIGHTLY_JOB_NAME,
    selection=AssetSelection.all(),
    partitions_def=daily_partitions,
    description="Ingest every feed, validate, flag and publish, as of the partition day.",
    # Transient failures (a file still being copied, a briefly locked file, a dead run process or worker
    # machine) get two more tries, each running every step: a retry "from failure" of a run whose process
    # died failed at once, its handed-out steps being neither done nor failed (README, "Tried on two
    # machines"); the steps that had finished cost little the second time (parsed files, rules' result).
    # The lowincome/warehouse tag is limited to one run at a time by deploy/dagster.yaml's run queue.
    # Naming the `console` logger in the default run config is what makes Dagster use the code location's
    # concise logger (pipelines/run_logging.py) for schedule, sensor and launchpad runs: without it Dagster
    # 1.13 falls back to its own console logger, tracebacks and all.
    config={"loggers": {"console": {"config": {"log_level": "INFO"}}}},
    tags={"dagster/max_retries": "2", "dagster/retry_strategy": "ALL_STEPS", "lowincome/warehouse": "writer"},
)
