"""Suite cost on one large claims file: a plain Polars read of its parsed Parquet vs the feed's suite.

    .venv/bin/python benchmarks/bench_suites.py --rows 10000000 [--old] [--keep DIR]

Builds the parsed Parquet of one synthetic medical_claims delivery of N rows the way ingest does
(`bench_ingest.claims_frame` → the canonical text columns → `lowincome.validation.validate_rows` on
1M rows, repeated with unique settlement keys; 1% wrong ID check characters), then runs each measurement in its own process and
prints wall time and peak resident memory (the process's ru_maxrss; its start-up imports included,
and printed apart):

- read: `pl.read_parquet` of the whole parsed file (every column): the floor (imports only Polars);
- suite: `checks.run.run_suite` on the file's path (the nightly path: one Polars pass, masked GX result);
- store: the same plus storing the result in a file-mode GX store (`checks.record._store`);
- old (with `--old`): the same suite through GX's pandas engine (`checks.reference`), as before issue 9.

Ratios to the read are printed beside the figures. Not a timed test.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

DAY = date(2026, 10, 31)
FILE_NAME = "medical_claims_371302_20261031.csv"
CHUNK = 1_000_000


def _canonical(frame, spec):
    """The delivered text under the registry's column names, as `reading.read_delivery` hands it over."""
    import polars as pl

    by_header = {c.header: c.name for c in spec.columns}
    return frame.rename(by_header).with_columns(pl.lit(None, dtype=pl.String).alias("extra_columns"))


def build(path: Path, rows: int) -> None:
    """One 1M-row chunk parsed by `validate_rows`, repeated with fresh settlement keys and row numbers."""
    import polars as pl

    from bench_ingest import claims_frame
    from lowincome.feeds import FEEDS
    from lowincome.reading import ROW_COLUMN
    from lowincome.validation import RAW_PREFIX, validate_rows

    spec = FEEDS["medical_claims"]
    size = min(CHUNK, rows)
    text = _canonical(claims_frame(size, seed=1), spec).with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW_COLUMN))
    chunk = validate_rows(text, spec, DAY, county="371302")
    parts = []
    for n, start in enumerate(range(0, rows, CHUNK)):
        key = (pl.int_range(pl.len()) + start).cast(pl.String).str.zfill(10)  # unique across the file
        part = path.with_name(f"part{n:04d}.parquet")
        chunk.head(min(CHUNK, rows - start)).with_columns(
            key.alias("settlement_id"), key.alias(RAW_PREFIX + "settlement_id"),
            (pl.col(ROW_COLUMN) + start + 2).alias(ROW_COLUMN),
        ).write_parquet(part)
        parts.append(part)
    pl.scan_parquet(parts).sink_parquet(path)
    for p in parts:
        p.unlink()


def _hwm_mb() -> float:
    """This process's peak resident memory (VmHWM; unlike ru_maxrss it does not inherit the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(what: str, path: Path) -> dict:
    """Runs in a child process: one measurement, its wall time and this process's peak RSS."""
    import polars as pl

    if what != "read":
        from checks.run import run_suite
        from lowincome.feeds import FEEDS

        spec = FEEDS["medical_claims"]
    if what in ("old",):
        from checks.reference import evaluate_with_gx_pandas, _context

        _context()  # GX's ephemeral context: start-up, not suite time
    rss_start = _hwm_mb()
    t0 = time.perf_counter()
    if what == "read":
        rows = pl.read_parquet(path).height
        failed = None
    else:
        kw = {"evaluator": evaluate_with_gx_pandas} if what == "old" else {}
        v = run_suite(spec, path, file_name=FILE_NAME, extracted_on=DAY, previous_rows=None, **kw)
        if what == "store":
            from checks.record import _store

            _store(path.parent / "gx", [v])
        rows = int(v.frame["element_count"].max())
        failed = v.frame.filter(~v.frame["success"]).select("expectation", "unexpected_count").rows()
    seconds = time.perf_counter() - t0
    return {"what": what, "seconds": seconds, "rows": rows, "peak_rss_mb": _hwm_mb(), "start_rss_mb": rss_start,
            "failed": failed}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--old", action="store_true", help="also run the suite through GX's pandas engine (slow, memory-hungry)")
    p.add_argument("--keep", type=Path, help="folder to build the parsed file in (reused when it holds one of the same size)")
    p.add_argument("--measure", choices=["read", "suite", "store", "old"], help=argparse.SUPPRESS)
    p.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.path), ensure_ascii=False))
        return 0

    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_suites_"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"medical_claims_{args.rows}.parquet"
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.rows)
        print(f"built {args.rows:,} parsed rows in {time.perf_counter() - t0:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)")
    results = {}
    for what in ["read", "suite", "store"] + (["old"] if args.old else []):
        out = subprocess.run([sys.executable, __file__, "--measure", what, "--path", str(path)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        results[what] = json.loads(out.stdout.strip().splitlines()[-1])
    read = results["read"]["seconds"]
    print(f"\n{args.rows:,} rows of medical_claims, parsed Parquet {path.stat().st_size / 2**20:.0f} MiB")
    print(f"{'step':<8}{'seconds':>10}{'x read':>8}{'peak RSS MiB':>14}{'(start)':>9}")
    for what, r in results.items():
        print(f"{what:<8}{r['seconds']:>10.2f}{r['seconds'] / read:>8.1f}{r['peak_rss_mb']:>14.0f}{r['start_rss_mb']:>9.0f}")
    for what in ("suite", "old"):
        if what in results:
            print(f"{what}: failing expectations {results[what]['failed']}")
    if "old" in results and results["old"]["failed"] != results["suite"]["failed"]:
        print("WARNING: the GX pandas engine and the Polars evaluation disagree")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
