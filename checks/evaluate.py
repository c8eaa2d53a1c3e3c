"""Evaluate a feed's GX suite on one file in one vectorised Polars pass, and record it as GX results.

Why: GX's pandas engine spent 83 s on a 10M-row file (a pandas copy of the file per worker process,
then Python bookkeeping and a full-frame filter per expectation), far more than reading the file.
Here every expectation of the suite becomes a pair of Polars boolean expressions (the rows GX would
consider, and the unexpected rows among them) over the columns `checks.suites.gx_input` builds, read
from the parsed Parquet with only the columns the suite needs. One `select` computes, for all
expectations at once, the counts GX computes (element, considered, unexpected) and the positions of
the first unexpected rows, over a slice of rows at a time (`SUITE_SLICE_ROWS`: the input of a whole
large file cost more memory than the file); the slices' figures add up to the file's, and
uniqueness is judged on the whole file's key. Only those few rows (at most 20 per expectation) are
converted to pandas, with the dtypes the whole-file conversion would have had, to quote the same
example values GX quotes.

The figures are turned into results by GX's own code (`_format_map_output`, `_mostly_success`,
`parse_result_format`, the expectation configuration with suite parameters substituted), so the
`ExpectationValidationResult` / `ExpectationSuiteValidationResult` objects are what GX's pandas engine
returns for the same frame (tests/test_suite_equivalence.py compares both on generated files), and
the file-mode store and Data Docs keep working.

The semantics mirror GX 1.x on pandas: a "missing" cell is a null (or NaN in a float column); column
map expectations skip missing cells (`not_be_null` excepted); pair expectations skip rows per
`ignore_row_if`; multicolumn ones per `ignore_row_if` (default "all_values_are_missing"); uniqueness
is `duplicated(keep=False)` among the rows considered; `mostly` is GX's ratio. Custom expectations use
the same Polars expressions as their GX metrics in `checks.expectations`.
"""

from __future__ import annotations

import traceback
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import great_expectations as gx
import pandas as pd
import polars as pl
from great_expectations.core.expectation_validation_result import (
    ExpectationSuiteValidationResult,
    ExpectationValidationResult,
)
from great_expectations.expectations.expectation import _format_map_output, _mostly_success
from great_expectations.expectations.expectation_configuration import parse_result_format

from lowincome.feeds import FeedSpec
from lowincome.identity import normalize_id_struct

from lowincome.validation import RAW_PREFIX

from .suites import gx_available, gx_input, gx_sources

Source = pl.DataFrame | Path | str
MAX_PARTIAL = 20  # GX's partial_unexpected_count default (SUMMARY)
# Rows whose GX input is built at once: that input (texts with blanks made null, floats, dates) costs
# more memory than the validated rows it is built from, so a whole 4M-row file's input set the run's peak.
SUITE_SLICE_ROWS = 500_000

COLUMN_MAP = {
    "expect_column_values_to_not_be_null", "expect_column_values_to_be_between", "expect_column_values_to_be_in_set",
    "expect_column_values_to_be_unique", "expect_column_values_to_be_valid_gb11643_id",
}
PAIR_MAP = {"expect_column_pair_values_to_be_equal", "expect_column_pair_values_a_to_be_greater_than_b"}
MULTI_MAP = {
    "expect_compound_columns_to_be_unique", "expect_column_values_to_be_recognised", "expect_column_parts_to_sum_to_total",
    "expect_certificate_number_to_match_holder", "expect_column_values_to_be_present_exactly_when",
}
SUPPORTED = COLUMN_MAP | PAIR_MAP | MULTI_MAP | {"expect_column_to_exist", "expect_table_row_count_to_be_between"}


class NotEvaluable(Exception):
    """An expectation this module cannot judge on this frame (a column is absent or of the wrong type)."""


@dataclass
class _Plan:
    """One map expectation as Polars expressions: the rows considered and the unexpected rows among them."""

    considered: pl.Expr | None  # None: every row
    unexpected: pl.Expr
    columns: list[str]  # GX input columns quoted in the examples, in GX's order
    shape: str  # "column" | "pair" | "multi"


