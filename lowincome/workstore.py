"""The pipeline's working storage under `<warehouse>/work/` (identified data, never published).

Assets hand data to each other as Parquet files, one per feed and as-of day,
so feeds can ingest in parallel without contending for DuckDB's single
writer. Each run writes into its own folder, `work/days/<D>/run-<run>/`, and
nothing reads that folder as "day D" until the run commits it: the commit
replaces the pointer file `work/days/<D>/CURRENT` in one `os.replace`. (No
`key=value` folder names: DuckDB would read them as hive partitions and add
columns to every table read from them.) So a
run killed half-way leaves an uncommitted folder that no publication ever
reads, and a publication is built from one complete run per day, never from a
mix of two. A committed folder's files that the previous committed run
already holds byte for byte are hard links to them (`share_unchanged`): a night
with nothing new stores little of its own. History that auditors need across runs (runs, deliveries,
validation results) is kept as one Parquet file per run, append-only.
"""

from __future__ import annotations

import errno
import filecmp
import fcntl
import logging
import os
import shutil
from datetime import date
from pathlib import Path

import polars as pl

from .config import SPILL_DIR
from .privacy import ensure_private_dir
from .spill import sweep as sweep_spill
from .staging import Staging
from .temporaries import sweep as sweep_temporaries, temporary_path, write_text_atomic

log = logging.getLogger(__name__)

CURRENT = "CURRENT"
RUN_PREFIX = "run-"
LIVE_LOCK = ".live"  # held (flock, shared) by every process working in a run folder


class WorkStore:
    """The work store of a warehouse; with `run_id` it writes that run's folder, without it it reads committed days."""

    def __init__(self, warehouse: Path, run_id: str | None = None):
        self.warehouse = Path(warehouse)
        self.root = self.warehouse / "work"
        ensure_private_dir(self.root)  # identified caches: 0700, re-applied by every run
        self.run_id = run_id

    def committed(self) -> "WorkStore":
        return WorkStore(self.warehouse)

    # ---- per as-of day ---------------------------------------------------------
    def asof_dir(self, as_of: date) -> Path:
        return self.root / "days" / as_of.isoformat()

    def run_dir(self, as_of: date, run_id: str | None = None) -> Path:
        run_id = run_id or self.run_id
        if not run_id:
            raise ValueError("this work store belongs to no run: use WorkStore(warehouse, run_id)")
        return self.asof_dir(as_of) / f"{RUN_PREFIX}{run_id}"

    def committed_dir(self, as_of: date) -> Path | None:
        """The folder of the run committed for `as_of`, or None when no run of that day completed."""
        pointer = self.asof_dir(as_of) / CURRENT
        try:
            name = pointer.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        folder = self.asof_dir(as_of) / name
        return folder if name.startswith(RUN_PREFIX) and folder.is_dir() else None

    def day_dir(self, as_of: date) -> Path:
        """Where this store reads and writes day `as_of`: its own run folder, or the committed one."""
        if self.run_id:
            return self.run_dir(as_of)
        folder = self.committed_dir(as_of)
        if folder is None:
            raise FileNotFoundError(errno.ENOENT, f"no completed run for as-of {as_of} in the work store", str(self.asof_dir(as_of)))
        return folder

    def path(self, as_of: date, kind: str, feed: str) -> Path:
        return self.day_dir(as_of) / kind / f"{feed}.parquet"

    def write(self, as_of: date, kind: str, feed: str, frame: pl.DataFrame) -> Path:
        return write_atomic(self.path(as_of, kind, feed), frame)

    def read(self, as_of: date, kind: str, feed: str) -> pl.DataFrame:
        return pl.read_parquet(self.path(as_of, kind, feed))

    def exists(self, as_of: date, kind: str, feed: str) -> bool:
        try:
            return self.path(as_of, kind, feed).exists()
        except FileNotFoundError:
            return False

    def staging_path(self, as_of: date, feed: str) -> Path:
        return self.day_dir(as_of) / "staging" / f"{feed}.json"

    def write_staging(self, as_of: date, staging: Staging) -> Path:
        """Record what staging.<feed> is for the day: the manifest of its parts (small; the parts are shared)."""
        path = self.staging_path(as_of, staging.feed)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, staging.to_json())
        return path

    def staging(self, as_of: date, feed: str) -> Staging:
        return Staging.from_json(self.staging_path(as_of, feed).read_text(encoding="utf-8"))

    def staging_frame(self, as_of: date, feed: str) -> pl.DataFrame:
        """staging.<feed> of the day in memory: for tests and small tools (the pipeline reads it out of core)."""
        return self.staging(as_of, feed).frame(self.root)

    # ---- committing a run ------------------------------------------------------------
    def commit(self, as_of: date) -> None:
        """Make this run's folder the one that stands for `as_of` (atomic: the pointer is replaced whole)."""
        folder = self.run_dir(as_of)
        if not folder.is_dir():
            raise FileNotFoundError(errno.ENOENT, "run folder missing", str(folder))
        share_unchanged(folder, self.previous_dirs(as_of))
        pointer = self.asof_dir(as_of) / CURRENT
        tmp = temporary_path(pointer)
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(folder.name)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, pointer)

    def previous_dirs(self, as_of: date) -> list[Path]:
        """Committed folders a new run of `as_of` most likely repeats: the day's current one, the newest earlier day's."""
        folders = [self.committed_dir(as_of)]
        earlier = [d for d in self.completed_days() if d < as_of]
        if earlier:
            folders.append(self.committed_dir(max(earlier)))
        return [f for f in folders if f is not None]

    def completed_days(self) -> list[date]:
        """As-of days with a committed run (every feed's staging and the rules' outputs complete)."""
        days = []
        for d in (self.root / "days").glob("*"):
            day = _day(d.name)
            if day is not None and self.committed_dir(day) is not None:
                days.append(day)
        return sorted(days)

    # ---- history, across runs -----------------------------------------------------
    def history_dir(self, kind: str) -> Path:
        return self.root / "history" / kind

    def write_history(self, kind: str, name: str, frame: pl.DataFrame) -> Path:
        return write_atomic(self.history_dir(kind) / f"{name}.parquet", frame)

    def history_glob(self, kind: str) -> str | None:
        folder = self.history_dir(kind)
        if not folder.is_dir() or not any(folder.glob("*.parquet")):
            return None
        return str(folder / "*.parquet")

    def prune_days(self, keep_days: int) -> list[Path]:
        """Remove the run folders of as-of days more than `keep_days` before the newest committed day.

        What later days still need of them is in `history/` (the lifecycle records it at commit). The
        newest committed day is never pruned. Replaying a pruned day works: its deliveries are in the
        delivery store. Call under the warehouse lock.
        """
        days = self.completed_days()
        if not days:
            return []
        newest = max(days)
        removed = []
        for day in days:
            if (newest - day).days <= keep_days:
                continue
            folder = self.committed_dir(day)
            if folder is None or _in_use(folder):
                continue
            shutil.rmtree(self.asof_dir(day), ignore_errors=True)
            removed.append(self.asof_dir(day))
        return removed

    # ---- leftovers -------------------------------------------------------------------
    def hold_live(self, as_of: date) -> int:
        """Mark this run's folder as in use for as long as the returned descriptor stays open."""
        folder = self.run_dir(as_of)
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LIVE_LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        return fd

    def remove_leftovers(self, keep_run: str | None = None) -> list[Path]:
        """Remove run folders nobody uses any more: uncommitted ones of dead runs, superseded committed ones;
        DuckDB's spill folders of processes that ended without removing them (lowincome/spill.py); and
        the half-written files of killed writers, anywhere in the warehouse (lowincome/temporaries.py).

        A folder whose live lock some process still holds (a run in progress) is kept, and so
        is `keep_run` (this run, or the run a retry re-executes). Call under the warehouse lock.
        """
        removed = []
        for legacy in self.root.glob("asof=*"):  # day folders of the earlier layout, shared by every run of a day
            if legacy.is_dir():
                shutil.rmtree(legacy, ignore_errors=True)
                removed.append(legacy)
        for day_dir in (self.root / "days").glob("*"):
            day = _day(day_dir.name)
            if day is None:
                continue
            current = self.committed_dir(day)
            for folder in day_dir.glob(f"{RUN_PREFIX}*"):
                if folder == current or folder.name == f"{RUN_PREFIX}{keep_run}" or _in_use(folder):
                    continue
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            for tmp in day_dir.glob(f".{CURRENT}.*.tmp"):
                tmp.unlink(missing_ok=True)
        spill = sweep_spill(self.root / SPILL_DIR)  # spill files of killed processes (often gigabytes)
        temporaries = sweep_temporaries(self.warehouse, skip={self.root / SPILL_DIR})  # their half-written files
        if spill or temporaries:
            log.info("working storage: removed %d spill folder(s) and %d half-written file(s) left by killed "
                     "processes", len(spill), len(temporaries))
        return removed + spill + temporaries


