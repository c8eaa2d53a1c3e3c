"""Ingesting one feed for one as-of day: read, validate, de-duplicate, account for every row.

Per file the work is a pure function of (content, extraction date, code
version), so its validated rows are cached under the file's sha256 and a
nightly run re-reads only new or corrected files. Everything that depends on
the set of files (duplicates across deliveries, the newest snapshot) is
recomputed each run, which makes a run for day D a function of the files dated
on or before D: re-running a day or backfilling gives the same answer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import polars as pl

from .acceptance import load_acceptances
from .delivery import Delivery, county_problem, discover, sha256_of
from .errors import DeliveryError
from .feeds import FeedSpec
from .fingerprint import fingerprint
from .privacy import WITHHELD, format_words, known_names, mask_content_expr, mask_id_expr, mask_name_expr, redact
from .rules.policy import Policy, load_policy
from .reading import EXTRA_COLUMN, ROW_COLUMN, read_delivery
from .validation import RAW_PREFIX, REASONS, typed_columns, validate_rows

LINEAGE = ["source_file", "source_row", "file_sha256", "delivered_on", "file_county"]
FILE_INDEX = "_file_index"  # position of a file in delivery order; names and hashes are added back at the end


def code_fingerprint() -> str:
    """Hash of every file that shapes a file's validated rows (`fingerprint("ingest")`): a change rebuilds the cache."""
    return fingerprint("ingest")


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
    warnings: list[str] = field(default_factory=list)  # working-storage problems met and repaired (for the log)

    @property
    def totals(self) -> dict[str, int]:
        d = self.deliveries
        return {
            "files": d.height,
            "files_rejected": int((d["status"] == "rejected").sum()) if d.height else 0,
            "files_blocked": int((d["status"] == "blocked").sum()) if d.height else 0,
            "files_later": int((d["status"] == "later").sum()) if d.height else 0,
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
    # accepted | partly_quarantined | blocked (held back) | rejected | later (dated after the as-of day) | ignored (hidden)
    "status": pl.String,
    "message": pl.String,
    "rows_read": pl.Int64,
    "rows_accepted": pl.Int64,
    "rows_quarantined": pl.Int64,
}


def cached_file_path(work_dir: Path, feed: str, sha: str, extracted_on: date, county: str) -> Path:
    """Where the validated rows of one delivered file are cached (raw_* text, typed columns, reasons).

    The key holds everything the rows' validity depends on: content, extraction date, the file's
    county (rows of another county are quarantined) and the validating code.
    """
    return work_dir / "parsed" / feed / f"{sha}_{extracted_on:%Y%m%d}_{county}_{code_fingerprint()}.parquet"


def _cached(cache: Path, meta_path: Path, warnings: list[str]) -> tuple[pl.DataFrame, dict] | None:
    """A cache entry if it is whole (readable Parquet, readable meta, same row count); else None and a warning.

    Working storage is disposable: a truncated or half-written entry is rebuilt from the delivered file.
    """
    if not cache.exists() and not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or "format" not in meta or "rows" not in meta:
            raise ValueError("incomplete meta")
        frame = pl.read_parquet(cache)
        if frame.height != meta["rows"]:
            raise ValueError("row count differs from its meta")
    except Exception as exc:  # noqa: BLE001 (any damage means: rebuild)
        what = "row count differs from its meta" if "row count" in str(exc) else f"unreadable ({type(exc).__name__})"
        warnings.append(f"parsed cache {cache} is {what}: rebuilt from the delivered file")
        return None
    return frame, meta


_GENERIC_READ_FAILURE = "could not be read ({}): the file is rejected alone and every other delivery is used"


