"""A night that stores a few new validation results draws only their pages; the site equals a full build."""

from __future__ import annotations

import re
from datetime import date

from checks import record
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed

from .handmade import delivery_path, person_id, write_csv

HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
FIRST = (date(2026, 8, 31), date(2026, 9, 30))
LATER = date(2026, 10, 31)


def _deliver(inbox, day, seq):
    write_csv(delivery_path(inbox, "death_records", "371302", day, "csv"), HEADER,
              [[person_id("371302", "19400101", seq), "赵一", "2026-08-01", "殡葬火化"]])


_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _page(path) -> bytes:
    """A page without the random ids GX gives its collapsible blocks on every build."""
    return _UUID.sub(b"<uuid>", path.read_bytes())


def _validation_pages(site):
    return {p.relative_to(site): p for p in site.rglob("*.html") if "/validations/" in p.as_posix()}


def test_new_results_are_drawn_alone_and_the_site_equals_a_full_build(tmp_path):
    spec = FEEDS["death_records"]
    inbox, work = tmp_path / "inbox", tmp_path / "work"
    for seq, day in enumerate(FIRST, start=1):
        _deliver(inbox, day, seq)
    record.validate_files(spec, ingest_feed(spec, inbox, FIRST[-1], work).files, work)
    site = record.render_data_docs(work, tmp_path / "reports").parent
    first = {rel: (p.stat().st_mtime_ns, p.read_bytes()) for rel, p in _validation_pages(site).items()}
    assert len(first) == len(FIRST)

    _deliver(inbox, LATER, 3)
    record.validate_files(spec, ingest_feed(spec, inbox, LATER, work).files, work)
    assert len((work / "gx" / record.UNRENDERED).read_text(encoding="utf-8").splitlines()) == 1
    record.render_data_docs(work, tmp_path / "reports")
    pages = _validation_pages(site)
    assert len(pages) == len(FIRST) + 1
    untouched = [rel for rel, (mtime, _) in first.items() if pages[rel].stat().st_mtime_ns == mtime]
    assert sorted(untouched) == sorted(first)  # the earlier pages were not drawn again
    assert not (work / "gx" / record.UNRENDERED).exists()

    # The same store rendered from scratch gives the same pages (but for GX's random block ids), and the same list.
    full = record.render_data_docs(work, tmp_path / "full").parent
    full_pages = _validation_pages(full)
    assert sorted(full_pages) == sorted(pages)
    for rel, page in pages.items():
        assert _page(page) == _page(full_pages[rel]), rel
    index, full_index = (site / "index.html").read_text(encoding="utf-8"), (full / "index.html").read_text(encoding="utf-8")
    assert all(rel.name in index and rel.name in full_index for rel in pages)


def test_without_the_list_of_new_results_the_whole_site_is_drawn(tmp_path):
    spec = FEEDS["death_records"]
    inbox, work = tmp_path / "inbox", tmp_path / "work"
    _deliver(inbox, FIRST[0], 1)
    record.validate_files(spec, ingest_feed(spec, inbox, FIRST[0], work).files, work)
    site = record.render_data_docs(work, tmp_path / "reports").parent
    page = next(iter(_validation_pages(site).values()))
    drawn = page.stat().st_mtime_ns
    _deliver(inbox, FIRST[1], 2)
    record.validate_files(spec, ingest_feed(spec, inbox, FIRST[1], work).files, work)
    (work / "gx" / record.UNRENDERED).unlink()  # lost: which pages are missing is no longer known
    record.render_data_docs(work, tmp_path / "reports")
    assert page.stat().st_mtime_ns != drawn and len(_validation_pages(site)) == 2
