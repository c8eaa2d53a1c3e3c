"""Rules at city scale (~250k roster persons, ~30M claim rows) on an already generated inbox.

    .venv/bin/python benchmarks/bench_nightly.py --scale 250 --claims-factor 6.25   # generates (≈5 min) ...
    .venv/bin/python benchmarks/bench_rules_cityscale.py --work DIR                 # ... then this

The nightly ingestion holds a feed's accepted rows in memory (30M claim rows
peak at about 19 GB). To time the rules alone, on any machine, this script stages
the increment feeds file by file instead (each file validated exactly as ingestion does, cross-file
duplicate detection skipped), streams them into one staging Parquet file, and
then times the rules engine, which reads Parquet through DuckDB out of core.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from datetime import date
from pathlib import Path

import polars as pl

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY
from lowincome.feeds import DEPARTMENT_FEEDS
from lowincome.ingest import ingest_feed
from lowincome.rules.engine import evaluate
from lowincome.rules.policy import load_policy


def stage_file_by_file(feed: str, inbox: Path, as_of: date, work: Path) -> Path:
    spec = DEPARTMENT_FEEDS[feed]
    out = work / "staging" / f"{feed}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    if spec.kind == "snapshot":  # snapshots are small and need all files together to know the latest
        ingest_feed(spec, inbox, as_of, work / "work").staging.write_parquet(out)
        return out
    parts = work / "parts" / feed
    parts.mkdir(parents=True, exist_ok=True)
    for f in sorted((inbox / feed).iterdir()):
        one = Path(tempfile.mkdtemp(prefix="one-")) / "inbox"
        (one / feed).mkdir(parents=True)
        (one / feed / f.name).symlink_to(f)
        result = ingest_feed(spec, one, as_of, work / "work")
        result.staging.write_parquet(parts / f"{f.stem}.parquet")
        shutil.rmtree(one.parent)
    pl.scan_parquet(str(parts / "*.parquet")).sink_parquet(out)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, required=True, help="a bench_nightly.py work folder (holds gen/inbox)")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 10, 31))
    ap.add_argument("--reuse", action="store_true", help="keep staging files of an earlier run of this script")
    args = ap.parse_args()
    inbox = args.work / "gen" / "inbox"
    out = args.work / "city"
    staging: dict[str, Path] = {}
    for feed in DEPARTMENT_FEEDS:
        t = time.perf_counter()
        done = out / "staging" / f"{feed}.parquet"
        staging[feed] = done if args.reuse and done.exists() else stage_file_by_file(feed, inbox, args.as_of, out)
        rows = pl.scan_parquet(staging[feed]).select(pl.len()).collect().item()
        print(f"stage {feed}: {rows:,} rows, {time.perf_counter() - t:.1f}s", flush=True)
    roster = pl.scan_parquet(staging["civil_roster"]).filter(pl.col("is_latest")).select(pl.col("id_number").n_unique()).collect().item()
    print(f"latest-roster persons: {roster:,}")
    t = time.perf_counter()
    ev = evaluate(staging, load_policy(DEFAULT_POLICY), args.as_of, DEV_PSEUDONYM_KEY)
    print(f"rules: {ev.flags.height:,} flags in {time.perf_counter() - t:.1f}s; "
          + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(ev.timings.items(), key=lambda kv: -kv[1])[:6]))


if __name__ == "__main__":
    main()
