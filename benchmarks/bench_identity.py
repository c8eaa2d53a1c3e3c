"""Speed sanity check (not a test): normalise 5 million generated ID numbers with the Polars expression.

    .venv/bin/python benchmarks/bench_identity.py [rows]

The IDs are generated vectorised too (random area, birth date, sequence, with
the check character computed by the same expression), then roughly 10% are
spoiled the way deliveries spoil them: lowercase x, surrounding spaces,
legacy 15-digit form, a wrong check character, Excel scientific notation.
Expect a few seconds for 5 million rows.
"""

from __future__ import annotations

import sys
import time
from datetime import date

import numpy as np
import polars as pl

from lowincome.identity import _check_char_expr, normalize_id_expr


def generate(rows: int, seed: int = 20261031) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    areas = np.array(["371302", "371324", "110101", "440305", "510107", "650102", "370212", "610113"])
    start = date(1920, 1, 1).toordinal()
    births = rng.integers(start, date(2025, 12, 31).toordinal(), rows)
    frame = pl.DataFrame(
        {
            "area": areas[rng.integers(0, len(areas), rows)],
            "birth": pl.Series(births - date(1970, 1, 1).toordinal(), dtype=pl.Int32).cast(pl.Date),
            "seq": rng.integers(0, 1000, rows),
            "spoil": rng.integers(0, 100, rows),
        }
    )
    body = pl.col("area") + pl.col("birth").dt.strftime("%Y%m%d") + pl.col("seq").cast(pl.String).str.zfill(3)
    frame = frame.with_columns(body.alias("body")).with_columns(
        (pl.col("body") + _check_char_expr(pl.col("body"))).alias("id18")
    )
    spoiled = (
        pl.when(pl.col("spoil") == 0).then(pl.col("id18").str.to_lowercase())
        .when(pl.col("spoil") == 1).then(pl.lit("  ") + pl.col("id18") + pl.lit("\u3000"))
        .when((pl.col("spoil") == 2) & (pl.col("id18").str.slice(6, 2) == "19"))
        .then(pl.col("id18").str.slice(0, 6) + pl.col("id18").str.slice(8, 9))
        .when(pl.col("spoil") == 3).then(pl.col("id18").str.slice(0, 17) + pl.lit("0"))
        .when(pl.col("spoil") == 4).then(pl.lit("3.71302E+17"))
        .otherwise(pl.col("id18"))
    )
    return frame.select(spoiled.alias("raw"))


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 5_000_000
    t0 = time.perf_counter()
    frame = generate(rows)
    t1 = time.perf_counter()
    norm, problem = normalize_id_expr(pl.col("raw"), today=date(2026, 10, 31))
    out = frame.select(norm.alias("id_number"), problem.alias("problem"))
    t2 = time.perf_counter()
    print(f"generated {rows:,} IDs in {t1 - t0:.2f}s")
    print(f"normalised {rows:,} IDs in {t2 - t1:.2f}s ({rows / (t2 - t1):,.0f} rows/s)")
    print(out.group_by("problem").len().sort("len", descending=True))


if __name__ == "__main__":
    main()
