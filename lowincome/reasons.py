"""Quarantine reasons in Chinese, for the department that sent the row, beside the English.

Every reason a row can be quarantined for has a code here, the shape of its English words (a
regular expression over ONE reason, anchored, with named parts for what the words quote: a value,
a date, a row number) and its Chinese words (a template over the same parts). The English is built
where the check is (lowincome/validation.py, identity.py, parsing.py, parts.py, ingest.py); the texts
of identity and parsing are imported here, not copied, so that a reworded problem changes its pattern.

`translate_expr` turns the list of English reasons of every quarantined row into the list of codes
and the list of Chinese texts in one vectorised Polars pass (no Python loop over rows): each pattern
is tried on each reason, and the first that matches gives the code and the Chinese. A reason no
pattern knows gets the code `other` and its English words behind 未归类原因: the tests feed every
check of every feed through validation and fail on `other`, and fail on any code without Chinese.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import polars as pl

from . import identity as _id
from . import parsing as _p

OTHER = "other"


@dataclass(frozen=True)
class ReasonText:
    code: str
    pattern: str  # regex over one English reason, anchored by `compiled`; named groups are the quoted parts
    zh: str  # Chinese template; ${name} inserts a named group


_LABEL = r"(?P<label>.+?): "
_VALUE = r" (?P<value>'.*')"


def _col(code: str, words: str, zh: str, quoted: bool = False) -> ReasonText:
    """A reason about one column: '<header>: <words>[ '<value>']' → '<header>：<Chinese>[ '<value>']'."""
    return ReasonText(code, _LABEL + re.escape(words) + (_VALUE if quoted else ""),
                      "${label}：" + zh + (" ${value}" if quoted else ""))


def _still(prefix: str) -> tuple[tuple[str, str], tuple[str, str]]:
    """The two endings of a held-back snapshot's reason (ingest._still_in_use), pattern and Chinese."""
    return ((prefix + r"the previous snapshot of county (?P<county>\d+) \((?P<previous>.+)\) stays in use",
             "区县 ${county} 继续使用上一份快照（${previous}）"),
            (prefix + r"no earlier snapshot of county (?P<county>\d+) is in use: its (?P<feed>\S+) data stays missing "
                      r"until a usable snapshot arrives",
             "区县 ${county} 没有可用的早期快照：在收到可用快照前，${feed} 数据缺失"))


_HELD_SHARE = (r"snapshot held back: (?P<share>\S+) of rows rejected \((?P<invalid>\d+) of (?P<rows>\d+); threshold "
               r"(?P<threshold>\S+)\); ")
_HELD_SHARE_ZH = "快照暂缓使用：${share} 的行被拒收（${rows} 行中 ${invalid} 行，阈值 ${threshold}）；"
_HELD_SHRINK = (r"snapshot held back: (?P<rows>\d+) rows, (?P<drop>\S+) fewer than the (?P<previous_rows>\d+) of the "
                r"previous snapshot \(limit (?P<limit>\S+); a half-copied file or an interrupted export\?\); ")
_HELD_SHRINK_ZH = ("快照暂缓使用：共 ${rows} 行，比上一份快照的 ${previous_rows} 行少 ${drop}（上限 ${limit}；文件可能未复制完整或导出中断）；")
_ACCEPT = r" until the data team accepts this file \(lowincome accept-snapshot (?P<file>.+) --by <name>\)"
_ACCEPT_ZH = "，直至数据组接受此文件（lowincome accept-snapshot ${file} --by <姓名>）"
_SHARE_KEEP, _SHARE_NONE = _still(_HELD_SHARE)
_SHRINK_KEEP, _SHRINK_NONE = _still(_HELD_SHRINK)