# ---- order ---------------------------------------------------------------------------------------


def gx_order(expectations: list) -> list[int]:
    """The order in which `checks.run` has always recorded a suite's results (kept for identical output).

    Column existence is judged on its own (schema) batch and keeps its suite position; the other
    expectations come in the order GX's Validator evaluates one batch: grouped by their `column`
    kwarg in order of first appearance, expectations without one forming a group of their own.
    """
    schema_pos = [i for i, e in enumerate(expectations) if e.expectation_type == "expect_column_to_exist"]
    groups: OrderedDict[str, list[int]] = OrderedDict()
    for i, e in enumerate(expectations):
        if e.expectation_type == "expect_column_to_exist":
            continue
        col = e.configuration.kwargs.get("column")
        groups.setdefault(col if isinstance(col, str) else "_nocolumn", []).append(i)
    others = iter(i for idx in groups.values() for i in idx)
    schema = set(schema_pos)
    return [i if i in schema else next(others) for i in range(len(expectations))]


# ---- conditions ----------------------------------------------------------------------------------


def _missing(name: str, schema: pl.Schema) -> pl.Expr:
    """pandas' isnull: null, or NaN in a float column."""
    e = pl.col(name).is_null()
    return e | pl.col(name).is_nan() if schema[name] in (pl.Float32, pl.Float64) else e


def _need(schema: pl.Schema, names: list[str]) -> None:
    absent = [n for n in names if n not in schema]
    if absent:
        raise NotEvaluable(f"column {', '.join(absent)} is not in the file's suite input")


def _comparable(schema: pl.Schema, name: str) -> None:
    dtype = schema[name]
    if not (dtype.is_numeric() or dtype.is_temporal()):
        raise NotEvaluable(f"column {name} holds {dtype}, not numbers or dates: it cannot be compared with bounds")


def _bound(value, dtype):
    """A bound as GX's pandas engine uses it: ISO text parsed for datetime columns."""
    if value is None:
        return None
    if dtype.is_temporal() and isinstance(value, str):
        return datetime.fromisoformat(value)
    if dtype.is_temporal() or isinstance(value, (int, float)):
        return value
    raise NotEvaluable(f"bound {value!r} cannot be compared with a {dtype} column")


def _between(col: str, kw: dict, schema: pl.Schema) -> pl.Expr:
    _comparable(schema, col)
    lo, hi = _bound(kw.get("min_value"), schema[col]), _bound(kw.get("max_value"), schema[col])
    if lo is None and hi is None:
        raise NotEvaluable("min_value and max_value cannot both be None")
    c = pl.col(col)
    ok = pl.lit(True)
    if lo is not None:
        ok = ok & ((c > lo) if kw.get("strict_min") else (c >= lo))
    if hi is not None:
        ok = ok & ((c < hi) if kw.get("strict_max") else (c <= hi))
    return ~ok


def _latest_birth(value) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _multi_considered(cols: list[str], how: str, schema: pl.Schema) -> pl.Expr | None:
    miss = [_missing(c, schema) for c in cols]
    if how == "never":
        return None
    if how == "any_value_is_missing":
        return ~pl.any_horizontal(miss)
    if how == "all_values_are_missing":
        return ~pl.all_horizontal(miss)
    raise NotEvaluable(f"ignore_row_if={how!r} is not supported")


def _among(considered: pl.Expr | None, bad: pl.Expr) -> pl.Expr:
    return bad if considered is None else considered & bad


