"""Chinese first in the published marts: rule names, what a caseworker checks, and a level rank.

The marts are written by the rules step (lowincome/rules/lifecycle.py) with the English snake_case
`rule_name` that outputs.md names; staff read Chinese. Rather than have every writer of a mart repeat
the names, the publication adds them beside the English at the moment a mart is copied into the
analysts' database, from the one catalogue (`lowincome.rules.catalog`): `rule_name_zh` right after
`rule_name`, `check_zh` (核查要点) after `summary` in mart.rules, `rule_names_zh` after `rule_ids`,
and `level_rank` (红 3, 橙 2, 黄 1: `ORDER BY level_rank DESC` puts 红 first) after `level`.

A column the mart already carries is left as it is (a later writer may add it itself), and only the
tables in `CHINESE_TABLES` are touched: a new mart gets these columns by being listed here and
described in lowincome/dictionary.py.
"""

from __future__ import annotations

from .rules.catalog import BY_ID, LEVEL_RANK, RULES
from .staging import sql_text

CHINESE_TABLES = frozenset({"mart.flags", "mart.household_risk", "mart.county_summary", "mart.rules"})


def _case(column: str, mapping: dict[str, object], cast: str) -> str:
    whens = " ".join(f"WHEN {sql_text(k)} THEN {sql_text(str(v)) if cast == 'VARCHAR' else v}" for k, v in mapping.items())
    return f"CAST(CASE {column} {whens} END AS {cast})"


def rule_name_zh_sql(column: str = "rule_id") -> str:
    """SQL for the Chinese name of the rule in `column` (NULL for an id the catalogue does not know)."""
    return _case(column, {r.rule_id: r.name_zh for r in RULES}, "VARCHAR")


def check_zh_sql(column: str = "rule_id") -> str:
    return _case(column, {r.rule_id: r.check_zh for r in RULES}, "VARCHAR")


def level_rank_sql(column: str = "level") -> str:
    """红 3, 橙 2, 黄 1 (catalog.LEVEL_RANK); NULL for no level."""
    return _case(column, LEVEL_RANK, "TINYINT")


def rule_names_zh_sql(column: str = "rule_ids") -> str:
    """'R05,W01' → '家庭收入超过低保标准、医疗支出负担过重' (the order of the ids)."""
    return (f"array_to_string(list_transform(string_split({column}, ','), lambda x: coalesce({rule_name_zh_sql('trim(x)')}, "
            f"trim(x))), '、')")


def mart_select(table: str, columns: list[str]) -> str:
    """The SELECT list that copies mart `table` (its columns in order) with the Chinese-first columns added."""
    if table not in CHINESE_TABLES:
        return ", ".join(f'"{c}"' for c in columns)
    have = set(columns)
    out: list[str] = []
    for c in columns:
        out.append(f'"{c}"')
        if c == "rule_name" and "rule_id" in have and "rule_name_zh" not in have:
            out.append(f"{rule_name_zh_sql()} AS rule_name_zh")
        elif c == "summary" and table == "mart.rules" and "check_zh" not in have:
            out.append(f"{check_zh_sql()} AS check_zh")
        elif c == "rule_ids" and "rule_names_zh" not in have:
            out.append(f"{rule_names_zh_sql()} AS rule_names_zh")
        elif c == "level" and "level_rank" not in have:
            out.append(f"{level_rank_sql()} AS level_rank")
    return ", ".join(out)


def rule_label(rule_id: str) -> str:
    """'R01 死亡人员仍在领取待遇 (deceased_still_paid)': Chinese first, English beside, for reports."""
    rule = BY_ID.get(rule_id)
    if rule is None:
        return rule_id
    return f"{rule.rule_id} {rule.name_zh} ({rule.name})"
