"""Data Docs tell passed, warnings-only and blocked files apart; run time, data asset, volume minimum.

Issue 12: 58 of 61 sample files showed a red "Failed" although every failing
expectation was a warning. The expected status of each file here is decided by
what the test did to it (a clean file, a file with bad cells, a file missing a
required column), not by the code under test.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import polars as pl
import pytest

from checks.data_docs import build_data_docs
from checks.run import run_suite, validate_delivery
from checks.suites import volume_bounds
from lowincome.feeds import FEEDS
from lowincome.reading import read_delivery
from lowincome.validation import validate_rows
from tests.test_checks import INBOX, SAMPLES, bad_rows_by_file, extracted_on, sample_file, validated


def _text(html: str) -> str:
    html = re.sub(r"<script.*?</script>|<style.*?</style>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    before = datetime.now(timezone.utc).replace(microsecond=0)
    # clean: a sample file in which the generator planted no bad row (data_samples/expected.json)
    clean_feed = "death_records"
    planted = bad_rows_by_file()
    clean_file = next((p.name for p in sorted((INBOX / clean_feed).iterdir()) if not planted.get(p.name)), None)
    assert clean_file, "no clean death_records sample"
    clean = run_suite(FEEDS[clean_feed], validated(clean_feed, clean_file), file_name=clean_file,
                      extracted_on=extracted_on(clean_file), previous_rows=None)
    # warnings: a sample file with planted bad rows (quarantined; the file is used)
    warn_file = sample_file("civil_roster")
    assert planted.get(warn_file)
    warn = run_suite(FEEDS["civil_roster"], validated("civil_roster", warn_file), file_name=warn_file,
                     extracted_on=extracted_on(warn_file), previous_rows=None)
    # failed: the broken sample that lacks a required column
    broken_file = next(p.name for p in (SAMPLES / "broken_inbox" / "death_records").iterdir())
    rr = read_delivery(SAMPLES / "broken_inbox" / "death_records" / broken_file, FEEDS["death_records"])
    assert rr.missing_columns
    failed = run_suite(FEEDS["death_records"], validate_rows(rr.frame, FEEDS["death_records"], extracted_on(broken_file)),
                       file_name=broken_file, extracted_on=extracted_on(broken_file), previous_rows=None,
                       missing_columns=rr.missing_columns)
    reports = tmp_path_factory.mktemp("reports")
    index = build_data_docs([clean, warn, failed], reports)
    after = datetime.now(timezone.utc)
    return {"index": index, "files": {"passed": clean_file, "warnings": warn_file, "failed": broken_file},
            "before": before, "after": after}


def _page(site, status: str) -> str:
    file_name = site["files"][status]
    pages = [p for p in site["index"].parent.joinpath("validations").rglob("*.html") if file_name in p.as_posix()]
    assert len(pages) == 1, pages  # one page per delivered file
    return pages[0].read_text(encoding="utf-8")


def test_index_shows_three_statuses_in_words(site):
    html = site["index"].read_text(encoding="utf-8")
    texts = re.findall(r"'_validation_success_text': '([^']*)'", html)
    assert sorted(texts) == sorted(["通过 passed", "警告 warnings only", "未通过 failed (blocking)"])
    assert "lowincome-warning-icon" in html and "ge-failed-icon" in html and "ge-success-icon" in html


@pytest.mark.parametrize(("status", "label"), [("passed", "通过 passed"), ("warnings", "警告 warnings only"),
                                               ("failed", "未通过 failed (blocking)")])
def test_each_page_states_its_status(site, status, label):
    text = _text(_page(site, status))
    assert f"状态 Status: {label}" in text
    if status == "warnings":
        assert "警告 warning" in text and "阻断 blocking" not in text  # the failed expectation's severity
    if status == "failed":
        assert "阻断 blocking" in text


def test_run_time_is_the_validation_time_and_the_asset_is_the_file(site):
    for status, file_name in site["files"].items():
        html = _page(site, status)
        assert "__none__" not in html
        text = _text(html)
        assert f"数据文件 Data asset: {file_name}" in text
        shown = re.search(r"Run Time (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", text).group(1)
        when = datetime.strptime(shown, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        assert site["before"] <= when <= site["after"], (shown, status)  # not the file's date at midnight


def test_a_file_validated_again_keeps_one_page(tmp_path):
    """The run time is in GX's key: a second validation of the same file replaces the first page."""
    from checks.record import _store, render_data_docs

    feed = "death_records"
    file_name = sample_file(feed)
    frame = validated(feed, file_name)
    work, reports = tmp_path / "work", tmp_path / "reports"
    for previous in (None, frame.height):
        _store(work / "gx", [run_suite(FEEDS[feed], frame, file_name=file_name, extracted_on=extracted_on(file_name),
                                       previous_rows=previous)])
        render_data_docs(work, reports)
    pages = [p for p in (reports / "validation" / "validations").rglob("*.html") if file_name in p.as_posix()]
    assert len(pages) == 1
    index = (reports / "validation" / "index.html").read_text(encoding="utf-8")
    assert index.count(f"'run_name': '{file_name}'") == 1


def test_volume_bounds_skip_a_previous_delivery_too_small_to_judge():
    assert volume_bounds(None, 0.3, 100) == (0, None)
    assert volume_bounds(99, 0.3, 100) == (0, None)
    assert volume_bounds(100, 0.3, 100) == (70, 130)
    assert volume_bounds(13, 0.3, 0) == (10, 16)


@pytest.mark.parametrize(("previous", "minimum", "ok"), [(3, 100, True), (3, 0, False), (10_000, 100, False)])
def test_volume_check_on_a_small_feed(previous, minimum, ok):
    """death_records deliveries hold a handful of rows: a change from 3 to a dozen is not news."""
    feed = "death_records"
    file_name = max((p.name for p in (INBOX / feed).iterdir()), key=lambda n: validated(feed, n).height)
    frame = validated(feed, file_name)
    assert frame.height > previous * 1.3 or previous > frame.height * 1.3  # outside ±30% of `previous`
    result = validate_delivery(FEEDS[feed], frame, file_name=file_name, extracted_on=extracted_on(file_name),
                               previous_rows=previous, volume_min_rows=minimum)
    row = result.filter(pl.col("expectation") == "expect_table_row_count_to_be_between(file)").row(0, named=True)
    assert row["success"] is ok
