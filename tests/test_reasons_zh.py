"""Quarantine reasons in Chinese beside the English, for the sending department (issue 11, "Chinese first").

Every reason code has Chinese words; every reason the checks produce (every check of every feed on
cells from both sides of every form, the holding-back verdicts, the rows of the published run) gets
a code other than `other`; the published quarantine carries `reasons_zh` and `reason_codes`.
"""

from __future__ import annotations

import re
from types import SimpleNamespace

import duckdb
import polars as pl
import pytest

from lowincome import identity, parsing
from lowincome.feeds import FEEDS
from lowincome.ingest import _judge
from lowincome.reading import ROW_COLUMN
from lowincome.reasons import BY_CODE, OTHER, REASON_TEXTS, codes_expr, translate, zh_expr
from lowincome.validation import REASONS, validate_rows
from tests.test_validation_fast import EXTRACTED, _canonical_rows, _raw

HAN = re.compile(r"[\u4e00-\u9fff]")


def test_every_reason_code_has_chinese_words():
    assert len(BY_CODE) == len(REASON_TEXTS), "reason codes are unique"
    for r in REASON_TEXTS:
        assert r.zh.strip() and HAN.search(r.zh.replace("${label}", "")), f"{r.code} has no Chinese text"
        groups = set(re.compile(r.pattern).groupindex)
        used = set(re.findall(r"\$\{(\w+)\}", r.zh))
        assert used <= groups, f"{r.code}: the Chinese uses {used - groups}, which its pattern does not capture"
        assert groups <= used, f"{r.code}: the Chinese drops {groups - used} (a quoted value or number the English gives)"


def test_every_problem_text_of_identity_and_parsing_has_a_code():
    """A new problem text in identity.py or parsing.py fails here until it has Chinese words."""
    texts = [v for k, v in vars(identity).items() if k.startswith("P_") and isinstance(v, str)]
    texts += [v for k, v in vars(parsing).items()
              if re.match(r"^(DATE|MONTH|MONEY|INT)_[A-Z_]+$", k) and isinstance(v, str) and " " in v]
    assert len(texts) >= 15
    reasons = [f"身份证号: {t}" for t in texts] + [f"发放月份: {t} 'x'" for t in texts]
    codes = pl.DataFrame({"r": [reasons]}).select(codes_expr(pl.col("r"))).item().to_list()
    # each text is covered in the form its check writes it (ID problems bare, the others with the quoted cell)
    for text, bare, quoted in zip(texts, codes[: len(texts)], codes[len(texts):]):
        assert bare != OTHER or quoted != OTHER, f"no reason code for {text!r}"


@pytest.mark.parametrize("feed", sorted(FEEDS))
def test_every_check_of_every_feed_has_a_code_and_chinese(feed):
    """Cells on both sides of every form (tests/test_validation_fast.py) through every check of the feed."""
    spec = FEEDS[feed]
    raw = pl.concat([_canonical_rows(spec, 50), _raw(spec, 3000, seed=len(feed))]).with_columns(
        pl.int_range(1, 3051, dtype=pl.Int64).alias(ROW_COLUMN))
    validated = validate_rows(raw, spec, EXTRACTED, "371302")
    bad = validated.filter(pl.col(REASONS).list.len() > 0)
    assert bad.height > 100
    out = bad.select(codes_expr(pl.col(REASONS)).alias("codes"), zh_expr(pl.col(REASONS)).alias("zh"),
                     pl.col(REASONS).alias("en"))
    for codes, zh, en in out.iter_rows():
        assert len(codes) == len(zh) == len(en)
        for code, text, english in zip(codes, zh, en):
            assert code != OTHER, f"no reason code for {english!r}"
            assert HAN.search(text.split("：", 1)[-1]), f"{english!r} → {text!r}"


def test_holding_back_verdicts_have_codes():
    """The words of a held-back snapshot come from ingest._judge itself, in all four of its forms."""
    spec = FEEDS["civil_roster"]
    d = SimpleNamespace(county="371302", file_name="civil_roster_371302_20261031.csv")
    verdicts = [
        _judge(spec, d, "sha", 100, 40, None, 0.05, 0.2, {}, {}),  # share, no earlier snapshot
        _judge(spec, d, "sha", 100, 40, None, 0.05, 0.2, {"371302": ("civil_roster_371302_20260930.csv", 120)}, {}),
        _judge(spec, d, "sha", 50, 0, None, 0.05, 0.2, {"371302": ("civil_roster_371302_20260930.csv", 120)}, {}),
    ]
    messages = [v.message for v in verdicts]
    codes = pl.DataFrame({"r": [messages]}).select(codes_expr(pl.col("r"))).item().to_list()
    assert codes == ["held_back_share_none", "held_back_share_previous", "held_back_shrink_previous"], messages
    zh = translate(messages)
    assert "区县 371302 继续使用上一份快照（civil_roster_371302_20260930.csv）" in zh[1]
    assert "lowincome accept-snapshot civil_roster_371302_20261031.csv" in zh[2] and "比上一份快照的 120 行少" in zh[2]


def test_translation_keeps_the_quoted_parts():
    en = ["出生日期: not a recognised date format '2026/13/45'",
          "医疗总费用: does not equal 统筹 + 大病 + 医疗救助 + 个人自付 (parts sum to 12.00, total is 13.00)",
          "保障状态: unknown value '正常' (expected 在保/停保)",
          "结算单号: something no check writes"]
    assert translate(en) == ["出生日期：无法识别的日期格式 '2026/13/45'",
                             "医疗总费用：不等于统筹 + 大病 + 医疗救助 + 个人自付（各项合计 12.00，总费用 13.00）",
                             "保障状态：取值 '正常' 不在规定范围内（应为 在保/停保）",
                             "未归类原因 结算单号: something no check writes"]


def test_published_quarantine_has_chinese_reasons_for_every_row(published):
    warehouse, _ = published
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        rows = con.execute("SELECT reasons, reasons_zh, reason_codes, reason_count FROM quarantine.rejected_rows").fetchall()
    finally:
        con.close()
    assert len(rows) >= 50  # the generator plants bad rows in every feed that has checks
    codes_seen = set()
    for reasons, zh, codes, count in rows:
        assert zh and HAN.search(zh), reasons
        listed = codes.split(",")
        assert len(listed) == count and OTHER not in listed, (reasons, codes)
        codes_seen.update(listed)
    # the duplicates and the cross-column checks of the planted rows are among them
    assert {"duplicate_delivered", "claim_total_mismatch", "unknown_value", "id_check"} <= codes_seen, codes_seen


def test_a_key_repeated_inside_one_snapshot_has_a_code():
    """The words parts._within_file_copies writes for the second row of a key inside one roster file."""
    from lowincome.parts import _within_file_copies

    spec = FEEDS["civil_roster"]
    key = list(spec.snapshot_key)
    good = pl.DataFrame({**{k: ["a", "a", "b"] for k in key}, "source_row": [1, 2, 3],
                         REASONS: [[], [], []]}, schema_overrides={REASONS: pl.List(pl.String)})
    kept, copies = _within_file_copies(spec, good)
    assert kept.height == 2 and copies.height == 1
    reasons = copies[REASONS].to_list()[0]
    codes = pl.DataFrame({"r": [reasons]}).select(codes_expr(pl.col("r"))).item().to_list()
    assert codes == ["duplicate_in_file"] and translate(reasons)[0].endswith("与本文件第 1 行相同")
