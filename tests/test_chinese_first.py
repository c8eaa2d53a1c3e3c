"""Chinese first (issue 11): rule names in Chinese beside the English in the marts and the caseworkers' list,
what a caseworker checks in mart.rules, and a level rank that puts 红 before 橙 and 黄.

The expected names come from the catalogue (the one source), the ranks from the levels: both are
compared with what the publication of a real nightly run holds.
"""

from __future__ import annotations

import duckdb

from lowincome.rules.catalog import BY_ID, LEVEL_RANK, RULES


def _con(warehouse, name="lowincome.duckdb"):
    return duckdb.connect(str(warehouse / name), read_only=True)


def test_marts_carry_the_chinese_rule_names_and_the_level_rank(published):
    warehouse, _ = published
    con = _con(warehouse)
    try:
        flags = con.execute("SELECT rule_id, rule_name, rule_name_zh, level, level_rank FROM mart.flags").fetchall()
        summary = con.execute("SELECT rule_id, rule_name_zh, level, level_rank FROM mart.county_summary").fetchall()
        rules = con.execute("SELECT rule_id, rule_name, rule_name_zh, check_zh FROM mart.rules ORDER BY rule_id").fetchall()
        risk = con.execute("SELECT rule_ids, rule_names_zh, level, level_rank FROM mart.household_risk").fetchall()
        first = con.execute("SELECT level FROM mart.flags ORDER BY level_rank DESC, flag_id LIMIT 1").fetchone()[0]
        last = con.execute("SELECT level FROM mart.flags ORDER BY level_rank DESC, flag_id DESC").fetchall()[-1][0]
        columns = [r[0] for r in con.execute("SELECT column_name FROM duckdb_columns() WHERE schema_name = 'mart' "
                                             "AND table_name = 'flags' ORDER BY column_index").fetchall()]
    finally:
        con.close()
    assert len(flags) >= 50 and {r[0] for r in flags} >= {"R01", "W01"}
    for rule_id, name, name_zh, level, rank in flags:
        assert name == BY_ID[rule_id].name  # the English name outputs.md names stays
        assert name_zh == BY_ID[rule_id].name_zh and rank == LEVEL_RANK[level]
    for rule_id, name_zh, level, rank in summary:
        assert name_zh == BY_ID[rule_id].name_zh and rank == LEVEL_RANK[level]
    assert [(r[0], r[2], r[3]) for r in rules] == [(r.rule_id, r.name_zh, r.check_zh) for r in sorted(RULES, key=lambda r: r.rule_id)]
    assert all(r[3] for r in rules)
    for rule_ids, names, level, rank in risk:
        assert names == "、".join(BY_ID[i].name_zh for i in rule_ids.split(",")) and rank == LEVEL_RANK[level]
    assert first == "红" and last == "黄"
    assert columns.index("rule_name_zh") == columns.index("rule_name") + 1  # beside the English
    assert columns.index("level_rank") == columns.index("level") + 1


def test_caseworkers_list_has_the_chinese_name_and_what_to_check(published):
    warehouse, _ = published
    con = _con(warehouse, "restricted.duckdb")
    try:
        rows = con.execute("SELECT rule_id, rule_name_zh, check_zh FROM caseworker_flags").fetchall()
    finally:
        con.close()
    assert rows
    for rule_id, name_zh, check_zh in rows:
        assert (name_zh, check_zh) == (BY_ID[rule_id].name_zh, BY_ID[rule_id].check_zh)


def test_run_report_names_rules_in_chinese_first(published):
    warehouse, _ = published
    page = sorted((warehouse / "reports").glob("run_*.html"))[-1].read_text(encoding="utf-8")
    for rule in RULES:
        if f"rule_{rule.rule_id}.html" in page:
            assert f"{rule.rule_id} {rule.name_zh} ({rule.name})" in page
    rule_page = sorted((warehouse / "reports").glob("run_*/rule_R01.html"))[-1].read_text(encoding="utf-8")
    assert f"R01 {BY_ID['R01'].name_zh} {BY_ID['R01'].name}" in rule_page