def share_unchanged(folder: Path, previous: list[Path]) -> int:
    """Replace each file of `folder` that is byte-identical to the same file of a `previous` folder by a hard link to it.

    A night with nothing new writes mostly the same files as the night before (the lifecycle's
    state, the marts, every feed's deliveries and validation); kept for the retention period, each
    copy cost a run folder's size a night. Linked, the bytes are stored once. Safe because nothing
    writes a work file in place: every writer replaces the file whole (`write_atomic`, `os.replace`),
    which gives the new file its own inode and leaves the linked one alone; and pruning an older
    folder only removes one name of the file, the data stays for the folders that still link it.
    Hidden files (the live lock, temporaries) are left alone. Where the file system has no hard
    links, or anything else fails, the copy is kept: this only saves space. Returns how many files
    were linked.
    """
    linked = 0
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or path.is_symlink() or not path.is_file():
            continue
        for other in previous:
            old = other / rel
            try:
                if old.is_symlink() or not old.is_file():
                    continue
                new_st, old_st = path.stat(), old.stat()
                if (new_st.st_dev, new_st.st_ino) == (old_st.st_dev, old_st.st_ino):
                    break  # already one file
                if new_st.st_dev != old_st.st_dev or new_st.st_size != old_st.st_size or not filecmp.cmp(path, old, shallow=False):
                    continue
                tmp = temporary_path(path, ".link")
                try:
                    os.link(old, tmp)
                    os.replace(tmp, path)
                finally:
                    tmp.unlink(missing_ok=True)
            except OSError:
                continue
            linked += 1
            break
    return linked


def _day(name: str) -> date | None:
    try:
        return date.fromisoformat(name)
    except ValueError:
        return None


def _in_use(folder: Path) -> bool:
    lock = folder / LIVE_LOCK
    if not lock.exists():
        return False
    try:
        fd = os.open(lock, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing releases the probe's lock
    return False


PARQUET_ZSTD_LEVEL = 1


def write_atomic(path: Path, frame: pl.DataFrame) -> Path:
    """Write a Parquet file so a reader never sees half of it.

    zstd level 1, not Polars' default 3: on a 3.7M-row part it writes in 70% of the time and the
    file comes out smaller, not larger (measured on generated claims).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        frame.write_parquet(tmp, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
