"""`lowincome generate` and `python -m lowincome.generate`."""

from __future__ import annotations

import argparse
import time
from datetime import date
from pathlib import Path

from ..feeds import DEPARTMENT_FEEDS as FEEDS


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date in YYYY-MM-DD form") from None


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (DIR/inbox/<feed>/... is written)")
    p.add_argument("--seed", type=int, default=7, help="random seed (same seed, same files)")
    p.add_argument("--scale", type=float, default=1.0, help="size factor; 1 = the bundled samples (~20k claims)")
    p.add_argument("--end-date", type=_day, default=date(2026, 10, 31), help="last extraction date (YYYY-MM-DD)")
    p.add_argument("--feeds", nargs="+", choices=sorted(FEEDS), help="only these feeds (default: all seven)")
    p.add_argument("--months", type=_months, default=12,
                   help="months of history ending with the end date's month (default 12, the bundled samples; at least 12): "
                        "the same population, with the months before the last year as further quarterly extracts")


def _months(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number of months") from None
    if value < 12:
        raise argparse.ArgumentTypeError(f"{value}: the history must be at least 12 months (历史月数至少为 12)")
    return value


def run(args: argparse.Namespace) -> int:
    from . import ForeignFiles, generate

    if args.scale <= 0:
        raise SystemExit("lowincome generate: --scale must be greater than 0")
    started = time.perf_counter()
    try:
        manifest = generate(Path(args.out), seed=args.seed, scale=args.scale, end_date=args.end_date, feeds=args.feeds,
                            months=args.months)
    except ForeignFiles as exc:
        raise SystemExit(f"lowincome generate: {exc}") from None
    rows = sum(f["rows"] for f in manifest["files"])
    print(f"wrote {len(manifest['files'])} file(s), {rows:,} rows, to {Path(args.out) / 'inbox'} "
          f"in {time.perf_counter() - started:.1f}s ({len(manifest['bad_rows'])} planted bad rows, "
          f"{len(manifest['planted'])} planted rule cases; manifest: {Path(args.out) / 'expected.json'})")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lowincome generate", description="Write synthetic department deliveries.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
