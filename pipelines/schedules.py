"""Nightly at 02:00 Asia/Shanghai, for the day that just ended.

`build_schedule_from_partitioned_job` asks for the newest partition at the tick; the daily partitions
have `end_offset=1` (so that today's partition exists for the sensor and a manual run), which makes
the newest partition at 02:00 the day that has only just begun. The schedule therefore names its
partition itself: the calendar day before the tick, in the bureau's time zone. The run key is the day,
so a tick evaluated twice asks for one run.
"""

from datetime import timedelta
from zoneinfo import ZoneInfo

from dagster import RunRequest, ScheduleEvaluationContext, schedule

from pipelines.jobs import nightly_job
from pipelines.partitions import TIMEZONE


def day_before(context: ScheduleEvaluationContext) -> str:
    """The as-of day a tick runs for: the day that ended before the tick, in Asia/Shanghai."""
    return (context.scheduled_execution_time.astimezone(ZoneInfo(TIMEZONE)).date() - timedelta(days=1)).isoformat()


@schedule(
    job=nightly_job,
    name="nightly_0200",
    cron_schedule="0 2 * * *",
    execution_timezone=TIMEZONE,
    description="Runs the nightly job at 02:00 Asia/Shanghai for the previous day's partition (前一日).",
)
def nightly_schedule(context: ScheduleEvaluationContext) -> RunRequest:
    day = day_before(context)
    return RunRequest(run_key=day, partition_key=day)