def _plan(etype: str, kw: dict, schema: pl.Schema) -> _Plan:  # noqa: C901 - one branch per expectation type
    if etype in COLUMN_MAP:
        col = kw["column"]
        _need(schema, [col])
        present = ~_missing(col, schema)
        c = pl.col(col)
        if etype == "expect_column_values_to_not_be_null":
            return _Plan(None, ~present, [col], "column")
        if etype == "expect_column_values_to_be_between":
            bad = _between(col, kw, schema)
        elif etype == "expect_column_values_to_be_in_set":
            bad = ~c.cast(pl.String).is_in([str(v) for v in kw["value_set"]]) if schema[col] in (pl.String, pl.Categorical) \
                else ~c.is_in(list(kw["value_set"]))
        elif etype == "expect_column_values_to_be_unique":
            # a non-null value's duplicates are non-null: the same as among considered rows
            bad = pl.col(_dup_helper([col])) if _dup_helper([col]) in schema else c.is_duplicated()
        elif _id_helper(col) in schema:  # valid GB 11643 ID, judged per row by `_id_verdicts`
            bad = ~pl.col(_id_helper(col))
        else:  # same expression as the GX metric (checks.expectations), on every row
            bad = normalize_id_struct(c.cast(pl.String), today=_latest_birth(kw.get("latest_birth"))).struct.field("problem").is_not_null()
        return _Plan(present, present & bad.fill_null(True), [col], "column")
    if etype in PAIR_MAP:
        a, b = kw["column_A"], kw["column_B"]
        _need(schema, [a, b])
        how = kw.get("ignore_row_if", "both_values_are_missing")
        ma, mb = _missing(a, schema), _missing(b, schema)
        considered = {"both_values_are_missing": ~(ma & mb), "either_value_is_missing": ~(ma | mb), "neither": None}.get(how, False)
        if considered is False:
            raise NotEvaluable(f"ignore_row_if={how!r} is not supported")
        if etype == "expect_column_pair_values_to_be_equal":
            ok = pl.col(a) == pl.col(b)
        else:
            _comparable(schema, a), _comparable(schema, b)
            ok = (pl.col(a) >= pl.col(b)) if kw.get("or_equal") else (pl.col(a) > pl.col(b))
        return _Plan(considered, _among(considered, ~ok.fill_null(False)), [a, b], "pair")
    if etype in MULTI_MAP:
        cols = list(kw["column_list"])
        _need(schema, cols)
        defaults = {"expect_compound_columns_to_be_unique": "all_values_are_missing",
                    "expect_column_values_to_be_recognised": "never",
                    "expect_column_values_to_be_present_exactly_when": "never"}
        considered = _multi_considered(cols, kw.get("ignore_row_if", defaults.get(etype, "any_value_is_missing")), schema)
        if etype == "expect_compound_columns_to_be_unique":
            ok = ~pl.col(_dup_helper(cols)) if _dup_helper(cols) in schema else ~pl.struct(cols).is_duplicated()
        elif etype == "expect_column_values_to_be_recognised":
            raw, typed = cols[:2]
            ok = _missing(raw, schema) | ~_missing(typed, schema)
        elif etype == "expect_column_parts_to_sum_to_total":
            cents = [(pl.col(c).cast(pl.Float64) * 100).round(0).cast(pl.Int64) for c in cols]
            ok = cents[0] == pl.sum_horizontal(cents[1:])
        elif etype == "expect_certificate_number_to_match_holder":
            cert, holder, category, level = cols[:4]
            expected = (pl.col(holder).cast(pl.String) + pl.col(category).cast(pl.Int64).cast(pl.String)
                        + pl.col(level).cast(pl.Int64).cast(pl.String))
            ok = pl.col(cert).cast(pl.String) == expected
        else:  # present exactly when
            cond, raw, typed = cols[:3]
            value, required = kw.get("value"), kw.get("required", True)
            cs = pl.col(cond).cast(pl.String)
            elsewhere = cs.is_not_null() & (cs != value) & ~_missing(typed, schema)
            missing = ((cs == value) & _missing(raw, schema)) if required else pl.lit(False)
            ok = ~(elsewhere | missing.fill_null(False))
        return _Plan(considered, _among(considered, ~ok.fill_null(False)), cols, "multi")
    raise NotEvaluable(f"{etype} is not supported by the Polars evaluation")


# ---- the pass ------------------------------------------------------------------------------------


def _exception(exc: BaseException) -> dict:
    return {"raised_exception": True, "exception_message": f"{type(exc).__name__}: {exc}",
            "exception_traceback": "".join(traceback.format_exception_only(type(exc), exc))}


