"""Names and schemas of the validation record that need no Great Expectations import.

Importing GX costs several seconds of CPU; a night that validates no new file and renders no Data
Docs should not pay for it. The Dagster definitions, the ingest and publish assets and the audit
tables only need these names; `checks.run`, `checks.suites` and `checks.evaluate` (which import GX)
are imported when a file is actually validated.
"""

from __future__ import annotations

import polars as pl

from lowincome.config import DEFAULT_VOLUME_MIN_ROWS  # noqa: F401 (LOWINCOME_VOLUME_MIN_ROWS; re-exported)
from lowincome.feeds import FEEDS, FeedSpec

SUITE_VERSION = 1
DEFAULT_VOLUME_SHARE = 0.30
BLOCKING = "blocking"
WARNING = "warning"
SITE_NAME = "validation"  # reports/<SITE_NAME>/ holds the Data Docs

RESULT_SCHEMA = {
    "feed": pl.String,
    "file_name": pl.String,
    "suite": pl.String,
    "expectation": pl.String,
    "column": pl.String,
    "success": pl.Boolean,
    "observed_value": pl.String,
    "unexpected_count": pl.Int64,
    "unexpected_percent": pl.Float64,
    "element_count": pl.Int64,
    "severity": pl.String,
    "details": pl.String,
}


def suite_name(spec: FeedSpec) -> str:
    return f"{spec.name}.v{SUITE_VERSION}"


def _delivered_headers() -> dict[str, str]:
    headers: dict[str, str] = {}
    for spec in FEEDS.values():
        for column in spec.columns:
            headers.setdefault(column.name, column.header)
    return headers


_HEADERS = _delivered_headers()


def column_label(column: str) -> str:
    """`身份证号 (raw_id_number)`: the header the department delivered first, the suite's column name beside it.

    Auditors and the sending departments know the Chinese headers; the suites run on canonical names with
    `raw_` (text as delivered) and `parsed_` (typed) prefixes. A name with no delivered header stays as it is.
    """
    header = _HEADERS.get(column.removeprefix("raw_").removeprefix("parsed_"))
    return f"{header} ({column})" if header and header != column else column
