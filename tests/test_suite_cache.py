"""The per-file suite-result cache (`<work>/validated/...`): a corrupt or partial entry is rebuilt, with a warning."""

from __future__ import annotations

import logging
from datetime import date

import polars as pl
import pytest

from checks import record
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed

from .handmade import delivery_path, person_id, write_csv

DAY = date(2026, 10, 31)
HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]


@pytest.fixture()
def validated(tmp_path):
    """Two death files, ingested and validated once; returns (spec, files, work dir, first results)."""
    inbox, work = tmp_path / "inbox", tmp_path / "work"
    for day, seq in ((date(2026, 9, 30), 1), (DAY, 2)):
        write_csv(delivery_path(inbox, "death_records", "371302", day, "csv"), HEADER,
                  [[person_id("371302", "19400101", seq), "赵一", "2026-09-01", "殡葬火化"]])
    spec = FEEDS["death_records"]
    files = ingest_feed(spec, inbox, DAY, work).files
    first = record.validate_files(spec, files, work)
    return spec, files, work, first


def _entries(work):
    return sorted((work / "validated" / "death_records").glob("*.parquet"))


@pytest.mark.parametrize("damage", ["truncated", "empty", "not_parquet", "wrong_columns"])
def test_a_corrupt_entry_is_detected_and_rebuilt(validated, caplog, damage):
    spec, files, work, first = validated
    entries = _entries(work)
    assert len(entries) == 2
    victim = entries[0]
    data = victim.read_bytes()
    if damage == "truncated":
        victim.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        victim.write_bytes(b"")
    elif damage == "not_parquet":
        victim.write_text("garbage", encoding="utf-8")
    else:
        pl.DataFrame({"unrelated": [1]}).write_parquet(victim)
    with caplog.at_level(logging.WARNING, logger=record.__name__):
        again = record.validate_files(spec, files, work)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and r.name == record.__name__]
    assert len(warnings) == 1 and str(victim) in warnings[0], warnings
    assert again.sort("file_name", "expectation").equals(first.sort("file_name", "expectation"))
    assert pl.read_parquet(victim).height == pl.read_parquet(entries[1]).height  # rebuilt in place, readable again
    caplog.clear()
    record.validate_files(spec, files, work)  # now healthy: no warning, nothing recomputed
    assert not [r for r in caplog.records if r.name == record.__name__ and r.levelno >= logging.WARNING]


def test_healthy_entries_are_reused_without_running_the_suite(validated, monkeypatch):
    spec, files, work, first = validated

    def must_not_run(job):
        raise AssertionError("suite ran again for a cached file")

    monkeypatch.setattr(record, "_validate_one", must_not_run)
    assert record.validate_files(spec, files, work).sort("file_name", "expectation").equals(
        first.sort("file_name", "expectation"))


def test_the_cache_key_follows_the_validation_fingerprint(validated, monkeypatch):
    """A change to any code that shapes the results (here simulated) is a cache miss, not a stale record."""
    spec, files, work, _ = validated
    before = {p.name for p in _entries(work)}
    monkeypatch.setattr(record, "_fingerprint", lambda: "0123456789ab")
    record.validate_files(spec, files, work)
    new = {p.name for p in _entries(work)} - before
    assert len(new) == 2 and all(n.endswith("_0123456789ab.parquet") for n in new)
