"""Run records for auditors: every run, successful or not, leaves one row in the run history.

Successful runs are recorded by the publish step; failed runs by the command
line or by the failure sensor. The next publication carries them all in
`audit.runs`, so "was the data sound, and what happened that night" has an answer.
"""

from __future__ import annotations

import hashlib
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


# ---- validation results: each file's results once, each run a reference ----------------------------
#
# `audit.validation_results` answers "what did we know on night D, and was the data sound": every
# expectation of every file in use, for every run. Written out in full, a night with nothing new
# repeated every earlier night's rows (18 KB a night in history at scale 2, more in lowincome.duckdb).
# The history now keeps each file's results once, keyed by their content, each distinct set of files
# in use once, and per run a single row naming its set; the view `audit.validation_results` joins them
# back into the same rows as before.

VALIDATION_RESULTS = "validation_results"  # history: rows of each distinct file result, with result_id
VALIDATION_SETS = "validation_sets"  # history: <set_id>.parquet, the result_ids in use together
VALIDATION_RUNS = "validation_runs"  # history: <as_of>_<run_id>.parquet, one row (run_id, as_of, set_id)
LEGACY_VALIDATION = "validation"  # history before: every run's rows in full (migrated when next recorded)

# What names one validated file's results within a run (checks.record.validate_files adds these).
_FILE_KEY = ("feed", "file_name", "sha256", "extracted_on", "county", "previous_rows")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _result_id(rows: pl.DataFrame) -> str:
    """A file's results named by their content: the same file validated the same way gets the same id."""
    return _digest(rows.write_ndjson())


def _known_ids(store: WorkStore, kind: str, column: str) -> set[str]:
    """The content names already stored under `history/<kind>/` (results or listings kept once each)."""
    glob = store.history_glob(kind)
    if glob is None:
        return set()
    return set(pl.scan_parquet(glob, missing_columns="insert", extra_columns="ignore")
               .select(column).unique().collect()[column].to_list())


def _migrate(store: WorkStore, legacy: str, record) -> int:
    """Turn per-run history files of `legacy` into the stored-once layout via `record`; returns how many files.

    Each old file is recorded as its run(s) would be now, and removed only after its run rows are
    written: an interrupted migration is finished by the next call and records nothing twice (the
    names are the same). Call under the warehouse lock, like every history writer.
    """
    folder = store.history_dir(legacy)
    if not folder.is_dir():
        return 0
    done = 0
    for path in sorted(folder.glob("*.parquet")):
        frame = pl.read_parquet(path)
        for (run_id, as_of), rows in frame.group_by(["run_id", "as_of"], maintain_order=True):
            record(store, as_of, run_id, rows.drop("run_id", "as_of"))
        path.unlink()
        done += 1
    if not any(folder.iterdir()):
        folder.rmdir()
    return done


def record_validation(store: WorkStore, as_of: date, run_id: str, validation: pl.DataFrame) -> str | None:
    """Record the run's validation results (every file in use); returns the run's set id (None: no rows).

    Writes, all atomically and named by content or by run so that repeating it changes nothing:
    the results of files not recorded before (one file per run that has any), the set of files in use
    when it is new, and the run's own row last. A night with nothing new adds only that row.
    """
    migrate_validation_history(store)
    return _record_validation(store, as_of, run_id, validation)


def _record_validation(store: WorkStore, as_of: date, run_id: str, validation: pl.DataFrame) -> str | None:
    if validation.height == 0:
        return None
    keys = [c for c in _FILE_KEY if c in validation.columns]
    known = _known_ids(store, VALIDATION_RESULTS, "result_id")
    ids: list[str] = []
    new: list[pl.DataFrame] = []
    for rows in validation.partition_by(keys, maintain_order=True):
        rid = _result_id(rows)
        ids.append(rid)
        if rid not in known:
            known.add(rid)
            new.append(rows.select(pl.lit(rid).alias("result_id"), pl.all()))
    if new:
        store.write_history(VALIDATION_RESULTS, f"{as_of.isoformat()}_{run_id}", pl.concat(new, how="diagonal_relaxed"))
    ids = sorted(set(ids))
    set_id = _digest("\n".join(ids))
    if not (store.history_dir(VALIDATION_SETS) / f"{set_id}.parquet").exists():
        store.write_history(VALIDATION_SETS, set_id, pl.DataFrame({"set_id": [set_id] * len(ids), "result_id": ids},
                                                                  schema={"set_id": pl.String, "result_id": pl.String}))
    store.write_history(VALIDATION_RUNS, f"{as_of.isoformat()}_{run_id}",
                        pl.DataFrame({"run_id": [run_id], "as_of": [as_of], "set_id": [set_id]},
                                     schema={"run_id": pl.String, "as_of": pl.Date, "set_id": pl.String}))
    return set_id


def migrate_validation_history(store: WorkStore) -> int:
    """Turn per-run files of full rows (`history/validation/`, before) into the shared layout (`_migrate`)."""
    return _migrate(store, LEGACY_VALIDATION, _record_validation)


