"""The delivery store: each file parsed once, duplicates found against earlier parts, staging a list of parts.

Duplicates are checked against an independent reference: the first occurrence of each key over all files
in delivery order, computed here in plain Python from the rows the test wrote.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

import lowincome.ingest as ingest_module
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed

from .handmade import delivery_path, person_id, write_csv

AS_OF = date(2026, 10, 31)
SPEC = FEEDS["medical_claims"]
HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用",
          "基本医保统筹支付", "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]
PEOPLE = [person_id("371302", "19800101", k) for k in range(1, 6)]


def _claim(sid: str, k: int) -> list[str]:
    return [sid, PEOPLE[k % len(PEOPLE)], "张三", "371302001001", "2026-09-01", "住院", "100.00", "60.00", "0", "10.00",
            "30.00", "C34.9"]


def _write(inbox, day: date, ids: list[str]):
    return write_csv(delivery_path(inbox, "medical_claims", "371302", day, "csv"), HEADER,
                     [_claim(s, i) for i, s in enumerate(ids)])


def _expected(files: dict[str, list[str]]) -> tuple[set, set]:
    """(kept, copies) as (file, row) pairs: the first occurrence of a 结算ID in (file date, name, row) order."""
    seen, kept, copies = set(), set(), set()
    for name in sorted(files):  # names end in the extraction date, one county: name order is delivery order
        for row, sid in enumerate(files[name], start=1):
            (copies if sid in seen else kept).add((name, row))
            seen.add(sid)
    return kept, copies


def _got(result) -> tuple[set, set]:
    staged = set(zip(result.staging["source_file"], result.staging["source_row"]))
    quarantined = set(zip(result.quarantine["source_file"], result.quarantine["source_row"]))
    return staged, quarantined


@pytest.fixture()
def inbox(tmp_path):
    return tmp_path / "inbox"


def test_a_night_parses_only_the_files_it_has_not_seen(inbox, tmp_path, reads):
    work = tmp_path / "work"
    day1, day2 = date(2026, 9, 30), date(2026, 10, 31)
    _write(inbox, day1, ["S1", "S2", "S3"])
    ingest_feed(SPEC, inbox, day1, work, blocking_share=1.0)
    assert reads == [f"medical_claims_371302_{day1:%Y%m%d}.csv"]
    reads.clear()
    ingest_feed(SPEC, inbox, day1, work, blocking_share=1.0)  # re-run: nothing parsed again
    assert reads == []
    _write(inbox, day2, ["S3", "S4"])
    result = ingest_feed(SPEC, inbox, day2, work, blocking_share=1.0)
    assert reads == [f"medical_claims_371302_{day2:%Y%m%d}.csv"]  # only the new file
    assert sorted(result.staging["settlement_id"]) == ["S1", "S2", "S3", "S4"]
    assert result.quarantine["reasons"].str.contains("already delivered in medical_claims_371302_20260930.csv row 3").all()


def test_duplicates_follow_delivery_order_when_a_file_arrives_late(inbox, tmp_path):
    """A file dated before files already resolved changes who came first: the later files are resolved again."""
    work = tmp_path / "work"
    files = {}
    for day, ids in ((date(2026, 10, 10), ["A", "B", "C"]), (date(2026, 10, 20), ["C", "D", "A", "D"])):
        files[_write(inbox, day, ids).name] = ids
    first = ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0)
    assert _got(first) == _expected(files)
    late = _write(inbox, date(2026, 10, 1), ["D", "E", "E"])  # delivered now, dated earlier than both
    files[late.name] = ["D", "E", "E"]
    second = ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0)
    assert _got(second) == _expected(files)
    assert second.deliveries["rows_accepted"].sum() == len(_expected(files)[0])
    # the replay as of a day before the second file uses exactly the files dated on or before it
    early = {k: v for k, v in files.items() if k <= "medical_claims_371302_20261010.csv"}
    replay = ingest_feed(SPEC, inbox, date(2026, 10, 15), work, blocking_share=1.0)
    assert _got(replay) == _expected(early)


def test_a_corrected_file_replaces_its_parts_and_the_files_after_it(inbox, tmp_path):
    work = tmp_path / "work"
    files = {}
    first = _write(inbox, date(2026, 10, 10), ["A", "B"])
    files[first.name] = ["A", "B"]
    files[_write(inbox, date(2026, 10, 20), ["B", "C"]).name] = ["B", "C"]
    assert _got(ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0)) == _expected(files)
    _write(inbox, date(2026, 10, 10), ["A", "X"])  # corrected under the same name: B is no longer delivered before
    files[first.name] = ["A", "X"]
    result = ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0)
    assert _got(result) == _expected(files)
    assert sorted(result.staging["settlement_id"]) == ["A", "B", "C", "X"]


def test_many_files_match_the_reference(inbox, tmp_path):
    """Twelve files with repeats inside and across files, resolved first in one go and then night by night."""
    files = {}
    days = [date(2026, 10, 1) + timedelta(days=2 * k) for k in range(12)]
    for k, day in enumerate(days):
        ids = [f"S{(k * 7 + j * 3) % 40}" for j in range(9)]
        files[_write(inbox, day, ids).name] = ids
    at_once = ingest_feed(SPEC, inbox, AS_OF, tmp_path / "once", blocking_share=1.0)
    assert _got(at_once) == _expected(files)
    nightly = tmp_path / "nightly"
    for day in days:
        result = ingest_feed(SPEC, inbox, day, nightly, blocking_share=1.0)
    assert _got(result) == _expected(files)
    assert result.staging.sort("source_file", "source_row").equals(at_once.staging.sort("source_file", "source_row"))


def test_staging_is_a_list_of_shared_parts(inbox, tmp_path):
    """Two days share the parts of the files they both use: nothing is copied per day."""
    work = tmp_path / "work"
    _write(inbox, date(2026, 10, 10), ["A", "B"])
    _write(inbox, date(2026, 10, 20), ["B", "C"])
    early = ingest_feed(SPEC, inbox, date(2026, 10, 15), work, blocking_share=1.0).parts
    late = ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0).parts
    assert len(early.parts) == 1 and len(late.parts) == 2
    assert early.parts[0] == late.parts[0]
    assert all((work / p).is_file() for p in late.parts)


def test_a_night_hashes_only_new_or_changed_files(inbox, tmp_path, monkeypatch):
    hashed: list[str] = []
    real = ingest_module.sha256_of

    def counting(path):
        hashed.append(path.name)
        return real(path)

    monkeypatch.setattr(ingest_module, "sha256_of", counting)
    work = tmp_path / "work"
    old = _write(inbox, date(2026, 10, 10), ["A", "B"])
    ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0)
    assert hashed == [old.name]
    hashed.clear()
    new = _write(inbox, date(2026, 10, 20), ["C"])
    ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0)
    assert hashed == [new.name]
    hashed.clear()
    _write(inbox, date(2026, 10, 10), ["A", "Z"])  # rewritten in place under the same name
    result = ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0)
    assert hashed == [old.name]
    assert sorted(result.staging["settlement_id"]) == ["A", "C", "Z"]


def test_large_files_validated_in_slices_give_the_same_rows(tmp_path, monkeypatch):
    """A file above VALIDATE_CHUNK_ROWS is validated slice by slice, its frame assembled from the slices: same rows,
    same parsed cache, same parts and the same suite results (computed from that frame in memory), whether the
    slices are validated one after the other or two at a time in threads (whatever order they finish in)."""
    import shutil
    import threading

    from checks.record import SuitePass, validate_files
    from lowincome.generate import generate

    out = tmp_path / "gen"
    suites = {}
    generate(out, seed=3, scale=0.3, end_date=AS_OF, feeds=["medical_claims", "subsidy_payments", "civil_roster"])
    results = {}
    threads: dict[str, set[str]] = {}
    real = ingest_module._validated

    def validated(*args):
        threads[label].add(threading.current_thread().name)
        return real(*args)

    monkeypatch.setattr(ingest_module, "_validated", validated)
    for label, chunk, at_once in (("whole", 10**9, 1), ("sliced", 97, 1), ("sliced, two threads", 97, 2)):
        monkeypatch.setattr(ingest_module, "VALIDATE_CHUNK_ROWS", chunk)
        monkeypatch.setattr(ingest_module, "VALIDATE_THREADS", at_once)
        threads[label] = set()
        work = tmp_path / label
        results[label] = {f: ingest_feed(FEEDS[f], out / "inbox", AS_OF, work, blocking_share=1.0,
                                         on_file=SuitePass(FEEDS[f], work))
                          for f in ("medical_claims", "subsidy_payments", "civil_roster")}
        suites[label] = {f: validate_files(FEEDS[f], r.files, work) for f, r in results[label].items()}
    assert threads["sliced"] == {"MainThread"}
    assert {"validate_0", "validate_1"} <= threads["sliced, two threads"]  # the threaded path did run (small files: main)
    for feed, whole in results["whole"].items():
        assert whole.staging.height > 500 and whole.quarantine.height > 0, feed
        for label in ("sliced", "sliced, two threads"):
            sliced = results[label][feed]
            assert sliced.staging.equals(whole.staging), (feed, label)
            assert sliced.quarantine.equals(whole.quarantine), (feed, label)
            assert sliced.deliveries.drop("message").equals(whole.deliveries.drop("message")), (feed, label)
            assert len(sliced.files) == len(whole.files) > 1, (feed, label)
            for a, b in zip(sliced.files, whole.files):
                assert a.frame.equals(b.frame) and a.frame.schema == b.frame.schema, (feed, label, a.file_name)
            assert suites[label][feed].equals(suites["whole"][feed]), (feed, label)
    shutil.rmtree(out)


def test_a_parsed_cache_that_cannot_be_written_stops_the_feed_and_leaves_no_entry(tmp_path, monkeypatch):
    """The parsed cache is written in the background while the parts and the suite are built: a full disk there
    is still the working storage's error (it propagates, it is not blamed on the file), leaves no cache entry
    (neither a half-written file nor its meta) and the next run reads the file again and gives the same result."""
    import errno
    import threading

    import polars as pl

    from checks.record import SuitePass

    _write(inbox := tmp_path / "inbox", date(2026, 10, 1), ["A", "B", "C"])
    _write(inbox, date(2026, 10, 2), ["B", "D"])
    real = pl.DataFrame.write_parquet
    failed = []

    def write(self, file, *args, **kwargs):
        if "/parsed/" in str(file) and not failed:
            failed.append(threading.current_thread().name)
            raise OSError(errno.ENOSPC, "No space left on device", str(file))
        return real(self, file, *args, **kwargs)

    work = tmp_path / "work"
    monkeypatch.setattr(pl.DataFrame, "write_parquet", write)
    with pytest.raises(OSError) as raised:
        ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0, on_file=SuitePass(SPEC, work))
    assert raised.value.errno == errno.ENOSPC
    assert failed and failed[0].startswith("parsed-cache")  # it was the background write that failed
    parsed = [p for p in (work / "parsed").rglob("*") if p.is_file()]
    assert parsed == [], parsed  # no temporary file, no cache file, no meta
    monkeypatch.setattr(pl.DataFrame, "write_parquet", real)
    again = ingest_feed(SPEC, inbox, AS_OF, work, blocking_share=1.0, on_file=SuitePass(SPEC, work))
    clean = ingest_feed(SPEC, inbox, AS_OF, tmp_path / "clean", blocking_share=1.0)
    assert again.staging.equals(clean.staging) and again.quarantine.equals(clean.quarantine)
    assert sorted(again.staging["settlement_id"]) == ["A", "B", "C", "D"]
