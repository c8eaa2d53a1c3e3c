"""A sensor that notices new or changed deliveries in the inbox and, once they have settled, asks for a run of today.

Departments copy files onto a share: a large roster is visible long before
it is complete. A run started on a half-copied file would read a truncated
snapshot, so the sensor asks for a run only when nothing in the inbox has
changed (names, sizes, modification times) for a settle period
(`Settings.settle_seconds`, LOWINCOME_SETTLE_SECONDS, default 120 s).

The cursor is JSON: the digest of the inbox state last seen, when that state
was first seen, and the digest a run was last requested for, so a state asks
for one run only and a restart of the daemon keeps the clock.
"""


import hashlib
import json
import os
import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from dagster import RunFailureSensorContext, RunRequest, SensorEvaluationContext, SkipReason, run_failure_sensor, sensor

from lowincome.audit import record_run
from lowincome.errors import LowincomeError
from pipelines.jobs import nightly_job
from pipelines.partitions import TIMEZONE
from pipelines.resources import LowincomeResource

DEFAULT_SETTLE_SECONDS = 120
_clock = time.time  # the tests drive the sensor with their own clock


def inbox_fingerprint(inbox: Path) -> tuple[str, int]:
    """A digest of (path, size, mtime) of every entry under the inbox, and how many there are.

    Every entry counts, not only well-named deliveries: a copy tool's temporary file, a file in a
    subfolder or a link are part of "the inbox is still changing". Links are not followed.
    """
    entries = []
    for dirpath, dirnames, filenames in os.walk(inbox):
        here = Path(dirpath)
        for name in filenames + [d for d in dirnames if (here / d).is_symlink()]:
            path = here / name
            try:
                st = path.lstat()
            except OSError:  # removed while we looked: the next evaluation sees the new state
                continue
            entries.append([path.relative_to(inbox).as_posix(), st.st_size, st.st_mtime_ns])
    entries.sort()
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16], len(entries)


def _load_cursor(cursor: str | None) -> dict:
    """The cursor's state; a cursor of an older version (a bare digest) is the digest last requested."""
    state = {"digest": None, "first_seen_at": None, "requested_digest": None}
    if cursor:
        try:
            loaded = json.loads(cursor)
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            state.update({k: loaded.get(k) for k in state})
        else:
            state["requested_digest"] = cursor
    return state


@sensor(job=nightly_job, minimum_interval_seconds=60,
        description="New or replaced files in the inbox, unchanged for the settle period → a run for today.")
def inbox_sensor(context: SensorEvaluationContext, lowincome: LowincomeResource):
    try:
        settings = lowincome.settings()
    except LowincomeError as exc:
        return SkipReason(f"configuration error, not watching the inbox: {exc}")
    inbox = settings.inbox
    settle = float(getattr(settings, "settle_seconds", DEFAULT_SETTLE_SECONDS))
    if not inbox.is_dir():
        return SkipReason(f"inbox folder not found: {inbox}")
    now = _clock()
    digest, count = inbox_fingerprint(inbox)
    state = _load_cursor(context.cursor)
    if digest != state["digest"] or not isinstance(state["first_seen_at"], (int, float)):
        state["digest"], state["first_seen_at"] = digest, now
    context.update_cursor(json.dumps(state))
    if count == 0:
        return SkipReason(f"inbox {inbox} holds no files: waiting for deliveries")
    if digest == state["requested_digest"]:
        return SkipReason(f"no new deliveries ({count} file(s), unchanged since the last run request)")
    waited = now - state["first_seen_at"]
    if waited < settle:
        return SkipReason(
            f"inbox changed {max(waited, 0):.0f} s ago ({count} file(s)): waiting until no file has changed in size "
            f"or modification time for {settle:.0f} s ({settle - waited:.0f} s to go) before asking for a run"
        )
    state["requested_digest"] = digest
    context.update_cursor(json.dumps(state))
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
