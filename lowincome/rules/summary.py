"""One Chinese sentence per flag saying what the evidence shows, for worklists and the run report.

A caseworker reads the worklist, not the evidence JSON: the line must say, in
words, what two sources disagree about (e.g. "2026年3月死亡，4–10月仍发放低保金共
4,900 元"). The line is built from the evidence alone, so it never needs a
query, and it carries no ID number or name (the evidence holds only keys,
dates, amounts and file names; the sentences use dates, amounts, counts and
categories only, never a key). One sentence per rule, from the fields that
rule writes (sql/rules/); evidence of an unknown shape (an older version, a
rule without a sentence) falls back to the rule's name and period.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from .catalog import BY_ID


def _yuan(value) -> str:
    """Amounts as a caseworker writes them: 4,900 元, 1,234.50 元."""
    try:
        amount = float(value)
    except (TypeError, ValueError):
        return "金额不详"
    return f"{amount:,.0f} 元" if amount == int(amount) else f"{amount:,.2f} 元"


def _ym(month: str) -> tuple[int, int]:
    return int(month[:4]), int(month[5:7])


def month_span(months: list[str], year_known: int | None = None) -> str:
    """'2026-04'..'2026-10' → '4–10月' (or '2026年4–10月' when the year is not already said); gaps are counted.

    `months` are 'YYYY-MM' texts; `year_known` is the year the sentence already named (then not repeated).
    """
    months = sorted({m[:7] for m in months if isinstance(m, str) and len(m) >= 7})
    if not months:
        return ""
    (y1, m1), (y2, m2) = _ym(months[0]), _ym(months[-1])
    first = f"{m1}月" if y1 == year_known else f"{y1}年{m1}月"
    if months[0] == months[-1]:
        text = first
    elif y1 == y2:
        text = f"{first[:-1]}–{m2}月"
    else:
        text = f"{first}–{y2}年{m2}月"
    span = (y2 - y1) * 12 + m2 - m1 + 1
    if len(months) < span:
        text += f"中的 {len(months)} 个月"
    return text


def _date_ym(value) -> tuple[int, int] | None:
    if isinstance(value, str) and len(value) >= 7 and value[:4].isdigit():
        return _ym(value)
    return None


def _r01(e: dict) -> str:
    died = _date_ym(e.get("died_on"))
    head = f"{died[0]}年{died[1]}月死亡" if died else "已有死亡记录"
    payments = e.get("payments_after_death") or []
    parts = []
    if payments:
        types = "、".join(sorted({p.get("subsidy_type", "") for p in payments if p.get("subsidy_type")}))
        total = sum(float(p.get("amount") or 0) for p in payments)
        span = month_span([p.get("pay_month") for p in payments], died[0] if died else None)
        parts.append(f"{span}仍发放{types}共 {_yuan(total)}")
    rosters = e.get("rosters_after_death") or []
    if rosters:
        parts.append(f"死亡后 {len(rosters)} 期名册仍为在保")
    return head + "，" + "，".join(parts) if parts else head


def _payment_run(benefit: str, why: str) -> Callable[[dict], str]:
    def line(e: dict) -> str:
        return f"{month_span(e.get('months') or [])}{why}仍发放{benefit}共 {_yuan(e.get('amount_to_recover'))}"
    return line


def _r02(e: dict) -> str:
    reasons = e.get("reasons") or [e.get("why", "")]
    why = "无正常残疾证" if any("no certificate" in (r or "") for r in reasons) else "残疾等级不符合护理补贴条件"
    if len(reasons) > 1:
        why = "无正常残疾证或残疾等级不符"
    return _payment_run("重度残疾人护理补贴", why)(e)


def _r03(e: dict) -> str:
    whys = []
    if e.get("no_valid_certificate"):
        whys.append("无正常残疾证")
    if e.get("no_qualifying_household"):
        whys.append("不属于在保低保家庭")
    return _payment_run("困难残疾人生活补贴", "、".join(whys) or "不符合条件")(e)


def _r04(e: dict) -> str:
    return (f"{month_span(e.get('months') or [])}同时领取重度残疾人护理补贴（共 {_yuan(e.get('amount_to_recover'))}）"
            f"和工伤保险生活护理费（共 {_yuan(e.get('work_injury_care_amount'))}）")


def _r05(e: dict) -> str:
    monthly = e.get("monthly") or []
    months = e.get("months") or [m.get("month") for m in monthly]
    first = _date_ym(months[0]) if months else None
    since = f"自{first[0]}年{first[1]}月起" if first else ""
    last = monthly[-1] if monthly else {}
    tail = (f"（最近一月人均 {_yuan(last.get('per_capita_income'))}，标准 {_yuan(last.get('standard'))}）"
            if last else "")
    return f"家庭人均月收入{since}连续 {e.get('months_above_standard', len(months))} 个月超过低保标准{tail}"


def _r06(e: dict) -> str:
    enrolments = e.get("enrolments") or []
    counties = sorted({x.get("county") for x in enrolments if x.get("county")})
    months = e.get("months") or []
    first = _date_ym(months[0]) if months else None
    since = f"，自{first[0]}年{first[1]}月起重叠" if first else ""
    where = f"（{len(counties)} 个区县）" if len(counties) > 1 else ""
    return f"同时在 {len(enrolments)} 个家庭在保{where}{since}"


def _r07(e: dict) -> str:
    ended = _date_ym(e.get("ended_on"))
    head = f"{ended[0]}年{ended[1]}月停保" if ended else "已停保"
    payees = e.get("payees") or []
    who = f"（{len(payees)} 名领取人）" if len(payees) > 1 else ""
    span = month_span(e.get("months") or [], ended[0] if ended else None)
    return f"{head}，{span}仍发放{e.get('subsidy_type') or '救助金'}共 {_yuan(e.get('amount_to_recover'))}{who}"


def _w01(e: dict) -> str:
    days = e.get("window_days") or 365
    text = f"近 {days} 天医疗个人自付 {_yuan(e.get('out_of_pocket'))}"
    share = e.get("share_of_income")
    if share is not None:
        text += f"，占家庭年收入 {float(share) * 100:.0f}%"
    elif not e.get("household_rows"):
        text = "未在册人员，" + text
    return text


def _w02(e: dict) -> str:
    cert = e.get("certificate") or {}
    issued = _date_ym(cert.get("issued_on"))
    when = f"{issued[0]}年{issued[1]}月" if issued else "近期"
    return f"{when}新办{cert.get('category') or ''}{cert.get('level') or ''}残疾证，尚未领取重度残疾人护理补贴"


def _w03(e: dict) -> str:
    return (f"监测户人均年收入 {_yuan(e.get('annual_income_per_capita'))}，低于农村低保标准 "
            f"{_yuan(e.get('rural_dibao_standard_yearly'))}，无成员在保")


def _w04(e: dict) -> str:
    died = _date_ym(e.get("died_on"))
    when = f"{died[0]}年{died[1]}月" if died else "近期"
    age = e.get("member_age_at_death")
    return f"家庭成员{when}死亡" + (f"（{age} 岁）" if age is not None else "")


def _w05(e: dict) -> str:
    return (f"脱贫户人均年收入 {_yuan(e.get('annual_income_per_capita'))}，低于监测线 "
            f"{_yuan(e.get('monitoring_income_line_yearly'))}")


SENTENCES: dict[str, Callable[[dict], str]] = {
    "R01": _r01, "R02": _r02, "R03": _r03, "R04": _r04, "R05": _r05, "R06": _r06, "R07": _r07,
    "W01": _w01, "W02": _w02, "W03": _w03, "W04": _w04, "W05": _w05,
}


def evidence_summary_zh(rule_id: str, evidence: str | dict | None, period: str | None = None,
                        width: int = 200) -> str:
    """The flag's one-line summary in Chinese; never longer than `width` characters."""
    data = evidence
    if isinstance(evidence, str):
        try:
            data = json.loads(evidence)
        except ValueError:
            data = None
    line = ""
    sentence = SENTENCES.get(rule_id)
    if sentence is not None and isinstance(data, dict):
        try:
            line = sentence(data)
        except (TypeError, ValueError, AttributeError, KeyError, IndexError):
            line = ""  # evidence of another shape: the generic line below
    if not line:
        rule = BY_ID.get(rule_id)
        line = rule.name_zh if rule is not None else rule_id
        if period:
            line += f"（{period}）"
    return line if len(line) <= width else line[: width - 1] + "…"
