"""mart.rule_effectiveness and mart.household_timeline (issue 11): handmade nights whose expected rows are
counted by hand here, independently of the SQL that builds the marts."""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from lowincome.config import DEV_PSEUDONYM_KEY
from lowincome.marts import rule_effectiveness_sql
from lowincome.keys import pseudonym
from lowincome.rules.catalog import BY_ID
from pipelines.definitions import defs

from .handmade import delivery_path, person_id, write_csv

C = "371302"
ROSTER_HEADER = ["行政区划代码", "家庭编号", "户主身份证号", "身份证号", "姓名", "与户主关系", "救助类型", "城乡类别", "保障状态",
                 "纳入日期", "停保日期", "家庭人口数", "家庭月人均收入", "月救助金额"]
PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]
OUTCOME_HEADER = ["flag_id", "outcome", "note", "decided_on", "caseworker"]
CLAIM_HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用", "基本医保统筹支付",
                "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]
CERT_HEADER = ["残疾人证号", "身份证号", "姓名", "行政区划代码", "残疾类别", "残疾等级", "发证日期", "证件状态", "注销日期"]
DEATH_HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
HRSS_HEADER = ["身份证号", "姓名", "项目", "月份", "金额"]


def run(day: date) -> None:
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def key(value: str) -> str:
    return pseudonym(DEV_PSEUDONYM_KEY, value)


def household(hid: str) -> str:
    return key(f"household:{C}:{hid}")


def query(warehouse, sql: str) -> pl.DataFrame:
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        return pl.from_arrow(con.sql(sql).to_arrow_table())


# ---- rule effectiveness ------------------------------------------------------------------------

A = person_id(C, "19700101", 31)  # household stopped in June, paid in August: R07, dismissed on night 2
B = person_id(C, "19750202", 33)  # 在保 in two households: R06, confirmed on night 2 (1 day)
G = person_id(C, "19760303", 35)  # 在保 in two households: R06, confirmed on 10-20 (19 days)
K = person_id(C, "19770404", 37)  # 在保 in two households: R06, never decided: overdue by 10-20
C2 = "371324"
M = person_id(C2, "19780505", 39)  # 在保 in two households of another county from November: R06 raised there in November
D1, D2, D3, D4 = date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 20), date(2026, 11, 5)


def member(hid: str, pid: str, name: str, enrolled: str, status: str = "在保", ended: str = "", county: str = C) -> list[str]:
    return [county + "001001", hid, pid, pid, name, "本人", "低保", "城市", status, enrolled, ended, "1", "300", "400"]


def _roster() -> list[list[str]]:

    rows = [member("H1", A, "甲", "2020-01-01", "停保", "2026-06-30"),
            member("H2", B, "乙", "2021-01-01"), member("H3", B, "乙", "2026-09-01"),
            member("H4", G, "丙", "2021-01-01"), member("H5", G, "丙", "2026-09-01"),
            member("H6", K, "丁", "2021-01-01"), member("H7", K, "丁", "2026-09-01")]
    return rows


def _flag_ids(warehouse) -> dict[str, str]:
    """subject key → flag id of the R06 / R07 flags (the scenario's, by whom they are about)."""
    rows = query(warehouse, "SELECT rule_id, subject_key, flag_id FROM mart.flags WHERE rule_id IN ('R06', 'R07')")
    return {r["subject_key"]: r["flag_id"] for r in rows.iter_rows(named=True)}


def _flag_of(ids: dict[str, str], pid: str, hid: str | None = None) -> str:
    return ids.get(key(pid)) or ids[household(hid)]  # R07 may be a household flag (issue 11, "one flag")


def _effectiveness(frame: pl.DataFrame) -> dict[tuple, dict]:
    cols = ["raised", "confirmed", "dismissed", "open", "overdue", "resolved_undecided", "confirmed_rate",
            "median_days_to_decision"]
    return {(r["rule_id"], r["county_code"], r["month_raised"]): {c: r[c] for c in cols}
            for r in frame.filter(pl.col("rule_id").is_in(["R06", "R07"])).iter_rows(named=True)}


