"""The nightly job on a hand-made inbox (no generator): all seven feeds, every format, published databases."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from lowincome.feeds import DEPARTMENT_FEEDS as FEEDS
from pipelines.definitions import defs

from .delivered import assert_every_row_accounted_for, count_rows
from .handmade import bad_check, delivery_path, person_id, write_csv, write_parquet, write_xlsx

DAY = date(2026, 10, 31)
A = person_id("371324", "19600101", 11)
B = person_id("371324", "19620202", 22)
C = person_id("371324", "19900303", 33)


def _inbox(root):
    inbox = root / "inbox"
    write_csv(delivery_path(inbox, "civil_roster", "371324", DAY, "csv"),
              ["身份证号", "行政区划代码", "家庭编号", "户主身份证号", "姓名", "与户主关系", "救助类型", "城乡类别",
               "保障状态", "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额", "备注"],
              [[A, "371324100200", "H001", A, "赵一", "本人", "低保", "农村", "在保", "2023/5/1", "", "2", "320.00", "760", "自由文本"],
               [B, "371324100200", "H001", A, "钱二", "配偶", "低保", "农村", "在保", "2023/5/1", "", "2", "320.00", "760", ""],
               [bad_check(C), "371324100200", "H002", bad_check(C), "孙三", "本人", "特困", "农村", "在保", "2023/5/1", "", "1", "0", "900", ""]],
              "gb18030")
    write_xlsx(delivery_path(inbox, "subsidy_payments", "371324", DAY, "xlsx"),
               ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"],
               [["P1", A, "赵一", "371324", "低保金", "2026-10", 760.0], ["P2", A, "赵一", "371324", "低保金", "2026-09", "760.00"]])
    write_parquet(delivery_path(inbox, "medical_claims", "371324", DAY, "parquet"),
                  ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用", "基本医保统筹支付",
                   "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"],
                  [["S1", C, "孙三", "371324", "2026-10-01", "住院", "50000.00", "30000.00", "5000.00", "0.00", "15000.00", "C34.9"],
                   ["S2", C, "孙三", "371324", "2026-10-02", "住院", "100.00", "50.00", "0.00", "0.00", "40.00", "C34.9"]])
    write_csv(delivery_path(inbox, "rural_monitoring", "371324", DAY, "csv"),
              ["行政区划代码", "户编号", "身份证号", "姓名", "与户主关系", "户类型", "监测对象类别", "主要风险类型", "识别监测时间",
               "风险是否消除", "风险消除时间", "家庭年人均纯收入"],
              [["371324100200", "R01", C, "孙三", "本人", "监测户", "突发严重困难户", "因病", "2026-03-01", "否", "", "5200"]],
              "utf-8-sig")
    write_csv(delivery_path(inbox, "disability_cert", "371324", DAY, "csv"),
              ["残疾人证号", "身份证号", "姓名", "行政区划代码", "残疾类别", "残疾等级", "发证日期", "证件状态", "注销日期"],
              [[B + "41", B, "钱二", "371324", "肢体", "一级", "2026-09-01", "正常", ""]])
    write_csv(delivery_path(inbox, "death_records", "371324", DAY, "csv"),
              ["身份证号", "姓名", "死亡日期", "信息来源"], [[A, "赵一", "2026-08-15", "殡葬火化"]])
    write_csv(delivery_path(inbox, "hrss_benefits", "371324", DAY, "csv"),
              ["身份证号", "姓名", "项目", "月份", "金额"], [[B, "钱二", "城镇职工养老金", "2026-10", "2,100.00"]])
    return inbox


@pytest.fixture()
def run_handmade(tmp_path, lowincome_env, monkeypatch):
    warehouse = lowincome_env(_inbox(tmp_path))
    monkeypatch.setenv("LOWINCOME_BLOCKING_SHARE", "0.5")
    result = defs.resolve_job_def("nightly").execute_in_process(partition_key=DAY.isoformat())
    assert result.success
    return warehouse


def test_handmade_inbox_publishes_every_feed(run_handmade, tmp_path):
    con = duckdb.connect(str(run_handmade / "lowincome.duckdb"), read_only=True)
    counts = {f: con.execute(f"SELECT count(*) FROM staging.{f}").fetchone()[0] for f in FEEDS}
    assert counts == {"civil_roster": 2, "subsidy_payments": 2, "rural_monitoring": 1, "medical_claims": 1,
                      "disability_cert": 1, "death_records": 1, "hrss_benefits": 1}
    # Conservation, counted independently: rows in the files (csv module, xlsx XML, Parquet metadata) against
    # the published rows, each (file, row) accepted or quarantined exactly once, and the delivery record agrees.
    files = {p.name: count_rows(p) for p in (tmp_path / "inbox").rglob("*") if p.is_file()}
    staged = [r for f in FEEDS for r in con.execute(f"SELECT source_file, source_row FROM staging.{f}").fetchall()]
    quarantined = con.execute("SELECT file_name, row_number FROM quarantine.rejected_rows").fetchall()
    assert_every_row_accounted_for(files, staged, quarantined)
    rows = con.execute("SELECT file_name, rows_read, rows_accepted, rows_quarantined FROM audit.deliveries").fetchall()
    assert len(rows) == 7 == len(files)
    for name, read, acc, quar in rows:
        accepted = sum(1 for f, _ in staged if f == name)
        assert (read, acc, quar) == (files[name], accepted, files[name] - accepted), name
    reasons = dict(con.execute("SELECT feed, reasons FROM quarantine.rejected_rows").fetchall())
    assert "check character" in reasons["civil_roster"]
    assert "医疗总费用" in reasons["medical_claims"]
    record = con.execute("SELECT record FROM quarantine.rejected_rows WHERE feed = 'civil_roster'").fetchone()[0]
    assert bad_check(C) not in record and "孙三" not in record and "孙*" in record
    # pseudonymous keys join across feeds: the certificate holder is the roster spouse.
    joined = con.execute(
        "SELECT count(*) FROM staging.disability_cert d JOIN staging.civil_roster r USING (person_key)"
    ).fetchone()[0]
    assert joined == 1
    run = con.execute("SELECT status, code_version FROM audit.runs").fetchall()
    assert run[0][0] == "success" and run[0][1]


def test_restricted_database_holds_identities(run_handmade):
    con = duckdb.connect()
    con.execute(f"ATTACH '{run_handmade / 'restricted.duckdb'}' AS restricted (READ_ONLY)")
    people = dict(con.execute("SELECT id_number, name FROM restricted.person_index").fetchall())
    assert people[A] == "赵一" and people[B] == "钱二"
    unmasked = con.execute("SELECT record FROM restricted.rejected_records WHERE feed = 'civil_roster'").fetchone()[0]
    assert bad_check(C) in unmasked
