"""Turn the typed world into delivery files exactly as feeds.md describes them.

Snapshot feeds are cut at their delivery dates (rows enrolled later are not
yet there, statuses as they stood); increments are split by extraction date.
Each file gets its format, encoding, column order and occasional extra column
from a deterministic rotation, so every feed arrives in several shapes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from ..feeds import DEPARTMENT_FEEDS as FEEDS, FeedSpec
from .increments import MonthlyRows, increment_files
from .population import add_months, month_end
from .spoil import BAD_KINDS, bad_row_applicable, bad_value, cents_text, choose_rows, messy_options, messy_value

FORMATS = ("csv-utf8", "csv-bom", "csv-gb18030", "xlsx", "parquet")
XLSX_MAX_ROWS = 20_000  # departments export big extracts as CSV
CAT_LABELS = {1: "视力", 2: "听力", 3: "言语", 4: "肢体", 5: "智力", 6: "精神", 7: "多重"}
LVL_LABELS = {1: "一级", 2: "二级", 3: "三级", 4: "四级"}


def snapshot_dates(feed: str, end: date) -> list[date]:
    """Delivery dates of the snapshot feeds: roster monthly, certificates monthly, rural quarterly."""
    if feed == "civil_roster":
        return [month_end(add_months(end, k)) if k < 0 else end for k in (-2, -1, 0)]
    if feed == "disability_cert":
        return [month_end(add_months(end, -1)), end]
    return [month_end(add_months(end, -4)), month_end(add_months(end, -1))]


def roster_at(roster: pl.DataFrame, s: date) -> pl.DataFrame:
    stopped = pl.col("ended_true").is_not_null() & (pl.col("ended_true") <= s)
    return roster.filter(pl.col("enrolled_on") <= s).with_columns(
        status=pl.when(stopped).then(pl.lit("停保")).otherwise(pl.lit("在保")),
        ended_on=pl.when(stopped).then(pl.col("ended_true")),
        _file_date=pl.lit(s),
    )


def rural_at(rural: pl.DataFrame, s: date) -> pl.DataFrame:
    gone = pl.col("eliminated_true").is_not_null() & (pl.col("eliminated_true") <= s)
    monitored = pl.col("household_kind") == "监测户"
    return rural.filter(pl.col("identified_on") <= s).with_columns(
        risk_eliminated=pl.when(monitored).then(pl.when(gone).then(pl.lit("是")).otherwise(pl.lit("否"))),
        eliminated_on=pl.when(monitored & gone).then(pl.col("eliminated_true")),
        _file_date=pl.lit(s),
    )


def certs_at(certs: pl.DataFrame, s: date) -> pl.DataFrame:
    revoked = pl.col("revoked_on").is_not_null() & (pl.col("revoked_on") <= s)
    return certs.filter(pl.col("issued_on") <= s).with_columns(
        certificate_status=pl.when(revoked).then(pl.lit("注销")).when(pl.col("moved_out")).then(pl.lit("迁出")).otherwise(pl.lit("正常")),
        revoked_on=pl.when(revoked).then(pl.col("revoked_on")),
        disability_category=pl.col("cat").replace_strict(CAT_LABELS, return_dtype=pl.String),
        disability_level=pl.col("lvl").replace_strict(LVL_LABELS, return_dtype=pl.String),
        _file_date=pl.lit(s),
    )


def as_text(frame: pl.DataFrame, spec: FeedSpec) -> pl.DataFrame:
    """Canonical typed columns → the text a department writes (money from cents, ISO dates)."""
    exprs = []
    for col in spec.columns:
        c = pl.col(col.name)
        if col.name not in frame.columns:
            exprs.append(pl.lit(None, dtype=pl.String).alias(col.name))
        elif col.kind == "money":
            exprs.append(cents_text(c.cast(pl.Int64)).alias(col.name))
        elif frame.schema[col.name] == pl.Date:
            exprs.append(c.dt.strftime("%Y-%m-%d").alias(col.name))
        else:
            exprs.append(c.cast(pl.String).alias(col.name))
    extra = [c for c in ("status",) if c in frame.columns and c not in spec.by_name]
    return frame.select(*exprs, *extra)


@dataclass
class Written:
    feed: str
    file: str
    county: str
    extracted_on: date
    rows: int
    format: str


def write_file(frame: pl.DataFrame, spec: FeedSpec, path: Path, fmt: str, rng: np.random.Generator) -> None:
    """Write text columns under their Chinese headers, in the file's format and encoding."""
    headers = {c.name: c.header for c in spec.columns}
    out = frame.select([c.name for c in spec.columns if c.name in frame.columns]).rename(headers)
    if rng.random() < 0.3:  # columns may arrive in any order
        order = list(out.columns)
        rng.shuffle(order)
        out = out.select(order)
    if rng.random() < 0.15:  # and with columns the contract does not know
        out = out.with_columns(pl.Series("备注", rng.choice(["", "已核实", "系统导出"], out.height)))
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "xlsx":
        import xlsxwriter

        # a fixed creation time keeps the workbook byte-identical for the same seed
        with xlsxwriter.Workbook(str(path)) as wb:
            wb.set_properties({"created": datetime(2026, 1, 1)})
            out.write_excel(wb, worksheet="Sheet1", autofit=False, include_header=True)
    elif fmt == "parquet":
        out.write_parquet(path)
    else:
        encoding = {"csv-utf8": "utf-8", "csv-bom": "utf-8-sig", "csv-gb18030": "gb18030"}[fmt]
        _write_csv(out, path, encoding)


