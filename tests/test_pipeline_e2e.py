"""End to end: the nightly Dagster job, in-process, on generated deliveries and real DuckDB files."""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from lowincome.feeds import FEEDS
from pipelines.definitions import defs

from .conftest import SAMPLE_END
from .delivered import assert_every_row_accounted_for, count_rows

ID_LIKE = re.compile(r"(?<![0-9a-f])\d{17}[\dXx](?![0-9a-f])|(?<![0-9a-f])\d{15}(?![0-9a-f])")


def run_day(day) -> None:
    result = defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat(), raise_on_error=True)
    assert result.success


def analysts(warehouse: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)


def test_the_manifest_agrees_with_the_delivered_files(generated):
    """The manifest's row counts are what the files hold, counted with readers the pipeline does not use."""
    out, manifest = generated
    on_disk = {p.name for p in (out / "inbox").rglob("*") if p.is_file()}
    assert on_disk == {f["file"] for f in manifest["files"]}
    for f in manifest["files"]:
        assert count_rows(out / "inbox" / f["feed"] / f["file"]) == f["rows"], f["file"]


def _published_rows(con) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    staged = [r for f in FEEDS for r in con.execute(f"SELECT source_file, source_row FROM staging.{f}").fetchall()]
    quarantined = con.execute("SELECT file_name, row_number FROM quarantine.rejected_rows").fetchall()
    return staged, quarantined


def test_every_delivered_row_is_accepted_or_quarantined_exactly_once(published):
    """delivered (manifest, checked against the files above) == accepted (staging) + quarantined, per file and row.

    Checked that it can fail (then restored): dropping the last accepted row of each feed in
    `ingest_feed` (`staging = staging.head(-1)`), and dropping the last row of every file over 100
    rows right after reading (`read_delivery(...).frame.head(-1)`), each made this test and the
    next fail naming the file. The previous test, `rows_read == accepted + quarantined`, passed on
    the second: the pipeline's own count was short by the same row.
    """
    warehouse, manifest = published
    delivered = {f["file"]: f["rows"] for f in manifest["files"]}
    with analysts(warehouse) as con:
        staged, quarantined = _published_rows(con)
    assert_every_row_accounted_for(delivered, staged, quarantined)


def test_the_delivery_record_agrees_with_the_independent_counts(published):
    """audit.deliveries says per file what was read, accepted and quarantined: each figure is checked, not derived."""
    warehouse, manifest = published
    delivered = {f["file"]: f["rows"] for f in manifest["files"]}
    with analysts(warehouse) as con:
        staged, quarantined = _published_rows(con)
        rows = con.execute(
            "SELECT file_name, rows_read, rows_accepted, rows_quarantined, status FROM audit.deliveries"
        ).fetchall()
    accepted = Counter(name for name, _ in staged)
    rejected = Counter(name for name, _ in quarantined)
    assert sorted(r[0] for r in rows) == sorted(delivered), "one delivery record per delivered file"
    for name, read, acc, quar, status in rows:
        assert (read, acc, quar) == (delivered[name], accepted[name], rejected[name]), name
        assert status in ("accepted", "partly_quarantined"), (name, status)  # the generator stays below the threshold


def test_every_planted_bad_row_is_quarantined_with_a_reason(published):
    warehouse, manifest = published
    with analysts(warehouse) as con:
        quarantined = {
            (f, n): r for f, n, r in con.execute("SELECT file_name, row_number, reasons FROM quarantine.rejected_rows").fetchall()
        }
        staged = {r for f in FEEDS for r in con.execute(f"SELECT source_file, source_row FROM staging.{f}").fetchall()}
    kinds = set()
    for bad in manifest["bad_rows"]:
        key = (bad["file"], bad["row"])
        assert key in quarantined, f"{bad['kind']} not quarantined: {key}"
        assert quarantined[key] and quarantined[key].strip(), f"{bad['kind']} quarantined without a reason: {key}"
        assert key not in staged, f"{bad['kind']} also accepted: {key}"
        kinds.add(bad["kind"])
    assert len(kinds) >= 10, kinds