def test_rule_effectiveness_over_four_nights_with_outcomes(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    write_csv(delivery_path(inbox, "civil_roster", C, D1, "csv"), ROSTER_HEADER, _roster())
    write_csv(delivery_path(inbox, "subsidy_payments", C, D1, "csv"), PAY_HEADER, [["P1", A, "甲", C, "低保金", "2026-08", "400.00"]])
    run(D1)
    ids = _flag_ids(warehouse)
    f_a, f_b, f_g, f_k = _flag_of(ids, A, "H1"), ids[key(B)], ids[key(G)], ids[key(K)]

    write_csv(delivery_path(inbox, "verification_outcomes", C, D2, "csv"), OUTCOME_HEADER,
              [[f_a, "dismissed", "", D2.isoformat(), "王五"], [f_b, "confirmed", "", D2.isoformat(), "王五"]])
    run(D2)
    # as of night 2 only B and A are decided: G's confirmation (dated 10-20) does not count yet
    oct_ = date(2026, 10, 1)
    assert _effectiveness(query(warehouse, "SELECT * FROM mart.rule_effectiveness")) == {
        ("R06", C, oct_): {"raised": 3, "confirmed": 1, "dismissed": 0, "open": 2, "overdue": 0, "resolved_undecided": 0,
                           "confirmed_rate": 1.0, "median_days_to_decision": 1.0},
        ("R07", C, oct_): {"raised": 1, "confirmed": 0, "dismissed": 1, "open": 0, "overdue": 0, "resolved_undecided": 0,
                           "confirmed_rate": 0.0, "median_days_to_decision": 1.0},
    }
    write_csv(delivery_path(inbox, "verification_outcomes", C, D3, "csv"), OUTCOME_HEADER,
              [[f_g, "confirmed", "", D3.isoformat(), "王五"]])
    run(D3)
    # county C's deliveries stay as they were (a new roster would change the evidence of the dismissed R07 flag)
    write_csv(delivery_path(inbox, "civil_roster", C2, D4, "csv"), ROSTER_HEADER,
              [member("H8", M, "戊", "2021-01-01", county=C2), member("H9", M, "戊", "2026-10-15", county=C2)])
    run(D4)

    nov = date(2026, 11, 1)
    published = _effectiveness(query(warehouse, "SELECT * FROM mart.rule_effectiveness"))
    assert published == {
        # B confirmed after 1 day, G after 19: median 10; K open and overdue (35 days undecided)
        ("R06", C, oct_): {"raised": 3, "confirmed": 2, "dismissed": 0, "open": 1, "overdue": 1, "resolved_undecided": 0,
                        "confirmed_rate": 1.0, "median_days_to_decision": 10.0},
        ("R06", C2, nov): {"raised": 1, "confirmed": 0, "dismissed": 0, "open": 1, "overdue": 0, "resolved_undecided": 0,
                       "confirmed_rate": None, "median_days_to_decision": None},
        ("R07", C, oct_): {"raised": 1, "confirmed": 0, "dismissed": 1, "open": 0, "overdue": 0, "resolved_undecided": 0,
                           "confirmed_rate": 0.0, "median_days_to_decision": 1.0},
    }
    assert query(warehouse, "SELECT DISTINCT as_of FROM mart.rule_effectiveness")["as_of"].to_list() == [D4]
    # the run report shows it: a chart with each rule's confirmed rate, and a row per rule over all counties
    page = max((warehouse / "reports").glob("run_2026-11-05_*.html")).read_text(encoding="utf-8")
    section = page[page.index("规则成效 Rule effectiveness"):]
    assert "aria-label='Rule effectiveness: cases by outcome, confirmed rate'" in section
    assert "100% confirmed" in section and "0% confirmed" in section
    r06 = section[section.index("<td>R06 "):].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in r06.split("<td class=\"num\">")[1:]]
    assert cells[:8] == ["4", "2", "0", "2", "1", "0", "100.0%", "10.0"]  # raised ... rate, slowest median
    names = query(warehouse, "SELECT DISTINCT rule_id, rule_name_zh FROM mart.rule_effectiveness WHERE rule_id = 'R06'")
    assert names["rule_name_zh"].to_list() == [BY_ID["R06"].name_zh] and BY_ID["R06"].name_zh


