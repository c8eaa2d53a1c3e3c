"""One expectation suite per feed, derived from the feed registry.

The suite is code, not stored JSON: `suite_for(spec)` walks `spec.columns`,
so a column added to the registry (or a value added to an enum) changes the
suite in the same commit. The version is part of the name (`<feed>.v1`); bump
`SUITE_VERSION` when the meaning of a check changes, so results recorded
under the old name stay interpretable.

The expectations run on the frame `gx_input` builds from the output of
`lowincome.validation.validate_rows`: the raw text (blank made null), the
typed values, and for dates the parsed value before the future-date rule
nulls it. Checking what `validate_rows` made of each cell, rather than
re-implementing the parsing in GX, is what keeps the suite and the
quarantine one definition.

Everything that depends on the delivery (its extraction date, the previous
delivery's row count) is a suite parameter (`{"$PARAMETER": ...}`) filled in
at validation time by `suite_parameters`, so one suite object serves every
file of the feed.

Each expectation carries `meta`: `column` (the Chinese header auditors know),
`severity` ("blocking" stops downstream assets; "warning" is recorded, the
affected rows are already quarantined), `check` (a short reason in the same
words as the quarantine) and `row_level` (true when failing rows are exactly
quarantined rows; false for set-level checks such as uniqueness or volume).
"""

from __future__ import annotations

import math
from datetime import date, datetime

import great_expectations as gx
import great_expectations.expectations as gxe
import polars as pl

from .names import BLOCKING, DEFAULT_VOLUME_MIN_ROWS, DEFAULT_VOLUME_SHARE, SUITE_VERSION, WARNING, suite_name  # noqa: F401 (re-exported)
from lowincome.feeds import Column, FeedSpec
from lowincome.parsing import parse_date_struct, parse_month_struct
# `_blank` is the quarantine's own definition of a blank cell; reused so both agree on it.
from lowincome.validation import FILE_COUNTY, RAW_PREFIX, _blank, typed_columns

from . import expectations as cx


P_LAST_DATE = "last_date"  # the extraction date: no event after it, no one born after it
P_LAST_MONTH = "last_month"  # first day of the extraction month: no month after it
P_VOLUME_MIN = "volume_min_rows"
P_VOLUME_MAX = "volume_max_rows"
PARSED_PREFIX = "parsed_"
DELIVERED_PREFIX = "delivered_"



def _param(name: str) -> dict:
    return {"$PARAMETER": name}


SEVERITY_LABEL = {BLOCKING: "阻断 blocking", WARNING: "警告 warning"}
GX_SEVERITY = {BLOCKING: "critical", WARNING: "warning"}  # GX's own FailureSeverity for the same thing


def _meta(columns: Column | list[Column] | None, check: str, *, severity: str = WARNING, row_level: bool = True) -> dict:
    cols = [] if columns is None else [columns] if isinstance(columns, Column) else columns
    return {
        "column": "/".join(c.header for c in cols) or None,
        "columns": [c.name for c in cols],
        "personal": any(c.personal for c in cols),
        "check": check,
        "severity": severity,
        "row_level": row_level,
    }


def _column_expectations(spec: FeedSpec, c: Column) -> list:
    raw = RAW_PREFIX + c.name
    out = []
    if c.required:
        out.append(gxe.ExpectColumnToExist(column=raw, meta=_meta(c, "required column missing from the file", severity=BLOCKING, row_level=False)))
    if not c.nullable:
        # Text has no typed form beyond trimming: its GX column is the typed value with the quarantine's blank made null.
        target = c.name if c.kind == "text" else raw
        out.append(gxe.ExpectColumnValuesToNotBeNull(column=target, meta=_meta(c, "blank (a value is required)")))
    if c.kind == "id":
        out.append(
            cx.ExpectColumnValuesToBeValidGb11643Id(
                column=raw, latest_birth=_param(P_LAST_DATE), meta=_meta(c, "not a valid GB 11643 ID number")
            )
        )
    elif c.kind in ("enum", "coded_enum"):
        values = list(c.values) if c.kind == "enum" else [label for label, _ in c.codes]
        out.append(
            gxe.ExpectColumnValuesToBeInSet(
                column=DELIVERED_PREFIX + c.name, value_set=values, meta=_meta(c, "unknown value")
            )
        )
        if c.kind == "coded_enum":
            lo, hi = min(n for _, n in c.codes), max(n for _, n in c.codes)
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=f"{c.name}_code", min_value=lo, max_value=hi, meta=_meta(c, f"code outside {lo}-{hi}")
                )
            )
    elif c.kind in ("date", "month"):
        parsed = PARSED_PREFIX + c.name
        out.append(cx.ExpectColumnValuesToBeRecognised(column_list=[raw, parsed], meta=_meta(c, f"not a recognised {c.kind}")))
        out.append(
            gxe.ExpectColumnValuesToBeBetween(
                column=parsed,
                max_value=_param(P_LAST_DATE if c.kind == "date" else P_LAST_MONTH),
                meta=_meta(c, f"{c.kind} lies after the file's extraction date"),
            )
        )
    elif c.kind in ("money", "int", "division", "cert_id"):
        what = {"money": "not an amount", "int": "not a whole number", "division": "not a 6- or 12-digit division code",
                "cert_id": "not a 20-character certificate number"}[c.kind]
        out.append(cx.ExpectColumnValuesToBeRecognised(column_list=[raw, c.name], meta=_meta(c, what)))
        if c.kind == "division":
            # `lowincome.validation.county_checks`: the row's county is the file's (when the file's county is known).
            out.append(gxe.ExpectColumnPairValuesToBeEqual(
                column_A="county_code", column_B=FILE_COUNTY, ignore_row_if="either_value_is_missing",
                meta=_meta(c, "lies in another county than the file's"),
            ))
        if c.min_value is not None:
            if c.kind == "money":
                check = "must be greater than 0" if c.min_exclusive else "negative amount"
            else:
                check = f"must be at least {c.min_value:g}"
            out.append(
                gxe.ExpectColumnValuesToBeBetween(
                    column=c.name, min_value=c.min_value, strict_min=c.min_exclusive, meta=_meta(c, check)
                )
            )
    return out


