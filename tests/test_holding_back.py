"""Holding back a file, per feeds.md "Holding back a file (clarified)".

Increments always contribute their valid rows; snapshots are held back over the bad-row share or
when they shrink sharply (until the data team accepts them); structural faults hold back any file.
Counts are taken from the rows these tests write, never from the code's own counts.
"""

from __future__ import annotations

import argparse
import json
from datetime import date

import polars as pl
import pytest

from lowincome.acceptance import acceptance_dir, add_arguments, run as accept_run
from lowincome.errors import LowincomeError
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed

from .handmade import bad_check, delivery_path, person_id, write_csv

C = "371302"
AS_OF = date(2026, 10, 31)
TODAY = date(2026, 11, 2)
DEATH_HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型", "城乡类别",
                 "保障状态", "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]


def _conserved(result) -> None:
    d = result.deliveries.filter(pl.col("rows_read") > 0)
    assert (d["rows_read"] == d["rows_accepted"] + d["rows_quarantined"]).all()
    assert int(d["rows_accepted"].sum()) == result.staging.height
    assert int(d["rows_quarantined"].sum()) == result.quarantine.height


def _roster(n: int, start: int = 1, bad: int = 0) -> list[list[str]]:
    rows = []
    for k in range(start, start + n):
        pid = person_id(C, "19700101", k)
        rows.append([C + "001001", f"H{k}", pid, pid, "某", "本人", "低保", "城市", "在保", "2024-01-01", "", "1", "300", "400"])
    for k in range(bad):
        rows[k][3] = bad_check(rows[k][3])
    return rows


def test_death_file_with_one_bad_row_contributes_its_nine_valid_deaths(tmp_path):
    inbox = tmp_path / "inbox"
    valid = [[person_id(C, "19500101", 2 * k + 1), "某", "2026-10-0" + str(1 + k % 9), "殡葬火化"] for k in range(9)]
    bad = [[bad_check(person_id(C, "19500101", 99)), "某", "2026-10-01", "殡葬火化"]]
    write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER, valid + bad)
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", blocking_share=0.05, today=TODAY)
    # the nine valid deaths, by ID number, are in staging: 10% bad does not hold back an increment
    assert sorted(result.staging["id_number"].to_list()) == sorted(r[0] for r in valid)
    assert result.quarantine.height == 1
    row = result.deliveries.row(0, named=True)
    assert row["status"] == "partly_quarantined"
    assert "increment" in row["message"] and "9 valid rows are used" in row["message"]
    _conserved(result)


def test_snapshot_over_the_share_is_held_back_and_names_what_stays_in_use(tmp_path):
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 9, 30), "csv"), ROSTER_HEADER, _roster(20))
    write_csv(delivery_path(inbox, "civil_roster", C, AS_OF, "csv"), ROSTER_HEADER, _roster(25, bad=3))  # 12% bad
    result = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, tmp_path / "work", blocking_share=0.05, today=TODAY)
    rows = {r["file_name"]: r for r in result.deliveries.iter_rows(named=True)}
    held = rows[f"civil_roster_{C}_20261031.csv"]
    assert held["status"] == "blocked" and held["rows_accepted"] == 0 and held["rows_quarantined"] == 25
    assert held["message"] == (f"snapshot held back: 12.0% of rows rejected (3 of 25; threshold 5%); the previous "
                               f"snapshot of county {C} (civil_roster_{C}_20260930.csv) stays in use")
    latest = result.staging.filter(pl.col("is_latest"))
    assert latest.height == 20 and set(latest["source_file"]) == {f"civil_roster_{C}_20260930.csv"}
    _conserved(result)


def test_first_snapshot_held_back_says_nothing_is_in_use(tmp_path):
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "civil_roster", C, AS_OF, "csv"), ROSTER_HEADER, _roster(10, bad=5))
    result = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    row = result.deliveries.row(0, named=True)
    assert row["status"] == "blocked" and "no earlier snapshot of county 371302 is in use" in row["message"]
    assert result.staging.height == 0


def test_structural_fault_holds_back_an_increment_too(tmp_path):
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER[:3],
              [[person_id(C, "19500101", 1), "某", "2026-10-01"]])
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    row = result.deliveries.row(0, named=True)
    assert row["status"] == "rejected" and "structural fault" in row["message"] and "信息来源" in row["message"]
    assert result.staging.height == 0 and row["rows_quarantined"] == 1


def _accept(tmp_path, monkeypatch, inbox, file_name: str, by: str = "王主任", note: str | None = "county split") -> int:
    monkeypatch.setenv("LOWINCOME_INBOX", str(inbox))
    monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.delenv("LOWINCOME_ENV", raising=False)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    argv = [file_name, "--by", by] + (["--note", note] if note else [])
    return accept_run(parser.parse_args(argv))


