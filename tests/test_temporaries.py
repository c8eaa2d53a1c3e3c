"""Writers' temporaries left by killed processes: removed once abandoned for a day, and nothing else is
(lowincome/temporaries.py). The end-to-end case, a real run killed while writing, is in tests/test_faults.py."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lowincome.temporaries import STALE_SECONDS, is_temporary, sweep, temporary_path
from lowincome.workstore import WorkStore

# one name of each shape the writers use (write_atomic, share_unchanged, the timeline's scratch, reuse's folder)
TEMPORARIES = ["work/parsed/medical_claims/.abc_20261031_371302_f00.parquet.4242.tmp",
               "work/history/.flags.parquet.4242.link",
               "published/timeline/night/.building.1764460000000000000.parquet",
               "worklists/371302/2026-10-31/.核查清单_371302_城关镇_20261031.xlsx.4242.tmp"]
KEPT = ["work/store/civil_roster/.live", ".publish.lock", "published/generations/.gitignore",
        "reports/gx/.generation", "work/parsed/medical_claims/abc_20261031_371302_f00.parquet",
        ".building/restricted.x.duckdb"]


def _plant(root: Path, rel: str, age: float) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def test_only_temporaries_abandoned_for_a_day_are_removed(tmp_path):
    old = [_plant(tmp_path, rel, STALE_SECONDS + 60) for rel in TEMPORARIES]
    fresh = [_plant(tmp_path, rel.replace("4242", "4343").replace("17644", "17645"), 60) for rel in TEMPORARIES]
    kept = [_plant(tmp_path, rel, STALE_SECONDS * 30) for rel in KEPT]
    folder = tmp_path / "work" / "results" / ".tmp-4242-abcdef"  # rules/reuse.py writes a folder, then renames it
    inner = _plant(folder, "flags.parquet", STALE_SECONDS + 60)
    os.utime(folder, (time.time() - STALE_SECONDS - 60,) * 2)
    busy = tmp_path / "work" / "results" / ".tmp-4343-abcdef"
    _plant(busy, "flags.parquet", 60)  # a folder being filled: its files are new although the folder is not
    os.utime(busy, (time.time() - STALE_SECONDS * 2,) * 2)

    removed = WorkStore(tmp_path).remove_leftovers()

    assert set(old) | {folder} <= set(removed)
    assert not any(p.exists() for p in old) and not inner.exists()
    assert all(p.exists() for p in fresh + kept) and busy.is_dir()


def test_the_names_of_temporaries():
    assert all(is_temporary(Path(rel).name) for rel in TEMPORARIES)
    assert not any(is_temporary(Path(rel).name) for rel in KEPT)
    assert not is_temporary(".building") and not is_temporary("x.tmp")


def test_spill_folders_are_left_to_their_own_sweep(tmp_path):
    spill_file = _plant(tmp_path, "work/tmp/host-1-abcd/c1/.duckdb.x.tmp", STALE_SECONDS * 2)
    assert sweep(tmp_path, skip={tmp_path / "work" / "tmp"}) == []
    assert spill_file.exists()


def test_two_writers_with_the_same_pid_never_share_a_temporary(tmp_path, monkeypatch):
    """Containers on several machines may all run as pid 1: the pid alone named the same temporary for both."""
    monkeypatch.setattr(os, "getpid", lambda: 1)
    target = tmp_path / "parsed" / "claims.parquet"
    names = {temporary_path(target) for _ in range(50)}
    assert len(names) == 50 and all(p.parent == target.parent for p in names)
    assert all(is_temporary(p.name) for p in names | {temporary_path(target, ".link")})