REASON_TEXTS: tuple[ReasonText, ...] = (
    # -- any required column
    _col("blank", "blank (a value is required)", "为空（必填项）"),
    # -- ID numbers (identity.py); the value itself is never quoted
    _col("id_blank", _id.P_BLANK, "为空"),
    _col("id_excel", _id.P_EXCEL, "疑似被 Excel 转为科学计数法（E+17），数字已丢失"),
    _col("id_chars", _id.P_CHARS, "含有数字和末位 X 以外的字符"),
    _col("id_legacy_x", _id.P_LEGACY_X, "15 位旧号码以 X 结尾（15 位号码应全为数字）"),
    _col("id_address", _id.P_ADDRESS, "地址码无效"),
    _col("id_birth", _id.P_BIRTH, "出生日期不可能"),
    _col("id_check", _id.P_CHECK, "校验码不符"),
    ReasonText("id_length", _LABEL + r"wrong length \((?P<n>\d+) characters, expected 18 or legacy 15\)",
               "${label}：长度错误（${n} 位，应为 18 位或 15 位旧号码）"),
    # -- codes and enumerations
    _col("division_code", "not a 6-digit county or 12-digit division code", "不是 6 位县级代码或 12 位行政区划代码"),
    ReasonText("unknown_value", _LABEL + r"unknown value (?P<value>'.*') \(expected (?P<expected>.*)\)",
               "${label}：取值 ${value} 不在规定范围内（应为 ${expected}）"),
    _col("cert_id_length", "not 20 characters (holder's 18-character ID + category digit + level digit)",
         "不是 20 位（持证人 18 位身份证号 + 残疾类别 1 位 + 残疾等级 1 位）"),
    # -- dates and months (parsing.py)
    _col("date_format", _p.DATE_FORMAT, "无法识别的日期格式", quoted=True),
    _col("date_impossible", _p.DATE_IMPOSSIBLE, "不是真实存在的日期", quoted=True),
    _col("date_too_early", _p.DATE_TOO_EARLY, "年份不合理（早于 1900 年）", quoted=True),
    _col("month_format", _p.MONTH_FORMAT, "无法识别的月份格式", quoted=True),
    _col("month_range", _p.MONTH_RANGE, "月份超出范围（应为 1 至 12）", quoted=True),
    ReasonText("date_after_extraction", _LABEL + r"date lies after the file's extraction date (?P<extracted>\S+)",
               "${label}：日期晚于文件提取日期 ${extracted}"),
    ReasonText("month_after_extraction", _LABEL + r"month lies after the file's extraction date (?P<extracted>\S+)",
               "${label}：月份晚于文件提取日期 ${extracted}"),
    # -- amounts and counts (parsing.py, validation.py)
    _col("money_not_number", _p.MONEY_NOT_NUMBER, "不是数字", quoted=True),
    _col("money_decimals", _p.MONEY_DECIMALS, "小数超过两位", quoted=True),
    _col("money_too_large", _p.MONEY_TOO_LARGE, "金额过大（整数部分超过 16 位）", quoted=True),
    _col("int_not_whole", _p.INT_NOT_WHOLE, "不是整数", quoted=True),
    _col("int_too_large", _p.INT_TOO_LARGE, "数值过大（超过 9 位）", quoted=True),
    _col("not_positive", "must be greater than 0", "必须大于 0"),
    _col("negative_amount", "negative amount", "金额为负数"),
    ReasonText("below_minimum", _LABEL + r"must be at least (?P<minimum>\S+)", "${label}：不得小于 ${minimum}"),
    # -- across columns (validation.py CROSS_CHECKS, county_checks)
    ReasonText("ended_on_missing", re.escape("停保日期: missing although 保障状态 is 停保"),
               "停保日期：保障状态为停保，但停保日期为空"),
    ReasonText("ended_on_while_active", re.escape("停保日期: present although 保障状态 is 在保 (must be blank unless 停保)"),
               "停保日期：保障状态为在保，停保日期应为空（仅停保时填写）"),
    ReasonText("ended_before_enrolled", re.escape("停保日期: before 纳入日期"), "停保日期：早于纳入日期"),
    ReasonText("claim_total_mismatch",
               re.escape("医疗总费用: does not equal 统筹 + 大病 + 医疗救助 + 个人自付 (parts sum to ")
               + r"(?P<parts>\S+), total is (?P<total>\S+)\)",
               "医疗总费用：不等于统筹 + 大病 + 医疗救助 + 个人自付（各项合计 ${parts}，总费用 ${total}）"),
    ReasonText("certificate_id_mismatch",
               re.escape("残疾人证号: is not the holder's 身份证号 followed by the 残疾类别 and 残疾等级 digits"),
               "残疾人证号：不是持证人身份证号后接残疾类别和残疾等级代码"),
    ReasonText("revoked_on_not_revoked", re.escape("注销日期: present although 证件状态 is not 注销"),
               "注销日期：证件状态不是注销，但填写了注销日期"),
    ReasonText("category_for_tuopin", re.escape("监测对象类别: must be blank for a 脱贫户"), "监测对象类别：脱贫户应为空"),
    ReasonText("category_missing", re.escape("监测对象类别: blank for a 监测户"), "监测对象类别：监测户不得为空"),
    ReasonText("eliminated_on_not_eliminated", re.escape("风险消除时间: present although 风险是否消除 is not 是"),
               "风险消除时间：风险未消除，但填写了风险消除时间"),
    ReasonText("other_county", _LABEL + r"lies in county (?P<code>\S+), not in the file's county (?P<county>\S+)",
               "${label}：属于区县 ${code}，不属于文件所属区县 ${county}"),
    # -- the file and the history (ingest.py, parts.py)
    ReasonText("missing_columns", r"file: missing required column\(s\) (?P<columns>.*)", "文件：缺少必填列 ${columns}"),
    ReasonText("duplicate_in_file", r"duplicate: same (?P<key>.+) as the row duplicate of this file row (?P<row>\d+)",
               "重复：${key} 与本文件第 ${row} 行相同"),
    ReasonText("duplicate_earlier_row", r"duplicate: same (?P<key>.+) as the row already delivered in this file row (?P<row>\d+)",
               "重复：${key} 与本文件已交付的第 ${row} 行相同"),
    ReasonText("duplicate_delivered", r"duplicate: same (?P<key>.+) as the row already delivered in (?P<file>.+) row (?P<row>\d+)",
               "重复：${key} 与已交付文件 ${file} 第 ${row} 行相同"),
    ReasonText("held_back_share_previous", _SHARE_KEEP[0], _HELD_SHARE_ZH + _SHARE_KEEP[1]),
    ReasonText("held_back_share_none", _SHARE_NONE[0], _HELD_SHARE_ZH + _SHARE_NONE[1]),
    ReasonText("held_back_shrink_previous", _SHRINK_KEEP[0] + _ACCEPT, _HELD_SHRINK_ZH + _SHRINK_KEEP[1] + _ACCEPT_ZH),
    ReasonText("held_back_shrink_none", _SHRINK_NONE[0] + _ACCEPT, _HELD_SHRINK_ZH + _SHRINK_NONE[1] + _ACCEPT_ZH),
)
BY_CODE = {r.code: r for r in REASON_TEXTS}
OTHER_ZH = "未归类原因 "  # followed by the English words


