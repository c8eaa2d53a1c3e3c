"""Validate one delivered file with its feed's suite and turn the GX result into an audit table.

`validate_delivery` is what the ingest asset checks call: it returns one row
per expectation, ready for `audit.validation_results` and the run report.
`run_suite` is the same run keeping the GX result object, for Data Docs
(`checks.data_docs.build_data_docs`).

Privacy: the GX result is masked before anything leaves this module.
Expectations on personal columns (ID numbers, certificate numbers) keep only
masked examples (`371302**********34`), every other text goes through
`privacy.redact`, and result_format is SUMMARY (at most 20 examples, never
the full list of unexpected values). The row-level list (`COMPLETE`) is only
used by `quarantine_agreement`, which returns row numbers, never values.

Speed: the suite is evaluated in one vectorised Polars pass over the file's
parsed Parquet, reading only the columns the suite uses, and recorded as GX
result objects (`checks.evaluate`); GX's pandas engine, which cost 83 s on a
10M-row file, is kept in `checks.reference` as the reference tests compare with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable

import polars as pl

from lowincome.feeds import FeedSpec
from lowincome.privacy import MAX_NAME_CHARS, MIN_NAME_CHARS, format_words, known_names, mask_id_expr, neutralize_html, redact
from lowincome.reading import ROW_COLUMN
from lowincome.validation import RAW_PREFIX, REASONS

from .evaluate import evaluate_suite
from .names import RESULT_SCHEMA  # noqa: F401 (re-exported)
from .suites import BLOCKING, DEFAULT_VOLUME_MIN_ROWS, DEFAULT_VOLUME_SHARE, WARNING, suite_for, suite_name, suite_parameters

_EXAMPLES = 3  # examples quoted in observed_value / details


@dataclass
class DeliveryValidation:
    """One file's validation: the audit rows and the (masked) GX result behind them."""

    feed: str
    file_name: str
    extracted_on: date
    frame: pl.DataFrame
    result: object  # great_expectations ExpectationSuiteValidationResult, masked
    suite: object = field(default=None)  # the ExpectationSuite that produced it


# ---- masking -------------------------------------------------------------------------------


def _mask_ids(values: list) -> list:
    s = pl.Series("v", [None if v is None else str(v) for v in values], dtype=pl.String)
    return pl.DataFrame([s]).select(mask_id_expr(pl.col("v"))).to_series().to_list()


@dataclass(frozen=True)
class _Known:
    """What to mask in one file's GX result: its names, and the feed's words that are never names."""

    names: frozenset[str] = frozenset()
    keep: frozenset[str] = frozenset()


def _mask_text(s: str, personal: bool, names: "_Known") -> str:
    masked = _mask_ids([s])[0] if personal else redact(s, names.names, names.keep)
    return neutralize_html(masked)


def _mask_value(v, personal: bool, names: "_Known" = _Known()):
    """Mask every text inside a GX result value; numbers, booleans and unchanged objects stay as they are."""
    if isinstance(v, dict):
        new = {(neutralize_html(k) if isinstance(k, str) else k): _mask_value(x, personal, names) for k, x in v.items()}
        try:
            return type(v)(new)
        except Exception:
            return new
    if isinstance(v, (list, tuple)):
        return [_mask_value(x, personal, names) for x in v]
    if v is None or isinstance(v, (bool, int, float)):
        return v
    if isinstance(v, str):
        return _mask_text(v, personal, names)
    text = str(v)  # a timestamp, a numpy value: replaced only if its text needs masking
    masked = _mask_text(text, personal, names)
    return v if masked == text else masked


def _strings(v, out: list[str]) -> list[str]:
    if isinstance(v, dict):
        for k, x in v.items():
            out.append(str(k))
            _strings(x, out)
    elif isinstance(v, (list, tuple)):
        for x in v:
            _strings(x, out)
    elif isinstance(v, str):
        out.append(v)
    return out


def _lazy(validated: pl.DataFrame | Path | str) -> pl.LazyFrame:
    return validated.lazy() if isinstance(validated, pl.DataFrame) else pl.scan_parquet(validated)


