"""Ingestion speed on a large claims delivery: cold (parse + validate) and warm (cached by content).

    .venv/bin/python benchmarks/bench_ingest.py --rows 1000000 [--format csv|gb18030|parquet] [--samples]

Writes one synthetic medical_claims file of N rows (valid IDs, 1% planted
defects) with vectorised numpy/polars, then times `ingest_feed` on it.
`--samples` also times a whole nightly run over the bundled samples.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from lowincome.feeds import FEEDS
from lowincome.identity import CHECK_CHARS, WEIGHTS
from lowincome.ingest import ingest_feed

HEADERS = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用", "基本医保统筹支付",
           "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]


def claims_frame(rows: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    births = pl.Series((np.datetime64("1940-01-01") + rng.integers(0, 365 * 80, rows)).astype("datetime64[D]"))
    body = pl.lit("371302") + births.dt.strftime("%Y%m%d") + pl.Series(rng.integers(0, 1000, rows)).cast(pl.String).str.zfill(3)
    bodies = pl.select(body.alias("b")).to_series()
    digits = np.frombuffer("".join(bodies.to_list()).encode(), dtype=np.uint8).reshape(rows, 17).astype(np.int64) - 48
    checks = np.array(list(CHECK_CHARS))[(digits * np.array(WEIGHTS)).sum(axis=1) % 11]
    ids = bodies + pl.Series(checks)
    oop = np.round(rng.gamma(2.0, 300.0, rows), 2)
    basic = np.round(rng.gamma(2.0, 800.0, rows), 2)
    total = np.round(oop + basic, 2)
    days = (np.datetime64("2026-01-01") + rng.integers(0, 300, rows)).astype("datetime64[D]")
    frame = pl.DataFrame({
        "结算ID": pl.Series(np.arange(rows)).cast(pl.String).str.zfill(10),
        "身份证号": ids,
        "姓名": pl.Series(rng.choice(["张伟", "王芳", "李娜", "刘洋"], rows)),
        "参保地行政区划": "371302001001",
        "结算日期": pl.Series(days).dt.strftime("%Y-%m-%d"),
        "就诊类型": pl.Series(rng.choice(["住院", "普通门诊", "门诊慢特病"], rows)),
        "医疗总费用": pl.Series(total).round(2).cast(pl.String),
        "基本医保统筹支付": pl.Series(basic).round(2).cast(pl.String),
        "大病保险支付": "0",
        "医疗救助支付": "0",
        "个人自付": pl.Series(oop).round(2).cast(pl.String),
        "主要诊断编码": "J18.9",
    })
    bad = rng.random(rows) < 0.01  # 1% defects: a wrong check character
    return frame.with_columns(
        pl.when(pl.Series(bad)).then(pl.col("身份证号").str.slice(0, 17) + "0").otherwise(pl.col("身份证号")).alias("身份证号")
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["csv", "gb18030", "parquet"], default="csv")
    parser.add_argument("--samples", action="store_true", help="also time a nightly run on data_samples/inbox")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = root / "inbox" / "medical_claims"
        folder.mkdir(parents=True)
        t = time.perf_counter()
        frame = claims_frame(args.rows)
        ext = "parquet" if args.format == "parquet" else "csv"
        path = folder / f"medical_claims_371302_20261031.{ext}"
        if args.format == "parquet":
            frame.write_parquet(path)
        elif args.format == "gb18030":
            path.write_bytes(frame.write_csv().encode("gb18030"))
        else:
            frame.write_csv(path)
        print(f"wrote {args.rows:,} claim rows ({args.format}, {path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f}s")
        for label in ("cold", "warm (cached)"):
            t = time.perf_counter()
            result = ingest_feed(FEEDS["medical_claims"], root / "inbox", date(2026, 10, 31), root / "work", blocking_share=1.0)
            elapsed = time.perf_counter() - t
            totals = result.totals
            print(f"ingest {label}: {elapsed:.2f}s — {totals['rows_read']:,} read, {totals['rows_accepted']:,} accepted, "
                  f"{totals['rows_quarantined']:,} quarantined ({args.rows / elapsed / 1e6:.2f}M rows/s)")
    if args.samples:
        import os
        import subprocess
        import sys

        with tempfile.TemporaryDirectory() as wh:
            env = {**os.environ, "LOWINCOME_WAREHOUSE": wh}
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lowincome.cli", "run", "--as-of", "2026-10-31", "--quiet"], check=True, env=env)
            print(f"nightly run on the bundled samples (cold, including Dagster start-up): {time.perf_counter() - t:.1f}s")


if __name__ == "__main__":
    main()