CSV_SLICE_ROWS = 100_000


def _write_csv(frame: pl.DataFrame, path: Path, encoding: str) -> None:
    """The CSV text of `frame` in `encoding`, written a slice of rows at a time.

    Why slices: the text of a multi-million-row file, as a Python string and again as encoded bytes,
    took more memory than the file's rows. Each field is quoted or not on its own, so the slices
    put together are the text of the whole frame; only the first carries the header (and the BOM).
    """
    with open(path, "wb") as fh:
        for start in range(0, max(frame.height, 1), CSV_SLICE_ROWS):
            text = frame.slice(start, CSV_SLICE_ROWS).write_csv(include_header=start == 0)
            fh.write(text.encode(encoding if start == 0 else encoding.removesuffix("-sig")))


def choose_format(feed_idx: int, county_idx: int, file_idx: int, rows: int) -> str:
    fmt = FORMATS[(feed_idx * 2 + county_idx + file_idx) % len(FORMATS)]
    if fmt == "xlsx" and rows > XLSX_MAX_ROWS:
        fmt = "csv-gb18030"
    return fmt


def ext_of(fmt: str) -> str:
    return "csv" if fmt.startswith("csv") else fmt


def spoil_file(text: pl.DataFrame, spec: FeedSpec, rng: np.random.Generator, *, file_name: str, extracted_on: date,
               bad_plan: list[tuple[str, str]], messy_share: float, previous_keys: list[str],
               bad_share: float) -> tuple[pl.DataFrame, list[dict], list[dict]]:
    """Plant bad rows (as many of `bad_plan` as the file's share allows) and messy-but-valid values."""
    n = text.height
    bad, messy = [], []
    taken: set[int] = set()
    capacity = int(n * bad_share)
    text = text.with_row_index("_r")
    for kind, col in bad_plan[:capacity]:
        ok = text.select(bad_row_applicable(kind, text, col)).to_series().fill_null(False).to_numpy()
        rows = choose_rows(rng, n, 1, taken | set(np.flatnonzero(~ok).tolist()) | {0})
        if not rows:
            continue
        r = rows[0]
        if kind in ("duplicate_settlement_id", "duplicate_payment_id"):
            # repeat a key delivered earlier: in an earlier file if there is one, else in this file
            source = previous_keys[int(rng.integers(len(previous_keys)))] if previous_keys else text[r - 1, col]
            if not previous_keys and (r - 1) in taken:
                continue
            value = pl.lit(source)
        else:
            later = (extracted_on + timedelta(days=10)).isoformat()
            value = bad_value(kind, col, text, later)
        text = text.with_columns(pl.when(pl.col("_r") == r).then(value).otherwise(pl.col(col)).alias(col))
        taken.add(r)
        bad.append({"feed": spec.name, "file": file_name, "row": r + 1, "kind": kind, "column": col})
    # messy but valid: a few percent of the remaining rows, one untidy value each
    options = messy_options(spec)
    k = max(int(n * messy_share), min(n - len(taken), len(options))) if options else 0
    rows = choose_rows(rng, n, k, taken)
    kinds = [options[i % len(options)] for i in range(len(rows))] if options else []
    rng.shuffle(kinds)
    for (kind, col) in sorted(set(kinds)):
        chosen = [r for r, kc in zip(rows, kinds) if kc == (kind, col)]
        codes = None
        if kind.startswith("coded_"):
            codes = {lab: num for lab, num in spec.column(col).codes}
        cond, value = messy_value(kind, col, codes)
        hit = pl.col("_r").is_in(chosen) & cond.fill_null(False)
        applied = text.filter(hit)["_r"].to_list()
        text = text.with_columns(pl.when(hit).then(value).otherwise(pl.col(col)).alias(col))
        messy += [{"feed": spec.name, "file": file_name, "row": r + 1, "kind": kind, "column": col} for r in applied]
    return text.drop("_r"), bad, messy


