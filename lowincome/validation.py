"""Row validity: the one definition of what makes a delivered row acceptable.

Every check is a vectorised Polars expression built from the feed registry,
producing a typed value and, where the value is unacceptable, a reason in
words an auditor understands. The quarantine is exactly the rows with at
least one reason; the expectation suites (checks/) are derived from the same
`ROW_CHECKS`, so a check added here changes what is quarantined and what is
validated together.

Reasons never quote ID numbers or names: they name the column and the
problem. Values of non-personal columns (an unknown enum value, an
unparseable date) are quoted, truncated, because that is what an auditor needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Callable

import polars as pl

from .feeds import Column, FeedSpec
from .identity import fast_id, normalize_id_struct
from .parsing import (
    fast_date,
    fast_int,
    fast_money,
    fast_month,
    halfwidth_expr,
    parse_date_struct,
    parse_int_struct,
    parse_money_struct,
    parse_month_struct,
    staged,
)

REASONS = "reasons"
RAW_PREFIX = "raw_"


def _blank(raw: pl.Expr) -> pl.Expr:
    return raw.is_null() | (raw.str.strip_chars() == "")


def _quote(raw: pl.Expr) -> pl.Expr:
    s = raw.str.strip_chars()
    return pl.lit("'") + pl.when(s.str.len_chars() > 30).then(s.str.slice(0, 30) + pl.lit("…")).otherwise(s) + pl.lit("'")


@dataclass(frozen=True)
class Reason:
    """One check's condition and its words, kept apart so that the words are built only where needed.

    Building a message (quoting the cell, naming the column) costs more than every parse of the
    row together, and almost every delivered row has no problem at all: `validate_rows` evaluates
    the conditions on every row and the messages only on the rows where some condition holds.
    """

    cond: pl.Expr
    message: pl.Expr

    def expr(self) -> pl.Expr:
        return pl.when(self.cond).then(self.message).otherwise(pl.lit(None, dtype=pl.String))


@dataclass(frozen=True)
class FastStage:
    """The stage a column's cell gets when it is already in its canonical form.

    `value` is what the full parse would give for such a cell and `ok` says the cell qualifies
    (its text is canonical and the value passes every check the full parse makes, such as a real
    calendar date or a matching check character). A row whose staged cells all qualify skips the
    full parse; any other row takes it. `tests/test_validation_fast.py` holds the two paths equal.
    """

    value: pl.Expr
    ok: pl.Expr


def _fast(raw: pl.Expr, value: pl.Expr, ok: pl.Expr) -> FastStage:
    """The canonical stage of a cell, where an empty cell (null or "") is canonical too: its value is null.

    Optional columns are mostly empty (a roster's 终止日期, for one): without this, nearly every row of
    such a feed took the full parse. The full parse gives an empty cell no value and no problem of its own
    (whether a blank is allowed is `_blank_reason`'s, read from the text), which `tests/test_validation_fast.py`
    holds it to; a cell of spaces alone still takes the full parse.
    """
    empty = raw.is_null() | (raw == "")
    return FastStage(pl.when(empty).then(None).otherwise(value), empty | ok.fill_null(False))


@dataclass(frozen=True)
class CheckedColumn:
    """Typed outputs of one column and the reasons it contributes.

    `stage` holds the expensive parse (a struct of value and problem) that
    `outputs` and `reasons` both read: it is computed once as a hidden column
    in a first `with_columns`, because eager Polars does not share common
    sub-expressions and the lazy engine's elimination cost more than it saved.
    """

    outputs: dict[str, pl.Expr]
    reasons: list[Reason]
    stage: dict[str, pl.Expr] = field(default_factory=dict)
    fast: FastStage | None = None


def _staged(c: Column, st: pl.Expr) -> tuple[dict[str, pl.Expr], pl.Expr, pl.Expr]:
    """Register `st` as the column's hidden stage; return (stage, value, problem) read from it."""
    name = f"_st_{c.name}"
    return {name: st}, pl.col(name).struct.field("value"), pl.col(name).struct.field("problem")


def _reason(cond: pl.Expr, column: Column, text: str | pl.Expr) -> Reason:
    return Reason(cond, pl.lit(f"{column.label}: ") + (pl.lit(text) if isinstance(text, str) else text))


def _cross(cond: pl.Expr, text: str | pl.Expr) -> Reason:
    return Reason(cond, pl.lit(text) if isinstance(text, str) else text)


def _blank_reason(raw: pl.Expr, column: Column) -> list[Reason]:
    return [] if column.nullable else [_reason(_blank(raw), column, "blank (a value is required)")]


def _check_id(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    stage, norm, problem = _staged(c, normalize_id_struct(raw, today=extracted_on))
    reasons = [_reason(~_blank(raw) & problem.is_not_null(), c, problem)] + _blank_reason(raw, c)
    return CheckedColumn({c.name: norm}, reasons, stage, _fast(raw, *fast_id(raw, extracted_on)))


def _check_text(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    value = raw.str.strip_chars(" \t\r\n\u3000\u00a0")
    value = pl.when(value == "").then(None).otherwise(value)
    return CheckedColumn({c.name: value}, _blank_reason(raw, c))


_DIVISION = r"^(?:[0-9]{6}|[0-9]{12})$"  # ASCII digits only: `\d` would accept e.g. Arabic-Indic digits
_UNKNOWN = "unknown"  # a staged column's problem: its words are the reason's, built only where it fails


def _known_stage(cleaned: pl.Expr, known: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """The stage of a column whose cleaned text is either acceptable as it is or not: (value, problem)."""
    return staged(cleaned, {"ok": known(pl.field("c"))}, {
        "value": pl.when(pl.field("ok")).then(pl.field("c")),
        "problem": pl.when(~pl.field("ok")).then(pl.lit(_UNKNOWN)),
    })


def _check_division(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    stage, value, problem = _staged(c, _known_stage(halfwidth_expr(raw).str.strip_chars(),
                                                    lambda s: s.str.contains(_DIVISION)))
    reasons = [_reason(~_blank(raw) & problem.is_not_null(), c, "not a 6-digit county or 12-digit division code")]
    # a code already in its canonical form (digits only) needs neither the half-width table nor trimming
    fast = _fast(raw, raw, raw.str.contains(_DIVISION))
    return CheckedColumn({c.name: value, "county_code": value.str.slice(0, 6)}, reasons + _blank_reason(raw, c),
                         stage, fast)


def _check_enum(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    value = raw.str.strip_chars(" \t\r\n\u3000\u00a0")
    synonyms = dict(c.synonyms)
    if synonyms:  # another accepted spelling becomes the canonical value (确认 → confirmed)
        value = value.replace(synonyms)
    stage, value, problem = _staged(c, _known_stage(value, lambda s: s.is_in(list(c.values))))
    expected = "/".join([s for s, _ in c.synonyms] + list(c.values))
    reasons = [
        _reason(~_blank(raw) & problem.is_not_null(), c,
                pl.lit("unknown value ") + _quote(raw) + pl.lit(f" (expected {expected})"))
    ] + _blank_reason(raw, c)
    # a cell that is one of the values, exactly as written (and no synonym's spelling), is its own value
    fast = _fast(raw, raw, raw.is_in([v for v in c.values if v not in synonyms]))
    return CheckedColumn({c.name: value}, reasons, stage, fast)


def _check_coded_enum(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    """Accept `视力`, `1`, `视力(1)` or `视力（1）` and store label and code."""
    s = halfwidth_expr(raw).str.strip_chars().str.replace_all(r"[（(]\s*", "(").str.replace_all(r"\s*[）)]", ")")
    code = pl.lit(None, dtype=pl.Int64)
    label = pl.lit(None, dtype=pl.String)
    for lab, num in reversed(c.codes):
        hit = s.is_in([lab, str(num), f"{lab}({num})", f"{lab}{num}"])
        code = pl.when(hit).then(pl.lit(num)).otherwise(code)
        label = pl.when(hit).then(pl.lit(lab)).otherwise(label)
    expected = "/".join(f"{lab}({num})" for lab, num in c.codes)
    reasons = [
        _reason(~_blank(raw) & code.is_null(), c, pl.lit("unknown value ") + _quote(raw) + pl.lit(f" (expected {expected})"))
    ] + _blank_reason(raw, c)
    return CheckedColumn({c.name: label, f"{c.name}_code": code.cast(pl.Int32)}, reasons)


def _check_dated(parse: Callable, what: str) -> Callable:
    def check(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
        stage, value, problem = _staged(c, parse(raw))
        limit = extracted_on if what == "date" else extracted_on.replace(day=1)
        future = value.is_not_null() & (value > pl.lit(limit))
        reasons = [
            _reason(problem.is_not_null(), c, problem + pl.lit(" ") + _quote(raw)),
            _reason(future, c, f"{what} lies after the file's extraction date {extracted_on.isoformat()}"),
        ] + _blank_reason(raw, c)
        return CheckedColumn({c.name: pl.when(future).then(None).otherwise(value)}, reasons, stage, _fast(raw, *fast(raw)))

    fast = fast_date if what == "date" else fast_month
    return check


def _check_money(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    stage, value, problem = _staged(c, parse_money_struct(raw))
    reasons = [_reason(problem.is_not_null(), c, problem + pl.lit(" ") + _quote(raw))] + _blank_reason(raw, c)
    if c.min_value is not None:
        if c.min_exclusive:
            reasons.append(_reason(value.is_not_null() & (value <= c.min_value), c, "must be greater than 0"))
        else:
            reasons.append(_reason(value.is_not_null() & (value < c.min_value), c, "negative amount"))
    return CheckedColumn({c.name: value}, reasons, stage, _fast(raw, *fast_money(raw)))


def _check_int(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    stage, value, problem = _staged(c, parse_int_struct(raw))
    reasons = [_reason(problem.is_not_null(), c, problem + pl.lit(" ") + _quote(raw))] + _blank_reason(raw, c)
    if c.min_value is not None:
        reasons.append(_reason(value.is_not_null() & (value < c.min_value), c, f"must be at least {c.min_value:g}"))
    return CheckedColumn({c.name: value.cast(pl.Int32)}, reasons, stage, _fast(raw, *fast_int(raw)))


def _check_cert_id(raw: pl.Expr, c: Column, extracted_on: date) -> CheckedColumn:
    value = halfwidth_expr(raw).str.strip_chars().str.to_uppercase()
    ok = value.str.contains(r"^[0-9]{17}[0-9X][0-9]{2}$")
    reasons = [
        _reason(~_blank(raw) & ~ok, c, "not 20 characters (holder's 18-character ID + category digit + level digit)")
    ] + _blank_reason(raw, c)
    return CheckedColumn({c.name: pl.when(ok).then(value).otherwise(None)}, reasons)


_BY_KIND: dict[str, Callable[[pl.Expr, Column, date], CheckedColumn]] = {
    "id": _check_id,
    "text": _check_text,
    "division": _check_division,
    "enum": _check_enum,
    "coded_enum": _check_coded_enum,
    "date": _check_dated(parse_date_struct, "date"),
    "month": _check_dated(parse_month_struct, "month"),
    "money": _check_money,
    "int": _check_int,
    "cert_id": _check_cert_id,
}


# ---- cross-column checks, per feed ---------------------------------------------------
# Each takes the typed columns (by canonical name) and returns reason expressions.

def _present(col: str) -> pl.Expr:
    return pl.col(col).is_not_null()


def _roster_checks() -> list[Reason]:
    return [
        _cross((pl.col("status") == "停保") & ~_present("ended_on") & pl.col(RAW_PREFIX + "ended_on").pipe(_blank),
               "停保日期: missing although 保障状态 is 停保"),
        _cross((pl.col("status") == "在保") & _present("ended_on"),
               "停保日期: present although 保障状态 is 在保 (must be blank unless 停保)"),
        _cross(_present("ended_on") & _present("enrolled_on") & (pl.col("ended_on") < pl.col("enrolled_on")),
               "停保日期: before 纳入日期"),
    ]


def _claims_checks() -> list[Reason]:
    parts = ["basic_insurance_paid", "critical_illness_paid", "medical_assistance_paid", "out_of_pocket"]
    all_present = pl.all_horizontal([_present(p) for p in parts + ["total_cost"]])
    total_parts = pl.sum_horizontal([pl.col(p) for p in parts])
    return [
        _cross(
            all_present & (total_parts != pl.col("total_cost")),
            pl.lit("医疗总费用: does not equal 统筹 + 大病 + 医疗救助 + 个人自付 (parts sum to ")
            + total_parts.cast(pl.String)
            + pl.lit(", total is ")
            + pl.col("total_cost").cast(pl.String)
            + pl.lit(")"),
        )
    ]


def _cert_checks() -> list[Reason]:
    expected = pl.col("id_number") + pl.col("disability_category_code").cast(pl.String) + pl.col(
        "disability_level_code"
    ).cast(pl.String)
    comparable = pl.all_horizontal(
        [_present(c) for c in ("certificate_id", "id_number", "disability_category_code", "disability_level_code")]
    )
    return [
        _cross(comparable & (pl.col("certificate_id") != expected),
               "残疾人证号: is not the holder's 身份证号 followed by the 残疾类别 and 残疾等级 digits"),
        _cross((pl.col("certificate_status") != "注销") & _present("revoked_on"),
               "注销日期: present although 证件状态 is not 注销"),
    ]


def _rural_checks() -> list[Reason]:
    return [
        _cross((pl.col("household_kind") == "脱贫户") & _present("monitoring_category"),
               "监测对象类别: must be blank for a 脱贫户"),
        _cross((pl.col("household_kind") == "监测户") & pl.col(RAW_PREFIX + "monitoring_category").pipe(_blank),
               "监测对象类别: blank for a 监测户"),
        _cross((pl.col("risk_eliminated") != "是") & _present("eliminated_on"),
               "风险消除时间: present although 风险是否消除 is not 是"),
    ]


CROSS_CHECKS: dict[str, Callable[[], list[Reason]]] = {
    "civil_roster": _roster_checks,
    "medical_claims": _claims_checks,
    "disability_cert": _cert_checks,
    "rural_monitoring": _rural_checks,
}


FILE_COUNTY = "file_county"


def county_checks(spec: FeedSpec) -> list[Reason]:
    """A row's division code must lie in the county of the file it came in (feeds.md "Delivery").

    Reads the typed `county_code` and the `file_county` column `validate_rows` adds when it knows
    the file's county; rows without either are not judged here (a blank or malformed code has its
    own reason). The suites check the same pair (checks/suites.py).
    """
    division = next((c for c in spec.columns if c.kind == "division"), None)
    if division is None:
        return []
    code, county = pl.col("county_code"), pl.col(FILE_COUNTY)
    return [
        _cross(code.is_not_null() & county.is_not_null() & (code != county),
               pl.lit(f"{division.label}: lies in county ") + code + pl.lit(", not in the file's county ") + county)
    ]


_ORDER = "_validation_order"  # the row's position in the input, to put the separately validated rows back in order
_FAST = "_fast"  # the row takes the fast path
_BAD = "_bad"  # some check fails: the row gets the words of its reasons


def validate_rows(raw: pl.DataFrame, spec: FeedSpec, extracted_on: date, county: str | None = None,
                  *, fast: bool = True) -> pl.DataFrame:
    """Type every column and attach `reasons` (empty list = accepted).

    `raw` has the canonical text columns from `reading.read_delivery`. The
    result keeps the raw text (prefixed `raw_`) beside the typed values, so
    the quarantine can show the record as delivered. With the file's
    `county` (from its name), the result carries it as `file_county` and a
    row whose division code lies in another county is quarantined.

    Why it is split: a feed of millions of rows is almost entirely rows in canonical form with no
    problem. Rows whose staged cells are all canonical (`FastStage`) skip the full parse, and the
    words of a reason are built only for rows where some check fails; both cost far more than
    deciding. `fast=False` takes every row through the full parse and builds every reason on every
    row: the reference the fast path is tested against, with the same result row for row.
    """
    checked = [_BY_KIND[column.kind](pl.col(RAW_PREFIX + column.name), column, extracted_on) for column in spec.columns]
    stages: dict[str, pl.Expr] = {}
    typed: dict[str, pl.Expr] = {}
    reasons: list[Reason] = []
    for c in checked:
        stages.update(c.stage)
        typed.update(c.outputs)
        reasons.extend(c.reasons)
    reasons += CROSS_CHECKS.get(spec.name, lambda: [])()
    frame = raw.rename({c.name: RAW_PREFIX + c.name for c in spec.columns})
    if county is not None:
        frame = frame.with_columns(pl.lit(county, dtype=pl.String).alias(FILE_COUNTY))
        reasons += county_checks(spec)
    columns = frame.columns + [name for name in typed if name not in frame.columns] + [REASONS]
    frame = frame.with_row_index(_ORDER)

    fast_stages = {name: c.fast for c in checked for name in c.stage if c.fast is not None}
    if fast and frame.height:
        return _validate_fast(frame, columns, stages, fast_stages, typed, reasons)
    if fast and stages and len(fast_stages) == len(stages):
        frame = frame.with_columns(**{name: pl.struct(value=f.value, ok=f.ok.fill_null(False))
                                      for name, f in fast_stages.items()})
        frame = frame.with_columns(pl.all_horizontal([pl.col(n).struct.field("ok") for n in fast_stages]).alias(_FAST))
        quick = frame.filter(pl.col(_FAST)).drop(_FAST).with_columns(
            **{n: pl.struct(pl.col(n).struct.field("value"), pl.lit(None, dtype=pl.String).alias("problem"))
               for n in fast_stages})
        full = frame.filter(~pl.col(_FAST)).drop(_FAST, *fast_stages)
        pieces = [quick, full.with_columns(**stages)] if full.height else [quick]
    else:
        pieces = [frame.with_columns(**stages)]  # phase 1: each parse once

    out: list[pl.DataFrame] = []
    for piece in pieces:
        if piece.is_empty():
            continue
        piece = piece.with_columns(**typed)
        if fast:
            piece = piece.with_columns(pl.any_horizontal([r.cond.fill_null(False) for r in reasons]).alias(_BAD)
                                       if reasons else pl.lit(False).alias(_BAD))
            bad = piece.filter(pl.col(_BAD)).drop(_BAD)
            good = piece.filter(~pl.col(_BAD)).drop(_BAD).with_columns(_NO_REASONS)
            out.append(good)
        else:
            bad = piece
        if not bad.is_empty():
            out.append(bad.with_columns(pl.concat_list([r.expr() for r in reasons]).list.drop_nulls().alias(REASONS)))
    if not out:  # no rows: the typed schema still comes from the expressions
        empty = pieces[0].with_columns(**typed)
        return empty.with_columns(pl.lit(None, dtype=pl.List(pl.String)).alias(REASONS)).select(columns)
    result = pl.concat([o.select(columns + [_ORDER]) for o in out])
    if len(out) > 1:
        result = result.sort(_ORDER)
    return result.drop(_ORDER)


_NO_REASONS = pl.lit(pl.Series(REASONS, [[]], dtype=pl.List(pl.String))).first()  # an empty list on every row


def _validate_fast(frame: pl.DataFrame, columns: list[str], stages: dict[str, pl.Expr], fast_stages: dict[str, FastStage],
                   typed: dict[str, pl.Expr], reasons: list[Reason]) -> pl.DataFrame:
    """`validate_rows` with the fast path, without moving the delivered text: rows are split and put back in order
    only in the narrow frame of typed columns and reasons.

    The delivered text (`raw_*`, most of a file's bytes) stays where it was read; the typed columns of the
    rows in canonical form are computed on every row (the other rows' values are nulls, computed and
    dropped), those of the other rows (few) by the full parse, and the reasons' words only for rows with
    a failing check. Sorting and filtering the whole text, as the first version did, cost more than the checks.
    """
    new = [name for name in columns if name not in frame.columns and name != REASONS]
    narrow = [_ORDER, *new]
    pieces: list[tuple[pl.DataFrame, bool]] = []  # (rows with their stages, keep only its rows in canonical form)
    if stages and len(fast_stages) == len(stages):
        staged = frame.with_columns(**{name: pl.struct(value=f.value, ok=f.ok.fill_null(False))
                                       for name, f in fast_stages.items()})
        staged = staged.with_columns(pl.all_horizontal([pl.col(n).struct.field("ok") for n in fast_stages]).alias(_FAST))
        slow = staged.filter(~pl.col(_FAST)).drop(_FAST, *fast_stages)
        # every row, with the canonical value where the cell qualifies and null elsewhere (those rows are dropped)
        quick = staged.with_columns(
            **{n: pl.struct(pl.when(pl.col(n).struct.field("ok")).then(pl.col(n).struct.field("value")).alias("value"),
                            pl.lit(None, dtype=pl.String).alias("problem")) for n in fast_stages})
        pieces.append((quick, bool(slow.height)))
        if slow.height:
            pieces.append((slow.with_columns(**stages), False))
    else:
        pieces.append((frame.with_columns(**stages) if stages else frame, False))

    out: list[pl.DataFrame] = []
    for piece, canonical_only in pieces:
        piece = piece.with_columns(**typed).with_columns(
            pl.any_horizontal([r.cond.fill_null(False) for r in reasons]).alias(_BAD) if reasons
            else pl.lit(False).alias(_BAD))
        keep = pl.col(_FAST) if canonical_only else pl.lit(True)
        out.append(piece.select(*narrow, _BAD, keep.alias(_FAST)).filter(pl.col(_FAST) & ~pl.col(_BAD))
                   .select(narrow).with_columns(_NO_REASONS))
        bad = piece.filter(keep & pl.col(_BAD))
        if bad.height:
            out.append(bad.select(*narrow, pl.concat_list([r.expr() for r in reasons]).list.drop_nulls().alias(REASONS)))
    result = pl.concat(out) if len(out) > 1 else out[0]
    if len(out) > 1:
        result = result.sort(_ORDER)
    return pl.concat([frame.drop(_ORDER), result.drop(_ORDER)], how="horizontal").select(columns)


def typed_columns(spec: FeedSpec) -> list[str]:
    """Names of the typed columns `validate_rows` produces, in order."""
    names: list[str] = []
    for column in spec.columns:
        names.append(column.name)
        if column.kind == "division":
            names.append("county_code")
        if column.kind == "coded_enum":
            names.append(f"{column.name}_code")
    return names
