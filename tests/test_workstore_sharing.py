"""A committed run stores a file the previous committed run already holds byte for byte only once (a hard link).

Pruning the older folder must leave the newer one whole, a rewrite of a linked file must not reach the
older folder, and a night over an unchanged inbox must publish exactly what it did with its own copies.
"""

from __future__ import annotations

import os
from datetime import date, timedelta
from pathlib import Path

import polars as pl

from lowincome.workstore import LIVE_LOCK, WorkStore, share_unchanged, write_atomic

D1 = date(2026, 10, 30)
D2 = date(2026, 10, 31)


def _write_run(warehouse: Path, run_id: str, day: date, frames: dict[str, pl.DataFrame]) -> WorkStore:
    store = WorkStore(warehouse, run_id)
    os.close(store.hold_live(day))
    for name, frame in frames.items():
        kind, feed = name.split("/")
        store.write(day, kind, feed, frame)
    return store


def _frames(n: int) -> dict[str, pl.DataFrame]:
    same = pl.DataFrame({"a": list(range(1000)), "b": ["x"] * 1000})
    return {"mart/same": same, "lifecycle/changes": pl.DataFrame({"a": [n]}), "validation/same": same.head(10)}


def test_identical_files_are_linked_and_survive_pruning(tmp_path):
    wh = tmp_path / "wh"
    first = _write_run(wh, "r1", D1, _frames(1))
    first.commit(D1)
    second = _write_run(wh, "r2", D2, _frames(2))
    second.commit(D2)
    one, two = first.run_dir(D1), second.run_dir(D2)
    for rel in ("mart/same.parquet", "validation/same.parquet"):
        assert os.path.samefile(one / rel, two / rel), rel
    assert not os.path.samefile(one / "lifecycle/changes.parquet", two / "lifecycle/changes.parquet")
    assert not os.path.samefile(one / LIVE_LOCK, two / LIVE_LOCK)  # the live lock stays the run's own
    assert pl.read_parquet(two / "lifecycle/changes.parquet")["a"].to_list() == [2]

    # rewriting a linked file in the newer folder replaces it whole: the older folder keeps its bytes
    write_atomic(two / "validation/same.parquet", pl.DataFrame({"a": [7]}))
    assert pl.read_parquet(one / "validation/same.parquet").height == 10

    # pruning the older day removes its names only: the newer day reads the shared file whole
    removed = WorkStore(wh).prune_days(0)
    assert removed == [WorkStore(wh).asof_dir(D1)]
    assert not one.exists()
    assert WorkStore(wh).read(D2, "mart", "same").equals(_frames(0)["mart/same"])
    assert WorkStore(wh).committed_dir(D2) == two


def test_a_rerun_of_the_same_day_links_to_the_day_s_committed_run(tmp_path):
    wh = tmp_path / "wh"
    _write_run(wh, "r1", D1, _frames(1)).commit(D1)
    _write_run(wh, "r2", D2, _frames(2)).commit(D2)
    again = _write_run(wh, "r3", D2, _frames(2))
    again.commit(D2)
    store = WorkStore(wh)
    assert store.committed_dir(D2) == again.run_dir(D2)
    assert os.path.samefile(again.run_dir(D2) / "lifecycle/changes.parquet",
                            store.run_dir(D2, "r2") / "lifecycle/changes.parquet")
    # a backfill of an earlier day finds no earlier day: it keeps its own files
    back = _write_run(wh, "r0", D1 - timedelta(days=1), _frames(0))
    back.commit(D1 - timedelta(days=1))
    assert os.stat(back.run_dir(D1 - timedelta(days=1)) / "mart/same.parquet").st_nlink == 1


def test_different_or_unreadable_files_are_kept(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "x").mkdir(parents=True)
    (b / "x").mkdir(parents=True)
    (a / "x" / "f.bin").write_bytes(b"1" * 100)
    (b / "x" / "f.bin").write_bytes(b"1" * 99 + b"2")  # same size, other bytes
    (a / "x" / "g.bin").write_bytes(b"same")
    (b / "x" / "g.bin").write_bytes(b"same")
    (b / "x" / ".tmp.bin").write_bytes(b"same")
    (a / "x" / ".tmp.bin").write_bytes(b"same")
    assert share_unchanged(b, [tmp_path / "missing", a]) == 1
    assert os.path.samefile(a / "x" / "g.bin", b / "x" / "g.bin")
    assert not os.path.samefile(a / "x" / "f.bin", b / "x" / "f.bin")
    assert not os.path.samefile(a / "x" / ".tmp.bin", b / "x" / ".tmp.bin")
    assert share_unchanged(b, [a]) == 0  # already shared: nothing to do