def test_shrunk_snapshot_is_held_back_until_accepted(tmp_path, monkeypatch, capsys):
    inbox = tmp_path / "inbox"
    work = tmp_path / "warehouse" / "work"
    old_rows, new_rows = _roster(100), _roster(65)  # a drop of 35%, above the default 20%
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 9, 30), "csv"), ROSTER_HEADER, old_rows)
    new = write_csv(delivery_path(inbox, "civil_roster", C, AS_OF, "csv"), ROSTER_HEADER, new_rows)

    held = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, work, today=TODAY)
    row = held.deliveries.filter(pl.col("file_name") == new.name).row(0, named=True)
    assert row["status"] == "blocked" and row["rows_quarantined"] == 65 and row["rows_accepted"] == 0
    assert "35.0% fewer than the 100" in row["message"] and "limit 20%" in row["message"]
    assert f"lowincome accept-snapshot {new.name}" in row["message"]
    assert set(held.staging.filter(pl.col("is_latest"))["source_file"]) == {f"civil_roster_{C}_20260930.csv"}
    assert held.quarantine.filter(pl.col("source_file") == new.name)["reasons"].str.contains("fewer than").all()
    _conserved(held)

    assert _accept(tmp_path, monkeypatch, inbox, new.name) == 0
    assert "accepted" in capsys.readouterr().out
    records = list(acceptance_dir(work).glob("*.json"))
    assert len(records) == 1 and json.loads(records[0].read_text())["by"] == "王主任"

    used = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, work, today=TODAY)
    row = used.deliveries.filter(pl.col("file_name") == new.name).row(0, named=True)
    assert row["status"] == "accepted" and row["rows_accepted"] == 65
    assert row["message"].startswith("accepted by 王主任 on ") and "despite a drop of 35.0%" in row["message"]
    latest = used.staging.filter(pl.col("is_latest"))
    assert latest.height == 65 and set(latest["source_file"]) == {new.name}
    _conserved(used)

    # accepting again records nothing new; another content under the same name needs a new acceptance
    assert _accept(tmp_path, monkeypatch, inbox, new.name) == 0
    assert len(list(acceptance_dir(work).glob("*.json"))) == 1
    write_csv(new, ROSTER_HEADER, _roster(64))
    again = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, work, today=TODAY)
    assert again.deliveries.filter(pl.col("file_name") == new.name)["status"][0] == "blocked"


def test_a_small_drop_is_not_held_back_and_the_policy_sets_the_limit(tmp_path):
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 9, 30), "csv"), ROSTER_HEADER, _roster(100))
    write_csv(delivery_path(inbox, "civil_roster", C, AS_OF, "csv"), ROSTER_HEADER, _roster(81))  # 19% fewer
    result = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    assert result.deliveries["status"].to_list() == ["accepted", "accepted"]
    assert result.staging.filter(pl.col("is_latest")).height == 81

    from lowincome.config import DEFAULT_POLICY
    from lowincome.rules.policy import load_policy

    strict = tmp_path / "policy.yaml"
    strict.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace("snapshot_shrink_share: 0.2", "snapshot_shrink_share: 0.1"),
                      encoding="utf-8")
    result = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, tmp_path / "work", today=TODAY, policy=load_policy(strict))
    assert result.deliveries["status"].to_list() == ["accepted", "blocked"]


@pytest.mark.parametrize(("name", "why"), [
    ("death_records_371302_20261031.csv", "increment"),
    ("civil_roster_371302_20261031.csv", "no such delivery"),
    ("../civil_roster_371302_20261031.csv", "not a delivery file name"),
])
def test_accept_snapshot_refuses_what_it_cannot_accept(tmp_path, monkeypatch, name, why):
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER, [])
    with pytest.raises(LowincomeError, match=why):
        _accept(tmp_path, monkeypatch, inbox, name)


def test_accept_snapshot_never_follows_a_link(tmp_path, monkeypatch):
    inbox = tmp_path / "inbox"
    outside = write_csv(tmp_path / "elsewhere.csv", ROSTER_HEADER, _roster(3))
    link = delivery_path(inbox, "civil_roster", C, AS_OF, "csv")
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    with pytest.raises(LowincomeError, match="symbolic links"):
        _accept(tmp_path, monkeypatch, inbox, link.name)


def test_an_unreadable_acceptance_record_is_ignored_with_a_warning(tmp_path):
    inbox = tmp_path / "inbox"
    work = tmp_path / "work"
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 9, 30), "csv"), ROSTER_HEADER, _roster(10))
    write_csv(delivery_path(inbox, "civil_roster", C, AS_OF, "csv"), ROSTER_HEADER, _roster(5))
    acceptance_dir(work).mkdir(parents=True)
    broken = acceptance_dir(work) / "20261101T000000_x.json"
    broken.write_text('{"feed": "civil_roster"')
    result = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, work, today=TODAY)
    assert result.deliveries["status"].to_list() == ["accepted", "blocked"]
    assert result.warnings == [f"acceptance record {broken} is unreadable and is ignored"]


def test_a_bad_policy_fails_the_ingest_step_at_once_in_one_line(tmp_path, monkeypatch):
    from dagster import materialize

    from assets.ingest import ingest_assets
    from pipelines.resources import LowincomeResource

    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "death_records", C, AS_OF, "csv"), DEATH_HEADER, [])
    policy = tmp_path / "policy.yaml"
    policy.write_text("default: [{effective_from: 2024-01-01, urban_dibao_standard_monthly: .nan}]\n", encoding="utf-8")
    asset = next(a for a in ingest_assets if a.key.path[-1] == "death_records")
    result = materialize([asset], partition_key=AS_OF.isoformat(), raise_on_error=False, resources={
        "lowincome": LowincomeResource(inbox=str(inbox), warehouse=str(tmp_path / "wh"), policy=str(policy))})
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    description = failure.step_failure_data.user_failure_data.description
    assert description.startswith(f"policy file {policy}") and "\n" not in description
    assert not (tmp_path / "wh" / "work" / "parsed").exists()  # failed before reading any file
