"""Counties as the unit of work (issue 10): one ingestion step per (feed, county), the same result as one pass.

Each feed's staging asset is a graph: `counties` lists the feed's files, one `county[<county6>]` step
per county with files reads and validates them, `collect` assembles the feed. These tests check
that the night really runs one step per (feed, county) (read from the Dagster run's step keys,
against the counties named by the delivered files, listed here without the pipeline's code), and that
splitting by county changes nothing: the run folder's staging manifests, deliveries and validation
tables are exactly what one pass over every county at once (`ingest_feed`) gives, and a key repeated
across counties is still a duplicate.
"""

from __future__ import annotations

import re
from datetime import date

import polars as pl

from checks.record import SuitePass, validate_files
from lowincome.feeds import FEEDS
from lowincome.ingest import finish_feed, ingest_county, ingest_feed, plan_feed
from lowincome.staging import Staging
from lowincome.workstore import WorkStore

from .conftest import SAMPLE_END
from .handmade import delivery_path, person_id, write_csv

NAME = re.compile(r"^(?P<feed>[a-z_]+)_(?P<county>\d{6})_(?P<date>\d{8})\.(csv|xlsx|parquet)$")


def _delivered_counties(inbox, day: date) -> set[tuple[str, str]]:
    """(feed, county) of every delivery dated on or before `day`, from the file names alone."""
    found = set()
    for path in inbox.glob("*/*"):
        m = NAME.match(path.name)
        if m and m["feed"] == path.parent.name and m["date"] <= f"{day:%Y%m%d}":
            found.add((m["feed"], m["county"]))
    return found


def test_the_night_runs_one_ingestion_step_per_feed_and_county(published_run, generated):
    """With LOWINCOME_FANOUT_MIN_MB=0 (the fixture's), however small the feed."""
    out, _ = generated
    _, _, result = published_run
    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    county_steps = {(m[1], m[2]) for s in steps if (m := re.fullmatch(r"staging__(\w+)\.county\[(\d{6})\]", s))}
    expected = _delivered_counties(out / "inbox", SAMPLE_END)
    assert len({c for _, c in expected}) == 2 and len({f for f, _ in expected}) >= 7  # two counties, most feeds
    assert county_steps == expected
    for feed in FEEDS:  # one listing step and one assembling step per feed, and nothing else of ingestion
        assert {s for s in steps if s.startswith(f"staging__{feed}.")} == (
            {f"staging__{feed}.counties", f"staging__{feed}.collect"}
            | {f"staging__{feed}.county[{c}]" for f2, c in expected if f2 == feed})
    materialized = {e.event_specific_data.materialization.asset_key.to_user_string()
                    for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert {f"staging/{feed}" for feed in FEEDS} <= materialized
    checks = {e.event_specific_data.asset_check_key.asset_key.to_user_string()
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert {f"staging/{feed}" for feed in FEEDS} <= checks


def test_the_county_steps_give_what_one_pass_over_every_county_gives(published, generated, tmp_path):
    """The run folder of the fanned-out night == `ingest_feed` (all counties in one step) in a fresh work store."""
    out, _ = generated
    warehouse, _ = published
    run_dir = WorkStore(warehouse).day_dir(SAMPLE_END)
    work = tmp_path / "one-pass"
    for feed, spec in FEEDS.items():
        one = ingest_feed(spec, out / "inbox", SAMPLE_END, work, on_file=SuitePass(spec, work))
        staged = Staging.from_json((run_dir / "staging" / f"{feed}.json").read_text(encoding="utf-8"))
        assert staged == one.parts, feed  # same parts (names are content keys), same order, same row count
        assert staged.rows == one.totals["rows_accepted"] and (staged.rows > 0) == (one.deliveries.height > 0), feed
        assert pl.read_parquet(run_dir / "deliveries" / f"{feed}.parquet").equals(one.deliveries), feed
        assert pl.read_parquet(run_dir / "validation" / f"{feed}.parquet").equals(validate_files(spec, one.files, work)), feed
        assert staged.frame(warehouse / "work").equals(one.staging), feed


PAY_HEADER = ["发放流水号", "身份证号", "姓名", "行政区划代码", "补贴类型", "发放月份", "金额"]


def _payments(county: str, ids: list[str]) -> list[list[str]]:
    return [[pid, person_id(county, "19600101", k), "某", county + "001001", "低保金", "2026-10", "300.00"]
            for k, pid in enumerate(ids, start=1)]


def test_a_key_repeated_in_another_county_is_a_duplicate_whatever_order_the_counties_finish(tmp_path):
    """发放流水号 is unique across the feed: a later file of another county repeating one is a copy (collect resolves it)."""
    spec = FEEDS["subsidy_payments"]
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, spec.name, "371302", date(2026, 10, 5), "csv"), PAY_HEADER, _payments("371302", ["P1", "P2"]))
    write_csv(delivery_path(inbox, spec.name, "371324", date(2026, 10, 9), "csv"), PAY_HEADER, _payments("371324", ["P2", "P3"]))
    write_csv(delivery_path(inbox, spec.name, "371302", date(2026, 10, 20), "csv"), PAY_HEADER, _payments("371302", ["P3", "P4"]))
    one = ingest_feed(spec, inbox, SAMPLE_END, tmp_path / "one", blocking_share=1.0)
    work = tmp_path / "fan"
    plan = plan_feed(spec, inbox, SAMPLE_END)
    assert plan.counties == ("371302", "371324")
    parts = [ingest_county(spec, plan, c, work, blocking_share=1.0) for c in reversed(plan.counties)]
    assert [len(p.rows) for p in parts] == [1, 2]
    fanned = finish_feed(spec, plan, parts, work, blocking_share=1.0)
    assert fanned.deliveries.equals(one.deliveries)
    assert fanned.deliveries["rows_accepted"].to_list() == [2, 1, 1]  # P2 in 371324 and P3 in 371302 are copies
    assert sorted(fanned.staging["payment_id"].to_list()) == ["P1", "P2", "P3", "P4"]
    assert fanned.quarantine.filter(pl.col("reasons").str.contains("duplicate")).height == 2
    assert fanned.parts == one.parts


