"""Working storage: a run's folder counts as its day only once committed; leftovers go, live runs stay."""

from __future__ import annotations

import os
from datetime import date

import polars as pl
import pytest

from lowincome.workstore import WorkStore

D = date(2026, 10, 31)


def test_a_run_is_its_day_only_once_committed(tmp_path):
    first = WorkStore(tmp_path, run_id="a")
    first.write(D, "staging", "civil_roster", pl.DataFrame({"n": [1]}))
    committed = WorkStore(tmp_path)
    assert committed.completed_days() == []
    with pytest.raises(FileNotFoundError):
        committed.path(D, "staging", "civil_roster")
    first.commit(D)
    assert committed.completed_days() == [D]
    assert committed.read(D, "staging", "civil_roster")["n"].to_list() == [1]

    second = WorkStore(tmp_path, run_id="b")  # a re-run of the day writes beside it, never over it
    second.write(D, "staging", "civil_roster", pl.DataFrame({"n": [2]}))
    assert committed.read(D, "staging", "civil_roster")["n"].to_list() == [1]
    second.commit(D)
    assert committed.read(D, "staging", "civil_roster")["n"].to_list() == [2]


def test_leftovers_are_removed_but_live_and_committed_runs_stay(tmp_path):
    done = WorkStore(tmp_path, run_id="done")
    done.write(D, "staging", "x", pl.DataFrame({"n": [1]}))
    done.commit(D)
    dead = WorkStore(tmp_path, run_id="dead")
    dead.write(D, "staging", "x", pl.DataFrame({"n": [2]}))
    live = WorkStore(tmp_path, run_id="live")
    fd = live.hold_live(D)
    me = WorkStore(tmp_path, run_id="me")
    me.write(D, "staging", "x", pl.DataFrame({"n": [3]}))
    legacy = tmp_path / "work" / f"asof={D}" / "staging"
    legacy.mkdir(parents=True)
    (legacy / "x.parquet").write_bytes(b"old layout")
    try:
        removed = WorkStore(tmp_path).remove_leftovers(keep_run="me")
    finally:
        os.close(fd)
    left = sorted(p.name for p in (tmp_path / "work" / "days" / D.isoformat()).glob("run-*"))
    assert left == ["run-done", "run-live", "run-me"]
    assert dead.run_dir(D) in removed and not legacy.parent.exists()
    # once the live run is gone (its lock released) and another run committed, both old folders go
    me.commit(D)
    WorkStore(tmp_path).remove_leftovers(keep_run=None)
    assert sorted(p.name for p in (tmp_path / "work" / "days" / D.isoformat()).glob("run-*")) == ["run-me"]
