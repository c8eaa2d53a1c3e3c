"""Helpers for the stored-once audit history tests: the old per-run layout, and what a publication shows."""

from __future__ import annotations

import duckdb
import polars as pl

from lowincome.workstore import WorkStore


def per_run_rows(runs) -> pl.DataFrame:
    """What the old layout held and published: every run's rows with its run_id and as_of in front."""
    return pl.concat([rows.select(pl.lit(run).alias("run_id"), pl.lit(day).alias("as_of"), pl.all())
                      for run, day, rows in runs], how="diagonal_relaxed")


def published(store: WorkStore, load, table: str) -> pl.DataFrame:
    """`table` as `load` (e.g. `audit.load_deliveries`) puts it into a fresh database."""
    con = duckdb.connect()
    try:
        con.execute("CREATE SCHEMA audit")
        load(con, store)
        return pl.from_arrow(con.sql(f"SELECT * FROM {table}").to_arrow_table())
    finally:
        con.close()
