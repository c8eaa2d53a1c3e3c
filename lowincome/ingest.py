"""Ingesting one feed for one as-of day: read, validate, de-duplicate, account for every row.

Per file the work is a pure function of (content, extraction date, code
version), so its validated rows are cached under the file's sha256 and a
nightly run re-reads only new or corrected files. Everything that depends on
the set of files (duplicates across deliveries, the newest snapshot) is
recomputed each run, which makes a run for day D a function of the files dated
on or before D: re-running a day or backfilling gives the same answer.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import polars as pl

from .delivery import Delivery, discover, sha256_of
from .errors import DeliveryError
from .feeds import FeedSpec
from .privacy import WITHHELD, format_words, known_names, mask_content_expr, mask_id_expr, mask_name_expr, redact
from .reading import EXTRA_COLUMN, ROW_COLUMN, read_delivery
from .validation import RAW_PREFIX, REASONS, typed_columns, validate_rows

LINEAGE = ["source_file", "source_row", "file_sha256", "delivered_on", "file_county"]
FILE_INDEX = "_file_index"  # position of a file in delivery order; names and hashes are added back at the end
_CODE_FILES = ("feeds.py", "identity.py", "parsing.py", "reading.py", "validation.py")


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the code that decides row validity: a change invalidates the per-file cache."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


@dataclass
class DeliveredFile:
    """One readable file as validated row by row, before cross-file duplicates and blocking."""

    file_name: str
    county: str
    extracted_on: date
    sha256: str
    cache: Path  # validate_rows output (raw_* text, typed columns, reasons), cached as Parquet
    rows: int
    missing_columns: list[str]  # headers of required columns the file lacks

    @property
    def frame(self) -> pl.DataFrame:
        """Read on demand: a feed's files are not all held in memory at once."""
        return pl.read_parquet(self.cache)


@dataclass
class FeedResult:
    feed: str
    staging: pl.DataFrame  # accepted, typed, identified rows with lineage
    quarantine: pl.DataFrame  # one row per rejected row
    deliveries: pl.DataFrame  # one row per file seen
    files: list[DeliveredFile] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, int]:
        d = self.deliveries
        return {
            "files": d.height,
            "files_rejected": int((d["status"] == "rejected").sum()) if d.height else 0,
            "files_blocked": int((d["status"] == "blocked").sum()) if d.height else 0,
            "rows_read": int(d["rows_read"].sum()) if d.height else 0,
            "rows_accepted": int(d["rows_accepted"].sum()) if d.height else 0,
            "rows_quarantined": int(d["rows_quarantined"].sum()) if d.height else 0,
        }


_DELIVERY_SCHEMA = {
    "feed": pl.String,
    "file_name": pl.String,
    "county": pl.String,
    "extracted_on": pl.Date,
    "sha256": pl.String,
    "size_bytes": pl.Int64,
    "format": pl.String,
    "status": pl.String,  # accepted | partly_quarantined | blocked | rejected
    "message": pl.String,
    "rows_read": pl.Int64,
    "rows_accepted": pl.Int64,
    "rows_quarantined": pl.Int64,
}


def cached_file_path(work_dir: Path, feed: str, sha: str, extracted_on: date) -> Path:
    """Where the validated rows of one delivered file are cached (raw_* text, typed columns, reasons)."""
    return work_dir / "parsed" / feed / f"{sha}_{extracted_on:%Y%m%d}_{code_fingerprint()}.parquet"