# ---- household timeline ------------------------------------------------------------------------

P1 = person_id(C, "19600101", 11)  # head of H1 (在保 低保): pension, payments
P2 = person_id(C, "19620202", 13)  # spouse in H1: certificate, care subsidy, claims
P3 = person_id(C, "19400303", 15)  # H2, stopped in June, died in September
Q = person_id(C, "19900404", 17)  # on no roster: a large claim, a household of their own
T1, T2 = date(2026, 10, 31), date(2026, 11, 1)
NAMES = ("赵大", "钱二", "孙三", "李四")


def _timeline_inbox(inbox):
    write_csv(delivery_path(inbox, "civil_roster", C, T1, "csv"), ROSTER_HEADER, [
        [C + "001001", "H1", P1, P1, "赵大", "本人", "低保", "城市", "在保", "2024-03-01", "", "2", "300", "800"],
        [C + "001001", "H1", P1, P2, "钱二", "配偶", "低保", "城市", "在保", "2024-03-01", "", "2", "300", "800"],
        [C + "001002", "H2", P3, P3, "孙三", "本人", "低保", "农村", "停保", "2020-01-01", "2026-06-30", "1", "300", "400"],
    ])
    write_csv(delivery_path(inbox, "subsidy_payments", C, T1, "csv"), PAY_HEADER, [
        ["Y1", P1, "赵大", C, "低保金", "2026-08", "400.00"],
        ["Y2", P1, "赵大", C, "低保金", "2026-08", "400.00"],
        ["Y3", P1, "赵大", C, "低保金", "2026-09", "800.00"],
        ["Y4", P2, "钱二", C, "重度残疾人护理补贴", "2026-09", "100.00"],
    ])
    write_csv(delivery_path(inbox, "medical_claims", C, T1, "csv"), CLAIM_HEADER, [
        ["S1", P2, "钱二", C, "2026-09-10", "住院", "40000.00", "28000.00", "0.00", "0.00", "12000.00", "C34.9"],
        ["S2", P2, "钱二", C, "2026-09-20", "普通门诊", "900.00", "400.00", "0.00", "0.00", "500.00", "J06.9"],
        ["S3", Q, "李四", C, "2026-07-01", "住院", "50000.00", "35000.00", "0.00", "0.00", "15000.00", "I21.9"],
    ])
    write_csv(delivery_path(inbox, "disability_cert", C, T1, "csv"), CERT_HEADER,
              [[P2 + "41", P2, "钱二", C + "001001", "肢体", "一级", "2025-05-01", "正常", ""]])
    write_csv(delivery_path(inbox, "death_records", C, T1, "csv"), DEATH_HEADER, [[P3, "孙三", "2026-09-15", "公安户籍注销"]])
    write_csv(delivery_path(inbox, "hrss_benefits", C, T1, "csv"), HRSS_HEADER, [
        [P1, "赵大", "城镇职工养老金", "2026-07", "1,000.00"],
        [P1, "赵大", "城镇职工养老金", "2026-08", "1,000.00"],
        [P1, "赵大", "城镇职工养老金", "2026-09", "1,200.00"],
    ])


