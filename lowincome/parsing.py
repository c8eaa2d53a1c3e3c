"""Text → typed values for delivered cells, as vectorised Polars expressions.

Each `parse_*_expr(raw)` takes a text expression and returns
`(value_expr, problem_expr)`: the typed value (null when blank or not
acceptable) and a problem in plain English (null when the cell is fine or
blank). Blank means unknown; whether a blank is allowed is the caller's
decision. Problems never quote the cell: callers that may show the value
(non-personal columns) append it themselves.

Only native expressions are used (no Python per-row functions): these run on
feeds of millions of rows.

Digits are matched with `[0-9]`, never `\\d`: the regex engine's `\\d` is
Unicode-aware and would accept e.g. Arabic-Indic digits.
"""

from __future__ import annotations

from datetime import date

import polars as pl

# ---- full-width → half-width ---------------------------------------------------------

#: Full-width ASCII (U+FF01..U+FF5E → U+0021..U+007E), the ideographic space, the
#: no-break space and the full-width yen sign. Applied to every delivered cell we parse.
HALFWIDTH: dict[str, str] = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)}
HALFWIDTH.update({"\u3000": " ", "\u00a0": " ", "\uffe5": "\u00a5"})
_HALFWIDTH_TABLE = str.maketrans(HALFWIDTH)
_FROM = list(HALFWIDTH)
_TO = [HALFWIDTH[k] for k in _FROM]

#: What is trimmed around a value (after `halfwidth`, so U+3000 and U+00A0 are already spaces);
#: byte-order marks and zero-width spaces come with copy-paste from Excel and web pages.
STRIP_CHARS = " \t\r\n\v\f\u3000\u00a0\ufeff\u200b"


def halfwidth(text: str) -> str:
    """Scalar twin of `halfwidth_expr` (same table)."""
    return text.translate(_HALFWIDTH_TABLE)


def halfwidth_expr(raw: pl.Expr) -> pl.Expr:
    """Full-width digits, letters, punctuation and spaces to their half-width forms (text in, text out).

    Does not trim: callers strip surrounding whitespace themselves.
    """
    return raw.cast(pl.String).str.replace_many(_FROM, _TO)


def staged(first: pl.Expr, *stages: dict[str, pl.Expr]) -> pl.Expr:
    """A struct built stage by stage: field `c` = `first`, then each stage's fields.

    Later stages refer to earlier fields with `pl.field(name)`, which reads the
    computed field instead of recomputing its expression. This is a let-binding
    for expressions: eager frames get no common-subexpression elimination, so a
    when/then tree that mentions the cleaned text a dozen times would otherwise
    clean it a dozen times (and the tree grows exponentially with nesting).
    """
    out = pl.struct(first.alias("c"))
    for stage in stages:
        out = out.struct.with_fields(**stage)
    return out


def _clean(raw: pl.Expr) -> pl.Expr:
    """Half-width and trimmed (empty string stays empty: blank tests use `_blank`)."""
    return halfwidth_expr(raw).str.strip_chars(STRIP_CHARS)


def _blank(field: pl.Expr) -> pl.Expr:
    return field.is_null() | (field == "")


def _words(code: pl.Expr, words: dict[int, str]) -> pl.Expr:
    """Problem code (0 = fine) → problem text (null = fine)."""
    return code.replace_strict(list(words), list(words.values()), default=None, return_dtype=pl.String)


def _codes(*cases: tuple[pl.Expr, int]) -> pl.Expr:
    """First matching case's code, else 0 (a small integer is cheap to combine; words come once at the end)."""
    cond, code = cases[0]
    chain = pl.when(cond).then(pl.lit(code, dtype=pl.UInt8))
    for cond, code in cases[1:]:
        chain = chain.when(cond).then(pl.lit(code, dtype=pl.UInt8))
    return chain.otherwise(pl.lit(0, dtype=pl.UInt8))


# ---- dates ----------------------------------------------------------------------------

DATE_FORMAT = "not a recognised date format"
DATE_IMPOSSIBLE = "not a real calendar date"
DATE_TOO_EARLY = "implausible year (before 1900)"
MONTH_FORMAT = "not a recognised month format"
MONTH_RANGE = "month out of range (expected 1 to 12)"