def test_every_messy_but_valid_row_is_accepted(published):
    warehouse, manifest = published
    with analysts(warehouse) as con:
        quarantined = set(con.execute("SELECT file_name, row_number FROM quarantine.rejected_rows").fetchall())
        staged = set()
        for f in FEEDS:
            staged |= set(con.execute(f"SELECT source_file, source_row FROM staging.{f}").fetchall())
    for messy in manifest["messy_valid"]:
        if messy.get("row") is None:
            continue
        key = (messy["file"], messy["row"])
        assert key not in quarantined, f"messy-but-valid {messy['kind']} was quarantined: {key}"
        assert key in staged, messy


def test_analysts_database_holds_no_id_numbers_or_names(published):
    warehouse, manifest = published
    planted_ids = {p["id_number"] for p in manifest["planted"] if p.get("id_number")}
    with analysts(warehouse) as con:
        columns = con.execute(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE data_type IN ('VARCHAR', 'JSON')"
        ).fetchall()
        for schema, table, column in columns:
            values = con.execute(f'SELECT DISTINCT "{column}" FROM {schema}.{table} WHERE "{column}" IS NOT NULL').fetchall()
            for (v,) in values:
                assert not ID_LIKE.search(v), f"{schema}.{table}.{column} holds something like an ID number"
                assert v not in planted_ids
        names = {c for (_, _, c) in columns}
        assert "id_number" not in names and "name" not in names


def test_restricted_database_maps_keys_to_people(published):
    warehouse, _ = published
    con = duckdb.connect()
    con.execute(f"ATTACH '{warehouse / 'restricted.duckdb'}' AS restricted (READ_ONLY)")
    con.execute(f"ATTACH '{warehouse / 'lowincome.duckdb'}' AS lm (READ_ONLY)")
    unmatched = con.execute(
        "SELECT count(*) FROM lm.staging.medical_claims c LEFT JOIN restricted.person_index p USING (person_key) "
        "WHERE p.id_number IS NULL"
    ).fetchone()[0]
    assert unmatched == 0
    assert con.execute("SELECT count(*) FROM restricted.household_index").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM restricted.rejected_records").fetchone()[0] == con.execute(
        "SELECT count(*) FROM lm.quarantine.rejected_rows").fetchone()[0]


def test_rerun_and_redelivery_are_idempotent(generated, lowincome_env, tmp_path):
    out, manifest = generated
    inbox = tmp_path / "inbox"
    shutil.copytree(out / "inbox", inbox)
    warehouse = lowincome_env(inbox)
    run_day(SAMPLE_END)

    def counts():
        with analysts(warehouse) as con:
            staged = {f: con.execute(f"SELECT count(*) FROM staging.{f}").fetchone()[0] for f in FEEDS}
            q = con.execute("SELECT count(*) FROM quarantine.rejected_rows").fetchone()[0]
            return staged, q

    first = counts()
    run_day(SAMPLE_END)
    assert counts() == first
    with analysts(warehouse) as con:
        assert con.execute("SELECT count(DISTINCT run_id) FROM audit.runs").fetchone()[0] == 2
    assert manifest["redeliveries"], "the generator plants a redelivery"
    redelivered_rows = 0
    for r in manifest["redeliveries"]:
        src = out / "redelivery" / r["feed"] / r["file"]
        shutil.copy(src, inbox / r["feed"] / r["file"])
        redelivered_rows += r["rows"]
    run_day(SAMPLE_END)
    staged, q = counts()
    assert staged == first[0]
    assert q == first[1] + redelivered_rows
    # Row by row: the redelivered copy is quarantined whole, every other row is still where it was.
    delivered = {f["file"]: f["rows"] for f in manifest["files"]}
    delivered |= {r["file"]: count_rows(inbox / r["feed"] / r["file"]) for r in manifest["redeliveries"]}
    with analysts(warehouse) as con:
        assert_every_row_accounted_for(delivered, *_published_rows(con))
