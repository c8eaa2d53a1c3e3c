"""The GX store gets each feed's suite once, not once per validated file, and still renders every file."""

from __future__ import annotations

import shutil
from datetime import date

import pytest

from checks import record
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed

from .handmade import delivery_path, person_id, write_csv

DAY = date(2026, 10, 31)
HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
DAYS = (date(2026, 8, 31), date(2026, 9, 30), DAY)


@pytest.fixture()
def delivered(tmp_path, monkeypatch):
    """Three death files ingested; add_or_update calls counted; returns (spec, files, work, calls)."""
    from great_expectations.core.factory.suite_factory import SuiteFactory

    inbox, work = tmp_path / "inbox", tmp_path / "work"
    for seq, day in enumerate(DAYS, start=1):
        write_csv(delivery_path(inbox, "death_records", "371302", day, "csv"), HEADER,
                  [[person_id("371302", "19400101", seq), "赵一", "2026-08-01", "殡葬火化"]])
    spec = FEEDS["death_records"]
    files = ingest_feed(spec, inbox, DAY, work).files
    calls: list[str] = []
    original = SuiteFactory.add_or_update

    def counted(self, suite):
        calls.append(suite.name)
        return original(self, suite)

    monkeypatch.setattr(SuiteFactory, "add_or_update", counted)
    monkeypatch.setattr(record, "_CONFIRMED", set())  # what this process has confirmed: nothing yet
    return spec, files, work, calls


def _again(spec, files, work):
    """Another night that must validate every file again (its cache gone), in a fresh process."""
    shutil.rmtree(work / "validated")
    record._CONFIRMED.clear()
    return record.validate_files(spec, files, work)


def _suite_files(work):
    return sorted((work / "gx" / "gx" / "expectations").rglob("*.json"))


def _result_files(work):
    return sorted((work / "gx" / "gx" / "uncommitted" / "validations").rglob("*.json"))


def test_the_suite_is_stored_once_for_many_files_and_every_result_is_stored(delivered, tmp_path):
    spec, files, work, calls = delivered
    record.validate_files(spec, files, work)
    assert calls == ["death_records.v1"]
    assert len(_suite_files(work)) == 1
    assert len(_result_files(work)) == len(DAYS)
    index = record.render_data_docs(work, tmp_path / "reports")
    pages = [p for p in index.parent.rglob("*.html") if "/validations/" in p.as_posix()]
    assert len(pages) == len(DAYS)  # GX still renders one page per file from what was stored


def test_a_later_night_does_not_store_an_unchanged_suite_again(delivered):
    spec, files, work, calls = delivered
    record.validate_files(spec, files, work)
    _again(spec, files, work)
    assert calls == ["death_records.v1"]
    assert len(_result_files(work)) == len(DAYS)


def test_a_suite_missing_from_the_store_is_stored_again(delivered):
    spec, files, work, calls = delivered
    record.validate_files(spec, files, work)
    for path in _suite_files(work):
        path.unlink()
    _again(spec, files, work)
    assert calls == ["death_records.v1"] * 2 and len(_suite_files(work)) == 1


def test_a_changed_suite_is_stored_again(delivered):
    """What the store holds differs from this code's suite (recorded by an older version): it is replaced."""
    spec, files, work, calls = delivered
    record.validate_files(spec, files, work)
    (work / "gx" / record.SUITES_STORED / "death_records.v1.sha256").write_text("0" * 64, encoding="utf-8")
    _again(spec, files, work)
    assert calls == ["death_records.v1"] * 2
    _again(spec, files, work)
    assert calls == ["death_records.v1"] * 2