def test_household_timeline_from_every_department(lowincome_env, tmp_path):
    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    _timeline_inbox(inbox)
    run(T1)
    columns = ("household_key, household_source, person_key, date, department, event, event_zh, category, amount, "
               "source_file, source_row, source_rows")  # outputs.md's names
    timeline = query(warehouse, f"SELECT {columns}, flag_id FROM mart.household_timeline")
    assert query(warehouse, "SELECT count(*) AS n FROM mart.household_timeline "
                            "WHERE event_date IS DISTINCT FROM date")["n"][0] == 0  # the first-published name, kept
    events = timeline.filter(pl.col("flag_id").is_null()).drop("flag_id")
    pay, claims, roster = (f"{f}_{C}_{T1:%Y%m%d}.csv" for f in ("subsidy_payments", "medical_claims", "civil_roster"))
    certs, deaths, hrss = (f"{f}_{C}_{T1:%Y%m%d}.csv" for f in ("disability_cert", "death_records", "hrss_benefits"))
    h1, h2, d = household("H1"), household("H2"), date
    expected = [  # counted by hand from the deliveries above, in the timeline's order
        (h1, "civil", None, d(2024, 3, 1), "民政", "enrolled", "纳入救助", "低保", 800.0, roster, 1, 2),
        (h1, "civil", key(P2), d(2025, 5, 1), "残联", "certificate_issued", "发证", "肢体 一级", None, certs, 1, 1),
        (h1, "civil", key(P1), d(2026, 7, 1), "人社", "income_started", "人社收入开始", "城镇职工养老金", 1000.0, hrss, 1, 1),
        (h1, "civil", key(P1), d(2026, 8, 1), "民政", "payment", "待遇发放", "低保金", 800.0, pay, 1, 2),
        (h1, "civil", key(P1), d(2026, 9, 1), "人社", "income_changed", "人社收入变动", "城镇职工养老金", 1200.0, hrss, 3, 1),
        (h1, "civil", key(P1), d(2026, 9, 1), "民政", "payment", "待遇发放", "低保金", 800.0, pay, 3, 1),
        (h1, "civil", key(P2), d(2026, 9, 1), "民政", "payment", "待遇发放", "重度残疾人护理补贴", 100.0, pay, 4, 1),
        (h1, "civil", key(P2), d(2026, 9, 10), "医保", "large_claim", "大额医疗费用", "住院", 12000.0, claims, 1, 1),
        (h2, "civil", None, d(2020, 1, 1), "民政", "enrolled", "纳入救助", "低保", 400.0, roster, 3, 1),
        (h2, "civil", None, d(2026, 6, 30), "民政", "stopped", "停保", "低保", 400.0, roster, 3, 1),
        (h2, "civil", key(P3), d(2026, 9, 15), "公安/殡葬", "death", "死亡", "公安户籍注销", None, deaths, 1, 1),
        (key(Q), "person", key(Q), d(2026, 7, 1), "医保", "large_claim", "大额医疗费用", "住院", 15000.0, claims, 3, 1),
    ]
    got = [r for r in events.iter_rows() if r[0] in (h1, h2, key(Q))]
    order = lambda r: (r[0], r[3], r[5], r[7], r[2] or "")  # noqa: E731 - household, date, event, category, person
    assert sorted(got, key=order) == sorted(expected, key=order)
    assert events.height == len(expected)  # nothing else: the 500 yuan claim is below the yellow amount
    # the view is ordered: per household by date, then the day's order (人社 before payments on 09-01)
    h1_events = [r[5] for r in events.iter_rows() if r[0] == h1]
    assert h1_events == ["enrolled", "certificate_issued", "income_started", "payment", "income_changed", "payment",
                         "payment", "large_claim"]

    # every flag is raised in the timeline of its household (a person's flag in the person's household)
    flags = query(warehouse, "SELECT flag_id, subject_type, subject_key, first_seen_on FROM mart.flags")
    hh_of = {key(P1): h1, key(P2): h1, key(P3): h2}
    raised = {r[0]: r for r in timeline.filter(pl.col("event") == "flag_raised")
              .select("flag_id", "household_key", "date").iter_rows()}
    assert len(raised) == flags.height
    for f in flags.iter_rows(named=True):
        want = f["subject_key"] if f["subject_type"] == "household" else hh_of.get(f["subject_key"], f["subject_key"])
        assert raised[f["flag_id"]][1:] == (want, f["first_seen_on"])

    # no ID number, no name anywhere in the mart (or in its files)
    text = str(query(warehouse, "SELECT * FROM mart.household_timeline").rows())
    for secret in (P1, P2, P3, Q, *NAMES):
        assert secret not in text
    files = list((warehouse / "published" / "timeline").rglob("*.parquet"))
    for f in files:
        content = str(pl.read_parquet(f).rows())
        assert not any(secret in content for secret in (P1, P2, P3, Q, *NAMES)), f.name

    # night 2 adds one payments file: only its events are computed; the first file's events are kept as they were
    first = {p.name: p.stat().st_mtime_ns for p in (warehouse / "published" / "timeline" / "subsidy_payments").glob("*.parquet")}
    write_csv(delivery_path(inbox, "subsidy_payments", C, T2, "csv"), PAY_HEADER,
              [["Y5", P1, "赵大", C, "低保金", "2026-10", "800.00"]])
    run(T2)
    second = {p.name: p.stat().st_mtime_ns for p in (warehouse / "published" / "timeline" / "subsidy_payments").glob("*.parquet")}
    assert len(second) == len(first) + 1 and all(second[n] == t for n, t in first.items())
    october = query(warehouse, f"SELECT amount, source_file FROM mart.household_timeline WHERE household_key = '{h1}' "
                               "AND event = 'payment' AND event_date = DATE '2026-10-01'")
    assert october.rows() == [(800.0, f"subsidy_payments_{C}_{T2:%Y%m%d}.csv")]

    # the same night again: every timeline file it needs is there already (the nightly ones are named by content)
    timeline_files = lambda: sorted(p.relative_to(warehouse) for p in (warehouse / "published" / "timeline").rglob("*.parquet"))  # noqa: E731
    before = timeline_files()
    run(T2)
    assert timeline_files() == before

    # a night whose only delivery is a caseworker's outcome: the flags' events change, the snapshots' file stays
    nightly = lambda kind: sorted(p.name for p in (warehouse / "published" / "timeline" / kind).glob("*.parquet"))  # noqa: E731
    snapshots, flag_parts = nightly("night"), nightly("flags")
    decided = query(warehouse, "SELECT min(flag_id) AS f FROM mart.flags WHERE status = 'open'")["f"][0]
    t3 = date(2026, 11, 2)
    write_csv(delivery_path(inbox, "verification_outcomes", C, t3, "csv"), OUTCOME_HEADER,
              [[decided, "confirmed", "", t3.isoformat(), "王五"]])
    run(t3)
    assert nightly("night") == snapshots and len(snapshots) == 1
    assert len(nightly("flags")) == len(flag_parts) + 1
    confirmed = query(warehouse, "SELECT flag_id, date, feed FROM mart.household_timeline WHERE event = 'flag_confirmed'")
    assert confirmed.rows() == [(decided, t3, "verification_outcomes")]
    assert query(warehouse, "SELECT count(*) AS n FROM mart.household_timeline WHERE flag_id IS NULL")["n"][0] == \
        events.height + 1  # the snapshots' and files' events as before, and night 2's payment


