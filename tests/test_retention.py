"""Working storage grows with deliveries, not with nights: old run folders and old analysts' parts are pruned.

Pruning must not change any answer: the flags published after a pruned night equal those of a warehouse
that kept every night, and a reader holding an older publication keeps reading it for the retention period.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl

from lowincome.workstore import WorkStore
from pipelines.definitions import defs

from .conftest import SAMPLE_END

NIGHTS = [SAMPLE_END - timedelta(days=4), SAMPLE_END - timedelta(days=2), SAMPLE_END]


def _run(day) -> None:
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def _flags(warehouse: Path) -> pl.DataFrame:
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        return pl.from_arrow(con.sql("SELECT * EXCLUDE (as_of) FROM mart.flags ORDER BY flag_id").to_arrow_table())
    finally:
        con.close()


def _size(folder: Path) -> int:
    """Bytes on disk: a file hard-linked under several names (an unchanged worklist, a run file identical
    to the night before) is counted once, as the disk holds it once."""
    seen: dict[tuple[int, int], int] = {}
    for p in folder.rglob("*"):
        if p.is_file() and not p.is_symlink():
            st = p.stat()
            seen[(st.st_dev, st.st_ino)] = st.st_size
    return sum(seen.values())


def test_pruned_nights_change_no_answer(generated, lowincome_env, monkeypatch, tmp_path):
    out, _ = generated
    warehouse = lowincome_env(out / "inbox")
    monkeypatch.setenv("LOWINCOME_RETENTION_DAYS", "1")
    for day in NIGHTS:
        _run(day)
    store = WorkStore(warehouse)
    assert store.completed_days() == [SAMPLE_END]  # the two older nights are more than a day older: pruned
    # run report pages follow the same retention; the newest day's page stays
    pages = sorted(p.name.split("_")[1] for p in (warehouse / "reports").glob("run_*_*.html"))
    assert pages == [SAMPLE_END.isoformat()], pages
    # what later nights read of the pruned ones is in the permanent history
    assert sorted(p.name for p in (warehouse / "work" / "history" / "lifecycle").iterdir()) == [d.isoformat() for d in NIGHTS]
    kept_all = tmp_path / "kept"
    monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(kept_all))
    monkeypatch.setenv("LOWINCOME_RETENTION_DAYS", "30")
    for day in NIGHTS:
        _run(day)
    assert WorkStore(kept_all).completed_days() == NIGHTS
    assert _flags(warehouse).equals(_flags(kept_all))
    # every analysts' part the newest publication refers to is there; nothing else is left behind
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM staging.medical_claims").fetchone()[0] > 0
    finally:
        con.close()


def test_an_older_publication_stays_readable_for_the_retention_period(generated, lowincome_env, monkeypatch, tmp_path):
    """A reader who opened lowincome.duckdb before a night that replaced parts keeps reading the old parts."""
    import shutil

    out, _ = generated
    inbox = tmp_path / "inbox"
    shutil.copytree(out / "inbox", inbox)
    warehouse = lowincome_env(inbox)
    _run(SAMPLE_END)
    before = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        count = before.execute("SELECT count(*) FROM staging.medical_claims").fetchone()[0]
        # a corrected claims file: its part is replaced in the next publication
        newest = sorted((inbox / "medical_claims").glob("*.csv"))[-1]
        lines = newest.read_text(encoding="utf-8").splitlines(keepends=True)
        newest.write_text("".join(lines[:-1]), encoding="utf-8")
        _run(SAMPLE_END)
        assert before.execute("SELECT count(*) FROM staging.medical_claims").fetchone()[0] == count
    finally:
        before.close()
    after = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        assert after.execute("SELECT count(*) FROM staging.medical_claims").fetchone()[0] == count - 1
    finally:
        after.close()
    # past the retention period the superseded parts go, the newest publication's parts stay
    from lowincome.publish import prune_published

    parts = set((warehouse / "published" / "staging").rglob("*.parquet"))
    removed = prune_published(warehouse, keep_seconds=0)
    assert removed and set(removed) & parts
    after = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        assert after.execute("SELECT count(*) FROM staging.medical_claims").fetchone()[0] == count - 1
    finally:
        after.close()


def test_nights_without_new_deliveries_add_little(generated, lowincome_env):
    """After the first night, nights over an unchanged inbox add only their audit record, not a copy of the data."""
    out, _ = generated
    warehouse = lowincome_env(out / "inbox")
    _run(SAMPLE_END)
    first = _size(warehouse)
    nights = 3
    for k in range(1, nights + 1):
        _run(SAMPLE_END + timedelta(days=k))
    grown = _size(warehouse) - first
    # measured: about 1% of the sample warehouse per night (run report page, audit rows, the night's marts);
    # a copy of staging per night would be about 10%
    assert grown < 0.03 * first * nights, (grown, first)
    assert not any(p.suffix == ".parquet" for p in (warehouse / "work" / "days").rglob("staging/*"))
    assert os.path.exists(warehouse / "published" / "generations")


def test_a_note_that_protects_nothing_more_than_newer_ones_goes(tmp_path):
    """Nights that published the same parts leave one generation note; a part named by a kept note stays."""
    import json
    import time

    from lowincome.publish import prune_published

    warehouse = tmp_path / "wh"
    folder = warehouse / "published" / "staging" / "medical_claims"
    folder.mkdir(parents=True)
    parts = {name: folder / f"{name}.parquet" for name in "abcd"}
    for path in parts.values():
        path.write_bytes(b"PAR1")
    notes = warehouse / "published" / "generations"
    notes.mkdir()
    now = time.time_ns()

    def note(offset: int, names: str) -> Path:
        path = notes / f"{now + offset}.json"
        path.write_text(json.dumps(sorted(str(parts[n]) for n in names)), encoding="utf-8")
        return path

    same_1, same_2, changed, d_only, newest = (note(1, "ab"), note(2, "ab"), note(3, "ac"), note(4, "d"),
                                               note(5, "abc"))
    removed = set(prune_published(warehouse, keep_seconds=86400))
    # "ab" twice and "ac" are covered by the newest note; "d" is not: it keeps its note and its part
    assert removed == {same_1, same_2, changed}
    assert sorted(notes.iterdir()) == sorted([d_only, newest])
    assert all(p.exists() for p in parts.values())
    # past the retention period only the newest publication's parts stay
    removed = set(prune_published(warehouse, keep_seconds=0))
    assert removed == {d_only, parts["d"]}
    assert [p.name for p in notes.iterdir()] == [newest.name]
