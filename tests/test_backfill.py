"""A backfill over seven past days reproduces, for each day, what running that day alone produces."""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

from lowincome.feeds import FEEDS
from lowincome.workstore import WorkStore
from pipelines.definitions import defs

from .conftest import SAMPLE_END

DAYS = [SAMPLE_END - timedelta(days=k) for k in range(6, -1, -1)]
FLAG_FACTS = ["flag_id", "rule_id", "level", "subject_key", "period", "evidence", "carried", "stale_feeds"]


def run(day: date) -> None:
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def day_facts(warehouse, day: date) -> tuple[dict, pl.DataFrame]:
    store = WorkStore(warehouse)
    staged = {f: store.staging(day, f).rows for f in FEEDS}
    flags = pl.read_parquet(store.committed_dir(day) / "mart" / "flag_day.parquet").select(FLAG_FACTS).sort("flag_id")
    return staged, flags


def test_seven_day_backfill_matches_single_days(generated, monkeypatch, tmp_path):
    out, _ = generated
    monkeypatch.setenv("LOWINCOME_INBOX", str(out / "inbox"))
    monkeypatch.delenv("LOWINCOME_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("LOWINCOME_ENV", raising=False)
    backfill = tmp_path / "backfill"
    monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(backfill))
    for day in reversed(DAYS):  # a backfill does not promise an order: newest first is the hard case
        run(day)
    for day in (DAYS[0], DAYS[-1]):
        alone = tmp_path / f"alone_{day}"
        monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(alone))
        run(day)
        b_staged, b_flags = day_facts(backfill, day)
        a_staged, a_flags = day_facts(alone, day)
        assert b_staged == a_staged, day
        assert b_flags.equals(a_flags), day
    # deliveries dated after a day are not used for that day
    first, last = day_facts(backfill, DAYS[0])[0], day_facts(backfill, DAYS[-1])[0]
    assert first["medical_claims"] < last["medical_claims"]