_NO_EXCEPTION = {"raised_exception": False, "exception_message": None, "exception_traceback": None}


def _dup_helper(columns: list[str]) -> str:
    return "__duplicated__" + "|".join(columns)


def _duplicated(spec: FeedSpec, narrow: pl.DataFrame, columns: list[str]) -> pl.Series:
    """`duplicated(keep=False)` over the GX input `columns` of the whole file, exactly, at the cost of hashing.

    Polars' `is_duplicated` on a text key costs seconds per million rows; on the 64-bit row hash it
    is several times cheaper. Equal values have equal hashes, so every duplicated row is among the
    rows whose hash is duplicated; those few are then compared by value (a hash collision costs
    only a slightly larger comparison, never a wrong answer). The key is built and hashed a slice
    at a time, from its own source columns only (see `_columns`): built for the whole file at once,
    it cost a copy of every column the suite reads.
    """
    key = pl.col(columns[0]) if len(columns) == 1 else pl.struct(columns)
    sources = _columns(narrow, gx_sources(spec, narrow.schema, columns))
    hashes = pl.concat([gx_input(spec, part, columns, for_pandas=False).select(key.hash())
                        for _, part in _row_slices(sources)]).to_series()
    candidates = hashes.is_duplicated().arg_true()
    out = pl.repeat(False, sources.height, eager=True).alias(_dup_helper(columns))
    if len(candidates):
        exact = gx_input(spec, sources[candidates], columns, for_pandas=False).select(key.is_duplicated()).to_series()
        out = out.scatter(candidates, exact)
    return out


def _id_helper(raw_column: str) -> str:
    return f"__valid_id__{raw_column}"


def _typed_of(raw_column: str) -> str:
    return raw_column[len(RAW_PREFIX):] if raw_column.startswith(RAW_PREFIX) else raw_column


def _read(spec: FeedSpec, source: Source, gx_columns: list[str], id_checks: dict[str, object]) -> tuple[pl.DataFrame, list[str]]:
    """(the source columns the suite uses, the GX input columns they can build), reading only those columns.

    `id_checks`: raw ID column → latest birth date; their typed columns are read too (`_id_verdicts`).
    From a frame in memory this is a selection (no copy); the GX input is built slice by slice
    (`_suite_input`), because its blank-made-null texts, floats and dates cost more than the file.
    """
    schema = source.schema if isinstance(source, pl.DataFrame) else pl.read_parquet_schema(source)
    wanted = set(gx_sources(spec, schema, gx_columns))
    wanted |= {_typed_of(c) for c in id_checks if _typed_of(c) in schema and schema[_typed_of(c)] == pl.String}
    wanted = sorted(c for c in wanted if c in schema)  # an absent column fails only the expectations that need it
    narrow = _columns(source, wanted) if isinstance(source, pl.DataFrame) else pl.read_parquet(source, columns=wanted)
    return narrow, [c for c in gx_columns if c in gx_available(spec, narrow.schema)]


