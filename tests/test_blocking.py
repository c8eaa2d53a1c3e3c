"""A delivery that fails badly is blocked: its feed keeps its last good data, the previous flags stay, the run says why."""

from __future__ import annotations

from datetime import date

import duckdb

from pipelines.definitions import defs

from .handmade import bad_check, delivery_path, person_id, write_csv
from .test_lifecycle import ROSTER_HEADER

C = "371302"
D1, D2 = date(2026, 10, 1), date(2026, 10, 2)
B = person_id(C, "19750202", 33)


def _roster_rows(n_bad: int) -> list[list[str]]:
    rows = [[C + "001002", "H2", B, B, "乙", "本人", "低保", "城市", "在保", "2021-01-01", "", "1", "300", "400"],
            [C + "001003", "H3", B, B, "乙", "本人", "低保", "农村", "在保", "2026-09-01", "", "1", "300", "400"]]
    for k in range(n_bad):
        pid = person_id(C, "19800101", 101 + 2 * k)
        rows.append([C + "001009", f"X{k}", pid, bad_check(pid), "某", "本人", "低保", "城市", "在保", "2020-01-01", "", "1", "300", "400"])
    return rows


def test_blocked_snapshot_keeps_the_last_good_data_and_flags(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER, _roster_rows(0))
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=D1.isoformat()).success
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        before = con.execute("SELECT flag_id, status FROM mart.flags").fetchall()
    assert [s for _, s in before] == ["open"]  # R06: 在保 in two households

    # day 2: a new snapshot where most rows fail (and which would have ended the duplicate enrolment)
    rows = _roster_rows(6)[1:]
    write_csv(delivery_path(inbox, "civil_roster", C, D2, "csv"), ROSTER_HEADER, rows)
    result = defs.resolve_job_def("nightly").execute_in_process(partition_key=D2.isoformat())
    assert result.success
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        after = con.execute("SELECT flag_id, status FROM mart.flags").fetchall()
        status, message = con.execute(
            "SELECT status, message FROM audit.deliveries WHERE file_name LIKE 'civil_roster_%20261002%' AND as_of = $d",
            {"d": D2}).fetchone()
        used = con.execute("SELECT DISTINCT source_file FROM staging.civil_roster WHERE is_latest").fetchall()
    assert after == before  # the flag is still open: computed from the last good snapshot
    checks = {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations() if e.check_name == "delivery_suite"}
    assert not checks["civil_roster"].passed and checks["civil_roster"].severity.value == "ERROR"
    assert checks["medical_claims"].passed
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        failed = con.execute(
            "SELECT count(*) FROM audit.validation_results WHERE as_of = $d AND file_name LIKE 'civil_roster_%20261002%' "
            "AND NOT success", {"d": D2}).fetchone()[0]
    assert failed >= 1
    assert (warehouse / "reports" / "validation" / "index.html").exists()
    assert status == "blocked" and message.startswith("snapshot held back: ")
    assert f"the previous snapshot of county {C} (civil_roster_{C}_{D1:%Y%m%d}.csv) stays in use" in message
    assert used == [(f"civil_roster_{C}_{D1:%Y%m%d}.csv",)]
