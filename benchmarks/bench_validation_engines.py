"""Would validating in DuckDB be cheaper? CPU seconds of reading and checking one claims file, Polars against DuckDB.

    .venv/bin/python benchmarks/bench_validation_engines.py [--rows 1240000] [--threads 2]

Issue 9's first night is CPU-bound, and most of its CPU is reading and validating the claims
(README, "Issue 9's targets"). DuckDB reads a CSV faster than Polars on the plain read, so the
question is whether moving validation into DuckDB would buy the CPU the targets need. This runs,
on one synthetic claims file (`bench_ingest.claims_frame`, written as UTF-8 CSV):

- Polars, as ingestion does it: `read_delivery`, then `_validate_in_slices` (the fast path for
  cells in canonical form, the full parse and reasons' words only where a check fails);
- DuckDB: `read_csv` with every column as text, then only the fast path's decisions in one SELECT
  (the ID's form, birth date and check character; the date's and amounts' form and value; the
  division code; the visit type) and no reasons at all. That is a lower bound of what a DuckDB
  validation would cost, not a port of it.

Process CPU (user + system, every thread) and wall time of each, best of `--repeat`.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import duckdb  # noqa: E402

from bench_ingest import claims_frame  # noqa: E402
from lowincome.delivery import Delivery  # noqa: E402
from lowincome.feeds import FEEDS  # noqa: E402
from lowincome.identity import CHECK_CHARS, WEIGHTS  # noqa: E402
from lowincome.ingest import _validate_in_slices  # noqa: E402
from lowincome.reading import read_delivery  # noqa: E402

EXTRACTED_ON = date(2026, 10, 31)
COUNTY = "371302"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(run, repeat: int) -> tuple[float, float]:
    """(wall, CPU) seconds of the fastest of `repeat` runs."""
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _cpu()
        run()
        got = (time.perf_counter() - wall, _cpu() - cpu)
        best = got if best is None or got[1] < best[1] else best
    return best


def _fast_checks_sql(table: str) -> str:
    """The fast path's decisions for claims, in DuckDB SQL (headers as delivered)."""
    check = "+".join(f"(ascii(substr(\"身份证号\", {i + 1}, 1)) - 48) * {w}" for i, w in enumerate(WEIGHTS))
    money = ", ".join(
        f"TRY_CAST(\"{h}\" AS DECIMAL(18, 2)) AS \"{h}_value\", "
        f"regexp_full_match(\"{h}\", '-?[0-9]+(\\.[0-9]{{1,2}})?') AS \"{h}_ok\""
        for h in ("医疗总费用", "基本医保统筹支付", "大病保险支付", "医疗救助支付", "个人自付"))
    visit = ", ".join(f"'{v}'" for v in FEEDS["medical_claims"].column("visit_type").values)
    return f"""
        SELECT "身份证号",
               regexp_full_match("身份证号", '[1-9][0-9]{{16}}[0-9X]')
               AND substr('{CHECK_CHARS}', (({check}) % 11) + 1, 1) = substr("身份证号", 18, 1)
               AND try_strptime(substr("身份证号", 7, 8), '%Y%m%d') BETWEEN DATE '1900-01-01' AND DATE '{EXTRACTED_ON}'
                   AS id_ok,
               try_strptime("结算日期", '%Y-%m-%d')::DATE AS settled_on,
               regexp_full_match("结算日期", '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}') AS settled_on_ok,
               {money},
               regexp_full_match("参保地行政区划", '[0-9]{{6}}|[0-9]{{12}}') AS division_ok,
               "就诊类型" IN ({visit}) AS visit_type_ok
        FROM {table}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_240_000, help="claim rows (default: one monthly file of the city tier)")
    parser.add_argument("--threads", type=int, default=2, help="DuckDB threads (Polars uses its own pool)")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    spec = FEEDS["medical_claims"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"medical_claims_{COUNTY}_{EXTRACTED_ON:%Y%m%d}.csv"
        claims_frame(args.rows).write_csv(path)
        delivery = Delivery("medical_claims", path, COUNTY, EXTRACTED_ON, status="ok")
        print(f"{args.rows:,} claim rows, {path.stat().st_size / 1e6:.0f} MB of UTF-8 CSV")

        held = {}
        polars_read = _timed(lambda: held.update(raw=read_delivery(path, spec).frame), args.repeat)
        polars_checks = _timed(lambda: _validate_in_slices(held["raw"], spec, delivery, None), args.repeat)
        held.clear()

        con = duckdb.connect()
        con.execute(f"SET threads = {args.threads}")
        duck_read = _timed(lambda: con.execute(
            f"CREATE OR REPLACE TABLE raw AS SELECT * FROM read_csv('{path}', all_varchar = true, header = true)"),
            args.repeat)
        duck_checks = _timed(lambda: con.execute(f"CREATE OR REPLACE TABLE checked AS {_fast_checks_sql('raw')}"),
                             args.repeat)
        con.close()

    print("| step | Polars (ingestion) wall / CPU | DuckDB (fast path only) wall / CPU |")
    print("|---|---:|---:|")
    for label, p, d in (("read as text", polars_read, duck_read), ("checks", polars_checks, duck_checks)):
        print(f"| {label} | {p[0]:.2f} / {p[1]:.2f} s | {d[0]:.2f} / {d[1]:.2f} s |")
    total_p, total_d = polars_read[1] + polars_checks[1], duck_read[1] + duck_checks[1]
    print(f"| total CPU | {total_p:.2f} s | {total_d:.2f} s ({total_d / total_p:.2f}× Polars) |")


if __name__ == "__main__":
    main()
