"""The 02:00 schedule runs for the day that just ended, not the day that has just begun.

The partitions have end_offset=1 (today's partition exists), so a schedule that takes the newest
partition ran for the wrong day; the expected day here is written by hand.
"""

from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest
from dagster import DagsterInstance, build_schedule_context

from pipelines.definitions import defs
from pipelines.schedules import nightly_schedule


@pytest.mark.parametrize(("tick", "expected"), [
    (datetime(2026, 11, 29, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai")), "2026-11-28"),
    (datetime(2026, 11, 28, 18, 0, tzinfo=timezone.utc), "2026-11-28"),  # the same tick, in UTC
    (datetime(2027, 1, 1, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai")), "2026-12-31"),
    (datetime(2028, 3, 1, 2, 0, tzinfo=ZoneInfo("Asia/Shanghai")), "2028-02-29"),
])
def test_tick_runs_the_previous_day(tick, expected):
    with DagsterInstance.ephemeral() as instance:
        data = nightly_schedule.evaluate_tick(build_schedule_context(
            instance=instance, scheduled_execution_time=tick, repository_def=defs.get_repository_def()))
    assert [r.partition_key for r in data.run_requests] == [expected]
    assert [r.run_key for r in data.run_requests] == [expected]