def _key_expectations(spec: FeedSpec) -> list:
    out = []
    for key, why in ((spec.unique_key, "delivered twice in this file"), (spec.snapshot_key, "twice in this snapshot")):
        if not key:
            continue
        cols = [spec.column(k) for k in key]
        meta = _meta(cols, f"duplicate key: {why}", row_level=False)
        if len(key) == 1:
            out.append(gxe.ExpectColumnValuesToBeUnique(column=key[0], meta=meta))
        else:
            out.append(gxe.ExpectCompoundColumnsToBeUnique(column_list=list(key), meta=meta))
    return out


def _cross_expectations(spec: FeedSpec) -> list:
    """The cross-column rules of `lowincome.validation.CROSS_CHECKS`, one expectation each."""
    col = spec.column
    out = []
    if spec.name == "civil_roster":
        out += [
            cx.ExpectColumnValuesToBePresentExactlyWhen(
                column_list=["status", RAW_PREFIX + "ended_on", "ended_on"], value="停保", required=True,
                meta=_meta([col("ended_on"), col("status")], "停保日期 present exactly when 保障状态 is 停保"),
            ),
            gxe.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="ended_on", column_B="enrolled_on", or_equal=True, ignore_row_if="either_value_is_missing",
                meta=_meta([col("ended_on"), col("enrolled_on")], "停保日期 before 纳入日期"),
            ),
        ]
    elif spec.name == "medical_claims":
        parts = ["basic_insurance_paid", "critical_illness_paid", "medical_assistance_paid", "out_of_pocket"]
        out.append(
            cx.ExpectColumnPartsToSumToTotal(
                column_list=["total_cost", *parts],
                meta=_meta([col("total_cost"), *map(col, parts)], "医疗总费用 does not equal 统筹 + 大病 + 医疗救助 + 个人自付"),
            )
        )
    elif spec.name == "disability_cert":
        out += [
            cx.ExpectCertificateNumberToMatchHolder(
                column_list=["certificate_id", "id_number", "disability_category_code", "disability_level_code"],
                meta=_meta([col("certificate_id"), col("id_number")], "残疾人证号 is not 身份证号 + 类别 digit + 等级 digit"),
            ),
            cx.ExpectColumnValuesToBePresentExactlyWhen(
                column_list=["certificate_status", RAW_PREFIX + "revoked_on", "revoked_on"], value="注销", required=False,
                meta=_meta([col("revoked_on"), col("certificate_status")], "注销日期 present although 证件状态 is not 注销"),
            ),
        ]
    elif spec.name == "rural_monitoring":
        out += [
            cx.ExpectColumnValuesToBePresentExactlyWhen(
                column_list=["household_kind", RAW_PREFIX + "monitoring_category", "monitoring_category"],
                value="监测户", required=True,
                meta=_meta([col("monitoring_category"), col("household_kind")], "监测对象类别 present exactly for a 监测户"),
            ),
            cx.ExpectColumnValuesToBePresentExactlyWhen(
                column_list=["risk_eliminated", RAW_PREFIX + "eliminated_on", "eliminated_on"], value="是", required=False,
                meta=_meta([col("eliminated_on"), col("risk_eliminated")], "风险消除时间 present although 风险是否消除 is not 是"),
            ),
        ]
    return out