def _validated_file(delivery: Delivery, spec: FeedSpec, sha: str, work_dir: Path) -> tuple[pl.DataFrame, str, str | None, list[str]]:
    """Validated rows of one file (cached by content), its format, a file-level message if any, missing columns."""
    assert delivery.extracted_on is not None
    cache = cached_file_path(work_dir, spec.name, sha, delivery.extracted_on)
    cache_dir = cache.parent
    meta_path = cache.with_suffix(".json")
    if cache.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return pl.read_parquet(cache), meta["format"], meta["message"], meta.get("missing", [])
    result = read_delivery(delivery.path, spec)
    frame = validate_rows(result.frame, spec, delivery.extracted_on)
    message = None
    if result.missing_columns:
        missing = ", ".join(result.missing_columns)
        message = f"missing required column(s): {missing}; every row is quarantined"
        frame = frame.with_columns(
            pl.concat_list(pl.lit([f"file: missing required column(s) {missing}"]), pl.col(REASONS)).alias(REASONS)
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    frame.write_parquet(tmp)
    tmp.replace(cache)
    meta_path.write_text(json.dumps({"format": result.encoding, "message": message, "missing": result.missing_columns}))
    return frame, result.encoding, message, list(result.missing_columns)


def _split_later_copies(good: pl.DataFrame, spec: FeedSpec, names: list[str]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(rows kept, later copies with a reason naming the row that was kept).

    `good` holds the accepted rows of every file in delivery order (oldest file date, then file
    name, then row), so the first occurrence of a key is the one kept. Increments: the key is
    unique across all deliveries (a re-delivered settlement is the same settlement). Snapshots:
    unique within one file. Only the key columns are compared, so this stays cheap on tens of
    millions of rows.
    """
    if spec.unique_key:
        key, scope = list(spec.unique_key), "already delivered in"
    elif spec.snapshot_key:
        key, scope = [FILE_INDEX, *spec.snapshot_key], "duplicate of"
    else:
        return good, good.clear()
    later = ~pl.struct(key).is_first_distinct()
    mask = good.select(later).to_series()
    if not mask.any():
        return good, good.clear()
    copies = good.filter(mask)
    good = good.filter(~mask)
    firsts = good.join(copies.select(key).unique(), on=key, how="semi").select(
        *key, pl.col(FILE_INDEX).alias("_first_file"), pl.col("source_row").alias("_first_row"))
    headers = " and ".join(spec.column(k).header for k in key if k != FILE_INDEX)
    first_name = pl.col("_first_file").replace_strict(list(range(len(names))), names, return_dtype=pl.String)
    message = (
        pl.lit(f"duplicate: same {headers} as the row {scope} ")
        + pl.when(pl.col("_first_file") == pl.col(FILE_INDEX)).then(pl.lit("this file")).otherwise(first_name)
        + pl.lit(" row ")
        + pl.col("_first_row").cast(pl.String)
    )
    copies = copies.join(firsts, on=key, how="left").with_columns(
        pl.col(REASONS).list.concat(pl.concat_list(message)).alias(REASONS)
    ).drop("_first_file", "_first_row")
    return good, copies


def _with_file_lineage(rows: pl.DataFrame, names: list[str], shas: list[str]) -> pl.DataFrame:
    idx = list(range(len(names)))
    return rows.with_columns(
        pl.col(FILE_INDEX).replace_strict(idx, names, return_dtype=pl.String).alias("source_file"),
        pl.col(FILE_INDEX).replace_strict(idx, shas, return_dtype=pl.String).alias("file_sha256"),
    ).drop(FILE_INDEX)


def _with_raw_text(rows: pl.DataFrame, files: list[DeliveredFile]) -> pl.DataFrame:
    """Bring back the delivered text of rows found to be duplicates (only typed columns were kept)."""
    by_name = {f.file_name: f for f in files}
    parts = []
    for (name,), keyed in rows.partition_by("source_file", as_dict=True).items():
        raw = pl.read_parquet(by_name[name].cache).select(
            pl.col(ROW_COLUMN).alias("source_row"), pl.col(f"^{RAW_PREFIX}.*$"), pl.col(EXTRA_COLUMN))
        parts.append(keyed.join(raw, on="source_row", how="left"))
    return pl.concat(parts, how="diagonal_relaxed")


def _record_json(spec: FeedSpec, masked: bool, names: list[str] | tuple[str, ...] = (), *, by_content: bool = True) -> pl.Expr:
    """The delivered row as JSON: as delivered (restricted), or masked for analysts.

    Masked: personal columns by column (ID numbers keep the county, names the surname), free text
    withheld, code columns whose value is not a code withheld, and then the record as a whole by
    content, for ID shapes and the names known from the file (one pass over the JSON text with one
    automaton; per field it costs several times more), unless the caller does that itself
    (`by_content=False`): a shifted row puts an ID or a name anywhere.
    """
    fields = []
    for c in spec.columns:
        raw = pl.col(RAW_PREFIX + c.name)
        if masked:
            blank = raw.is_null() | (raw.str.strip_chars() == "")
            if c.personal:
                raw = mask_id_expr(raw) if c.kind in ("id", "cert_id") else mask_name_expr(raw)
            elif c.free_text:
                raw = pl.when(blank).then(raw).otherwise(pl.lit(WITHHELD))
            elif c.publish_pattern:
                ok = raw.str.strip_chars().str.contains(f"(?i)^(?:{c.publish_pattern})$")
                raw = pl.when(blank | ok).then(raw).otherwise(pl.lit(WITHHELD))
        fields.append(raw.alias(c.header))
    record = pl.struct(fields).struct.json_encode()
    return mask_content_expr(record, names, format_words(spec)) if masked and by_content else record


def _file_names(spec: FeedSpec, delivered: DeliveredFile | None) -> list[str]:
    """Names known from one delivered file: its 姓名 (and caseworker) values, read from the parsed cache."""
    columns = [RAW_PREFIX + c.name for c in spec.columns if c.personal and c.kind == "text"]
    if delivered is None or not columns:
        return []
    values = (pl.read_parquet(delivered.cache, columns=columns).unpivot()
              .select(pl.col("value").str.strip_chars(" \t\r\n\u3000\u00a0")).drop_nulls().unique()["value"])
    return known_names(values.to_list(), exclude=format_words(spec))


_SEP = "\x1f"  # joins reasons and record for one masking pass; never part of a name


def _quarantine_rows(spec: FeedSpec, bad: pl.DataFrame, files: list[DeliveredFile]) -> pl.DataFrame:
    """One row per rejected row; reasons and the analysts' record masked by content, per delivered file.

    Reasons quote values of enum, date and money columns; after a shifted row those can be an ID
    number or a name. Both texts of a row are masked in one pass (one automaton per file).
    """
    by_name = {f.file_name: f for f in files}
    keep = format_words(spec)
    parts = []
    for (file_name,), rows in bad.partition_by("source_file", as_dict=True, maintain_order=True).items():
        names = _file_names(spec, by_name.get(file_name))
        both = mask_content_expr(
            pl.concat_str([pl.col(REASONS).list.join("; "), _record_json(spec, masked=True, by_content=False)], separator=_SEP),
            names, keep,
        ).str.splitn(_SEP, 2)
        # computed once as a column (eager Polars does not share sub-expressions), then taken apart
        rows = rows.with_columns(both.alias("_masked"))
        parts.append(rows.select(
            pl.lit(spec.name).alias("feed"),
            "source_file",
            "source_row",
            "file_sha256",
            "delivered_on",
            pl.col("_masked").struct.field("field_0").alias("reasons"),
            pl.col(REASONS).list.len().cast(pl.Int32).alias("reason_count"),
            pl.col("_masked").struct.field("field_1").alias("record_masked"),
            _record_json(spec, masked=False).alias("record"),
            pl.col(EXTRA_COLUMN).alias("extra_columns"),
        ))
    return pl.concat(parts, how="vertical_relaxed").sort("delivered_on", "source_file", "source_row")


DEFAULT_BLOCKING_SHARE = 0.05


def _hold_back(frame: pl.DataFrame, share: float, threshold: float) -> pl.DataFrame:
    """Quarantine every row of a file that fails too often: its good rows are not trusted either."""
    reason = (
        f"file blocked: {share:.1%} of its rows fail validation (threshold {threshold:.0%}); "
        "the last good data of this feed stays in use"
    )
    return frame.with_columns(pl.concat_list(pl.lit([reason]), pl.col(REASONS)).alias(REASONS))


def ingest_feed(
    spec: FeedSpec, inbox: Path, as_of: date, work_dir: Path, blocking_share: float = DEFAULT_BLOCKING_SHARE
) -> FeedResult:
    """Read every delivery of `spec` dated on or before `as_of` and split rows into staging and quarantine.

    A file that lacks a required column, or whose share of invalid rows
    exceeds `blocking_share`, is blocked: all its rows are quarantined, so for
    a snapshot feed the previous snapshot stays the newest one in use.
    """
    deliveries: list[dict] = []
    good_parts: list[pl.DataFrame] = []  # accepted so far: lineage + typed columns only (memory)
    bad_parts: list[pl.DataFrame] = []  # rejected rows, with their raw text for the quarantine
    files: list[DeliveredFile] = []
    names: list[str] = []  # accepted-row files in delivery order (FILE_INDEX → name, sha256)
    shas: list[str] = []
    typed = typed_columns(spec)
    for d in discover(inbox, spec.name, as_of):
        row = {"feed": spec.name, "file_name": d.file_name, "county": d.county, "extracted_on": d.extracted_on,
               "sha256": None, "size_bytes": d.path.stat().st_size, "format": d.extension.lstrip("."),
               "status": "rejected", "message": d.problem, "rows_read": 0, "rows_accepted": 0, "rows_quarantined": 0}
        deliveries.append(row)
        if d.problem:
            continue
        sha = sha256_of(d.path)
        row["sha256"] = sha
        try:
            frame, fmt, message, missing = _validated_file(d, spec, sha, work_dir)
        except DeliveryError as exc:
            row["message"] = redact(str(exc))
            continue
        row["format"], row["message"] = fmt, message
        files.append(DeliveredFile(d.file_name, d.county, d.extracted_on, sha,
                                   cached_file_path(work_dir, spec.name, sha, d.extracted_on), frame.height, missing))
        row["rows_read"] = frame.height
        invalid = int((frame[REASONS].list.len() > 0).sum())
        share = invalid / frame.height if frame.height else 0.0
        if message is None and share > blocking_share:
            frame = _hold_back(frame, share, blocking_share)
            row["message"] = (
                f"blocked: {invalid} of {frame.height} rows ({share:.1%}) fail validation, above the "
                f"{blocking_share:.0%} threshold; every row is quarantined and the feed's last good data stays in use"
            )
            row["status"] = "blocked"
        frame = frame.with_columns(
            pl.lit(d.file_name).alias("source_file"),
            pl.lit(sha).alias("file_sha256"),
            pl.lit(d.extracted_on, dtype=pl.Date).alias("delivered_on"),
            pl.lit(d.county).alias("file_county"),
        )
        ok = pl.col(REASONS).list.len() == 0
        good_parts.append(frame.filter(ok).select(
            pl.lit(len(names), dtype=pl.UInt32).alias(FILE_INDEX), "source_row", "delivered_on", "file_county", *typed, REASONS))
        bad_parts.append(frame.filter(~ok))
        names.append(d.file_name)
        shas.append(sha)
        del frame

    good = pl.concat(good_parts, how="diagonal_relaxed") if good_parts else None
    del good_parts
    if good is not None and good.height:
        good, duplicates = _split_later_copies(good, spec, names)
        if duplicates.height:
            bad_parts.append(_with_raw_text(_with_file_lineage(duplicates, names, shas), files))
    bad = pl.concat(bad_parts, how="diagonal_relaxed") if bad_parts else None
    del bad_parts

    staging = (_with_file_lineage(good, names, shas).select(LINEAGE + typed).with_columns(_latest_snapshot(spec))
               if good is not None and good.height else _empty_staging(spec))
    quarantine = _quarantine_rows(spec, bad, files) if bad is not None and bad.height else _empty_quarantine()
    accepted = dict(staging.group_by("source_file").len().iter_rows()) if staging.height else {}
    read = set(names)
    for row in deliveries:
        if row["file_name"] not in read:  # unreadable: rejected with its message above
            continue
        row["rows_accepted"] = int(accepted.get(row["file_name"], 0))
        row["rows_quarantined"] = row["rows_read"] - row["rows_accepted"]
        if row["message"] and row["message"].startswith("missing required"):
            row["status"] = "rejected"
        elif row["status"] == "blocked":
            pass
        elif row["rows_read"] == 0:
            row["status"], row["message"] = "rejected", "the file has a header but no data rows"
        else:
            row["status"] = "accepted" if row["rows_quarantined"] == 0 else "partly_quarantined"
    return FeedResult(spec.name, staging, quarantine, pl.DataFrame(deliveries, schema=_DELIVERY_SCHEMA), files)


def _latest_snapshot(spec: FeedSpec) -> pl.Expr:
    """Snapshot rows of the newest usable file per sending county; increments are always current."""
    if spec.kind != "snapshot":
        return pl.lit(True).alias("is_latest")
    order = pl.col("delivered_on").cast(pl.String) + pl.lit("|") + pl.col("source_file")
    return (order == order.max().over("file_county")).alias("is_latest")


def _empty_staging(spec: FeedSpec) -> pl.DataFrame:
    from .validation import validate_rows as _v  # typed schema from an empty frame

    empty_raw = pl.DataFrame({ROW_COLUMN: pl.Series([], dtype=pl.Int64), **{c.name: pl.Series([], dtype=pl.String) for c in spec.columns},
                              EXTRA_COLUMN: pl.Series([], dtype=pl.String)})
    typed = _v(empty_raw, spec, date.today()).rename({ROW_COLUMN: "source_row"})
    typed = typed.with_columns(
        pl.lit(None, dtype=pl.String).alias("source_file"),
        pl.lit(None, dtype=pl.String).alias("file_sha256"),
        pl.lit(None, dtype=pl.Date).alias("delivered_on"),
        pl.lit(None, dtype=pl.String).alias("file_county"),
    )
    return typed.select(LINEAGE + typed_columns(spec)).with_columns(pl.lit(True).alias("is_latest"))


def _empty_quarantine() -> pl.DataFrame:
    return pl.DataFrame(
        schema={"feed": pl.String, "source_file": pl.String, "source_row": pl.Int64, "file_sha256": pl.String,
                "delivered_on": pl.Date, "reasons": pl.String, "reason_count": pl.Int32, "record_masked": pl.String,
                "record": pl.String, "extra_columns": pl.String}
    )