_EMPTY = {
    "audit.validation_file_results": "SELECT NULL::VARCHAR result_id, NULL::VARCHAR feed, NULL::VARCHAR file_name, "
                                     "NULL::VARCHAR expectation, NULL::BOOLEAN success, NULL::VARCHAR observed_value, "
                                     "NULL::BIGINT unexpected_count WHERE false",
    "audit.validation_sets": "SELECT NULL::VARCHAR set_id, NULL::VARCHAR result_id WHERE false",
    "audit.validation_runs": "SELECT NULL::VARCHAR run_id, NULL::DATE as_of, NULL::VARCHAR set_id WHERE false",
}
_KINDS = {"audit.validation_file_results": VALIDATION_RESULTS, "audit.validation_sets": VALIDATION_SETS,
          "audit.validation_runs": VALIDATION_RUNS}


def load_validation(con, store: WorkStore) -> None:
    """Create `audit.validation_results` (a view, same rows and columns as before) and the tables behind it.

    `audit.validation_file_results` holds each file's results once, `audit.validation_sets` which
    results were in use together, `audit.validation_runs` which set each run used. Run history older
    than this layout is migrated first (`migrate_validation_history`).
    """
    migrate_validation_history(store)
    for table, kind in _KINDS.items():
        glob = store.history_glob(kind)
        if glob:
            con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet($g, union_by_name = true)", {"g": glob})
        else:
            con.execute(f"CREATE TABLE {table} AS {_EMPTY[table]}")
    con.execute(
        """CREATE VIEW audit.validation_results AS
           SELECT r.run_id, r.as_of, f.* EXCLUDE (result_id)
           FROM audit.validation_runs r
           JOIN audit.validation_sets s ON s.set_id = r.set_id
           JOIN audit.validation_file_results f ON f.result_id = s.result_id"""
    )


# ---- deliveries: each distinct listing of the inbox once, each run a reference -------------------------
#
# `audit.deliveries` lists, for every run, every file of the inbox with what became of it. Written out in
# full, a night with nothing new repeated the whole listing (10.5 KB a night in history at scale 2). The
# history now keeps each distinct listing once, named by its content, and per run one row naming it; the
# view `audit.deliveries` joins them back into the same rows and columns as before.

DELIVERY_LISTS = "delivery_lists"  # history: <as_of>_<run_id>.parquet of the first run with that listing, with list_id
DELIVERY_RUNS = "delivery_runs"  # history: <as_of>_<run_id>.parquet, one row (run_id, as_of, list_id)
LEGACY_DELIVERIES = "deliveries"  # history before: every run's listing in full (migrated when next recorded)

_DELIVERIES_EMPTY = ("SELECT NULL::VARCHAR run_id, NULL::DATE as_of, NULL::VARCHAR feed, NULL::VARCHAR file_name, "
                     "NULL::VARCHAR sha256, NULL::BIGINT rows_read, NULL::BIGINT rows_accepted, "
                     "NULL::BIGINT rows_quarantined WHERE false")


def record_deliveries(store: WorkStore, as_of: date, run_id: str, deliveries: pl.DataFrame) -> str:
    """Record the run's listing of the inbox (`audit.deliveries` rows without run and day); returns its list id.

    The listing is written only when no earlier run had the same one (the same files, statuses, counts
    and columns), under the name of this run; the run's own row is written last. Repeating it changes
    nothing (every name is the run's or the content's).
    """
    migrate_delivery_history(store)
    return _record_deliveries(store, as_of, run_id, deliveries)


def _record_deliveries(store: WorkStore, as_of: date, run_id: str, deliveries: pl.DataFrame) -> str:
    schema = ",".join(f"{name}:{dtype}" for name, dtype in deliveries.schema.items())
    list_id = _digest(schema + "\n" + deliveries.write_ndjson())  # an empty listing keeps its columns too
    name = f"{as_of.isoformat()}_{run_id}"
    if list_id not in _known_ids(store, DELIVERY_LISTS, "list_id"):
        store.write_history(DELIVERY_LISTS, name, deliveries.select(pl.lit(list_id).alias("list_id"), pl.all()))
    store.write_history(DELIVERY_RUNS, name, pl.DataFrame({"run_id": [run_id], "as_of": [as_of], "list_id": [list_id]},
                                                          schema={"run_id": pl.String, "as_of": pl.Date,
                                                                  "list_id": pl.String}))
    return list_id


def migrate_delivery_history(store: WorkStore) -> int:
    """Turn per-run listings (`history/deliveries/`, before) into the shared layout (`_migrate`)."""
    return _migrate(store, LEGACY_DELIVERIES, _record_deliveries)


def load_deliveries(con, store: WorkStore) -> None:
    """Create the table `audit.deliveries`: the same rows and columns as when every run's listing was kept whole.

    Materialised from the history's listings and run rows (a join), so the analysts' database has the
    same tables as before; only `work/history/` stores each listing once. Run history older than this
    layout is migrated first (`migrate_delivery_history`).
    """
    migrate_delivery_history(store)
    lists, runs = store.history_glob(DELIVERY_LISTS), store.history_glob(DELIVERY_RUNS)
    if lists is None or runs is None:
        con.execute(f"CREATE TABLE audit.deliveries AS {_DELIVERIES_EMPTY}")
        return
    con.execute(
        """CREATE TABLE audit.deliveries AS
           SELECT r.run_id, r.as_of, l.* EXCLUDE (list_id, file_row_number)
           FROM read_parquet($runs, union_by_name = true) r
           JOIN read_parquet($lists, union_by_name = true, file_row_number = true) l ON l.list_id = r.list_id
           ORDER BY r.as_of, r.run_id, l.file_row_number""",
        {"runs": runs, "lists": lists},
    )