def _columns(frame: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """`frame.select(names)` without copying: a select on a frame whose columns are chunked differently
    (the delivered text by the CSV reader, the typed columns by validation's slices) makes Polars
    align every column first, a transient copy of the whole file; a frame of the same Series does not."""
    return pl.DataFrame([frame.get_column(c) for c in names])


def _row_slices(frame: pl.DataFrame):
    """(first row, slice) of `frame`, `SUITE_SLICE_ROWS` rows at a time; one empty slice for an empty frame."""
    for start in range(0, max(frame.height, 1), SUITE_SLICE_ROWS):
        yield start, frame.slice(start, SUITE_SLICE_ROWS)


def _suite_input(spec: FeedSpec, narrow: pl.DataFrame, available: list[str], id_checks: dict[str, object]) -> pl.DataFrame:
    """The GX input of `narrow` (the whole file or a slice of it), with the per-row ID verdicts."""
    frame = gx_input(spec, narrow, available, for_pandas=False)
    verdicts = [_id_verdicts(frame, narrow, raw, latest) for raw, latest in id_checks.items()
                if raw in frame.columns and _typed_of(raw) in narrow.columns]
    return frame.with_columns(verdicts) if verdicts else frame


def _id_verdicts(frame: pl.DataFrame, narrow: pl.DataFrame, raw: str, latest_birth) -> pl.Series:
    """Per row: is the delivered ID valid with births up to `latest_birth` (GX's custom metric, cheaply).

    `validate_rows` kept the normalised ID exactly where `normalize_id_struct` found no problem with
    births up to the file's extraction date (`lowincome.validation._check_id`). Of the rules only the
    birth-date bound depends on the date, so a kept ID is valid here when its birth date (characters
    7-14, YYYYMMDD, compared as text) is not after `latest_birth`. Every other delivered value (a
    rejected ID, or one born after the bound) is judged again with `normalize_id_struct` itself: a few
    rows instead of re-normalising every ID of the file.
    """
    today = _latest_birth(latest_birth) or date.today()
    typed = narrow[_typed_of(raw)]
    ok = narrow.select((typed.is_not_null() & (typed.str.slice(6, 8) <= today.strftime("%Y%m%d"))).fill_null(False)).to_series()
    again = frame.select(pl.arg_where(pl.col(raw).is_not_null() & ~ok)).to_series()
    if len(again):
        verdict = (frame[again].select(normalize_id_struct(pl.col(raw).cast(pl.String), today=today)
                                       .struct.field("problem").is_null()).to_series())
        ok = ok.scatter(again, verdict)
    return ok.alias(_id_helper(raw))


def _examples(spec: FeedSpec, narrow: pl.DataFrame, schema: pl.Schema, with_nulls: set[str], rows: list[int],
              columns: list[str]) -> pd.DataFrame:
    """The GX input for `rows` as pandas, with the dtypes the whole-file conversion would give.

    pandas turns an integer column with a null into float64 and a boolean one into object; a few
    rows may hold no null where the file does, so the dtype is decided on the whole column
    (`with_nulls`: the GX input columns holding a null anywhere in the file).
    """
    part = gx_input(spec, narrow[rows], columns, for_pandas=True)
    casts = []
    as_object = []
    for c in columns:
        dtype = schema[c]
        if c in with_nulls:
            if dtype.is_integer():
                casts.append(pl.col(c).cast(pl.Float64))
            elif dtype == pl.Boolean:
                as_object.append(c)
    if casts:
        part = part.with_columns(casts)
    pdf = part.to_pandas()
    for c in as_object:
        pdf[c] = pdf[c].astype(object)
    pdf.index = pd.Index(rows)
    return pdf


def _values(pdf: pd.DataFrame, rows: list[int], plan: _Plan) -> list:
    sub = pdf.loc[rows, plan.columns]
    if plan.shape == "column":
        return list(sub[plan.columns[0]])
    if plan.shape == "pair":
        a, b = plan.columns
        return list(zip(sub[a].values, sub[b].values, strict=False))
    return sub.to_dict("records")


def evaluate_suite(
    spec: FeedSpec,
    suite: gx.ExpectationSuite,
    source: Source,
    params: dict,
    present_columns: set[str],
    result_format: str | dict = "SUMMARY",
    meta: dict | None = None,
) -> ExpectationSuiteValidationResult:
    """Validate `suite` on one file (`validate_rows` output: a frame or its Parquet) in one Polars pass.

    `present_columns`: the GX input columns the file has (column existence is judged on them, not on
    the frame, where absent columns are present but null: `checks.suites.schema_frame`).
    `result_format`: "SUMMARY" (20 examples) or GX's COMPLETE dict (every unexpected index).
    """
    fmt = parse_result_format(result_format)
    complete = fmt["result_format"] == "COMPLETE"
    limit = None if complete else min(fmt["partial_unexpected_count"], MAX_PARTIAL)
    expectations = list(suite.expectations)
    configs = []
    for e in expectations:
        cfg = e.configuration
        cfg.process_suite_parameters(suite_parameters=params)
        # GX's Validator leaves out a parameter that resolved to None (an open bound), as here.
        cfg.kwargs = {k: v for k, v in cfg.kwargs.items() if v is not None}
        configs.append(cfg)
    gx_columns = sorted({c for e in expectations if e.expectation_type != "expect_column_to_exist" for c in _columns_of(e)})
    id_checks = {cfg.kwargs["column"]: cfg.kwargs.get("latest_birth") for cfg in configs
                 if cfg.type == "expect_column_values_to_be_valid_gb11643_id"}
    narrow, available = _read(spec, source, gx_columns, id_checks)
    height = narrow.height
    keys = [list(_columns_of(e)) for e in expectations
            if e.expectation_type in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")]
    keys = [k for k in keys if k and all(c in available for c in k)]
    # Uniqueness looks across the whole file: judged once on the key columns alone, then sliced with the rest.
    duplicated = [_duplicated(spec, narrow, k) for k in keys]

    plans: dict[int, _Plan] = {}
    errors: dict[int, BaseException] = {}
    stats: dict[int, tuple[int | None, int, list[int]]] = {}
    schema: pl.Schema | None = None
    with_nulls: set[str] = set()
    for start, part in _row_slices(narrow):
        frame = _suite_input(spec, part, available, id_checks)  # see `_duplicated` on chunks
        if duplicated:
            frame = frame.with_columns([d.slice(start, part.height) for d in duplicated])
        if schema is None:
            schema = frame.schema
            for i, cfg in enumerate(configs):
                if cfg.type in ("expect_column_to_exist", "expect_table_row_count_to_be_between"):
                    continue
                try:
                    plans[i] = _plan(cfg.type, dict(cfg.kwargs), schema)
                except (NotEvaluable, KeyError, TypeError, ValueError) as exc:
                    errors[i] = exc
        elif frame.schema != schema:  # every builder has a fixed type: a slice typed otherwise is a bug
            raise TypeError(f"{spec.name}: the suite input of rows {start + 1}.. is typed differently from the first slice")
        with_nulls |= {c for c, n in zip(frame.columns, frame.null_count().row(0)) if n}
        _merge(stats, _aggregate(frame, plans, limit, errors), start, limit)
        del frame, part
    stats = {i: s for i, s in stats.items() if i in plans}  # an expectation that failed in a later slice fails whole
    pdf = None
    wanted_rows = sorted({r for i in stats for r in (stats[i][2] if limit is None else stats[i][2][:limit])})
    if wanted_rows:
        cols = sorted({c for i in stats if stats[i][2] for c in plans[i].columns})
        pdf = _examples(spec, narrow, schema, with_nulls, wanted_rows, cols)

    results: list[ExpectationValidationResult] = []
    for i in gx_order(expectations):
        cfg = configs[i]
        expectation = expectations[i]
        if i in errors:
            results.append(ExpectationValidationResult(success=False, expectation_config=cfg, result={},
                                                       exception_info=_exception(errors[i])))
            continue
        if cfg.type == "expect_column_to_exist":
            out = {"success": cfg.kwargs["column"] in present_columns}
        elif cfg.type == "expect_table_row_count_to_be_between":
            lo, hi = cfg.kwargs.get("min_value"), cfg.kwargs.get("max_value")
            ok = (lo is None or height >= lo) and (hi is None or height <= hi)
            out = {"success": ok, "result": {"observed_value": height}}
        else:
            considered, unexpected, index = stats[i]
            plan = plans[i]
            shown = index if limit is None else index[:limit]
            values = _values(pdf, shown, plan) if shown else []
            out = _map_result(cfg.type, expectation, fmt, height, considered, unexpected, values, index)
        results.append(ExpectationValidationResult(success=out["success"], expectation_config=cfg,
                                                   result=out.get("result", {}), exception_info=dict(_NO_EXCEPTION)))
    return suite_result(suite, results, params, {
            "great_expectations_version": gx.__version__,
            "batch_spec": {"batch_data": "parquet, evaluated with polars (checks.evaluate)"},
            "batch_markers": {"ge_load_time": datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")},
            "active_batch_definition": {"datasource_name": "delivery", "data_connector_name": "polars",
                                        "data_asset_name": spec.name, "batch_identifiers": {}},
            **(meta or {}),
        })


def suite_result(suite, results: list, params: dict, meta: dict) -> ExpectationSuiteValidationResult:
    """The suite's result from its expectations' results, with GX's statistics (shared with the reference path)."""
    ok = sum(1 for r in results if r.success)
    return ExpectationSuiteValidationResult(
        success=ok == len(results),
        results=results,
        suite_name=suite.name,
        suite_parameters=params,
        statistics={
            "evaluated_expectations": len(results),
            "successful_expectations": ok,
            "unsuccessful_expectations": len(results) - ok,
            "success_percent": 100.0 * ok / len(results) if results else None,
        },
        meta=meta,
    )


def _aggregate(frame: pl.DataFrame, plans: dict[int, _Plan], limit: int | None,
               errors: dict[int, BaseException]) -> dict[int, tuple[int | None, int, list[int]]]:
    """Counts and first unexpected positions of every planned expectation, in one `select`.

    If the combined pass fails (a type GX would also have choked on), each expectation is
    evaluated alone so the failure is pinned on the expectation(s) concerned.
    """
    def exprs(i: int, p: _Plan) -> list[pl.Expr]:
        bad = p.unexpected
        idx = bad.arg_true() if limit is None else bad.arg_true().head(limit)
        out = [bad.sum().alias(f"u{i}"), idx.implode().alias(f"x{i}")]
        if p.considered is not None:  # None: every row (and for not_be_null, GX counts no "non-null" rows)
            out.append(p.considered.sum().alias(f"c{i}"))
        return out

    def collect(items: dict[int, _Plan]) -> dict:
        if not items:
            return {}
        row = frame.select([e for i, p in items.items() for e in exprs(i, p)]).row(0, named=True)
        return {i: (row.get(f"c{i}"), int(row[f"u{i}"]), [int(x) for x in row[f"x{i}"]]) for i in items}

    try:
        return collect(plans)
    except Exception:  # noqa: BLE001 - isolate below
        out = {}
        for i, p in list(plans.items()):
            try:
                out.update(collect({i: p}))
            except Exception as exc:  # noqa: BLE001 - recorded as the expectation's exception
                errors[i] = exc
                plans.pop(i)
        return out


def _merge(total: dict[int, tuple[int | None, int, list[int]]], part: dict[int, tuple[int | None, int, list[int]]],
           offset: int, limit: int | None) -> None:
    """Add one slice's counts to the file's, and its unexpected positions (made file-wide) up to `limit`."""
    for i, (considered, unexpected, index) in part.items():
        index = [offset + x for x in index]
        if i not in total:
            total[i] = (considered, unexpected, index)
            continue
        c0, u0, x0 = total[i]
        kept = x0 + index if limit is None else (x0 + index)[:limit]
        total[i] = (None if considered is None else c0 + considered, u0 + unexpected, kept)


def _map_result(etype: str, expectation, fmt: dict, height: int, considered: int | None, unexpected: int,
                values: list, index: list[int]) -> dict:
    """GX's own `_validate` arithmetic for map expectations (success with `mostly`, then `_format_map_output`)."""
    mostly = expectation.configuration.kwargs.get("mostly", 1)
    if mostly is None:
        mostly = 1
    if etype == "expect_column_values_to_not_be_null":
        success = True if height == 0 else (height - unexpected) / height >= mostly
        nonnull = None
    else:
        nonnull = (height if considered is None else int(considered)) if height else 0
        if height == 0 or nonnull == 0:
            success = True
        else:
            success = _mostly_success(nonnull, unexpected, mostly)
    return _format_map_output(
        result_format=fmt, success=success, element_count=height, nonnull_count=nonnull, unexpected_count=unexpected,
        unexpected_list=values, unexpected_index_list=index,
    )


def _columns_of(e) -> list[str]:
    kw = e.configuration.kwargs
    if "column" in kw:
        return [kw["column"]]
    if "column_list" in kw:
        return list(kw["column_list"])
    if "column_A" in kw:
        return [kw["column_A"], kw["column_B"]]
    return []