_EARLIEST = date(1900, 1, 1)

# A trailing time of day, as Excel and database exports append it (`2026-03-01 00:00:00`).
_TIME = r"(?:[ T]+[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)$"
_DATE_FORMS = (
    r"^(?:"
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"|[0-9]{4}/[0-9]{1,2}/[0-9]{1,2}"
    r"|[0-9]{4}\.[0-9]{1,2}\.[0-9]{1,2}"
    r"|[0-9]{4} *年 *[0-9]{1,2} *月 *[0-9]{1,2} *日?"
    r"|[0-9]{8}"
    r")$"
)
_MONTH_FORMS = (
    r"^(?:"
    r"[0-9]{4}[-/.][0-9]{1,2}"
    r"|[0-9]{4} *年 *[0-9]{1,2} *月?"
    r"|[0-9]{6}"
    r")$"
)
_DATE_WORDS = {1: DATE_FORMAT, 2: DATE_IMPOSSIBLE, 3: DATE_TOO_EARLY, 4: MONTH_FORMAT, 5: MONTH_RANGE}


def _to_dashed(s: pl.Expr, compact_len: int) -> pl.Expr:
    """`2026年3月1日`, `2026/3/1`, `2026.3.1`, `20260301` → `2026-3-1` (months: `2026-3`).

    Only meaningful for text that matched one of the accepted forms.
    """
    separated = s.str.replace(r" *[日月]$", "").str.replace_all(r" *[年月/.] *", "-")
    if compact_len == 8:
        compact = s.str.slice(0, 4) + "-" + s.str.slice(4, 2) + "-" + s.str.slice(6, 2)
    else:
        compact = s.str.slice(0, 4) + "-" + s.str.slice(4, 2)
    return pl.when(s.str.contains(r"^[0-9]+$")).then(compact).otherwise(separated)


def _date_stages() -> list[dict[str, pl.Expr]]:
    """Stages after `c` (cleaned text) that give `s` (time removed), `date` and `date_code`."""
    f = pl.field
    return [
        {"s": f("c").str.replace(_TIME, "").str.strip_chars(STRIP_CHARS)},
        {"blank": _blank(f("s")), "date_form": f("s").str.contains(_DATE_FORMS), "dashed": _to_dashed(f("s"), 8)},
        {"parsed": f("dashed").str.strptime(pl.Date, "%Y-%m-%d", strict=False, cache=False)},
        {
            "date_code": _codes(
                (f("blank"), 0),
                (~f("date_form"), 1),
                (f("parsed").is_null(), 2),
                (f("parsed") < pl.lit(_EARLIEST), 3),
            )
        },
    ]


def parse_date_struct(raw: pl.Expr) -> pl.Expr:
    """Text → `pl.Date`.

    Accepts `YYYY-MM-DD`, `YYYY-M-D`, `YYYY/M/D`, `YYYY.M.D`, `YYYYMMDD`,
    `YYYY年M月D日` (the `日` may be missing), each optionally followed by a time of
    day (`2026-03-01 00:00:00`, as Excel exports write it; the time is ignored),
    with full-width digits and surrounding spaces. Blank → (null, null).

    Problems: "not a recognised date format", "not a real calendar date"
    (2026-02-30, 2026-13-01), "implausible year (before 1900)".
    """
    f = pl.field
    st = staged(
        _clean(raw),
        *_date_stages(),
        {
            "value": pl.when(f("date_code") == 0).then(f("parsed")).otherwise(pl.lit(None, dtype=pl.Date)),
            "problem": _words(f("date_code"), _DATE_WORDS),
        },
    )
    return st


