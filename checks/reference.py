"""The suites run by GX's own pandas engine: the reference the Polars evaluation is tested against.

Not on the nightly path (it costs a pandas copy of the file and Python bookkeeping per expectation:
83 s for a 10M-row file). `checks.run.run_suite(..., evaluator=evaluate_with_gx_pandas)` runs a file
through it, so tests can compare `checks.evaluate.evaluate_suite` with GX itself on the same frame
(tests/test_suite_equivalence.py). It is the code that produced every result before issue 9.
"""

from __future__ import annotations

import itertools
import logging
from functools import lru_cache

import great_expectations as gx
import pandas as pd
import polars as pl
from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult

from lowincome.feeds import FeedSpec
from lowincome.validation import RAW_PREFIX

from .evaluate import _columns_of, suite_result
from .suites import DELIVERED_PREFIX, PARSED_PREFIX, gx_input

SMALL_FRAME_ROWS = 50_000
_counter = itertools.count()


@lru_cache(maxsize=1)
def _context():
    """One ephemeral context per process: creating one costs ~0.3 s and it stores nothing."""
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    ctx = gx.get_context(mode="ephemeral")
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # progress bars are cosmetic
        pass
    return ctx


def _batch(frame: pd.DataFrame, label: str):
    ctx = _context()
    n = next(_counter)
    source = ctx.data_sources.add_pandas(f"delivery_{n}")
    asset = source.add_dataframe_asset(label.rsplit("_", 1)[0] if label[-1].isdigit() else label)
    return asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})


def _family(spec: FeedSpec, gx_column: str) -> str:
    """The registry column a GX input column belongs to (raw_x, parsed_x, delivered_x, x_code → x)."""
    for prefix in (RAW_PREFIX, PARSED_PREFIX, DELIVERED_PREFIX):
        if gx_column.startswith(prefix):
            return gx_column[len(prefix):]
    if gx_column == "county_code":
        return next((c.name for c in spec.columns if c.kind == "division"), gx_column)
    if gx_column.endswith("_code") and gx_column[: -len("_code")] in spec.by_name:
        return gx_column[: -len("_code")]
    return gx_column


def used_columns(suite) -> list[str]:
    return sorted({c for e in suite.expectations if e.expectation_type != "expect_column_to_exist" for c in _columns_of(e)})


def validate_in_groups(spec: FeedSpec, suite, frame: pd.DataFrame, result_format, params: dict, schema: pd.DataFrame):
    """Validate the suite one column family at a time, each on a frame holding only its columns.

    GX's pandas engine hashes every column of a batch (a fingerprint for its markers) and, for
    every column expectation, filters the *whole* frame (`df[df[col].notnull()]`): on a wide
    1M-row frame that is most of the run time. Grouping the expectations by the registry column
    they concern and giving each group a narrow frame gives the same results (every expectation
    here is per-row, per-column or per-key; the row index is kept, so index lists stay
    comparable) several times faster. Column existence is judged on `schema` (names only), the
    row count on an index-only frame. The group results are merged into one suite result, in
    suite order, as GX itself would have produced it.
    """
    expectations = list(suite.expectations)
    groups: dict[object, list[int]] = {}
    narrow = len(frame) >= SMALL_FRAME_ROWS
    for i, e in enumerate(expectations):
        if e.expectation_type == "expect_column_to_exist":
            key: object = "schema"
        else:
            key = frozenset(_family(spec, c) for c in _columns_of(e)) if narrow else "all"
        groups.setdefault(key, []).append(i)
    results: list = [None] * len(expectations)
    meta: dict = {}
    for n, (key, idx) in enumerate(groups.items()):
        if key == "schema":
            sub = schema
        else:
            cols = sorted({c for i in idx for c in _columns_of(expectations[i])})
            sub = frame[cols] if cols else pd.DataFrame(index=frame.index)
        sub_suite = gx.ExpectationSuite(name=suite.name, expectations=[expectations[i].copy() for i in idx], meta=suite.meta)
        r = _batch(sub, f"{spec.name}_{n}").validate(sub_suite, result_format=result_format, expectation_parameters=params)
        for i, evr in zip(idx, r.results):
            results[i] = evr
        if key != "schema" and not meta:
            meta = dict(r.meta or {})
    return suite_result(suite, results, params, meta)


def evaluate_with_gx_pandas(spec: FeedSpec, suite, source, params: dict, present_columns: set[str],
                            result_format="SUMMARY", meta: dict | None = None) -> ExpectationSuiteValidationResult:
    """Same signature as `checks.evaluate.evaluate_suite`, computed by GX on pandas (the pre-issue-9 path)."""
    validated = source if isinstance(source, pl.DataFrame) else pl.read_parquet(source)
    frame = gx_input(spec, validated).select(used_columns(suite)).to_pandas()
    schema = pd.DataFrame({c: pd.Series([], dtype=object) for c in sorted(present_columns)})
    result = validate_in_groups(spec, suite, frame, result_format, params, schema)
    result.meta = {**(result.meta or {}), **(meta or {})}
    return result
