"""CPU seconds per ingestion step of one feed's files, next to a plain read of the same files.

    .venv/bin/python benchmarks/bench_ingest_passes.py --inbox DIR [--feed medical_claims] [--as-of 2026-10-31]

Runs what the ingest asset runs for one feed (`ingest_feed`, then `validate_files`) on the files of
`DIR/<feed>/`, cold (fresh working storage) and warm (the same storage again), and prints process
CPU seconds (user + system of every thread) of the whole and of each step it can name: a step is a
function of the ingestion modules, timed where it is called (nested steps count in their caller
too). Steps that overlap in threads (a file's slices validated two at a time, its parsed cache written
while its parts and suite are built) are each charged the process's CPU while they run: there, compare
the whole, not the steps. Great Expectations is imported before the clock starts: its import is a fixed cost of a night,
not of a file. The floor is a plain DuckDB read of every file, all columns as text (what
`bench_real_path.py` calls the plain read), and a Polars read of the CSV bytes as text.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import resource
import shutil
import tempfile
import time
from collections import defaultdict
from datetime import date
from pathlib import Path


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


STEPS = [  # (module, function): whichever of them exist in this version of the code
    ("lowincome.ingest", "read_delivery"),
    ("lowincome.ingest", "validate_rows"),
    ("lowincome.ingest", "_validated"),
    ("lowincome.ingest", "_validate_in_slices"),
    ("lowincome.ingest", "_parsed_file"),
    ("lowincome.ingest", "file_parts"),
    ("lowincome.ingest", "resolve_duplicates"),
    ("lowincome.ingest", "held_back_part"),
    ("lowincome.parts", "quarantine_rows"),
    ("lowincome.parts", "write_atomic"),
    ("lowincome.parts", "_later_copies"),
    ("lowincome.parts", "file_names"),
    ("checks.record", "_validate_one"),
    ("checks.record", "_store"),
    ("checks.record", "SuitePass.__call__"),
    ("checks.run", "evaluate_suite"),
    ("checks.run", "_delivered_names"),
]


def instrument(totals: dict) -> None:
    for module_name, name in STEPS:
        module = importlib.import_module(module_name)
        fn = getattr(module, name, None)
        if fn is None or getattr(fn, "_timed", False):
            continue

        @functools.wraps(fn)
        def timed(*args, __fn=fn, __key=f"{module_name.split('.')[-1]}.{name}", **kwargs):
            c = _cpu()
            try:
                return __fn(*args, **kwargs)
            finally:
                totals[__key] += _cpu() - c

        timed._timed = True
        setattr(module, name, timed)


def plain_read(files: list[Path]) -> tuple[float, float]:
    """(CPU seconds, CPU seconds): DuckDB as `bench_real_path.plain_read` reads them, and Polars reading every file.

    As there, what DuckDB cannot read offline (GB18030 text, .xlsx) is read by Polars in the DuckDB figure too.
    """
    import duckdb
    import polars as pl

    def by_polars(f: Path) -> None:
        if f.suffix == ".xlsx":
            frame = pl.read_excel(f, sheet_id=1, engine="calamine", infer_schema_length=0)
        elif f.suffix == ".parquet":
            frame = pl.read_parquet(f)
        else:
            data = f.read_bytes()
            try:
                data.decode("utf-8")
                frame = pl.read_csv(data, infer_schema=False)
            except UnicodeDecodeError:
                frame = pl.read_csv(data, encoding="gb18030", infer_schema=False)
        frame.select(pl.all().cast(pl.String).str.len_bytes().max())

    con = duckdb.connect()
    c = _cpu()
    for f in files:
        try:
            if f.suffix == ".csv":
                con.execute("SELECT count(*), max(length(COLUMNS(*))) FROM read_csv(?, all_varchar=true, quote='\"', "
                            "header=true, delim=',')", [str(f)]).fetchone()
            elif f.suffix == ".parquet":
                con.execute("SELECT count(*), max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM read_parquet(?)", [str(f)]).fetchone()
            else:
                by_polars(f)
        except duckdb.Error:  # GB18030 text
            by_polars(f)
    duck = _cpu() - c
    con.close()
    c = _cpu()
    for f in files:
        by_polars(f)
    return duck, _cpu() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--inbox", required=True, type=Path)
    ap.add_argument("--feed", default="medical_claims")
    ap.add_argument("--as-of", default="2026-10-31", type=date.fromisoformat)
    ap.add_argument("--work", type=Path, help="working storage (default: a temporary folder)")
    args = ap.parse_args()

    import great_expectations  # noqa: F401 (a fixed cost of the night, not of a file)
    import polars as pl

    from checks.record import validate_files
    from lowincome.feeds import FEEDS

    spec = FEEDS[args.feed]
    files = sorted(p for p in (args.inbox / args.feed).iterdir() if p.is_file() and not p.name.startswith("."))
    duck, polars_read = plain_read(files)
    print(f"{len(files)} file(s) of {args.feed}: plain read, all text: DuckDB (Polars where it cannot) {duck:.2f} s CPU, Polars alone {polars_read:.2f} s CPU")
    totals: dict[str, float] = defaultdict(float)
    instrument(totals)
    import lowincome.ingest as ingest

    work = args.work or Path(tempfile.mkdtemp(prefix="bench_passes_"))
    try:
        for label in ("cold", "warm"):
            totals.clear()
            c, t = _cpu(), time.perf_counter()
            try:  # the suite in the same pass, as the ingest asset runs it, where this version has it
                from checks.record import SuitePass
                extra = {"on_file": SuitePass(spec, work)}
            except ImportError:
                extra = {}
            result = ingest.ingest_feed(spec, args.inbox, args.as_of, work, blocking_share=1.0, **extra)
            mid = _cpu()
            results = validate_files(spec, result.files, work)
            end = _cpu()
            tot = result.totals
            print(f"\n{label}: {end - c:.2f} s CPU ({time.perf_counter() - t:.1f} s wall) = ingest_feed {mid - c:.2f} "
                  f"+ validate_files {end - mid:.2f}; {tot['rows_read']:,} rows read, {tot['rows_accepted']:,} accepted, "
                  f"{tot['rows_quarantined']:,} quarantined; {results.height} expectation results; "
                  f"{(end - c) / duck:.1f}× the DuckDB plain read; peak RSS so far "
                  f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
            for key, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
                print(f"  {key:32s} {seconds:7.2f} s CPU")
            del result, results
            pl.DataFrame()  # keep polars imported
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
