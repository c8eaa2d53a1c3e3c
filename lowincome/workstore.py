"""The pipeline's working storage under `<warehouse>/work/` (identified data, never published).

Assets hand data to each other as Parquet files, one per feed and as-of day,
so feeds can ingest in parallel without contending for DuckDB's single
writer, and re-running a day simply overwrites that day's files. History that
auditors need across runs (runs, deliveries, validation results, flag days)
is kept as one Parquet file per run or day, append-only.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import polars as pl

from .privacy import ensure_private_dir


class WorkStore:
    def __init__(self, warehouse: Path):
        self.warehouse = Path(warehouse)
        self.root = self.warehouse / "work"
        ensure_private_dir(self.root)  # identified caches: 0700, re-applied by every run

    # ---- per as-of day ---------------------------------------------------------
    def day_dir(self, as_of: date) -> Path:
        return self.root / f"asof={as_of.isoformat()}"

    def path(self, as_of: date, kind: str, feed: str) -> Path:
        return self.day_dir(as_of) / kind / f"{feed}.parquet"

    def write(self, as_of: date, kind: str, feed: str, frame: pl.DataFrame) -> Path:
        return write_atomic(self.path(as_of, kind, feed), frame)

    def read(self, as_of: date, kind: str, feed: str) -> pl.DataFrame:
        return pl.read_parquet(self.path(as_of, kind, feed))

    def exists(self, as_of: date, kind: str, feed: str) -> bool:
        return self.path(as_of, kind, feed).exists()

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

    def completed_days(self) -> list[date]:
        """As-of days whose ingestion finished (every feed wrote its staging file)."""
        days = []
        for d in self.root.glob("asof=*"):
            marker = d / "COMPLETE"
            if marker.exists():
                days.append(date.fromisoformat(d.name.split("=", 1)[1]))
        return sorted(days)

    def mark_complete(self, as_of: date) -> None:
        marker = self.day_dir(as_of) / "COMPLETE"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(as_of.isoformat())


def write_atomic(path: Path, frame: pl.DataFrame) -> Path:
    """Write a Parquet file so a reader never sees half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, path)
    return path