def _delivered_names(spec: FeedSpec, validated: pl.DataFrame | Path | str, texts: list[str]) -> "_Known":
    """The names of this file (its 姓名 / caseworker values) that occur in `texts`.

    Vectorised on the file: every 2..12-character window of the (few, short) texts GX quotes is
    looked up among the file's names, so a million-row roster costs one `is_in`, not a Python set.
    Only the name columns are read, and only when some quoted text could hold a name.
    """
    keep = frozenset(format_words(spec))
    if not texts:
        return _Known(keep=keep)
    source = _lazy(validated)
    present = source.collect_schema().names()
    columns = [RAW_PREFIX + c.name for c in spec.columns if c.personal and c.kind == "text" and RAW_PREFIX + c.name in present]
    if not columns:
        return _Known(keep=keep)
    windows = {t[i:i + n] for t in texts for n in range(MIN_NAME_CHARS, MAX_NAME_CHARS + 1) for i in range(len(t) - n + 1)}
    if not windows:
        return _Known(keep=keep)
    found = (source.select(pl.concat_list([pl.col(c).str.strip_chars(" \t\r\n\u3000\u00a0") for c in columns]).alias("v"))
             .explode("v").filter(pl.col("v").is_in(list(windows))).select(pl.col("v").unique()).collect()["v"].to_list())
    return _Known(frozenset(known_names(found, exclude=keep)), keep)


def _mask_result(evr, personal: bool, names: "_Known" = _Known()) -> None:
    """Mask and neutralise the result in place: neither the audit table nor Data Docs may show an ID,
    a name, or delivered markup (Data Docs render some values unescaped)."""
    res = evr.result or {}
    for key in ("unexpected_rows", "unexpected_index_query"):
        res.pop(key, None)
    for key in list(res):
        res[key] = _mask_value(res[key], personal, names)
    if evr.exception_info:
        info = evr.exception_info
        for d in [info] + [v for v in info.values() if isinstance(v, dict)]:
            for k in ("exception_message", "exception_traceback"):
                if d.get(k):
                    d[k] = neutralize_html(redact(d[k], names.names, names.keep))


def _exception_message(evr) -> str | None:
    info = evr.exception_info or {}
    candidates = [info] + [v for v in info.values() if isinstance(v, dict)]
    for d in candidates:
        if d.get("raised_exception"):
            return redact(str(d.get("exception_message") or "exception"))
    return None


# ---- result rows ---------------------------------------------------------------------------


def _readable(cfg) -> str:
    meta = cfg.meta or {}
    target = meta.get("column") or ("file" if cfg.type.startswith("expect_table") else ",".join(cfg.kwargs.get("column_list", [])))
    return f"{cfg.type}({target})"


def _short(values: list) -> str:
    out = []
    for v in values[:_EXAMPLES]:
        if isinstance(v, dict):
            v = ", ".join(f"{k}={x}" for k, x in v.items())
        out.append(f"'{str(v)[:40]}'")
    return "; ".join(out)


def _row(spec: FeedSpec, file_name: str, evr) -> dict:
    cfg = evr.expectation_config
    meta = cfg.meta or {}
    res = evr.result or {}
    error = _exception_message(evr)
    element_count = res.get("element_count")
    unexpected = res.get("unexpected_count")
    percent = res.get("unexpected_percent")
    examples = res.get("partial_unexpected_list") or []
    check = meta.get("check", "")
    severity = meta.get("severity", WARNING)
    if "observed_value" in res:  # aggregate expectations (row count, column exists)
        observed = redact(str(res["observed_value"]))
    elif unexpected is not None:
        observed = f"{unexpected} unexpected" + (f": {_short(examples)}" if examples else "")
    else:
        observed = ""
    if error:
        details = f"could not be evaluated: {error[:200]}"
        severity = BLOCKING
    elif evr.success:
        details = "ok"
    elif cfg.type == "expect_table_row_count_to_be_between":
        lo, hi = cfg.kwargs.get("min_value"), cfg.kwargs.get("max_value")
        details = f"{check}: {res.get('observed_value')} rows, expected {lo} to {hi}"
    elif unexpected is not None:
        details = f"{check}: {unexpected} rows ({(percent or 0):.2f}%)"
    else:
        details = check
    return {
        "feed": spec.name,
        "file_name": file_name,
        "suite": suite_name(spec),
        "expectation": _readable(cfg),
        "column": meta.get("column"),
        "success": bool(evr.success),
        "observed_value": observed[:300],
        "unexpected_count": int(unexpected) if unexpected is not None else 0,
        "unexpected_percent": float(percent) if percent is not None else 0.0,
        "element_count": int(element_count) if element_count is not None else None,
        "severity": severity,
        "details": redact(details)[:300],
    }