def parse_month_struct(raw: pl.Expr) -> pl.Expr:
    """Text → `pl.Date`, the first day of the month.

    Accepts `YYYY-MM`, `YYYY-M`, `YYYY/M`, `YYYY.M`, `YYYYMM`, `YYYY年M月`, and any
    full date `parse_date_expr` accepts (its month is taken). Blank → (null, null).

    Problems: "month out of range (expected 1 to 12)", "not a recognised month
    format", "implausible year (before 1900)", and for full dates those of
    `parse_date_expr`.
    """
    f = pl.field
    st = staged(
        _clean(raw),
        *_date_stages(),
        {"month_form": f("s").str.contains(_MONTH_FORMS), "mdashed": _to_dashed(f("s"), 6)},
        {
            "year": f("mdashed").str.extract(r"^([0-9]{4})-", 1).cast(pl.Int32, strict=False),
            "month": f("mdashed").str.extract(r"-([0-9]{1,2})$", 1).cast(pl.Int8, strict=False),
        },
        {"month_ok": f("month").is_between(1, 12).fill_null(False)},
        {
            "code": pl.when(f("blank")).then(pl.lit(0, dtype=pl.UInt8))
            .when(f("month_form") & ~f("month_ok")).then(pl.lit(5, dtype=pl.UInt8))
            .when(f("month_form") & (f("year") < 1900)).then(pl.lit(3, dtype=pl.UInt8))
            .when(f("month_form")).then(pl.lit(0, dtype=pl.UInt8))
            .when(f("date_form")).then(f("date_code"))  # a full date: its month
            .otherwise(pl.lit(4, dtype=pl.UInt8))
        },
        {
            "value": pl.when((f("code") != 0) | f("blank")).then(pl.lit(None, dtype=pl.Date))
            .when(f("month_form")).then(pl.date(f("year"), pl.when(f("month_ok")).then(f("month")).otherwise(1), 1))
            .otherwise(f("parsed").dt.month_start()),
            "problem": _words(f("code"), _DATE_WORDS),
        },
    )
    return st


# ---- money ----------------------------------------------------------------------------

MONEY_NOT_NUMBER = "not a number"
MONEY_DECIMALS = "more than two decimals"
MONEY_TOO_LARGE = "too large for an amount (more than 16 digits before the decimal point)"

MONEY_DTYPE = pl.Decimal(18, 2)
_MONEY_FORM = r"^[+-]?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)?(?:\.[0-9]*)?$"
# Digits beyond the cents that put the amount within 1e-6 yuan of a whole cent:
# trailing zeros, 0.0000… or exactly 0.0001 of a cent above, 0.9999… below.
_CENT_NOISE = r"^(?:0*|0000[0-9]*|00010*|9999[0-9]*)$"
_MONEY_WORDS = {1: MONEY_NOT_NUMBER, 2: MONEY_TOO_LARGE, 3: MONEY_DECIMALS}


def parse_money_struct(raw: pl.Expr) -> pl.Expr:
    """Yuan text → `pl.Decimal(18, 2)`.

    Accepts thousands separators (`1,234.50`, full-width `，`), full-width
    digits, surrounding spaces, a leading `¥`/`￥` (after an optional sign) and a
    trailing `元`, negative amounts (range checks are the caller's), and Excel
    float noise: more than two decimals are rounded to the cent when within 1e-6
    of it (`1234.5600000001`, `1234.5599999999` → 1234.56). Blank → (null, null).

    Problems: "not a number", "more than two decimals",
    "too large for an amount (more than 16 digits before the decimal point)".
    """
    f = pl.field
    st = staged(
        _clean(raw),
        {"blank": _blank(f("c")), "s": f("c").str.replace(r"^([+-]?) *¥ *", "${1}").str.replace(r" *元$", "")},
        {
            "form_ok": f("s").str.contains(_MONEY_FORM) & f("s").str.contains("[0-9]"),
            "n": f("s").str.replace_all(",", "", literal=True),
        },
        {
            "whole": f("n").str.extract(r"^[+-]?([0-9]*)", 1).str.strip_chars_start("0").str.len_bytes(),
            "extra": f("n").str.extract(r"\.[0-9]{2}([0-9]+)$", 1),
            # A text with more than two decimals is rounded to the cent by the cast (half to even;
            # with the noise rule below there is never a tie).
            "parsed": f("n").cast(MONEY_DTYPE, strict=False),
        },
        {
            "code": _codes(
                (f("blank"), 0),
                (~f("form_ok"), 1),
                (f("whole") > 16, 2),
                (f("extra").is_not_null() & ~f("extra").str.contains(_CENT_NOISE), 3),
                (f("parsed").is_null(), 2),  # 9999999999999999.9999999 rounds past 16 digits
            )
        },
        {
            "value": pl.when(f("code") == 0).then(f("parsed")).otherwise(pl.lit(None, dtype=MONEY_DTYPE)),
            "problem": _words(f("code"), _MONEY_WORDS),
        },
    )
    return st