def _volume_expectation() -> gxe.ExpectTableRowCountToBeBetween:
    return gxe.ExpectTableRowCountToBeBetween(
        min_value=_param(P_VOLUME_MIN),
        max_value=_param(P_VOLUME_MAX),
        meta=_meta(None, "row count moved more than the allowed share from the previous delivery", row_level=False),
    )


def _build(spec: FeedSpec) -> gx.ExpectationSuite:
    expectations = [e for c in spec.columns for e in _column_expectations(spec, c)]
    expectations += _key_expectations(spec) + _cross_expectations(spec) + [_volume_expectation()]
    for e in expectations:  # GX's own severity field says the same as meta["severity"], for GX-native readers
        e.severity = GX_SEVERITY[e.meta["severity"]]
    # Passed to the constructor: `add_expectation` would need (and write to) an active context.
    return gx.ExpectationSuite(
        name=suite_name(spec),
        expectations=expectations,
        meta={"feed": spec.name, "title": spec.title, "version": SUITE_VERSION},
    )


def suite_for(spec: FeedSpec) -> gx.ExpectationSuite:
    """The feed's suite `<feed>.v1`, fresh each call (GX suites are mutable and bind to a context)."""
    return _build(spec)


def volume_bounds(previous_rows: int | None, share: float = DEFAULT_VOLUME_SHARE,
                  min_rows: int = DEFAULT_VOLUME_MIN_ROWS) -> tuple[int, int | None]:
    """Row-count bounds for a delivery given the previous one of the same feed and county.

    Without a previous delivery, or when the previous one had fewer than `min_rows` rows (too small
    to judge a change by a share), there is nothing to compare: the lower bound is 0 and there is
    no upper bound, so the expectation passes and is still recorded.
    """
    if previous_rows is None or previous_rows < min_rows:
        return 0, None
    return math.ceil(previous_rows * (1 - share)), math.floor(previous_rows * (1 + share))


def suite_parameters(extracted_on: date, previous_rows: int | None, volume_share: float = DEFAULT_VOLUME_SHARE,
                     volume_min_rows: int = DEFAULT_VOLUME_MIN_ROWS) -> dict:
    lo, hi = volume_bounds(previous_rows, volume_share, volume_min_rows)
    return {
        P_LAST_DATE: datetime(extracted_on.year, extracted_on.month, extracted_on.day).isoformat(),
        P_LAST_MONTH: datetime(extracted_on.year, extracted_on.month, 1).isoformat(),
        P_VOLUME_MIN: lo,
        P_VOLUME_MAX: hi,
    }


# Kinds whose delivered text has few distinct values: passed to GX as categoricals, which GX's pandas
# engine hashes and filters far faster than Arrow strings (it does both for every batch / expectation).
_LOW_CARDINALITY = ("division", "enum", "coded_enum", "date", "month")


def gx_input(spec: FeedSpec, validated: pl.DataFrame, columns: list[str] | None = None, *,
             for_pandas: bool = True) -> pl.DataFrame:
    """The frame the suite runs on, built from `validate_rows` output (Polars; convert with `.to_pandas()`).

    - `raw_<col>`: delivered text, blank (whitespace only) made null, the quarantine's notion of
      blank (not for `text` columns, whose typed value is the trimmed text: there the typed column
      has the blank made null);
    - typed columns as `validate_rows` made them; money as Float64 (pandas has no fast decimal);
      dates as Datetime[ns] (GX compares `[ms]` row by row or fails, see conventions.md);
    - `delivered_<enum>`: the typed label where recognised, else the delivered text, so the in-set
      expectation sees exactly the unknown values;
    - `parsed_<date>`: the parsed date before the future-date rule nulls it (same parser as the quarantine);
    - `file_county`: the county of the file's name, when `validate_rows` was given it (else null).

    `columns` restricts the frame to those GX columns (in that order), built from only the
    source columns they need (`gx_sources`), so a caller may pass a frame read with just those.
    `for_pandas=False` skips the Categorical casts that only serve GX's pandas engine (the values
    are the same text), for the Polars evaluation in `checks.evaluate`.

    Column existence is not judged on this frame (the reader fills absent columns with nulls):
    see `schema_frame`.
    """
    builders = _gx_builders(spec, validated.schema, for_pandas)
    wanted = list(builders) if columns is None else list(columns)
    unknown = [c for c in wanted if c not in builders]
    if unknown:
        raise KeyError(f"{spec.name}: no suite input column {', '.join(unknown)}")
    plain = [builders[c][0] for c in wanted if not c.startswith(PARSED_PREFIX)]
    out = validated.select(*plain) if plain else pl.DataFrame(height=validated.height)
    parsed = [_parsed(validated, spec.by_name[c[len(PARSED_PREFIX):]]) for c in wanted if c.startswith(PARSED_PREFIX)]
    if parsed:
        out = out.with_columns(parsed)
    return out.select(wanted) if wanted else out


