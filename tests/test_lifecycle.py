"""Flag lifecycle over consecutive nightly runs: new, open, resolved, dismissed (and staying dismissed while the
same condition continues); re-runs change nothing. Reopening on a change in substance: tests/test_lifecycle_substance.py."""

from __future__ import annotations

import json
from datetime import date, timedelta

import duckdb
import polars as pl

from lowincome.config import DEV_PSEUDONYM_KEY
from lowincome.keys import pseudonym
from lowincome.workstore import WorkStore
from pipelines.definitions import defs

from .handmade import delivery_path, person_id, write_csv

C = "371302"
D1, D2, D3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型", "城乡类别", "保障状态",
                 "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]
PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]
OUTCOME_HEADER = ["flag_id", "outcome", "note", "decided_on", "caseworker"]

A = person_id(C, "19700101", 31)  # household H1 stopped in June, still paid 低保金: R07 (a household flag)
B = person_id(C, "19750202", 33)  # 在保 in two households on day 1 only: R06 resolves on day 2
E = person_id(C, "19800303", 35)  # enrolled on day 2 in the household B left, so the snapshot does not shrink


def roster(day: date, doubled: bool) -> list[list[str]]:
    rows = [[C + "001001", "H1", A, A, "甲", "本人", "低保", "城市", "停保", "2020-01-01", "2026-06-30", "1", "300", "400"],
            [C + "001002", "H2", B, B, "乙", "本人", "低保", "城市", "在保", "2021-01-01", "", "1", "300", "400"]]
    if doubled:
        rows.append([C + "001003", "H3", B, B, "乙", "本人", "低保", "农村", "在保", "2026-09-01", "", "1", "300", "400"])
    else:  # same size: a snapshot shrinking by more than snapshot_shrink_share would be held back
        rows.append([C + "001003", "H3", E, E, "丙", "本人", "低保", "农村", "在保", "2026-10-01", "", "1", "300", "400"])
    return rows


def run(day: date) -> None:
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def flags(warehouse) -> dict[str, dict]:
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        rows = pl.from_arrow(con.sql("SELECT * FROM mart.flags").to_arrow_table())
    return {r["rule_id"]: r for r in rows.iter_rows(named=True)}


def test_three_nights_with_a_dismissal_that_stays_while_the_run_continues(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER, roster(D1, doubled=True))
    write_csv(delivery_path(inbox, "subsidy_payments", C, D1, "csv"), PAY_HEADER, [["P1", A, "甲", C, "低保金", "2026-08", "400.00"]])

    run(D1)
    day1 = flags(warehouse)
    assert set(day1) == {"R06", "R07"}
    assert all(f["status"] == "open" and f["is_new"] and f["first_seen_on"] == D1 for f in day1.values())
    assert day1["R07"]["subject_type"] == "household"
    assert day1["R07"]["subject_key"] == pseudonym(DEV_PSEUDONYM_KEY, f"household:{C}:H1")
    assert day1["R07"]["period"] == "2026-08"  # the first month paid after the exit
    assert pseudonym(DEV_PSEUDONYM_KEY, A) in day1["R07"]["evidence"]  # the payee, by key
    store = WorkStore(warehouse)
    first_mart = pl.read_parquet(store.day_dir(D1) / "mart" / "flags.parquet")

    # night 2: the duplicate enrolment is gone from the roster; a caseworker dismisses the R07 flag
    write_csv(delivery_path(inbox, "civil_roster", C, D2, "csv"), ROSTER_HEADER, roster(D2, doubled=False))
    write_csv(delivery_path(inbox, "verification_outcomes", C, D2, "csv"), OUTCOME_HEADER,
              [[day1["R07"]["flag_id"], "dismissed", "paid in arrears for a month before exit", D2.isoformat(), "王五"]])
    run(D2)
    day2 = flags(warehouse)
    assert day2["R06"]["status"] == "resolved" and day2["R06"]["resolved_today"] and day2["R06"]["last_seen_on"] == D1
    assert day2["R07"]["status"] == "dismissed" and not day2["R07"]["is_new"]
    assert day2["R07"]["flag_id"] == day1["R07"]["flag_id"]

    # night 3: another payment after exit, the next month: the same condition simply continues (one more
    # month of the same run), so the dismissal stands (rules.md Lifecycle)
    write_csv(delivery_path(inbox, "subsidy_payments", C, D3, "csv"), PAY_HEADER, [["P2", A, "甲", C, "低保金", "2026-09", "400.00"]])
    run(D3)
    day3 = flags(warehouse)
    assert day3["R07"]["flag_id"] == day1["R07"]["flag_id"]
    assert day3["R07"]["status"] == "dismissed" and not day3["R07"]["reopened"]
    assert day3["R07"]["first_seen_on"] == D1 and day3["R07"]["last_seen_on"] == D3
    evidence = json.loads(day3["R07"]["evidence"])
    assert evidence["months"] == ["2026-08", "2026-09"] and evidence["amount_to_recover"] == 800
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        trend = con.execute("SELECT as_of, new_flags, resolved_flags FROM audit.flag_trend ORDER BY as_of").fetchall()
        assert trend == [(D1, 2, 0), (D2, 0, 1), (D3, 0, 0)]
        assert "王五" not in str(con.execute("SELECT * FROM staging.verification_outcomes").fetchall())

    # re-running an earlier night reproduces what was known then, and leaves later nights alone
    run(D1)
    assert pl.read_parquet(store.day_dir(D1) / "mart" / "flags.parquet").equals(first_mart)
    published = flags(warehouse)["R07"]  # what the published day knew: open on D1, dismissed on D3
    assert published["status"] == ("open" if published["as_of"] == D1 else "dismissed")


def test_overdue_after_the_policy_period(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER, roster(D1, doubled=False))
    write_csv(delivery_path(inbox, "subsidy_payments", C, D1, "csv"), PAY_HEADER, [["P1", A, "甲", C, "低保金", "2026-08", "400.00"]])
    run(D1)
    assert not flags(warehouse)["R07"]["overdue"]
    later = D1 + timedelta(days=16)
    run(later)
    f = flags(warehouse)["R07"]
    assert f["overdue"] and f["status"] == "open"
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        assert con.execute("SELECT sum(overdue_flags) FROM mart.county_summary").fetchone()[0] == 1
