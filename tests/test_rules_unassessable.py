"""Unknown is not absent (rules.md): a person whose row in the newest snapshot was quarantined is not flagged by a
rule that fires on the absence of a record, and is counted as not assessable, per rule and county."""

from __future__ import annotations

from datetime import date

import polars as pl

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY
from lowincome.feeds import DEPARTMENT_FEEDS
from lowincome.ingest import ingest_feed
from lowincome.rules.engine import evaluate, quarantined_sql
from lowincome.keys import pseudonym
from lowincome.rules.lifecycle import _with_not_assessable, carried_flags
from lowincome.rules.policy import load_policy
from lowincome.workstore import WorkStore

from .handmade import delivery_path, person_id, write_csv

AS_OF = date(2026, 10, 31)
C = "371302"
PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]
CERT_HEADER = ["残疾人证号", "身份证号", "姓名", "行政区划代码", "残疾类别", "残疾等级", "发证日期", "证件状态", "注销日期"]
ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型", "城乡类别", "保障状态",
                 "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]
RURAL_HEADER = ["行政区划代码", "户编号", "身份证号", "姓名", "与户主关系", "户类型", "监测对象类别", "主要风险类型", "识别监测时间",
                "风险是否消除", "风险消除时间", "家庭年人均纯收入"]

UNKNOWN_CERT = person_id(C, "19700101", 11)   # care subsidy; certificate row quarantined (level 九级)
NO_CERT = person_id(C, "19700102", 13)        # care subsidy; no certificate row at all: R02
UNKNOWN_ROSTER = person_id(C, "19700103", 15)  # member of a 监测户; civil-roster row quarantined (status 待定)
UNCOVERED = person_id(C, "19700104", 17)      # member of another 监测户, on no roster: W03
ON_DIBAO = person_id(C, "19700105", 19)       # on the roster, keeps the snapshot mostly valid


def stage(inbox, work) -> tuple[dict, dict]:
    store = WorkStore(work, run_id="test")
    paths, manifests = {}, {}
    for feed, spec in DEPARTMENT_FEEDS.items():
        result = ingest_feed(spec, inbox, AS_OF, store.root, blocking_share=1.0)
        paths[feed] = store.write(AS_OF, "staging", feed, result.staging)
        manifests[feed] = result.parts
    return paths, quarantined_sql(manifests, store.root)


def test_quarantined_rows_make_persons_not_assessable_and_counted(tmp_path):
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, "subsidy_payments", C, date(2026, 9, 20), "csv"), PAY_HEADER, [
        ["P1", UNKNOWN_CERT, "甲", C, "重度残疾人护理补贴", "2026-08", "90.00"],
        ["P2", UNKNOWN_CERT, "甲", C, "重度残疾人护理补贴", "2026-09", "90.00"],
        ["P3", NO_CERT, "乙", C, "重度残疾人护理补贴", "2026-08", "90.00"],
        ["P4", NO_CERT, "乙", C, "重度残疾人护理补贴", "2026-09", "90.00"],
    ])
    write_csv(delivery_path(inbox, "disability_cert", C, date(2026, 10, 31), "csv"), CERT_HEADER, [
        [UNKNOWN_CERT + "41", UNKNOWN_CERT, "甲", C, "肢体", "九级", "2015-01-01", "正常", ""],
        [ON_DIBAO + "41", ON_DIBAO, "戊", C, "肢体", "一级", "2015-01-01", "正常", ""],  # the snapshot stays in use
    ])
    write_csv(delivery_path(inbox, "civil_roster", C, date(2026, 10, 31), "csv"), ROSTER_HEADER, [
        [C + "001001", "H1", UNKNOWN_ROSTER, UNKNOWN_ROSTER, "丙", "本人", "低保", "农村", "待定", "2020-01-01", "", "1", "300", "400"],
        [C + "001002", "H2", ON_DIBAO, ON_DIBAO, "戊", "本人", "低保", "城市", "在保", "2020-01-01", "", "1", "300", "400"],
    ])
    write_csv(delivery_path(inbox, "rural_monitoring", C, date(2026, 10, 31), "csv"), RURAL_HEADER, [
        [C + "001001", "R1", UNKNOWN_ROSTER, "丙", "本人", "监测户", "边缘易致贫户", "因病", "2023-05-10", "否", "", "5000.00"],
        [C + "001003", "R2", UNCOVERED, "丁", "本人", "监测户", "边缘易致贫户", "因病", "2023-05-10", "否", "", "5000.00"],
    ])
    paths, quarantined = stage(inbox, tmp_path / "wh")
    assert set(quarantined) == {"disability_cert", "civil_roster"}
    ev = evaluate(paths, load_policy(DEFAULT_POLICY), AS_OF, DEV_PSEUDONYM_KEY, quarantined=quarantined)
    flags = ev.flags.join(ev.subjects.select("flag_id", "id_number", "household_id"), on="flag_id")
    r02 = flags.filter(pl.col("rule_id") == "R02")
    assert r02["id_number"].to_list() == [NO_CERT]
    w03 = flags.filter(pl.col("rule_id") == "W03")
    assert w03["household_id"].to_list() == ["R2"]
    counts = {(r["rule_id"], r["county_code"]): r["n"]
              for r in ev.not_assessable.group_by("rule_id", "county_code").agg(pl.len().alias("n")).iter_rows(named=True)}
    assert counts == {("R02", C): 1, ("W03", C): 1}
    assert pseudonym(DEV_PSEUDONYM_KEY, UNKNOWN_CERT) in ev.not_assessable["subject_key"].to_list()


    # without the quarantine (the previous behaviour) both would have been flagged
    blind = evaluate(paths, load_policy(DEFAULT_POLICY), AS_OF, DEV_PSEUDONYM_KEY)
    assert blind.flags.filter(pl.col("rule_id") == "R02").height == 2
    assert blind.flags.filter(pl.col("rule_id") == "W03").height == 2

    # a flag raised on an earlier day, whose subject is not assessable today, is carried, not resolved
    previous = blind.flags.with_columns(pl.lit(False).alias("carried"), pl.lit(None, dtype=pl.String).alias("stale_feeds"))
    carried = carried_flags(previous, ev.flags["flag_id"], AS_OF, None, ev.not_assessable)
    assert sorted(zip(carried["rule_id"], carried["stale_feeds"])) == [("R02", "quarantined_row"), ("W03", "quarantined_row")]
    assert pseudonym(DEV_PSEUDONYM_KEY, UNKNOWN_CERT) in carried["subject_key"].to_list()

    # the county summary counts them, with a row of its own where the rule raised nothing there
    summary = pl.DataFrame({"county_code": [C], "rule_id": ["R02"], "rule_name": ["care_subsidy_ineligible"],
                            "kind": ["review"], "level": ["橙"], "open_flags": [1]})
    out = _with_not_assessable(summary, ev.not_assessable).sort("rule_id")
    assert out.select("rule_id", "open_flags", "not_assessable").rows() == [("R02", 1, 1), ("W03", 0, 1)]
