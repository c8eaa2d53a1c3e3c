"""The completeness guard: an empty inbox publishes nothing; stale data resolves no flag.

Pipeline tests use hand-made deliveries (tests/handmade.py), so what each day
delivered is known independently of the code that counts it. Unit tests drive
lowincome.freshness directly, one per cause of staleness.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import date, timedelta

import duckdb
import polars as pl
import pytest

from lowincome.config import DEFAULT_POLICY
from lowincome.freshness import FRESHNESS_FILE, EmptyInbox, check_not_empty, feed_freshness
from lowincome.rules.policy import load_policy
from lowincome.workstore import WorkStore
from pipelines.definitions import defs

from .handmade import delivery_path, person_id, write_csv
from .test_lifecycle import PAY_HEADER, ROSTER_HEADER

C = "371302"
D1, D2, D3 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3)
A = person_id(C, "19700101", 31)  # household stopped in June, still paid: R07 on every day
B = person_id(C, "19750202", 33)  # 在保 in two households in the D2 roster only: R06


def roster(doubled: bool) -> list[list[str]]:
    rows = [[C + "001001", "H1", A, A, "甲", "本人", "低保", "城市", "停保", "2020-01-01", "2026-06-30", "1", "300", "400"],
            [C + "001002", "H2", B, B, "乙", "本人", "低保", "城市", "在保", "2021-01-01", "", "1", "300", "400"]]
    if doubled:
        rows.append([C + "001003", "H3", B, B, "乙", "本人", "低保", "农村", "在保", "2026-09-01", "", "1", "300", "400"])
    return rows


def run(day: date, **resource_config):
    config = {"resources": {"lowincome": {"config": resource_config}}} if resource_config else None
    return defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat(), run_config=config,
                                                              raise_on_error=False)


def failure(result) -> str:
    for event in result.all_events:
        if event.event_type_value == "STEP_FAILURE":
            return event.step_failure_data.user_failure_data.description
    return ""


def mart_flags(warehouse) -> pl.DataFrame:
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        return pl.from_arrow(con.sql("SELECT * FROM mart.flags ORDER BY flag_id").to_arrow_table())


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def two_days(inbox) -> None:
    """D1: the roster without the double enrolment; D2: with it (R06 raised on D2)."""
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER, roster(doubled=False))
    write_csv(delivery_path(inbox, "subsidy_payments", C, D1, "csv"), PAY_HEADER, [["P1", A, "甲", C, "低保金", "2026-08", "400.00"]])
    write_csv(delivery_path(inbox, "civil_roster", C, D2, "csv"), ROSTER_HEADER, roster(doubled=True))


# ---- empty inbox -------------------------------------------------------------------------------

@pytest.mark.parametrize("inbox_state", ["empty", "missing"])
def test_empty_inbox_publishes_nothing_and_fails(lowincome_env, tmp_path, inbox_state):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    two_days(inbox)
    assert run(D1).success and run(D2).success
    before_flags, before_file = mart_flags(warehouse), sha(warehouse / "lowincome.duckdb")
    assert before_flags.filter(pl.col("status") == "open").height == 2  # R06 and R07

    shutil.rmtree(inbox)
    if inbox_state == "empty":
        inbox.mkdir()
    result = run(D3)
    assert not result.success
    reason = failure(result)
    if inbox_state == "empty":
        assert reason == (f"收件箱无可用数据 inbox {inbox} has no deliveries dated on or before {D3}; nothing published "
                          f"(the last publication, as of {D2}, stays in place); run with --allow-empty if the day is "
                          "deliberately empty")
    else:
        assert "inbox folder not found" in reason
    assert "\n" not in reason
    assert sha(warehouse / "lowincome.duckdb") == before_file
    assert mart_flags(warehouse).equals(before_flags)
    assert WorkStore(warehouse).completed_days() == [D1, D2]


def test_allow_empty_runs_and_carries_every_flag(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    two_days(inbox)
    assert run(D1).success and run(D2).success
    shutil.rmtree(inbox)
    inbox.mkdir()
    assert run(D3, allow_empty=True).success
    flags = mart_flags(warehouse)
    assert flags["status"].to_list() == ["open", "open"]  # nothing resolved by an empty day
    assert flags["data_stale"].all() and not flags["resolved_today"].any()
    assert set(flags["stale_feeds"]) == {"civil_roster", "civil_roster,subsidy_payments"}
    assert (flags["last_held_on"] == D2).all() and (flags["last_seen_on"] == D3).all()


# ---- stale data resolves nothing ---------------------------------------------------------------

def test_removed_newest_roster_resolves_no_roster_flag(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    two_days(inbox)
    assert run(D1).success and run(D2).success
    day2 = {r["rule_id"]: r for r in mart_flags(warehouse).iter_rows(named=True)}
    assert set(day2) == {"R06", "R07"}

    delivery_path(inbox, "civil_roster", C, D2, "csv").unlink()  # the newest snapshot vanished
    result = run(D3)
    assert result.success
    day3 = {r["rule_id"]: r for r in mart_flags(warehouse).iter_rows(named=True)}
    # R06 does not hold on the old roster, but the roster is stale: carried, not resolved
    r06 = day3["R06"]
    assert r06["status"] == "open" and not r06["resolved_today"]
    assert r06["data_stale"] and r06["stale_feeds"] == "civil_roster"
    assert r06["evidence"] == day2["R06"]["evidence"] and r06["first_seen_on"] == D2 and r06["last_held_on"] == D2
    # R07 still holds on the data in use: not marked stale
    assert day3["R07"]["status"] == "open" and not day3["R07"]["data_stale"]

    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        fresh = con.execute("SELECT feed, county, latest_delivery, stale, stale_since FROM audit.feed_freshness "
                            "WHERE as_of = $d AND feed = 'civil_roster'", {"d": D3}).fetchall()
        assert fresh == [("civil_roster", C, D1, True, D3)]
        assert con.execute("SELECT sum(stale_flags) FROM mart.county_summary").fetchone()[0] == 1
        trend = con.execute("SELECT resolved_flags FROM audit.flag_trend WHERE as_of = $d", {"d": D3}).fetchone()
        assert trend == (0,)
        # the caseworkers still see the carried flag
    with duckdb.connect(str(warehouse / "restricted.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM caseworker_flags WHERE rule_id = 'R06'").fetchone()[0] == 1

    # the history answers "what did we know on D3": the flag is recorded as carried that day
    day_file = WorkStore(warehouse).committed_dir(D3) / "mart" / "flag_day.parquet"
    carried = pl.read_parquet(day_file).filter(pl.col("rule_id") == "R06")
    assert carried["carried"].to_list() == [True]

    # the asset check names the county and since when
    checks = [e for e in result.get_asset_check_evaluations() if e.check_name == "delivery_freshness"
              and e.asset_key.path == ["staging", "civil_roster"]]
    assert len(checks) == 1 and not checks[0].passed and checks[0].severity.value == "WARN"
    assert checks[0].metadata["stale_since"].value == f"{C} since {D3}"
    report = sorted((warehouse / "reports").glob(f"run_{D3}_*.html"))[-1].read_text(encoding="utf-8")
    assert "Stale data" in report and "civil_roster" in report and str(D3) in report

    # carried on later days too, until fresh data decides it; then it is resolved
    D4 = D3 + timedelta(days=1)
    assert run(D4).success
    r06 = mart_flags(warehouse).filter(pl.col("rule_id") == "R06").row(0, named=True)
    assert r06["status"] == "open" and r06["data_stale"]
    D5 = D4 + timedelta(days=1)
    write_csv(delivery_path(inbox, "civil_roster", C, D5, "csv"), ROSTER_HEADER, roster(doubled=False))
    assert run(D5).success
    r06 = mart_flags(warehouse).filter(pl.col("rule_id") == "R06").row(0, named=True)
    assert r06["status"] == "resolved" and r06["resolved_today"] and not r06["data_stale"]


def test_overdue_days_are_read_per_county(lowincome_env, tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    lowincome_env(inbox)
    policy = tmp_path / "policy.yaml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    policy.write_text(text.replace('''  "371302":
    - effective_from: 2024-01-01
''', '''  "371302":
    - effective_from: 2024-01-01
      outcome_overdue_days: 30
'''), encoding="utf-8")
    assert "outcome_overdue_days: 30" in policy.read_text(encoding="utf-8")
    monkeypatch.setenv("LOWINCOME_POLICY", str(policy))
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER, roster(doubled=False))
    write_csv(delivery_path(inbox, "subsidy_payments", C, D1, "csv"), PAY_HEADER, [["P1", A, "甲", C, "低保金", "2026-08", "400.00"]])
    assert run(D1).success
    later = D1 + timedelta(days=16)  # overdue by the default (15), not by this county's 30 days
    assert run(later).success
    f = mart_flags(tmp_path / "warehouse").filter(pl.col("rule_id") == "R07").row(0, named=True)
    assert f["status"] == "open" and not f["overdue"]


# ---- unit tests: each cause of staleness -----------------------------------------------------

POLICY = load_policy(DEFAULT_POLICY)
DAY = date(2026, 11, 20)


def files(*rows) -> pl.DataFrame:
    """Per-file accounting as ingestion writes it: (feed, county, extracted_on, rows_accepted)."""
    return pl.DataFrame([{"feed": f, "county": c, "extracted_on": d, "rows_accepted": n} for f, c, d, n in rows],
                        schema={"feed": pl.String, "county": pl.String, "extracted_on": pl.Date, "rows_accepted": pl.Int64})


def committed_day(tmp_path, day: date, deliveries: pl.DataFrame) -> WorkStore:
    """Commit day `day` with the freshness the guard computes for it (as a run would)."""
    store = WorkStore(tmp_path, run_id=f"run-{day}")
    frame = feed_freshness(store, day, POLICY, deliveries)
    path = store.run_dir(day) / FRESHNESS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(path)
    store.commit(day)
    return store


def one(frame: pl.DataFrame, feed: str, county: str = C) -> dict:
    rows = frame.filter((pl.col("feed") == feed) & (pl.col("county") == county)).to_dicts()
    assert len(rows) == 1, rows
    return rows[0]


def test_fresh_snapshot_and_increment_are_not_stale(tmp_path):
    store = WorkStore(tmp_path, run_id="r")
    got = feed_freshness(store, DAY, POLICY, files(("civil_roster", C, DAY - timedelta(days=45), 10),
                                                   ("death_records", C, DAY - timedelta(days=45), 3)))
    assert not got["stale"].any() and got["stale_since"].is_null().all()


def test_snapshot_older_than_the_policy_is_stale(tmp_path):
    store = WorkStore(tmp_path, run_id="r")
    latest = DAY - timedelta(days=46)
    r = one(feed_freshness(store, DAY, POLICY, files(("civil_roster", C, latest, 10))), "civil_roster")
    assert r["stale"] and r["latest_delivery"] == latest
    assert r["stale_since"] == latest + timedelta(days=46) == DAY
    assert "46 days old (limit 45)" in r["reason"]


def test_increment_without_delivery_is_stale(tmp_path):
    store = WorkStore(tmp_path, run_id="r")
    latest = DAY - timedelta(days=60)
    r = one(feed_freshness(store, DAY, POLICY, files(("medical_claims", C, latest, 5))), "medical_claims")
    assert r["stale"] and r["stale_since"] == latest + timedelta(days=46) and "last delivery" in r["reason"]


def test_blocked_newest_snapshot_counts_as_not_delivered(tmp_path):
    earlier = DAY - timedelta(days=1)
    committed_day(tmp_path, earlier, files(("civil_roster", C, earlier, 10)))
    store = WorkStore(tmp_path, run_id="today")
    # today's newest snapshot is held back (no accepted rows): the previous one is in use
    got = feed_freshness(store, DAY, POLICY, files(("civil_roster", C, earlier - timedelta(days=30), 10),
                                                   ("civil_roster", C, earlier, 0)))
    r = one(got, "civil_roster")
    assert r["stale"] and r["latest_delivery"] == earlier - timedelta(days=30) and r["freshest_before"] == earlier
    assert "went backwards" in r["reason"] and r["stale_since"] == DAY


def test_no_usable_delivery_although_one_was_used_before(tmp_path):
    earlier = DAY - timedelta(days=2)
    committed_day(tmp_path, earlier, files(("civil_roster", C, earlier, 10), ("civil_roster", "371324", earlier, 7)))
    got = feed_freshness(WorkStore(tmp_path, run_id="today"), DAY, POLICY, files(("civil_roster", "371324", DAY, 7)))
    r = one(got, "civil_roster")
    assert r["stale"] and r["latest_delivery"] is None and "no usable delivery" in r["reason"]
    assert not one(got, "civil_roster", "371324")["stale"]


def test_stale_since_is_kept_from_the_day_it_began(tmp_path):
    d1, d2 = DAY - timedelta(days=2), DAY - timedelta(days=1)
    committed_day(tmp_path, d1, files(("civil_roster", C, d1, 10)))
    store = committed_day(tmp_path, d2, files(("civil_roster", C, d1 - timedelta(days=5), 10)))  # went backwards on d2
    assert one(pl.read_parquet(store.committed_dir(d2) / FRESHNESS_FILE), "civil_roster")["stale_since"] == d2
    r = one(feed_freshness(WorkStore(tmp_path, run_id="today"), DAY, POLICY,
                           files(("civil_roster", C, d1 - timedelta(days=5), 10))), "civil_roster")
    assert r["stale"] and r["stale_since"] == d2


def test_later_days_do_not_count_for_an_earlier_day(tmp_path):
    """A backfill of an earlier day compares with the days before it only."""
    committed_day(tmp_path, DAY + timedelta(days=1), files(("civil_roster", C, DAY + timedelta(days=1), 10)))
    r = one(feed_freshness(WorkStore(tmp_path, run_id="b"), DAY, POLICY, files(("civil_roster", C, DAY, 10))), "civil_roster")
    assert not r["stale"]


def test_county_override_of_the_cadence(tmp_path):
    policy_file = tmp_path / "policy.yaml"
    text = DEFAULT_POLICY.read_text(encoding="utf-8")
    policy_file.write_text(text.replace('''  "371324":
    - effective_from: 2024-01-01
''', '''  "371324":
    - effective_from: 2024-01-01
      snapshot_stale_days: 100
'''), encoding="utf-8")
    policy = load_policy(policy_file)
    latest = DAY - timedelta(days=92)  # a quarterly snapshot
    got = feed_freshness(WorkStore(tmp_path, run_id="r"), DAY, policy,
                         files(("rural_monitoring", C, latest, 5), ("rural_monitoring", "371324", latest, 5)))
    assert one(got, "rural_monitoring")["stale"]
    assert not one(got, "rural_monitoring", "371324")["stale"]


def test_empty_inbox_message(tmp_path):
    with pytest.raises(EmptyInbox) as info:
        check_not_empty(files(("civil_roster", C, DAY, 0)), tmp_path / "inbox", DAY, None)
    assert "there is no earlier publication" in str(info.value)
    check_not_empty(files(("death_records", C, DAY, 1)), tmp_path / "inbox", DAY, None)
