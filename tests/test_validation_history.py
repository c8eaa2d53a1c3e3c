"""The validation record keeps each file's results once; every run still answers for its files.

`audit.validation_results` must give, for every run, one row per expectation of every file in use,
exactly as when each run copied its rows in full. The expected rows here are built independently:
each run's frame with its run_id and as_of in front (what the old history held).
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from lowincome.audit import (
    LEGACY_VALIDATION,
    VALIDATION_RESULTS,
    VALIDATION_RUNS,
    VALIDATION_SETS,
    load_validation,
    record_validation,
)
from lowincome.workstore import WorkStore

from .audit_tables import per_run_rows, published


def _file(feed: str, name: str, sha: str, rows: int, failing: int, prev: int | None = None) -> pl.DataFrame:
    """A handmade validate_files result for one file: `rows` expectations, `failing` of them failed."""
    return pl.DataFrame(
        {
            "feed": [feed] * rows,
            "file_name": [name] * rows,
            "suite": [f"{feed}.v1"] * rows,
            "expectation": [f"expect_{i}" for i in range(rows)],
            "success": [i >= failing for i in range(rows)],
            "observed_value": [f"{i} values" for i in range(rows)],
            "unexpected_count": [1 if i < failing else 0 for i in range(rows)],
            "county": ["371302"] * rows,
            "extracted_on": [date(2026, 10, 1)] * rows,
            "previous_rows": [prev] * rows,
            "sha256": [sha] * rows,
        },
        schema_overrides={"previous_rows": pl.Int64, "unexpected_count": pl.Int64},
    )


def _expected(runs: list[tuple[str, date, pl.DataFrame]]) -> pl.DataFrame:
    return per_run_rows(runs)


def _published(store: WorkStore) -> pl.DataFrame:
    return published(store, load_validation, "audit.validation_results")


def _sorted(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.sort("run_id", "feed", "file_name", "expectation")


def _files(store: WorkStore, kind: str) -> list:
    folder = store.history_dir(kind)
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


A = _file("civil_roster", "civil_roster_371302_20261001.csv", "a" * 64, 5, 1)
B = _file("medical_claims", "medical_claims_371302_20261001.csv", "b" * 64, 7, 0)
C = _file("medical_claims", "medical_claims_371302_20261101.csv", "c" * 64, 7, 2, prev=100)


def test_every_run_answers_for_its_files_and_results_are_stored_once(tmp_path):
    store = WorkStore(tmp_path / "wh")
    runs = [
        ("r1", date(2026, 10, 31), pl.concat([A, B])),
        ("r2", date(2026, 11, 1), pl.concat([A, B])),  # nothing new
        ("r3", date(2026, 11, 2), pl.concat([A, B, C])),  # one new file
        ("r4", date(2026, 11, 3), pl.concat([A, B, C])),  # nothing new
    ]
    for run_id, as_of, frame in runs:
        record_validation(store, as_of, run_id, frame)

    got = _published(store)
    expected = _expected(runs)
    assert got.columns == expected.columns  # the analysts' columns, in the same order as before
    assert _sorted(got).equals(_sorted(expected.cast(got.schema)))
    # each file's rows are stored once, in the run that first had them; each distinct set once
    stored = pl.read_parquet(_files(store, VALIDATION_RESULTS))
    assert stored.height == A.height + B.height + C.height
    assert len(_files(store, VALIDATION_RESULTS)) == 2 and len(_files(store, VALIDATION_SETS)) == 2
    assert len(_files(store, VALIDATION_RUNS)) == 4


def test_a_night_with_nothing_new_adds_one_small_run_record(tmp_path):
    store = WorkStore(tmp_path / "wh")
    frame = pl.concat([A, B, C])
    record_validation(store, date(2026, 11, 1), "first", frame)
    before = {p for p in (store.root / "history").rglob("*") if p.is_file()}
    record_validation(store, date(2026, 11, 2), "empty", frame)
    added = {p for p in (store.root / "history").rglob("*") if p.is_file()} - before
    assert [p.relative_to(store.root / "history").parts[0] for p in added] == [VALIDATION_RUNS]
    assert pl.read_parquet(added.pop()).rows() == [("empty", date(2026, 11, 2), pl.read_parquet(
        _files(store, VALIDATION_SETS)[0])["set_id"][0])]


def test_recording_the_same_run_again_changes_nothing(tmp_path):
    store = WorkStore(tmp_path / "wh")
    frame = pl.concat([A, C])
    record_validation(store, date(2026, 11, 1), "r1", frame)
    record_validation(store, date(2026, 11, 1), "r1", frame)
    assert _published(store).height == frame.height


def test_a_changed_result_of_the_same_file_is_a_new_record(tmp_path):
    """A re-validated file (new code, other previous delivery) keeps both answers, each for its own run."""
    store = WorkStore(tmp_path / "wh")
    record_validation(store, date(2026, 11, 1), "r1", C)
    changed = C.with_columns(pl.lit(90, dtype=pl.Int64).alias("previous_rows"))
    record_validation(store, date(2026, 11, 2), "r2", changed)
    got = _published(store)
    assert got.filter(pl.col("run_id") == "r1")["previous_rows"].unique().to_list() == [100]
    assert got.filter(pl.col("run_id") == "r2")["previous_rows"].unique().to_list() == [90]


def test_a_run_without_results_records_nothing(tmp_path):
    store = WorkStore(tmp_path / "wh")
    assert record_validation(store, date(2026, 11, 1), "r1", A.clear()) is None
    got = _published(store)
    assert got.height == 0 and {"run_id", "as_of", "feed", "file_name", "expectation", "success"} <= set(got.columns)


def test_history_of_the_old_layout_is_migrated_without_loss(tmp_path):
    """A warehouse from before keeps every run's rows: the per-run files become the shared layout."""
    store = WorkStore(tmp_path / "wh")
    old = [("o1", date(2026, 10, 30), pl.concat([A, B])), ("o2", date(2026, 10, 31), pl.concat([A, B]))]
    for run_id, as_of, frame in old:  # exactly what lowincome.nightly wrote before
        store.write_history(LEGACY_VALIDATION, f"{as_of.isoformat()}_{run_id}",
                            frame.select(pl.lit(run_id).alias("run_id"), pl.lit(as_of).alias("as_of"), pl.all()))
    new = ("n1", date(2026, 11, 1), pl.concat([A, B, C]))
    record_validation(store, new[1], new[0], new[2])

    assert not store.history_dir(LEGACY_VALIDATION).exists()
    got = _published(store)
    expected = _expected([*old, new])
    assert _sorted(got).equals(_sorted(expected.cast(got.schema)))
    assert pl.read_parquet(_files(store, VALIDATION_RESULTS)).height == A.height + B.height + C.height


@pytest.mark.parametrize("interrupted_after", [0, 1])
def test_an_interrupted_migration_is_finished_without_duplicates(tmp_path, interrupted_after):
    store = WorkStore(tmp_path / "wh")
    old = [("o1", date(2026, 10, 30), A), ("o2", date(2026, 10, 31), pl.concat([A, B]))]
    paths = [store.write_history(LEGACY_VALIDATION, f"{d.isoformat()}_{r}",
                                 f.select(pl.lit(r).alias("run_id"), pl.lit(d).alias("as_of"), pl.all()))
             for r, d, f in old]
    for (run_id, as_of, frame), path in list(zip(old, paths))[:interrupted_after + 1]:
        record_validation.__globals__["_record_validation"](store, as_of, run_id, frame)  # recorded, not yet removed
    got = _published(store)  # publishing finishes the migration
    assert _sorted(got).equals(_sorted(_expected(old).cast(got.schema)))