# ---- integers -------------------------------------------------------------------------

INT_NOT_WHOLE = "not a whole number"
INT_TOO_LARGE = "too large (more than 9 digits)"
_INT_WORDS = {1: INT_NOT_WHOLE, 2: INT_TOO_LARGE}


def parse_int_struct(raw: pl.Expr) -> pl.Expr:
    """Text → `pl.Int64`. Accepts `3`, ` 3 `, `+3`, `-3`, `3.0`/`3.` (Excel), full-width digits.

    Blank → (null, null). Problems: "not a whole number", "too large (more than
    9 digits)" (the integers in the feeds are counts; the limit keeps every value
    inside Int32).
    """
    f = pl.field
    st = staged(
        _clean(raw),
        {
            "blank": _blank(f("c")),
            "form_ok": f("c").str.contains(r"^[+-]?[0-9]+(?:\.0*)?$"),
            "digits": f("c").str.extract(r"^[+-]?0*([0-9]*)", 1).str.len_bytes(),
            "number": f("c").str.extract(r"^([+-]?[0-9]+)", 1).str.to_integer(strict=False),
        },
        {"code": _codes((f("blank"), 0), (~f("form_ok"), 1), (f("digits") > 9, 2))},
        {
            "value": pl.when(f("code") == 0).then(f("number")).otherwise(pl.lit(None, dtype=pl.Int64)),
            "problem": _words(f("code"), _INT_WORDS),
        },
    )
    return st


def _pair(st: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    return st.struct.field("value"), st.struct.field("problem")


def parse_date_expr(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(date or null, problem or null). Prefer `parse_date_struct` when both are needed on a large frame."""
    return _pair(parse_date_struct(raw))


def parse_month_expr(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    return _pair(parse_month_struct(raw))


def parse_money_expr(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    return _pair(parse_money_struct(raw))


def parse_int_expr(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    return _pair(parse_int_struct(raw))


# ---- canonical cells: what the full parse would give, decided cheaply ------------------
# Each `fast_*` returns (value, ok): for a cell where `ok` holds, the full `parse_*_struct` gives
# exactly `value` and no problem. Almost every delivered cell is canonical; `validation.validate_rows`
# sends only the other rows through the full parse. Each canonical form is a strict subset of what
# the full parse accepts, and the value comes from the same conversion the full parse ends with.

_CANON_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_CANON_MONTH = r"^[0-9]{4}-(?:0[1-9]|1[0-2])$"
_CANON_MONEY = r"^(?:0|[1-9][0-9]{0,15})(?:\.[0-9]{1,2})?$"
_CANON_INT = r"^(?:0|[1-9][0-9]{0,8})$"


def fast_date(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """`2026-03-01`: a real calendar date from 1900 on."""
    value = raw.str.strptime(pl.Date, "%Y-%m-%d", strict=False, cache=False)
    return value, raw.str.contains(_CANON_DATE) & (value >= pl.lit(_EARLIEST))


def fast_month(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """`2026-03`: months 01 to 12, from 1900 on; the value is the first day of the month."""
    value = (raw + pl.lit("-01")).str.strptime(pl.Date, "%Y-%m-%d", strict=False, cache=False)
    return value, raw.str.contains(_CANON_MONTH) & (value >= pl.lit(_EARLIEST))


def fast_money(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """`1234.5`: no sign, separator, currency sign or leading zero, at most two decimals."""
    value = raw.cast(MONEY_DTYPE, strict=False)
    return value, raw.str.contains(_CANON_MONEY) & value.is_not_null()


def fast_int(raw: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """`3`: digits only, no leading zero, at most 9 digits."""
    value = raw.str.to_integer(strict=False)
    return value, raw.str.contains(_CANON_INT) & value.is_not_null()
