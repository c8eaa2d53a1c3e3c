"""Make delivered text look like real department exports: messy-but-valid values
(which ingestion must accept) and bad rows of every kind (which it must
quarantine). Both are recorded row by row for the manifest.

Each file receives bad rows only up to a small share of its rows (default
3%), below the blocking threshold, so the generated inbox exercises row-level
quarantine; whole-file failures are written separately (broken inbox).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from ..feeds import FeedSpec

# Bad-row kinds per feed: (kind, column).
BAD_KINDS: dict[str, list[tuple[str, str]]] = {
    "medical_claims": [
        ("wrong_check_character", "id_number"), ("excel_float_id", "id_number"), ("wrong_length", "id_number"),
        ("claim_parts_mismatch", "total_cost"), ("negative_amount", "out_of_pocket"), ("unknown_enum", "visit_type"),
        ("unparseable_date", "settled_on"), ("date_after_extraction", "settled_on"),
        ("duplicate_settlement_id", "settlement_id"), ("legacy_number_ending_in_x", "id_number"),
    ],
    "subsidy_payments": [
        ("wrong_length", "id_number"), ("negative_amount", "amount"), ("duplicate_payment_id", "payment_id"),
        ("unknown_enum", "subsidy_type"), ("unparseable_month", "pay_month"), ("zero_amount", "amount"),
    ],
    "hrss_benefits": [("impossible_birth_date", "id_number"), ("unknown_enum", "item"), ("unparseable_amount", "amount")],
    "civil_roster": [
        ("excel_float_id", "id_number"), ("ended_on_while_active", "ended_on"), ("household_size_zero", "household_size"),
        ("unparseable_date", "enrolled_on"), ("unknown_enum", "assistance_type"),
    ],
    "disability_cert": [("certificate_mismatch", "certificate_id"), ("unknown_enum", "disability_level")],
    "rural_monitoring": [("blank_required", "id_number"), ("impossible_birth_date", "id_number")],
    "death_records": [],
}

UNKNOWN_VALUES = {"visit_type": "急诊留观", "subsidy_type": "临时救助金", "item": "企业年金", "assistance_type": "临时救助", "disability_level": "五级"}


def _with_check_char_changed(s: pl.Expr) -> pl.Expr:
    last = s.str.slice(17, 1)
    return s.str.slice(0, 17) + pl.when(last == "0").then(pl.lit("1")).otherwise(pl.lit("0"))


def bad_value(kind: str, col: str, frame: pl.DataFrame, extracted_on_plus: str) -> pl.Expr:
    """The spoiled text of `col` for a bad row of `kind`."""
    c = pl.col(col)
    if kind == "wrong_check_character":
        return _with_check_char_changed(c)
    if kind == "excel_float_id":
        return c.str.slice(0, 1) + pl.lit(".") + c.str.slice(1, 5) + pl.lit("E+17")
    if kind == "wrong_length":
        return c.str.slice(0, 16)
    if kind == "legacy_number_ending_in_x":
        return c.str.slice(0, 6) + c.str.slice(8, 8) + pl.lit("X")
    if kind == "impossible_birth_date":  # month 13; the check character is recomputed so only the date is wrong
        from ..identity import check_character_expr

        body = c.str.slice(0, 10) + pl.lit("13") + c.str.slice(12, 5)
        return body + check_character_expr(body)
    if kind == "claim_parts_mismatch":
        return (c.str.replace(r"\.", "").cast(pl.Int64) + 100).pipe(cents_text)
    if kind == "negative_amount":
        return pl.lit("-") + c
    if kind == "zero_amount":
        return pl.lit("0.00")
    if kind == "unparseable_amount":
        return pl.lit("约3千")
    if kind == "unknown_enum":
        return pl.lit(UNKNOWN_VALUES[col])
    if kind == "unparseable_date":
        return pl.lit("2026-02-30")
    if kind == "unparseable_month":
        return pl.lit("2026-13")
    if kind == "date_after_extraction":
        return pl.lit(extracted_on_plus)
    if kind == "ended_on_while_active":
        return pl.lit("2026-01-31")
    if kind == "household_size_zero":
        return pl.lit("0")
    if kind == "certificate_mismatch":  # level digit changed
        last = c.str.slice(19, 1)
        return c.str.slice(0, 19) + pl.when(last == "1").then(pl.lit("2")).otherwise(pl.lit("1"))
    if kind == "blank_required":
        return pl.lit("")
    raise ValueError(kind)


def cents_text(cents: pl.Expr) -> pl.Expr:
    """Integer cents as '1234.50' text."""
    return (cents // 100).cast(pl.String) + pl.lit(".") + (cents % 100).cast(pl.String).str.zfill(2)


def bad_row_applicable(kind: str, frame: pl.DataFrame, col: str) -> pl.Expr:
    """Rows where planting `kind` gives exactly the intended defect."""
    c = pl.col(col)
    if kind == "legacy_number_ending_in_x" or kind == "impossible_birth_date":
        return c.str.len_chars() == 18
    if kind == "ended_on_while_active":
        return pl.col("status") == "在保"
    return pl.lit(True)


# ---- messy but valid ---------------------------------------------------------------------------------

FULLWIDTH = dict(zip("0123456789", "０１２３４５６７８９"))


def messy_options(spec: FeedSpec) -> list[tuple[str, str]]:
    """(kind, column) pairs of valid-but-untidy values this feed can carry."""
    opts: list[tuple[str, str]] = []
    for col in spec.columns:
        if col.kind == "id":
            opts += [("id_lowercase_x", col.name), ("id_padded_with_spaces", col.name), ("id_fullwidth_digits", col.name),
                     ("id_legacy_15_digits", col.name)]
        elif col.kind == "date" and not col.nullable:
            opts += [("date_slashes", col.name), ("date_compact", col.name), ("date_chinese", col.name)]
        elif col.kind == "month":
            opts += [("month_slashes", col.name), ("month_compact", col.name), ("month_chinese", col.name)]
        elif col.kind == "money":
            opts += [("money_thousands_separator", col.name)]
        elif col.kind == "division":
            opts += [("division_county_code_only", col.name)]
        elif col.kind == "coded_enum":
            opts += [("coded_label_with_digit", col.name), ("coded_digit_only", col.name)]
    return opts


def messy_value(kind: str, col: str, codes: dict[str, int] | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(applicable-row condition, untidy text) for `kind` on `col`."""
    c = pl.col(col)
    if kind == "id_lowercase_x":
        return c.str.ends_with("X"), c.str.to_lowercase()
    if kind == "id_padded_with_spaces":
        return c.is_not_null(), pl.lit(" ") + c + pl.lit("\u3000")
    if kind == "id_fullwidth_digits":
        return c.is_not_null(), c.str.replace_many(list(FULLWIDTH), list(FULLWIDTH.values()))
    if kind == "id_legacy_15_digits":
        return (c.str.slice(6, 2) == "19") & (c.str.len_chars() == 18), c.str.slice(0, 6) + c.str.slice(8, 9)
    if kind in ("date_slashes", "date_compact", "date_chinese"):
        d = c.str.strptime(pl.Date, "%Y-%m-%d", strict=False)
        y, m, dd = d.dt.year().cast(pl.String), d.dt.month().cast(pl.String), d.dt.day().cast(pl.String)
        text = {"date_slashes": pl.concat_str(y, pl.lit("/"), m, pl.lit("/"), dd),
                "date_compact": d.dt.strftime("%Y%m%d"),
                "date_chinese": pl.concat_str(y, pl.lit("年"), m, pl.lit("月"), dd, pl.lit("日"))}[kind]
        return d.is_not_null(), text
    if kind in ("month_slashes", "month_compact", "month_chinese"):
        y, m = c.str.slice(0, 4), c.str.slice(5, 2)
        text = {"month_slashes": y + pl.lit("/") + m.str.strip_chars_start("0"), "month_compact": y + m,
                "month_chinese": y + pl.lit("年") + m.str.strip_chars_start("0") + pl.lit("月")}[kind]
        return c.str.len_chars() == 7, text
    if kind == "money_thousands_separator":
        whole = c.str.split(".").list.first().cast(pl.Int64, strict=False)
        z3 = lambda e: e.cast(pl.String).str.zfill(3)  # noqa: E731
        grouped = (
            pl.when(whole >= 1_000_000)
            .then(pl.concat_str((whole // 1_000_000).cast(pl.String), pl.lit(","), z3(whole // 1000 % 1000), pl.lit(","), z3(whole % 1000)))
            .otherwise(pl.concat_str((whole // 1000).cast(pl.String), pl.lit(","), z3(whole % 1000)))
        )
        return whole >= 1000, grouped + pl.lit(".") + c.str.split(".").list.last()
    if kind == "division_county_code_only":
        return c.str.len_chars() == 12, c.str.slice(0, 6)
    if kind == "coded_label_with_digit":
        assert codes
        return c.is_in(list(codes)), c + pl.lit("(") + c.replace_strict(codes, default=None).cast(pl.String) + pl.lit(")")
    if kind == "coded_digit_only":
        assert codes
        return c.is_in(list(codes)), c.replace_strict(codes, default=None).cast(pl.String)
    raise ValueError(kind)


def choose_rows(rng: np.random.Generator, n: int, k: int, taken: set[int]) -> list[int]:
    free = np.setdiff1d(np.arange(n), np.fromiter(taken, dtype=np.int64, count=len(taken)))
    if len(free) == 0 or k <= 0:
        return []
    return sorted(int(i) for i in rng.choice(free, min(k, len(free)), replace=False))