def quarterly_backlog(rows: pl.DataFrame, end: date) -> pl.DataFrame:
    """Older increments arrive as quarterly extracts, the last three months monthly (as departments catch up).

    Each quarter's rows go into the file of its latest month, so every row keeps a file date on or after
    its own month.
    """
    k = end.year * 12 + end.month - (pl.col("_file_date").dt.year().cast(pl.Int32) * 12 + pl.col("_file_date").dt.month().cast(pl.Int32))
    group = pl.when(k >= 3).then(k // 3 * 3).otherwise(k)
    return rows.with_columns(_file_date=pl.col("_file_date").max().over(group))


def deliveries(world: dict[str, pl.DataFrame], increments: dict[str, list[MonthlyRows]], planted: dict[str, pl.DataFrame],
               end: date, counties: list[str]) -> dict[str, list[tuple[str, date, Callable[[], pl.DataFrame]]]]:
    """(county, extraction date, typed rows on demand) per feed, one entry per delivery file.

    `world` holds the population-sized tables (rosters, rural households, certificates, deaths),
    `increments` the claims, payments and 人社 rows of each county month by month, and `planted`
    the planted rows of those three. A file's rows are made when it is written, one file at a
    time, so the generator never holds the whole history.
    """
    out: dict[str, list[tuple[str, date, Callable[[], pl.DataFrame]]]] = {f: [] for f in FEEDS}
    snapshot_of = {"civil_roster": ("roster", roster_at), "rural_monitoring": ("rural", rural_at), "disability_cert": ("certs", certs_at)}
    increment_of = {"medical_claims": "claims", "subsidy_payments": "payments", "hrss_benefits": "hrss"}
    for ci, county in enumerate(counties):
        for feed, (table, cut) in snapshot_of.items():
            rows = world[table].filter(pl.col("county") == county)
            for s in snapshot_dates(feed, end):
                out[feed].append((county, s, partial(cut, rows, s)))
        deaths = quarterly_backlog(world["deaths"].filter((pl.col("county") == county) & (pl.col("_file_date") <= end)), end)
        for (d,), part in sorted(deaths.partition_by("_file_date", as_dict=True).items()):
            out["death_records"].append((county, d, partial(lambda p: p, part)))
        for feed, table in increment_of.items():
            if table not in increments:
                continue
            mine = planted.get(table)
            mine = mine.filter(pl.col("county") == county) if mine is not None else None
            for d, make in increment_files(increments[table][ci], mine, end):
                out[feed].append((county, d, make))
    return out
