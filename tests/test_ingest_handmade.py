"""Ingestion on hand-made deliveries (not written by the generator): every bad kind, every messy kind."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed

from .delivered import assert_every_row_accounted_for, count_rows
from .handmade import bad_check, delivery_path, person_id, write_csv, write_parquet, write_xlsx

AS_OF = date(2026, 10, 31)
FILE_DAY = date(2026, 10, 31)
A = person_id("371302", "19800101", 11)
B = person_id("371302", "19850512", 22)
C = person_id("371302", "19700303", 33)
X_ID = person_id("371302", "19660101", 101)  # chosen below so that some end in X
LEGACY_BIRTH_ID = person_id("371302", "19550607", 43)
LEGACY15 = LEGACY_BIRTH_ID[:6] + LEGACY_BIRTH_ID[8:17]

CLAIMS_HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用",
                 "基本医保统筹支付", "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]


def _claim(sid, pid, when="2026-10-01", total="100.00", parts=("60.00", "0", "10.00", "30.00"), visit="住院"):
    return [sid, pid, "张三", "371302001001", when, visit, total, *parts, "C34.9"]


def _id_ending_x() -> str:
    for seq in range(1, 999):
        pid = person_id("371302", "19660101", seq)
        if pid.endswith("X"):
            return pid
    raise AssertionError("no X check character found")


def _reasons(result, file_name: str, row: int) -> str:
    q = result.quarantine.filter((pl.col("source_file") == file_name) & (pl.col("source_row") == row))
    assert q.height == 1, f"row {row} of {file_name} is not quarantined"
    return q["reasons"][0]


def _conserved(result, inbox, unread: tuple[str, ...] = ()) -> None:
    """Every row of every delivered file is accepted or quarantined exactly once; the delivery record agrees.

    The delivered side is counted from the files with other readers than the pipeline's (tests/delivered.py),
    not taken from `rows_read`. `unread` names files rejected whole before their rows are read (bad name,
    undetectable encoding): they must leave no row anywhere and say so in their delivery record.
    Checked that it can fail (then restored): dropping a row right after reading (`read_delivery(...)
    .frame.head(-1)`) makes every test calling it fail; the accounting itself is tested in test_delivered.py.
    """
    files = sorted(p for p in (inbox / result.feed).iterdir() if p.is_file())
    delivered = {p.name: count_rows(p) for p in files if p.name not in unread}
    staged = list(zip(result.staging["source_file"], result.staging["source_row"]))
    quarantined = list(zip(result.quarantine["source_file"], result.quarantine["source_row"]))
    assert_every_row_accounted_for(delivered, staged, quarantined)
    record = {r["file_name"]: r for r in result.deliveries.iter_rows(named=True)}
    assert set(record) == {p.name for p in files}, "one delivery record per file"
    for name, rows in delivered.items():
        accepted = sum(1 for f, _ in staged if f == name)
        got = (record[name]["rows_read"], record[name]["rows_accepted"], record[name]["rows_quarantined"])
        assert got == (rows, accepted, rows - accepted), name
    for name in unread:
        assert record[name]["status"] == "rejected" and record[name]["message"], name
        assert (record[name]["rows_read"], record[name]["rows_accepted"], record[name]["rows_quarantined"]) == (0, 0, 0)


@pytest.fixture()
def inbox(tmp_path):
    return tmp_path / "inbox"


def test_claims_bad_rows_each_get_their_reason(inbox, tmp_path):
    x_id = _id_ending_x()
    rows = [
        _claim("S1", A),  # 1 fine
        _claim("S2", bad_check(B)),  # 2 wrong check character
        _claim("S3", A[:17]),  # 3 wrong length
        _claim("S4", "371302" + "19901301" + "0011"),  # 4 impossible birth date (month 13) + any check char
        _claim("S5", "3.71302E+17"),  # 5 float-mangled
        _claim("S6", A, total="-5.00", parts=("-5.00", "0", "0", "0")),  # 6 negative
        _claim("S7", A, total="100.00", parts=("60.00", "0", "10.00", "29.98")),  # 7 parts do not sum
        _claim("S8", A, visit="急诊"),  # 8 unknown enum
        _claim("S9", A, when="2026-02-30"),  # 9 not a real date
        _claim("S10", A, when="不详"),  # 10 unparseable date
        _claim("S11", A, when="2026-11-05"),  # 11 after the extraction date
        _claim("S1", A),  # 12 duplicate settlement_id within the file
        _claim("S13", "  " + x_id[:-1] + "x "),  # 13 messy but valid: spaces + lowercase x
        _claim("S14", "".join(chr(ord(ch) + 0xFEE0) if ch.isdigit() else ch for ch in C)),  # 14 full-width digits
        _claim("S15", LEGACY15),  # 15 legacy 15-digit
        _claim("S16", A, when="2026/9/3", total="1,234.50", parts=("1,000.00", "0", "0", "234.50")),  # 16 messy valid
        _claim("S17", A, when="20260903"),  # 17
        _claim("S18", A, when="2026年9月3日"),  # 18
    ]
    f = write_csv(delivery_path(inbox, "medical_claims", "371302", FILE_DAY, "csv"), CLAIMS_HEADER, rows, "gb18030")
    result = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    name = f.name
    assert "身份证号: check character does not match" in _reasons(result, name, 2)
    assert "身份证号: wrong length" in _reasons(result, name, 3)
    assert "身份证号: impossible birth date" in _reasons(result, name, 4)
    assert "身份证号: looks like an Excel number" in _reasons(result, name, 5)
    assert "negative amount" in _reasons(result, name, 6)
    assert "医疗总费用: does not equal" in _reasons(result, name, 7)
    assert "就诊类型: unknown value '急诊'" in _reasons(result, name, 8)
    assert "结算日期: not a real calendar date" in _reasons(result, name, 9)
    assert "结算日期: not a recognised date format" in _reasons(result, name, 10)
    assert "结算日期: date lies after the file's extraction date" in _reasons(result, name, 11)
    assert "duplicate" in _reasons(result, name, 12) and "row 1" in _reasons(result, name, 12)
    accepted = result.staging.sort("source_row")
    assert accepted["source_row"].to_list() == [1, 13, 14, 15, 16, 17, 18]
    ids = dict(zip(accepted["source_row"], accepted["id_number"]))
    assert ids[13] == x_id and ids[14] == C and ids[15] == LEGACY_BIRTH_ID
    amounts = dict(zip(accepted["source_row"], accepted["total_cost"]))
    assert str(amounts[16]) == "1234.50"
    dates = set(accepted.filter(pl.col("source_row") >= 16)["settled_on"].to_list())
    assert dates == {date(2026, 9, 3)}
    assert result.deliveries["format"][0] == "gb18030"
    _conserved(result, inbox)
    # No reason ever quotes an ID number.
    for reason in result.quarantine["reasons"]:
        assert A not in reason and B[:17] not in reason


def test_redelivery_under_another_name_is_not_double_counted(inbox, tmp_path):
    rows = [_claim(f"S{i}", A, when="2026-09-01") for i in range(1, 6)]
    first = write_csv(delivery_path(inbox, "medical_claims", "371302", date(2026, 9, 30), "csv"), CLAIMS_HEADER, rows)
    write_csv(delivery_path(inbox, "medical_claims", "371302", date(2026, 10, 31), "csv"), CLAIMS_HEADER, rows, "utf-8-sig")
    result = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    assert result.staging.height == 5
    assert set(result.staging["source_file"]) == {first.name}
    assert result.quarantine.height == 5
    assert all(first.name in r for r in result.quarantine["reasons"])
    _conserved(result, inbox)
    # Running again (cache warm) gives the same answer.
    again = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    assert again.staging.equals(result.staging) and again.quarantine.equals(result.quarantine)


def test_files_after_as_of_are_not_read(inbox, tmp_path):
    write_csv(delivery_path(inbox, "medical_claims", "371302", date(2026, 11, 30), "csv"), CLAIMS_HEADER, [_claim("S1", A)])
    result = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0,
                         today=date(2026, 12, 1))
    # accounted for, not read: left for the run of its day
    assert result.deliveries.height == 1 and result.staging.height == 0 and result.deliveries["rows_read"][0] == 0
    assert result.deliveries["status"][0] == "later" and "later run" in result.deliveries["message"][0]


def test_corrected_file_with_same_name_replaces_rows(inbox, tmp_path):
    path = delivery_path(inbox, "medical_claims", "371302", FILE_DAY, "csv")
    write_csv(path, CLAIMS_HEADER, [_claim("S1", bad_check(A)), _claim("S2", A)])
    first = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    assert first.staging.height == 1 and first.quarantine.height == 1
    write_csv(path, CLAIMS_HEADER, [_claim("S1", A), _claim("S2", A)])
    second = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    assert second.staging.height == 2 and second.quarantine.height == 0
    assert first.deliveries["sha256"][0] != second.deliveries["sha256"][0]


ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型",
                 "城乡类别", "保障状态", "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]


def test_roster_xlsx_with_numeric_id_cell_and_status_rules(inbox, tmp_path):
    rows = [
        ["371302001001", "H1", A, A, "张三", "本人", "低保", "城市", "在保", "2024-01-01", None, "2", "300", "800"],
        ["371302001001", "H1", A, B, "李四", "配偶", "低保", "城市", "在保", "2024-01-01", None, "2", "300", "800"],
        ["371302001001", "H2", C, int(C) if C[-1] != "X" else float(C[:-1]), "王五", "本人", "特困", "农村", "在保",
         "2024-01-01", None, 1, 500.0, 900],  # ID stored as a number cell: digits lost
        ["371302001001", "H3", C, C, "王五", "本人", "五保", "农村", "在保", "2024-01-01", None, "1", "0", "0"],  # unknown enum
        ["371302001001", "H4", A, A, "张三", "本人", "低保", "城市", "停保", "2024-01-01", None, "1", "0", "0"],  # 停保 without date
        ["371302001001", "H5", A, A, "张三", "本人", "低保", "城市", "在保", "2024-01-01", "2025-01-01", "1", "0", "0"],  # date but 在保
        ["371302001001", "H1", A, B, "李四", "配偶", "低保", "城市", "在保", "2024-01-01", None, "2", "300", "800"],  # dup in snapshot
        ["371302001001", "H6", A, A, "张三", "本人", "低保", "城市", "在保", "2024-01-01", None, "0", "0", "0"],  # size 0
    ]
    f = write_xlsx(delivery_path(inbox, "civil_roster", "371302", FILE_DAY, "xlsx"), ROSTER_HEADER, rows)
    result = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    assert sorted(result.staging["source_row"].to_list()) == [1, 2]
    assert "身份证号:" in _reasons(result, f.name, 3)
    assert "救助类型: unknown value '五保'" in _reasons(result, f.name, 4)
    assert "停保日期: missing although 保障状态 is 停保" in _reasons(result, f.name, 5)
    assert "停保日期: present although" in _reasons(result, f.name, 6)
    assert "duplicate" in _reasons(result, f.name, 7)
    assert "家庭人口数: must be at least 1" in _reasons(result, f.name, 8)
    assert result.deliveries["format"][0] == "xlsx"
    _conserved(result, inbox)


CERT_HEADER = ["残疾人证号", "身份证号", "姓名", "行政区划代码", "残疾类别", "残疾等级", "发证日期", "证件状态", "注销日期"]


def test_certificate_number_must_be_id_category_level(inbox, tmp_path):
    rows = [
        [A + "52", A, "张三", "371302", "智力", "二级", "2026-01-05", "正常", None],
        [A + "41", A, "张三", "371302", "智力(5)", "一级", "2026-01-05", "正常", None],  # category mismatch
        [B + "4", B, "李四", "371302", "4", "1", "2026-01-05", "正常", None],  # 19 chars
        [C + "63", C, "王五", "371302", "精神(6)", "3", "2026-01-05", "注销", "2026-03-01"],
        [C + "63", C, "王五", "371302", "精神(6)", "3", "2026-01-05", "正常", "2026-03-01"],  # revoked date but 正常
    ]
    f = write_parquet(delivery_path(inbox, "disability_cert", "371302", FILE_DAY, "parquet"), CERT_HEADER, rows)
    result = ingest_feed(FEEDS["disability_cert"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    assert "残疾人证号: is not the holder's 身份证号" in _reasons(result, f.name, 2)
    assert "残疾人证号: not 20 characters" in _reasons(result, f.name, 3)
    assert "注销日期: present although" in _reasons(result, f.name, 5)
    ok = result.staging.sort("source_row")
    assert ok["source_row"].to_list() == [1, 4]
    assert ok["disability_category_code"].to_list() == [5, 6]
    assert ok["disability_level_code"].to_list() == [2, 3]
    _conserved(result, inbox)


PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]


def test_payments_duplicate_across_files_and_nonpositive_amount(inbox, tmp_path):
    write_csv(delivery_path(inbox, "subsidy_payments", "371302", date(2026, 9, 30), "csv"), PAY_HEADER,
              [["P1", A, "张三", "371302", "低保金", "2026-09", "800.00"]])
    f2 = write_csv(delivery_path(inbox, "subsidy_payments", "371302", FILE_DAY, "csv"), PAY_HEADER,
                   [["P1", A, "张三", "371302", "低保金", "2026-10", "800.00"],
                    ["P2", A, "张三", "371302", "低保金", "2026-10", "0"],
                    ["P3", A, "张三", "371302", "低保金", "2026年10月", "800"],
                    ["P4", A, "张三", "371302", "低保金", "2026-11", "800"]],
                   "utf-8-sig")
    result = ingest_feed(FEEDS["subsidy_payments"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    assert "发放流水号" in _reasons(result, f2.name, 1) and "duplicate" in _reasons(result, f2.name, 1)
    assert "金额: must be greater than 0" in _reasons(result, f2.name, 2)
    assert "发放月份: month lies after" in _reasons(result, f2.name, 4)
    assert sorted(result.staging["payment_id"].to_list()) == ["P1", "P3"]
    _conserved(result, inbox)


def test_file_level_problems_are_reported_per_file(inbox, tmp_path):
    folder = inbox / "death_records"
    folder.mkdir(parents=True)
    (folder / "death_records_371302_20261001.csv").write_bytes(b"")
    (folder / "death_records_371302_20261002.csv").write_text("身份证号,姓名,死亡日期,信息来源\n", encoding="utf-8")
    (folder / "death_records_371302_20261003.csv").write_bytes("身份证号,姓名,死亡日期\n".encode("utf-16-le") + b"\x00\xd8\x00\xdc")
    write_csv(folder / "death_records_371302_20261004.csv", ["身份证号", "姓名", "死亡日期"], [[A, "张三", "2026-09-01"]])
    (folder / "deaths.csv").write_text("身份证号,姓名,死亡日期,信息来源\n", encoding="utf-8")
    write_csv(folder / "death_records_371302_20261005.csv", ["身份证号", "姓名", "死亡日期", "信息来源"],
              [[A, "张三", "2026-09-01", "殡葬火化"], [A, "张三", "2026-09-03", "公安户籍注销"]])
    result = ingest_feed(FEEDS["death_records"], inbox, AS_OF, tmp_path / "work", blocking_share=1.0)
    d = {r["file_name"]: r for r in result.deliveries.iter_rows(named=True)}
    assert d["death_records_371302_20261001.csv"]["status"] == "rejected"
    assert "empty" in d["death_records_371302_20261001.csv"]["message"]
    assert "no data rows" in d["death_records_371302_20261002.csv"]["message"]
    assert "encoding" in d["death_records_371302_20261003.csv"]["message"]
    missing = d["death_records_371302_20261004.csv"]
    assert missing["status"] == "rejected" and "信息来源" in missing["message"]
    assert missing["rows_read"] == 1 and missing["rows_quarantined"] == 1
    assert "file name" in d["deaths.csv"]["message"]
    assert d["death_records_371302_20261005.csv"]["rows_accepted"] == 2  # two sources: both kept
    _conserved(result, inbox, unread=("death_records_371302_20261003.csv", "deaths.csv"))


def test_an_increment_failing_often_still_contributes_its_valid_rows(inbox, tmp_path):
    """feeds.md "Holding back a file (clarified)": an increment's valid rows are always used."""
    good = [_claim(f"G{i}", A) for i in range(19)]
    write_csv(delivery_path(inbox, "medical_claims", "371302", FILE_DAY, "csv"), CLAIMS_HEADER, good + [_claim("B1", bad_check(A))])
    ok = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=0.05)
    assert ok.staging.height == 19 and ok.deliveries["status"][0] == "partly_quarantined"  # 1/20 = 5%: not above
    write_csv(delivery_path(inbox, "medical_claims", "371302", FILE_DAY, "csv"), CLAIMS_HEADER,
              good[:18] + [_claim("B1", bad_check(A)), _claim("B2", bad_check(B))])
    used = ingest_feed(FEEDS["medical_claims"], inbox, AS_OF, tmp_path / "work", blocking_share=0.05)
    assert used.staging.height == 18 and used.quarantine.height == 2
    assert sorted(used.staging["settlement_id"]) == sorted(f"G{i}" for i in range(18))
    row = used.deliveries.row(0, named=True)
    assert row["status"] == "partly_quarantined" and "10.0%" in row["message"] and "increment" in row["message"]
    assert "always used" in row["message"]
    assert not any("held back" in r for r in used.quarantine["reasons"])
    _conserved(used, inbox)


def test_blocked_snapshot_keeps_the_previous_snapshot_current(inbox, tmp_path):
    header = ["身份证号", "姓名", "死亡日期", "信息来源"]
    rows = [[A, "张三", "2026-09-01", "殡葬火化"]]
    write_csv(delivery_path(inbox, "death_records", "371302", FILE_DAY, "csv"), header, rows)
    old = [["371302", "H1", A, A, "张三", "本人", "低保", "城市", "在保", "2024-01-01", None, "1", "300", "800"]]
    write_csv(delivery_path(inbox, "civil_roster", "371302", date(2026, 9, 30), "csv"), ROSTER_HEADER, old)
    bad = [["371302", "H1", bad_check(A), bad_check(A), "张三", "本人", "低保", "城市", "在保", "2024-01-01", None, "1", "300", "800"]]
    write_csv(delivery_path(inbox, "civil_roster", "371302", FILE_DAY, "csv"), ROSTER_HEADER, bad)
    result = ingest_feed(FEEDS["civil_roster"], inbox, AS_OF, tmp_path / "work")
    latest = result.staging.filter(pl.col("is_latest"))
    assert latest.height == 1 and latest["source_file"][0] == "civil_roster_371302_20260930.csv"
