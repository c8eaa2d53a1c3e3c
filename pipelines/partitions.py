"""The nightly partition: one partition per as-of day, in the bureau's time zone."""

from dagster import DailyPartitionsDefinition

TIMEZONE = "Asia/Shanghai"

# end_offset=1 makes today's partition exist, so the inbox sensor and a manual
# `lowincome run --as-of <today>` can target it before the day is over.
daily_partitions = DailyPartitionsDefinition(start_date="2024-01-01", timezone=TIMEZONE, end_offset=1)
