"""Nightly at 02:00 Asia/Shanghai, for the day that just ended."""

from dagster import build_schedule_from_partitioned_job

from pipelines.jobs import nightly_job

nightly_schedule = build_schedule_from_partitioned_job(
    nightly_job,
    name="nightly_0200",
    hour_of_day=2,
    minute_of_hour=0,
    description="Runs the nightly job at 02:00 Asia/Shanghai for the previous day's partition.",
)