def test_rule_effectiveness_buckets_on_a_handmade_flag_list():
    """Every flag in exactly one bucket: a reopened dismissal is open, a decision after the day is not one yet."""
    day = date(2026, 10, 31)
    rows = [  # rule, county, first seen, status, outcome, decided on, overdue
        ("R01", C, date(2026, 9, 3), "confirmed", "confirmed", date(2026, 9, 5), False),
        ("R01", C, date(2026, 9, 4), "resolved", "confirmed", date(2026, 9, 12), False),  # confirmed, then ended
        ("R01", C, date(2026, 9, 5), "dismissed", "dismissed", date(2026, 9, 25), False),
        ("R01", C, date(2026, 9, 6), "open", "dismissed", date(2026, 9, 7), False),  # reopened: awaiting a decision
        ("R01", C, date(2026, 9, 7), "open", None, None, True),
        ("R01", C, date(2026, 9, 8), "resolved", None, None, False),
        ("R01", C, date(2026, 9, 9), "confirmed", "confirmed", date(2026, 11, 2), False),  # decided after the day
        ("R01", C, date(2026, 10, 1), "open", None, None, False),
    ]
    flags = pl.DataFrame(rows, schema={"rule_id": pl.String, "county_code": pl.String, "first_seen_on": pl.Date,
                                       "status": pl.String, "outcome": pl.String, "outcome_decided_on": pl.Date,
                                       "overdue": pl.Boolean}, orient="row")
    con = duckdb.connect()
    try:
        con.register("handmade", flags.to_arrow())
        out = _effectiveness(pl.from_arrow(rule_effectiveness_sql(con, "SELECT * FROM handmade", day).to_arrow_table())
                             .with_columns(pl.lit("R06").alias("rule_id")))
    finally:
        con.close()
    # September: decided = 2, 8 and 20 days (two confirmed, one dismissed); median 8
    assert out == {
        ("R06", C, date(2026, 9, 1)): {"raised": 7, "confirmed": 2, "dismissed": 1, "open": 3, "overdue": 1,
                                       "resolved_undecided": 1, "confirmed_rate": 0.6667, "median_days_to_decision": 8.0},
        ("R06", C, date(2026, 10, 1)): {"raised": 1, "confirmed": 0, "dismissed": 0, "open": 1, "overdue": 0,
                                        "resolved_undecided": 0, "confirmed_rate": None, "median_days_to_decision": None},
    }