def compiled(reason: ReasonText) -> str:
    """The pattern as matched: the whole reason, newlines included in quoted values."""
    return f"(?s)^(?:{reason.pattern})$"


def _element_chain(pick) -> pl.Expr:
    """when(reason matches pattern 1) then pick(1) ... otherwise pick(None), over one list element."""
    el = pl.element()
    first, *rest = REASON_TEXTS
    chain = pl.when(el.str.contains(compiled(first))).then(pick(first))
    for r in rest:
        chain = chain.when(el.str.contains(compiled(r))).then(pick(r))
    return chain.otherwise(pick(None))


def codes_expr(reasons: pl.Expr) -> pl.Expr:
    """List of English reasons → list of reason codes (`other` where none matches)."""
    return reasons.list.eval(_element_chain(lambda r: pl.lit(r.code if r else OTHER)))


def zh_expr(reasons: pl.Expr) -> pl.Expr:
    """List of English reasons → list of Chinese reasons (未归类原因 + English where none matches)."""
    el = pl.element()
    return reasons.list.eval(_element_chain(
        lambda r: el.str.replace(compiled(r), r.zh) if r else pl.lit(OTHER_ZH) + el))


def translate(reasons: list[str]) -> list[str]:
    """The Chinese of a few reasons (tests, messages); the same expression as the quarantine uses."""
    frame = pl.DataFrame({"r": [list(reasons)]}, schema={"r": pl.List(pl.String)})
    return frame.select(zh_expr(pl.col("r"))).item().to_list()
