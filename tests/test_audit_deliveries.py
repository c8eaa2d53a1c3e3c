"""audit.deliveries keeps the same rows and columns when each distinct inbox listing is stored once."""

from __future__ import annotations

from datetime import date

import polars as pl

from lowincome.audit import (DELIVERY_LISTS, DELIVERY_RUNS, LEGACY_DELIVERIES, load_deliveries,
                             migrate_delivery_history, record_deliveries)
from lowincome.workstore import WorkStore

from .audit_tables import per_run_rows, published


def _listing(status: str, extra: bool = False) -> pl.DataFrame:
    frame = pl.DataFrame({"feed": ["civil_roster", "medical_claims", None], "file_name": ["a.csv", "b.csv", "x.txt"],
                          "sha256": ["1" * 64, "2" * 64, None], "rows_read": [10, 20, None],
                          "rows_accepted": [10, 19, None], "rows_quarantined": [0, 1, None],
                          "status": ["used", status, "ignored"]})
    return frame.with_columns(pl.lit("王 accepted").alias("accepted_by")) if extra else frame


RUNS = [("r1", date(2026, 10, 30), _listing("used")), ("r2", date(2026, 10, 31), _listing("used")),
        ("r3", date(2026, 11, 1), _listing("used")), ("r4", date(2026, 11, 2), _listing("rejected", extra=True)),
        ("r5", date(2026, 11, 3), _listing("used"))]


def _legacy_table(runs) -> pl.DataFrame:
    return per_run_rows(runs)


def _published(store: WorkStore) -> pl.DataFrame:
    return published(store, load_deliveries, "audit.deliveries")


def _same_rows(a: pl.DataFrame, b: pl.DataFrame) -> None:
    assert a.columns == b.columns
    key = a.columns
    assert a.sort(key, nulls_last=True).equals(b.select(a.columns).sort(key, nulls_last=True))


def test_each_listing_is_stored_once_and_published_as_before(tmp_path):
    store = WorkStore(tmp_path / "wh")
    ids = [record_deliveries(store, d, r, rows) for r, d, rows in RUNS]
    assert ids[0] == ids[1] == ids[2] == ids[4] != ids[3]
    assert len(list(store.history_dir(DELIVERY_LISTS).glob("*.parquet"))) == 2  # two distinct listings
    assert len(list(store.history_dir(DELIVERY_RUNS).glob("*.parquet"))) == 5  # one row per run
    published = _published(store)
    assert published.height == 5 * 3
    _same_rows(published, _legacy_table(RUNS))
    assert published.columns[:2] == ["run_id", "as_of"]
    # repeating a run's record changes nothing
    record_deliveries(store, RUNS[1][1], RUNS[1][0], RUNS[1][2])
    _same_rows(_published(store), _legacy_table(RUNS))


def test_the_old_layout_is_migrated_without_loss(tmp_path):
    store = WorkStore(tmp_path / "wh")
    for r, d, rows in RUNS[:4]:  # written as the old code did: one full file per run
        store.write_history(LEGACY_DELIVERIES, f"{d.isoformat()}_{r}",
                            rows.select(pl.lit(r).alias("run_id"), pl.lit(d).alias("as_of"), pl.all()))
    record_deliveries(store, RUNS[4][1], RUNS[4][0], RUNS[4][2])  # the first run of the new code migrates
    assert not store.history_dir(LEGACY_DELIVERIES).exists()
    assert migrate_delivery_history(store) == 0
    _same_rows(_published(store), _legacy_table(RUNS))


def test_no_history_gives_the_empty_table(tmp_path):
    published = _published(WorkStore(tmp_path / "wh"))
    assert published.height == 0
    assert published.columns == ["run_id", "as_of", "feed", "file_name", "sha256", "rows_read", "rows_accepted",
                                 "rows_quarantined"]
