"""A sensor that notices new or changed deliveries in the inbox and asks for a run of today."""


import hashlib
import json
from datetime import datetime
from zoneinfo import ZoneInfo

from dagster import RunFailureSensorContext, RunRequest, SensorEvaluationContext, SkipReason, run_failure_sensor, sensor

from lowincome.audit import record_run
from lowincome.delivery import SUPPORTED_EXTENSIONS
from pipelines.jobs import nightly_job
from pipelines.partitions import TIMEZONE
from pipelines.resources import LowincomeResource


def inbox_fingerprint(inbox) -> tuple[str, int]:
    """A digest of (path, size, mtime) of every delivery: cheap, and changes when a file is replaced."""
    entries = []
    for path in sorted(inbox.glob("*/*")):
        if path.is_file() and path.suffix.lower() in SUPPORTED_EXTENSIONS:
            st = path.stat()
            entries.append([str(path.relative_to(inbox)), st.st_size, int(st.st_mtime)])
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16], len(entries)


@sensor(job=nightly_job, minimum_interval_seconds=300, description="New or replaced files in the inbox → a run for today.")
def inbox_sensor(context: SensorEvaluationContext, lowincome: LowincomeResource):
    inbox = lowincome.settings().inbox
    if not inbox.is_dir():
        return SkipReason(f"inbox folder not found: {inbox}")
    digest, count = inbox_fingerprint(inbox)
    if digest == context.cursor:
        return SkipReason(f"no new deliveries ({count} files)")
    context.update_cursor(digest)
    today = datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
    # run_key: the same inbox state never triggers twice for the same day.
    return RunRequest(run_key=f"{today}:{digest}", partition_key=today)


@run_failure_sensor(monitored_jobs=[nightly_job], description="Records failed nightly runs in the audit history.")
def record_failed_runs(context: RunFailureSensorContext, lowincome: LowincomeResource):
    run = context.dagster_run
    partition = run.tags.get("dagster/partition")
    if not partition:
        return
    message = context.failure_event.message if context.failure_event else "run failed"
    record_run(lowincome.store(), run.run_id, datetime.fromisoformat(partition).date(), None, "failure", message)