def _validated_file(delivery: Delivery, spec: FeedSpec, sha: str, work_dir: Path,
                    warnings: list[str]) -> tuple[pl.DataFrame, str, str | None, list[str]]:
    """Validated rows of one file (cached by content and county), its format, a file-level message if any, missing columns.

    Anything that goes wrong reading or validating this one file becomes a DeliveryError naming no
    cell value (library messages can quote rows); errors writing the cache are the warehouse's and propagate.
    """
    assert delivery.extracted_on is not None and delivery.county is not None
    cache = cached_file_path(work_dir, spec.name, sha, delivery.extracted_on, delivery.county)
    meta_path = cache.with_suffix(".json")
    hit = _cached(cache, meta_path, warnings)
    if hit is not None:
        frame, meta = hit
        return frame, meta["format"], meta.get("message"), meta.get("missing", [])
    try:
        result = read_delivery(delivery.path, spec)
        frame = validate_rows(result.frame, spec, delivery.extracted_on, delivery.county)
    except DeliveryError:
        raise
    except MemoryError:
        raise
    except OSError as exc:
        raise DeliveryError(f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 (one broken file must not stop the night)
        raise DeliveryError(_GENERIC_READ_FAILURE.format(type(exc).__name__)) from None
    message = None
    if result.missing_columns:
        missing = ", ".join(result.missing_columns)
        message = f"missing required column(s): {missing}; every row is quarantined"
        frame = frame.with_columns(
            pl.concat_list(pl.lit([f"file: missing required column(s) {missing}"]), pl.col(REASONS)).alias(REASONS)
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    frame.write_parquet(tmp)
    tmp.replace(cache)
    meta = {"format": result.encoding, "message": message, "missing": result.missing_columns, "rows": frame.height}
    tmp_meta = meta_path.with_name(f".{meta_path.name}.{os.getpid()}.tmp")
    tmp_meta.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    tmp_meta.replace(meta_path)  # written last: an entry without meta is incomplete and rebuilt
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


@lru_cache(maxsize=1)
def _bundled_policy() -> Policy:
    from .config import DEFAULT_POLICY

    return load_policy(DEFAULT_POLICY)


def _hold_back(frame: pl.DataFrame, reason: str) -> pl.DataFrame:
    """Quarantine every row of a held-back file with the reason it was held back (its good rows wait too)."""
    return frame.with_columns(pl.concat_list(pl.lit([reason]), pl.col(REASONS)).alias(REASONS))


@dataclass
class _Verdict:
    """What happens to one readable file as a whole, decided before its rows are split."""

    status: str | None = None  # blocked | rejected; None: its valid rows are used
    message: str | None = None  # for blocked / rejected files, and acceptances


def _still_in_use(spec: FeedSpec, county: str, in_use: dict[str, tuple[str, int]]) -> str:
    prev = in_use.get(county)
    if prev is None:
        return (f"no earlier snapshot of county {county} is in use: its {spec.name} data stays missing until a "
                "usable snapshot arrives")
    return f"the previous snapshot of county {county} ({prev[0]}) stays in use"


def _judge(spec: FeedSpec, d: Delivery, sha: str, frame: pl.DataFrame, message: str | None, blocking_share: float,
           shrink_share: float, in_use: dict[str, tuple[str, int]], acceptances: dict) -> _Verdict:
    """Hold back per feeds.md "Holding back a file (clarified)".

    Structural faults (a required column missing) hold back any file. A snapshot is held back when more
    than `blocking_share` of its rows fail, or when it has more than `shrink_share` fewer rows than the
    county's previous snapshot in use, unless the data team accepted this very content. An increment
    always contributes its valid rows, whatever share is bad: holding back nine valid death reports
    because a tenth has a typo keeps the deceased on the payroll.
    """
    rows = frame.height
    invalid = int((frame[REASONS].list.len() > 0).sum())
    if message is not None:
        return _Verdict("rejected", f"structural fault: {message}; the file is held back whole")
    if rows == 0:
        return _Verdict("rejected", "the file has a header but no data rows")
    if spec.kind != "snapshot":
        return _Verdict(None, None)
    share = invalid / rows
    if share > blocking_share:
        return _Verdict("blocked", f"snapshot held back: {share:.1%} of rows rejected ({invalid} of {rows}; threshold "
                                   f"{blocking_share:.0%}); " + _still_in_use(spec, d.county, in_use))
    prev = in_use.get(d.county)
    if prev is not None and prev[1] > 0:
        drop = 1 - rows / prev[1]
        if drop > shrink_share:
            accepted = acceptances.get((spec.name, d.file_name, sha))
            if accepted is not None:
                return _Verdict(None, f"accepted by {redact(accepted['by'])} on {str(accepted['accepted_at'])[:10]} despite a drop "
                                      f"of {drop:.1%} from {prev[0]} ({prev[1]} to {rows} rows; limit "
                                      f"{shrink_share:.0%})")
            return _Verdict("blocked", f"snapshot held back: {rows} rows, {drop:.1%} fewer than the {prev[1]} of the "
                                       f"previous snapshot (limit {shrink_share:.0%}; a half-copied file or an "
                                       f"interrupted export?); " + _still_in_use(spec, d.county, in_use)
                                       + f" until the data team accepts this file (lowincome accept-snapshot "
                                       f"{d.file_name} --by <name>)")
    return _Verdict(None, None)


def _use_message(spec: FeedSpec, row: dict, verdict_message: str | None, blocking_share: float) -> str | None:
    """The message of a file whose valid rows are used: what was quarantined, and that the rest is in use."""
    read, accepted, quarantined = row["rows_read"], row["rows_accepted"], row["rows_quarantined"]
    parts = [verdict_message] if verdict_message else []
    if quarantined:
        share = quarantined / read
        if spec.kind == "snapshot":
            parts.append(f"snapshot: {quarantined} of {read} rows quarantined ({share:.1%}, threshold "
                         f"{blocking_share:.0%}); its {accepted} valid rows are accepted")
        else:
            above = (f", above the {blocking_share:.0%} that would hold back a snapshot" if share > blocking_share else "")
            parts.append(f"increment: {quarantined} of {read} rows quarantined ({share:.1%}{above}); its {accepted} valid "
                         "rows are used (an increment's valid rows are always used)")
    return "; ".join(parts) or None


def ingest_feed(
    spec: FeedSpec, inbox: Path, as_of: date, work_dir: Path, blocking_share: float = DEFAULT_BLOCKING_SHARE,
    policy: Policy | None = None, today: date | None = None,
) -> FeedResult:
    """Read every delivery of `spec` dated on or before `as_of` and split rows into staging and quarantine.

    Every file of the feed's folder gets a row in `deliveries` (used, held back, rejected, left for a
    later run). A file named for a county that is not in GB/T 2260 or not served (`policy.served_counties`)
    is rejected unread; a row whose division code lies in another county is quarantined. What is held back
    follows `_judge`. `policy` defaults to the bundled policy file; `today` (Asia/Shanghai) to the real date.
    """
    policy = policy or _bundled_policy()
    acceptances, warnings = load_acceptances(work_dir)
    deliveries: list[dict] = []
    good_parts: list[pl.DataFrame] = []  # accepted so far: lineage + typed columns only (memory)
    bad_parts: list[pl.DataFrame] = []  # rejected rows, with their raw text for the quarantine
    files: list[DeliveredFile] = []
    names: list[str] = []  # accepted-row files in delivery order (FILE_INDEX → name, sha256)
    shas: list[str] = []
    verdicts: dict[str, _Verdict] = {}
    in_use: dict[str, tuple[str, int]] = {}  # county → (file name, rows) of the snapshot in use so far
    typed = typed_columns(spec)
    for d in discover(inbox, spec.name, as_of, today):
        row = {"feed": spec.name, "file_name": d.file_name, "county": d.county, "extracted_on": d.extracted_on,
               "sha256": None, "size_bytes": d.size, "format": d.extension.lstrip(".") or None,
               "status": d.status if d.problem else "rejected", "message": d.problem,
               "rows_read": 0, "rows_accepted": 0, "rows_quarantined": 0}
        deliveries.append(row)
        if d.problem:
            continue
        problem = county_problem(d.county, policy.served_counties, policy.path)
        if problem:
            row["message"] = problem
            continue
        try:
            sha = sha256_of(d.path)
            row["sha256"] = sha
            frame, fmt, message, missing = _validated_file(d, spec, sha, work_dir, warnings)
        except DeliveryError as exc:
            row["message"] = redact(str(exc))
            continue
        except OSError as exc:  # the file vanished, was swapped for a link, or is not readable by the pipeline
            if row["sha256"] is not None:
                raise  # the hash was read: this is the working storage failing, not the file
            row["message"] = f"cannot be read: {exc.strerror or type(exc).__name__}"
            continue
        row["format"] = fmt
        files.append(DeliveredFile(d.file_name, d.county, d.extracted_on, sha,
                                   cached_file_path(work_dir, spec.name, sha, d.extracted_on, d.county), frame.height, missing))
        row["rows_read"] = frame.height
        shrink = float(policy.in_force(d.county, as_of)["snapshot_shrink_share"])
        verdict = _judge(spec, d, sha, frame, message, blocking_share, shrink, in_use, acceptances)
        verdicts[d.file_name] = verdict
        row["message"] = verdict.message
        if verdict.status is not None:
            row["status"] = verdict.status
            if verdict.status == "blocked":
                frame = _hold_back(frame, verdict.message)
        elif spec.kind == "snapshot":
            in_use[d.county] = (d.file_name, frame.height)
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
    for row in deliveries:
        verdict = verdicts.get(row["file_name"])
        if verdict is None:  # not read: its status and message were set above
            continue
        row["rows_accepted"] = int(accepted.get(row["file_name"], 0))
        row["rows_quarantined"] = row["rows_read"] - row["rows_accepted"]
        if verdict.status is None:
            row["status"] = "accepted" if row["rows_quarantined"] == 0 else "partly_quarantined"
            row["message"] = _use_message(spec, row, verdict.message, blocking_share)
    return FeedResult(spec.name, staging, quarantine, pl.DataFrame(deliveries, schema=_DELIVERY_SCHEMA), files, warnings)


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
