"""Names and schemas of the validation record that need no Great Expectations import.

Importing GX costs several seconds of CPU; a night that validates no new file and renders no Data
Docs should not pay for it. The Dagster definitions, the ingest and publish assets and the audit
tables only need these names; `checks.run`, `checks.suites` and `checks.evaluate` (which import GX)
are imported when a file is actually validated.
"""

from __future__ import annotations

import polars as pl

from lowincome.feeds import FeedSpec

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
