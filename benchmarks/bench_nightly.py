"""Time a whole nightly run, stage by stage, on generated data of a chosen size.

    .venv/bin/python benchmarks/bench_nightly.py --scale 1            # the bundled-sample size
    .venv/bin/python benchmarks/bench_nightly.py --scale 250 --claims-factor 6   # ~250k roster persons, ~30M claims

Generates into a temporary folder (or --inbox DIR to reuse one), then runs the
same functions the Dagster assets call: ingestion per feed, rules, lifecycle and
marts, publishing. Prints rows and seconds per stage.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

from checks.record import validate_files
from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY
from lowincome.feeds import DEPARTMENT_FEEDS, FEEDS
from lowincome.ingest import ingest_feed
from lowincome.publish import mart_tables, publish
from lowincome.rules.engine import evaluate
from lowincome.rules.lifecycle import build_marts
from lowincome.rules.policy import DEFAULT_COUNTY, load_policy
from lowincome.workstore import WorkStore


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--claims-factor", type=float, default=1.0, help="multiply claims per month on top of --scale")
    ap.add_argument("--inbox", type=Path, help="use this inbox instead of generating")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 10, 31))
    ap.add_argument("--suites", action="store_true", help="also validate every file with its Great Expectations suite")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="lowincome-bench-"))
    inbox = args.inbox
    if inbox is None:
        from lowincome.generate import generate

        t = time.perf_counter()
        manifest = generate(tmp / "gen", seed=7, scale=args.scale, end_date=args.as_of, claims_factor=args.claims_factor)
        rows = sum(f["rows"] for f in manifest["files"])
        print(f"generate: {rows:,} rows in {len(manifest['files'])} files, {time.perf_counter() - t:.1f}s")
        inbox = tmp / "gen" / "inbox"
    store = WorkStore(tmp / "warehouse", run_id="bench")
    total = 0.0
    for feed, spec in FEEDS.items():
        t = time.perf_counter()
        result = ingest_feed(spec, inbox, args.as_of, store.root)
        for kind, frame in (("staging", result.staging), ("quarantine", result.quarantine), ("deliveries", result.deliveries)):
            store.write(args.as_of, kind, feed, frame)
        dt = time.perf_counter() - t
        t = time.perf_counter()
        checked = validate_files(spec, result.files, store.root) if args.suites else None
        dv = time.perf_counter() - t
        total += dt + dv
        rows = result.totals["rows_read"]
        del result
        print(f"ingest {feed}: {rows:,} rows, {dt:.1f}s" + (f", suites {dv:.1f}s ({checked['file_name'].n_unique()} files)" if args.suites else ""),
              flush=True)
    policy = load_policy(DEFAULT_POLICY)
    t = time.perf_counter()
    ev = evaluate({f: store.path(args.as_of, "staging", f) for f in DEPARTMENT_FEEDS}, policy, args.as_of, DEV_PSEUDONYM_KEY)
    dt = time.perf_counter() - t
    total += dt
    print(f"rules: {ev.flags.height:,} flags, {dt:.1f}s ({', '.join(f'{k} {v:.1f}s' for k, v in sorted(ev.timings.items(), key=lambda kv: -kv[1])[:4])})")
    t = time.perf_counter()
    build_marts(store, args.as_of, ev, int(policy.in_force(DEFAULT_COUNTY, args.as_of)["outcome_overdue_days"]), ev.households, ev.roster_sizes)
    store.commit(args.as_of)
    dt = time.perf_counter() - t
    total += dt
    print(f"lifecycle and marts: {dt:.1f}s")
    t = time.perf_counter()
    publish(store.committed(), args.as_of, DEV_PSEUDONYM_KEY, **mart_tables(store.committed(), args.as_of))
    dt = time.perf_counter() - t
    total += dt
    print(f"publish: {dt:.1f}s", flush=True)
    print(f"total (without generation): {total:.1f}s; work folder {tmp}")


if __name__ == "__main__":
    main()
