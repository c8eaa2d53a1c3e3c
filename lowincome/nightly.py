"""The end of a nightly run: commit the run's work, publish, and only then call the run a success.

One function, `publish_run`, so the order that makes a publication trustworthy
lives in one place (the Dagster asset only calls it):

1. check the run's folder is complete (every feed staged, the rules' marts written);
2. under the warehouse lock: record the files the run read and their validation
   results, commit the run's folder as *the* data of its day (one atomic pointer
   replace), choose the newest committed day, build and swap in both databases;
3. record the run as `success`, after the swap (the new database already carries
   that row, so the publication and the run record agree);
4. render the validation Data Docs and the run report.

A failure in 1–2 leaves the last publication in place and the run unrecorded
as a success; the caller records it as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import duckdb
import polars as pl

from .audit import record_deliveries, record_run, record_validation
from .config import Settings
from .delivery import inventory_strays
from .errors import LowincomeError, describe_os_error, os_reason
from .feeds import FEEDS
from .freshness import FRESHNESS_FILE
from .lineage import code_version
from .locking import warehouse_lock
from .privacy import redact
from .publish import ANALYSTS_DB, mart_tables, prune_published, publish
from .run_report import prune_reports
from .store_gc import prune_store
from .rules.lifecycle import FLAG_DAY, commit_history
from .workstore import WorkStore

RUN_FILES = ([f"staging/{feed}.json" for feed in FEEDS]
             + [f"{kind}/{feed}.parquet" for kind in ("deliveries", "validation") for feed in FEEDS])
MART_FILES = [FLAG_DAY, FRESHNESS_FILE, "mart/flags.parquet", "mart/caseworker_flags.parquet"]


class PublishError(LowincomeError):
    pass


@dataclass
class Published:
    as_of: date  # the run's day
    published_as_of: date  # the newest committed day, which the analysts now see
    counts: dict[str, int]
    deliveries: pl.DataFrame
    code_version: str
    report: Path | None
    docs: Path | None
    warnings: list[str]


def _run_row(run_id: str, as_of: date, started: datetime | None, version: str) -> pl.DataFrame:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return pl.DataFrame(
        {"run_id": [run_id], "as_of": [as_of], "started_at": [started or now], "finished_at": [now],
         "status": ["success"], "code_version": [version], "message": [None]},
        schema={"run_id": pl.String, "as_of": pl.Date, "started_at": pl.Datetime("us"), "finished_at": pl.Datetime("us"),
                "status": pl.String, "code_version": pl.String, "message": pl.String},
    )


def check_complete(store: WorkStore, as_of: date) -> None:
    """Refuse to commit a run folder that lacks any file the publication reads."""
    folder = store.run_dir(as_of)
    missing = [rel for rel in RUN_FILES + MART_FILES if not (folder / rel).exists()]
    if missing:
        raise PublishError(
            f"the run's work folder {folder} is incomplete ({len(missing)} file(s) missing, e.g. {missing[0]}); "
            "nothing published, the last publication stays in place"
        )


def _record_inputs(store: WorkStore, as_of: date, run_id: str, inbox: Path) -> pl.DataFrame:
    """audit.deliveries and audit.validation_results rows of this run (history, one file per run).

    Every file of the inbox has a row: the feeds' own files, and the files no feed reads (at the inbox
    root, in unknown or hidden folders, links), with the reason they were not used.
    """
    feeds = [store.read(as_of, "deliveries", f) for f in FEEDS]
    deliveries = pl.concat([*feeds, inventory_strays(inbox, as_of)], how="diagonal_relaxed")
    record_deliveries(store, as_of, run_id, deliveries)  # each distinct listing once; the run refers to it
    validation = pl.concat([store.read(as_of, "validation", f) for f in FEEDS], how="diagonal_relaxed")
    record_validation(store, as_of, run_id, validation)  # each file's results once; the run refers to them
    return deliveries


def publish_run(store: WorkStore, settings: Settings, as_of: date, run_id: str, started: datetime | None = None,
                render_docs=None, write_report=None) -> Published:
    """Commit this run's day and publish the newest committed day; see the module docstring for the order.

    `store` is the run's own work store (WorkStore(warehouse, run_id)). `render_docs(work_root, reports_dir)`
    and `write_report(warehouse, as_of, run_id)` render the auditors' pages after the swap (injected so
    the library does not import the validation package); their failure is reported, not fatal.
    """
    version = code_version()
    try:
        check_complete(store, as_of)
        with warehouse_lock(settings.warehouse, f"run {run_id} (as of {as_of})"):
            deliveries = _record_inputs(store, as_of, run_id, settings.inbox)
            store.commit(as_of)
            commit_history(store, as_of)  # the lifecycle's per-day record outlives the run folder
            committed = store.committed()
            latest = max(committed.completed_days())
            counts = publish(committed, latest, settings.pseudonym_key, **mart_tables(committed, latest),
                             run_record=_run_row(run_id, as_of, started, version), settings=settings)
            prune_notes = _prune(committed, settings)
    except LowincomeError:
        raise
    except OSError as exc:
        raise PublishError(describe_os_error(exc, settings.warehouse, "publishing")) from None
    except duckdb.Error as exc:
        raise PublishError(f"publishing failed in DuckDB: {_one_line(exc)}; the last published databases are unchanged") from None
    except pl.exceptions.PolarsError as exc:  # the analysts' parts are written by Polars
        raise PublishError(f"publishing failed in Polars: {redact(_one_line(exc))}; the last published databases are "
                           "unchanged") from None

    warnings: list[str] = prune_notes
    try:  # the township worklists (核查清单) of the day now published: caseworkers' files, owner-only
        from .worklists import after_publication

        after_publication(settings, latest)
    except Exception as exc:  # noqa: BLE001 - the publication stands; the lists can be written again
        warnings.append(f"the township worklists could not be written: {_one_line(exc)}; the publication is in place "
                        "(lowincome worklist --county <code> --resend writes them again)")
    try:  # the publication is in place: only now is the run a success
        record_run(store, run_id, as_of, started, "success")
    except OSError as exc:  # the published audit.runs already holds the row; only the history copy is missing
        warnings.append(f"the run's success could not be added to the run history ({_one_line(exc)}); "
                        "the publication is in place")
    docs = report = None
    if render_docs is not None:
        try:
            docs = render_docs(store.root, settings.warehouse / "reports")
        except Exception as exc:  # the validation record is kept; only its rendering failed
            warnings.append(f"Data Docs could not be rendered: {_one_line(exc)}")
    if write_report is not None:
        try:
            report = write_report(settings.warehouse, as_of, run_id)
        except Exception as exc:  # the publication stands; the page can be rendered again
            warnings.append(f"the run report could not be written: {_one_line(exc)}")
    if latest != as_of:
        warnings.append(f"as-of {as_of} recorded; the analysts' database keeps showing the newer day {latest}")
    return Published(as_of, latest, counts, deliveries, version, report, docs, warnings)


def _prune(store: WorkStore, settings: Settings) -> list[str]:
    """Drop per-night artifacts older than LOWINCOME_RETENTION_DAYS; the lines it adds to the run's log.

    A failure here is a warning, not a failed run."""
    try:
        from .rules.lifecycle_history import sync

        sync(store)  # what later days need of a pruned day must be in work/history before its folder goes
        store.prune_days(settings.retention_days)
        # after the days: the entries of replaced files and older code that no retained day refers to
        entries = prune_store(store, list(FEEDS), settings.retention_days)
        prune_published(settings.warehouse, settings.retention_days * 86400)
        completed = store.completed_days()
        if completed:
            prune_reports(settings.warehouse, max(completed), settings.retention_days)
        note = entries.message()
        return [note] if note else []
    except OSError as exc:
        return [f"old per-night artifacts could not be pruned ({_one_line(exc)}); the publication is in place"]


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return os_reason(exc)  # the disk is full, permission denied, ...: the data team's words for every errno
    text = str(exc).strip()
    return redact(text.splitlines()[0]) if text else type(exc).__name__


def analysts_database(settings: Settings) -> Path:
    return settings.warehouse / ANALYSTS_DB