def _resolve_table_params(suite, params: dict) -> None:
    """GX renders `$PARAMETER` placeholders literally in Data Docs; record the values used in meta."""
    suite.meta = {**(suite.meta or {}), "parameters": params}


def present_columns(spec: FeedSpec, missing_columns: list[str] | tuple[str, ...] = ()) -> set[str]:
    """The `raw_<col>` columns the file has, from what the reader found (`ReadResult.missing_columns`,
    headers): the parsed frame cannot tell, the reader fills absent columns with nulls."""
    missing = set(missing_columns)
    return {RAW_PREFIX + c.name for c in spec.columns if c.header not in missing}


def run_suite(
    spec: FeedSpec,
    validated: pl.DataFrame | Path | str,
    *,
    file_name: str,
    extracted_on: date,
    previous_rows: int | None,
    volume_share: float = DEFAULT_VOLUME_SHARE,
    missing_columns: list[str] | tuple[str, ...] = (),
    volume_min_rows: int = DEFAULT_VOLUME_MIN_ROWS,
    result_format: str | dict = "SUMMARY",
    evaluator: Callable | None = None,
) -> DeliveryValidation:
    """Run the feed's suite on one validated file and keep the masked GX result (for Data Docs).

    `validated`: `validate_rows` output, as a frame or as its Parquet file (the ingest cache: then only
    the columns the suite uses are read). `evaluator` is for tests: `checks.reference.evaluate_with_gx_pandas`
    runs the same suite through GX's pandas engine; the default is the one-pass Polars evaluation.
    """
    suite = suite_for(spec)
    params = suite_parameters(extracted_on, previous_rows, volume_share, volume_min_rows)
    _resolve_table_params(suite, params)
    result = (evaluator or evaluate_suite)(spec, suite, validated, params, present_columns(spec, missing_columns), result_format)
    rows = []
    quoted: list[str] = []
    for evr in result.results:
        if not (evr.expectation_config.meta or {}).get("personal"):
            _strings(evr.result or {}, quoted)
            _strings(evr.exception_info or {}, quoted)
    names = _delivered_names(spec, validated, quoted)
    for evr in result.results:
        _mask_result(evr, bool((evr.expectation_config.meta or {}).get("personal")), names)
        rows.append(_row(spec, file_name, evr))
    out = pl.DataFrame(rows, schema=RESULT_SCHEMA, orient="row")
    status = file_status(out)
    shown_name = neutralize_html(file_name)
    validated_at = datetime.now(timezone.utc).isoformat()
    meta = _mask_value(dict(result.meta or {}), False)
    # What the Data Docs show: the run is this validation (name = the delivered file, time = when it was
    # validated), the data asset is the file, and the status tells warnings from blocking failures.
    meta.update({
        "file_name": shown_name, "feed": spec.name, "extracted_on": extracted_on.isoformat(),
        "previous_rows": previous_rows, "volume_share": volume_share, "volume_min_rows": volume_min_rows,
        "validation_status": status, "validation_time": validated_at,
        "run_id": {"run_name": shown_name, "run_time": validated_at},
        "batch_spec": {**(meta.get("batch_spec") or {}), "data_asset_name": shown_name, "feed": spec.name,
                       "validation_status": STATUS_LABEL[status]},
        "active_batch_definition": {**(meta.get("active_batch_definition") or {}), "data_asset_name": shown_name},
    })
    result.meta = meta
    return DeliveryValidation(spec.name, file_name, extracted_on, out, result, suite)