def test_collect_refuses_county_results_that_do_not_cover_the_feed(tmp_path):
    """A county step's result missing (or given twice) fails the feed instead of publishing part of it."""
    spec = FEEDS["subsidy_payments"]
    inbox = tmp_path / "inbox"
    write_csv(delivery_path(inbox, spec.name, "371302", date(2026, 10, 5), "csv"), PAY_HEADER, _payments("371302", ["P1"]))
    write_csv(delivery_path(inbox, spec.name, "371324", date(2026, 10, 9), "csv"), PAY_HEADER, _payments("371324", ["P2"]))
    plan = plan_feed(spec, inbox, SAMPLE_END)
    first = ingest_county(spec, plan, "371302", tmp_path / "w", blocking_share=1.0)
    for given in ([first], [first, first]):
        try:
            finish_feed(spec, plan, given, tmp_path / "w", blocking_share=1.0)
        except ValueError as exc:
            assert "do not cover the feed's files exactly once" in str(exc)
        else:
            raise AssertionError("finish_feed accepted an incomplete set of county results")


def test_a_small_feed_is_read_in_one_step_for_every_county(tmp_path):
    """Below LOWINCOME_FANOUT_MIN_MB of files to read: one unit (None, every county); from that size up, one per county.

    The sizes are the files' own, read here with stat, not the plan's."""
    inbox = tmp_path / "inbox"
    header = ["身份证号", "姓名", "死亡日期"]
    for county in ("371302", "371324"):
        rows = [[person_id(county, "19500101", i), "测试", "2026-01-05"] for i in range(1, 4)]
        write_csv(delivery_path(inbox, "death_records", county, date(2026, 1, 31), "csv"), header, rows)
    plan = plan_feed(FEEDS["death_records"], inbox, date(2026, 1, 31))
    total = sum(p.stat().st_size for p in (inbox / "death_records").iterdir())
    assert plan.counties == ("371302", "371324") and plan.readable_bytes() == total
    assert plan.units(total + 1) == (None,)  # small: one step reads both counties
    assert plan.units(total) == ("371302", "371324")  # from the threshold up: one step per county
    assert plan.units(0) == ("371302", "371324")
    (inbox / "death_records" / "death_records_371324_20260131.csv").unlink()
    plan = plan_feed(FEEDS["death_records"], inbox, date(2026, 1, 31))
    assert plan.units(total * 10) == ("371302",)  # one county: its own step, named by it, as before