def test_snapshot_events_are_kept_while_their_inputs_stay(lowincome_env, tmp_path, monkeypatch):
    """The map and snapshot events are built again only when a snapshot feed or the 人社 history changed."""
    import lowincome.marts as marts

    inbox = tmp_path / "inbox"
    warehouse = lowincome_env(inbox)
    _timeline_inbox(inbox)
    run(T1)
    folder = warehouse / "published" / "timeline"
    notes = lambda: sorted(p.name for p in (folder / marts.INPUTS_DIR).glob("*.json"))  # noqa: E731
    view = lambda: query(warehouse, "SELECT * EXCLUDE (as_of) FROM mart.household_timeline")  # noqa: E731
    assert len(notes()) == 1

    # a night that delivers only payments: the map and the snapshot events are not built (building them fails)
    write_csv(delivery_path(inbox, "subsidy_payments", C, T2, "csv"), PAY_HEADER,
              [["Y5", P1, "赵大", C, "低保金", "2026-10", "800.00"]])

    def refuse(*args, **kwargs):
        raise AssertionError("the map and snapshot events were built again for unchanged inputs")

    with monkeypatch.context() as m:
        m.setattr(marts, "_build_map", refuse)
        run(T2)
    assert len(notes()) == 1
    kept = view()
    # ... and the published timeline is what building them afresh gives
    for note in (folder / marts.INPUTS_DIR).glob("*.json"):
        note.unlink()
    run(T2)
    assert view().sort(kept.columns).equals(kept.sort(kept.columns))
    assert len(notes()) == 1

    # a new roster snapshot changes the inputs: built again, with the household's new event
    t3 = date(2026, 11, 2)
    earlier = pl.read_csv(delivery_path(inbox, "civil_roster", C, T1, "csv"), infer_schema=False).rows()
    q = person_id(C, "19900909", 41)
    write_csv(delivery_path(inbox, "civil_roster", C, t3, "csv"), ROSTER_HEADER, [
        *map(list, earlier), [C + "001001", "H9", q, q, "周九", "本人", "低保", "城市", "在保", "2026-11-01", "", "1", "300", "400"]])
    run(t3)
    assert len(notes()) == 2
    enrolled = query(warehouse, "SELECT count(*) AS n FROM mart.household_timeline WHERE event = 'enrolled' "
                                "AND event_date = DATE '2026-11-01'")
    assert enrolled["n"][0] == 1