STATUS_LABEL = {"passed": "通过 passed", "warnings": "警告 warnings only", "failed": "未通过 failed (blocking)"}


def file_status(results: pl.DataFrame) -> str:
    """passed, warnings (only warning-severity expectations failed: the file is used, bad rows quarantined)
    or failed (a blocking expectation failed: the file as a whole cannot be trusted)."""
    failed = results.filter(~pl.col("success"))
    if failed.is_empty():
        return "passed"
    return "failed" if (failed["severity"] == BLOCKING).any() else "warnings"


def validate_delivery(
    spec: FeedSpec,
    validated: pl.DataFrame | Path | str,
    *,
    file_name: str,
    extracted_on: date,
    previous_rows: int | None,
    volume_share: float = DEFAULT_VOLUME_SHARE,
    missing_columns: list[str] | tuple[str, ...] = (),
    volume_min_rows: int = DEFAULT_VOLUME_MIN_ROWS,
) -> pl.DataFrame:
    """One row per expectation of `<feed>.v1` for one delivered file (schema `RESULT_SCHEMA`).

    `validated` is `validate_rows(read.frame, spec, extracted_on)`; `previous_rows` the row count of
    the previous delivery of the same feed and county (None for the first), compared with
    `volume_share`; `missing_columns` is `ReadResult.missing_columns` (headers), which the validated
    frame cannot show because the reader fills absent columns with nulls.

    A failing "warning" row means rows were quarantined or a set-level property (duplicates,
    volume) needs a look; a failing "blocking" row means the file as a whole cannot be trusted
    (a required column is missing, or an expectation could not be evaluated).
    """
    return run_suite(
        spec, validated, file_name=file_name, extracted_on=extracted_on, previous_rows=previous_rows,
        volume_share=volume_share, missing_columns=missing_columns, volume_min_rows=volume_min_rows,
    ).frame


def quarantine_agreement(spec: FeedSpec, validated: pl.DataFrame, extracted_on: date) -> dict:
    """Compare, row by row, the quarantine (non-empty `reasons`) with the rows the suite rejects.

    Only row-level expectations take part (`meta.row_level`): uniqueness and volume are set-level
    (duplicates are quarantined across deliveries by ingest, not by `validate_rows`). Uses
    result_format COMPLETE with index lists: meant for small files (tests, investigations).
    Returns source row numbers only, never values.
    """
    suite = suite_for(spec)
    params = suite_parameters(extracted_on, None)
    result = evaluate_suite(spec, suite, validated, params, present_columns(spec),
                            {"result_format": "COMPLETE", "return_unexpected_index_query": False})
    source_rows = validated[ROW_COLUMN].to_list() if ROW_COLUMN in validated.columns else list(range(validated.height))
    by_expectation: dict[str, list[int]] = {}
    errors: list[str] = []
    flagged: set[int] = set()
    for evr in result.results:
        cfg = evr.expectation_config
        if not (cfg.meta or {}).get("row_level"):
            continue
        msg = _exception_message(evr)
        if msg:
            errors.append(f"{_readable(cfg)}: {msg}")
        idx = (evr.result or {}).get("unexpected_index_list") or []
        rows = sorted({source_rows[int(i)] for i in idx})
        if rows:
            by_expectation[_readable(cfg)] = rows
            flagged.update(rows)
    quarantined = set(validated.filter(pl.col(REASONS).list.len() > 0)[ROW_COLUMN].to_list()) if ROW_COLUMN in validated.columns else {
        i for i, r in enumerate(validated[REASONS].to_list()) if r
    }
    return {
        "rows": validated.height,
        "quarantined": sorted(quarantined),
        "flagged": sorted(flagged),
        "only_quarantined": sorted(quarantined - flagged),
        "only_flagged": sorted(flagged - quarantined),
        "by_expectation": by_expectation,
        "errors": errors,
        "agree": quarantined == flagged and not errors,
    }
