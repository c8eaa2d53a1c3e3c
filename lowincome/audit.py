"""Run records for auditors: every run, successful or not, leaves one row in the run history.

Successful runs are recorded by the publish step; failed runs by the command
line or by the failure sensor. The next publication carries them all in
`audit.runs`, so "was the data sound, and what happened that night" has an answer.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timezone

import polars as pl

from .lineage import code_version
from .privacy import redact
from .workstore import WorkStore


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def record_run(store: WorkStore, run_id: str, as_of: date, started_at: datetime | None, status: str,
               message: str | None = None) -> bool:
    """Add one row to the run history; returns whether it was recorded.

    Recording a failure must not fail in turn: on a full or read-only disk it returns False (the
    caller says, in its one line, that the failure could not be recorded, and the full error goes
    to the log file). A success that cannot be recorded still raises: the publishing step must not
    go ahead without its audit row.
    """
    row = pl.DataFrame(
        {"run_id": [run_id], "as_of": [as_of], "started_at": [started_at or _now()], "finished_at": [_now()],
         "status": [status], "code_version": [code_version()], "message": [redact(message) if message else None]},
        schema={"run_id": pl.String, "as_of": pl.Date, "started_at": pl.Datetime("us"), "finished_at": pl.Datetime("us"),
                "status": pl.String, "code_version": pl.String, "message": pl.String},
    )
    try:
        store.write_history("runs", f"{as_of.isoformat()}_{run_id}", row)
    except Exception:  # noqa: BLE001 - a full disk surfaces as OSError or as a Polars I/O error
        if status == "success":
            raise
        logging.getLogger(__name__).warning("could not record run %s (%s, %s) in the run history", run_id, as_of,
                                            status, exc_info=True)
        return False
    return True