def gx_sources(spec: FeedSpec, schema: pl.Schema | dict, columns: list[str]) -> list[str]:
    """The `validate_rows` columns needed to build the GX input `columns` (for a narrow Parquet read)."""
    builders = _gx_builders(spec, schema, False)
    return sorted({s for c in columns if c in builders for s in builders[c][1]})


def gx_available(spec: FeedSpec, schema: pl.Schema | dict) -> set[str]:
    """The GX input columns that can be built from a frame with `schema` (all their sources present)."""
    return {c for c, (_, sources) in _gx_builders(spec, schema, False).items() if all(s in schema for s in sources)}


def _gx_builders(spec: FeedSpec, schema, for_pandas: bool) -> dict[str, tuple[pl.Expr | None, tuple[str, ...]]]:
    """GX input column name → (Polars expression over `validate_rows` output, source columns it reads)."""
    out: dict[str, tuple[pl.Expr | None, tuple[str, ...]]] = {}

    def cat(e: pl.Expr) -> pl.Expr:
        return e.cast(pl.Categorical) if for_pandas else e

    for c in spec.columns:
        raw_name = RAW_PREFIX + c.name
        raw = pl.col(raw_name)
        present = pl.when(_blank(raw)).then(None).otherwise(raw)
        low = c.kind in _LOW_CARDINALITY
        if c.kind == "text":
            out[c.name] = (pl.when(_blank(raw)).then(None).otherwise(pl.col(c.name)).alias(c.name), (raw_name, c.name))
            continue
        out[raw_name] = ((cat(present) if low else present).alias(raw_name), (raw_name,))
        if c.kind in ("enum", "coded_enum"):
            name = DELIVERED_PREFIX + c.name
            out[name] = (cat(pl.coalesce(pl.col(c.name), present)).alias(name), (raw_name, c.name))
        if c.kind in ("date", "month"):
            out[PARSED_PREFIX + c.name] = (None, (raw_name, c.name))
    text = {c.name for c in spec.columns if c.kind == "text"}
    for name in typed_columns(spec):
        if name in text or name not in schema:
            continue
        dtype = schema[name]
        e = pl.col(name)
        if dtype == pl.Date:
            e = e.cast(pl.Datetime("ns"))
        elif isinstance(dtype, pl.Decimal):
            e = e.cast(pl.Float64)
        elif name == "county_code":
            pass  # compared with `file_county`: pandas cannot compare categoricals with different categories
        elif dtype == pl.String and (name not in spec.by_name or spec.by_name[name].kind in _LOW_CARDINALITY):
            e = cat(e)
        out[name] = (e, (name,))
    if any(c.kind == "division" for c in spec.columns):  # the file's county; null when validated without it
        out[FILE_COUNTY] = ((pl.col(FILE_COUNTY), (FILE_COUNTY,)) if FILE_COUNTY in schema
                            else (pl.lit(None, dtype=pl.String).alias(FILE_COUNTY), ()))
    return out


def schema_frame(spec: FeedSpec, missing_columns: list[str] | tuple[str, ...] = ()):
    """An empty pandas frame with a `raw_<col>` column for every registry column the file has.

    `expect_column_to_exist` looks at column names only; judging it on an empty frame keeps it
    free (GX hashes and filters every column of a batch), and the names come from what the
    reader found (`ReadResult.missing_columns`), not from the validated frame, where absent
    columns are present but null.
    """
    import pandas as pd

    missing = set(missing_columns)
    return pd.DataFrame({RAW_PREFIX + c.name: pd.Series([], dtype=object) for c in spec.columns if c.header not in missing})


def _parsed(validated: pl.DataFrame, c: Column) -> pl.Series:
    """The date as parsed, before `validate_rows` nulls it for lying after the extraction date.

    Only rows whose typed value is null but whose text is not blank can differ from the typed
    column, so only they are re-parsed (with the quarantine's own parser): a handful of rows
    instead of the whole file.
    """
    raw = pl.col(RAW_PREFIX + c.name)
    typed = validated[c.name].cast(pl.Datetime("ns"))
    idx = validated.select(pl.arg_where(pl.col(c.name).is_null() & ~_blank(raw))).to_series()
    if len(idx):
        parse = parse_date_struct if c.kind == "date" else parse_month_struct
        values = validated[idx].select(parse(raw).struct.field("value").cast(pl.Datetime("ns"))).to_series()
        typed = typed.scatter(idx, values)
    return typed.alias(PARSED_PREFIX + c.name)
