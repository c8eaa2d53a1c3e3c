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
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Callable

import polars as pl
import pyarrow.parquet as pq

from .acceptance import load_acceptances
from .delivery import Delivery, county_problem, discover, sha256_of
from .errors import DeliveryError
from .feeds import FeedSpec
from .fingerprint import fingerprint
from .privacy import redact
from .rules.policy import Policy, load_policy
from .reading import EXTRA_COLUMN, ROW_COLUMN, read_delivery
from .progress import FeedProgress
from .parts import (LINEAGE, QUARANTINE_SCHEMA, FileParts, HashIndex, InUse, file_parts, held_back_part, resolve_duplicates,
                    store_dir)
from .staging import Staging
from .temporaries import temporary_path, write_text_atomic
from .workstore import PARQUET_ZSTD_LEVEL, write_atomic
from .validation import FILE_COUNTY, RAW_PREFIX, REASONS, typed_columns, validate_rows


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
    parts: Staging  # what staging.<feed> is: the parts of the files in use, and the quarantine parts
    deliveries: pl.DataFrame  # one row per file seen
    work_dir: Path
    files: list[DeliveredFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # working-storage problems met and repaired (for the log)

    @property
    def staging(self) -> pl.DataFrame:
        """Accepted, typed, identified rows with lineage, in memory (tests and small tools; the pipeline reads parts)."""
        return self.parts.frame(self.work_dir)

    @property
    def quarantine(self) -> pl.DataFrame:
        """One row per rejected row, in memory (tests and small tools)."""
        frame = self.parts.quarantine_frame(self.work_dir)
        return frame if frame is not None else pl.DataFrame(schema=QUARANTINE_SCHEMA)

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


def _cached_meta(cache: Path, meta_path: Path, warnings: list[str]) -> dict | None:
    """The meta of a cache entry if the entry is whole (readable meta, Parquet of the same row count); else None.

    Working storage is disposable: a truncated or half-written entry is rebuilt from the delivered file.
    Only the Parquet footer is read, so a night does not load the rows of files it has already seen.
    """
    if not cache.exists() and not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or "format" not in meta or "rows" not in meta:
            raise ValueError("incomplete meta")
        rows = pq.ParquetFile(cache).metadata.num_rows
        if rows != meta["rows"]:
            raise ValueError("row count differs from its meta")
        if "invalid" not in meta:  # written by an earlier version: count once, keep
            meta["invalid"] = int((pl.read_parquet(cache, columns=[REASONS])[REASONS].list.len() > 0).sum())
            _write_meta(meta_path, meta)
    except Exception as exc:  # noqa: BLE001 (any damage means: rebuild)
        what = "row count differs from its meta" if "row count" in str(exc) else f"unreadable ({type(exc).__name__})"
        warnings.append(f"parsed cache {cache} is {what}: rebuilt from the delivered file")
        return None
    return meta


def _write_meta(meta_path: Path, meta: dict) -> None:
    write_text_atomic(meta_path, json.dumps(meta, ensure_ascii=False))


_GENERIC_READ_FAILURE = "could not be read ({}): the file is rejected alone and every other delivery is used"


def _parsed_file(delivery: Delivery, spec: FeedSpec, sha: str, work_dir: Path, warnings: list[str],
                 writer: ThreadPoolExecutor | None = None) -> tuple[Path, dict, pl.DataFrame | None, Future | None]:
    """(cache path, meta, frame if it was just parsed, the cache's write if it is still under way) of one file's
    validated rows, parsed once per content.

    Anything that goes wrong reading or validating this one file becomes a DeliveryError naming no
    cell value (library messages can quote rows); errors writing the cache are the warehouse's and propagate
    (from the returned write's `result()` when `writer` writes it in the background).

    Why in the background: nothing tonight reads the cache back (the parts and the suite are built from
    the frame in memory), and compressing a large file's cache took as long as its parts and suite. With
    `writer`, the caller builds those meanwhile and waits for the write before anything may read the cache.
    """
    assert delivery.extracted_on is not None and delivery.county is not None
    cache = cached_file_path(work_dir, spec.name, sha, delivery.extracted_on, delivery.county)
    meta_path = cache.with_suffix(".json")
    meta = _cached_meta(cache, meta_path, warnings)
    if meta is not None:
        return cache, meta, None, None
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(cache)
    try:
        result = read_delivery(delivery.path, spec)
        missing_reason = (f"file: missing required column(s) {', '.join(result.missing_columns)}"
                          if result.missing_columns else None)
        if result.frame.height <= VALIDATE_CHUNK_ROWS:
            frame = _validated(result.frame, spec, delivery, missing_reason)
        else:  # validated in slices: the peak is one slice's work, not the file's
            frame = _validate_in_slices(result.frame, spec, delivery, missing_reason)
    except DeliveryError:
        tmp.unlink(missing_ok=True)
        raise
    except MemoryError:
        tmp.unlink(missing_ok=True)
        raise
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DeliveryError(f"cannot be read: {exc.strerror or type(exc).__name__}") from None
    except Exception as exc:  # noqa: BLE001 (one broken file must not stop the night)
        tmp.unlink(missing_ok=True)
        raise DeliveryError(_GENERIC_READ_FAILURE.format(type(exc).__name__)) from None
    message = (f"missing required column(s): {', '.join(result.missing_columns)}; every row is quarantined"
               if result.missing_columns else None)
    encoding, missing_columns, untouched = result.encoding, list(result.missing_columns), result.untouched
    del result
    rows, invalid = frame.height, int((frame[REASONS].list.len() > 0).sum())
    meta = {"format": encoding, "message": message, "missing": missing_columns, "rows": rows, "invalid": invalid,
            "untouched": untouched}

    def store() -> None:
        try:  # read whole, never filtered: statistics only cost time (Polars writes it directly, no Arrow copy)
            frame.write_parquet(tmp, statistics=False, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL)
        except BaseException:  # the working storage, not the file (a full disk): propagates as the error it is
            tmp.unlink(missing_ok=True)
            raise
        tmp.replace(cache)
        _write_meta(meta_path, meta)  # written last: an entry without meta is incomplete and rebuilt

    if writer is None:
        store()
        return cache, meta, frame, None
    return cache, meta, frame, writer.submit(store)


VALIDATE_CHUNK_ROWS = 400_000  # rows validated at once: validation's intermediate columns cost several times the text
# Slices validated at once, each in its own thread. Polars runs one slice's expressions on about 1.4 cores
# (its phases are short and some are serial), so a second slice fills the idle time: a 3.7M-row claims file
# took 6.8 s instead of 9.5 s on 2 cores, the same CPU seconds and the same rows. The peak grows by one
# slice's intermediate columns.
VALIDATE_THREADS = min(2, os.cpu_count() or 1)


def _validated(raw: pl.DataFrame, spec: FeedSpec, delivery: Delivery, missing_reason: str | None) -> pl.DataFrame:
    frame = validate_rows(raw, spec, delivery.extracted_on, delivery.county)
    if missing_reason:
        frame = frame.with_columns(pl.concat_list(pl.lit([missing_reason]), pl.col(REASONS)).alias(REASONS))
    return frame


def _validate_in_slices(raw: pl.DataFrame, spec: FeedSpec, delivery: Delivery, missing_reason: str | None) -> pl.DataFrame:
    """Validate a large file slice by slice; the whole validated frame, assembled.

    Every check of `validate_rows` looks at one row, so slices give the same rows as the whole file.
    The peak is `VALIDATE_THREADS` slices' intermediate columns (the parse stages cost several times the text). The
    frame returned is what `validate_rows` gives for the whole file: its delivered text is `raw`
    itself (renamed, not copied), beside the typed columns and reasons of the slices, so the cache,
    the parts and the suite are all written from memory (nothing is read back).
    """
    def one(start: int) -> tuple[list[str], pl.DataFrame]:  # a slice's column order, its typed columns and reasons
        part = _validated(raw.slice(start, VALIDATE_CHUNK_ROWS), spec, delivery, missing_reason)
        return part.columns, part.drop([c for c in part.columns if c in (ROW_COLUMN, EXTRA_COLUMN, FILE_COUNTY)
                                        or c.startswith(RAW_PREFIX)])

    starts = range(0, raw.height, VALIDATE_CHUNK_ROWS)
    if VALIDATE_THREADS > 1:  # results come back in slice order whatever order the slices finish in
        with ThreadPoolExecutor(VALIDATE_THREADS, thread_name_prefix="validate") as pool:
            done = list(pool.map(one, starts))
    else:
        done = [one(start) for start in starts]
    order = done[0][0]
    kept = [typed for _, typed in done]  # the text is `raw`'s
    del done
    text = raw.rename({c.name: RAW_PREFIX + c.name for c in spec.columns})
    if delivery.county is not None:
        text = text.with_columns(pl.lit(delivery.county, dtype=pl.String).alias(FILE_COUNTY))
    typed = pl.concat(kept, how="vertical", rechunk=False)
    del kept
    return pl.concat([text, typed], how="horizontal").select(order)


DEFAULT_BLOCKING_SHARE = 0.05


@lru_cache(maxsize=1)
def _bundled_policy() -> Policy:
    from .config import DEFAULT_POLICY

    return load_policy(DEFAULT_POLICY)


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


def _judge(spec: FeedSpec, d: Delivery, sha: str, rows: int, invalid: int, message: str | None, blocking_share: float,
           shrink_share: float, in_use: dict[str, tuple[str, int]], acceptances: dict) -> _Verdict:
    """Hold back per feeds.md "Holding back a file (clarified)".

    Structural faults (a required column missing) hold back any file. A snapshot is held back when more
    than `blocking_share` of its rows fail, or when it has more than `shrink_share` fewer rows than the
    county's previous snapshot in use, unless the data team accepted this very content. An increment
    always contributes its valid rows, whatever share is bad: holding back nine valid death reports
    because a tenth has a typo keeps the deceased on the payroll.
    """
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


def _untouched_message(row: dict, untouched: int) -> str:
    """How a returned worklist's rows are accounted for: rows with an outcome are read, the others counted here."""
    return (f"核查清单 returned worklist: {row['rows_read'] + untouched} rows, {row['rows_read']} with a 核查结果 read as "
            f"outcomes ({row['rows_accepted']} accepted, {row['rows_quarantined']} quarantined), {untouched} untouched "
            "(核查结果, 核查说明, 核查日期, 核查人 all blank: not outcomes, not quarantined, not counted in rows_read)")


def empty_part(spec: FeedSpec, work_dir: Path) -> Path:
    """A zero-row part with the feed's staging columns and types, for a feed that has no part yet."""
    path = store_dir(work_dir, spec.name) / f"empty.{code_fingerprint()}.parquet"
    if not path.exists():
        empty_raw = pl.DataFrame({ROW_COLUMN: pl.Series([], dtype=pl.Int64),
                                  **{c.name: pl.Series([], dtype=pl.String) for c in spec.columns},
                                  EXTRA_COLUMN: pl.Series([], dtype=pl.String)})
        typed = validate_rows(empty_raw, spec, date.today()).rename({ROW_COLUMN: "source_row"}).with_columns(
            pl.lit(None, dtype=pl.String).alias("source_file"),
            pl.lit(None, dtype=pl.String).alias("file_sha256"),
            pl.lit(None, dtype=pl.Date).alias("delivered_on"),
            pl.lit(None, dtype=pl.String).alias("file_county"),
        )
        write_atomic(path, typed.select(LINEAGE + typed_columns(spec)))
    return path


def _connect_bounded():
    """A DuckDB connection within LOWINCOME_MEMORY_LIMIT, spilling into working storage."""
    import duckdb

    from .config import configure_duckdb, load_settings

    return configure_duckdb(duckdb.connect(), load_settings())


@dataclass(frozen=True)
class FeedPlan:
    """What a feed has to do as of a day: every file of its folder, and the counties with files to read.

    Small and picklable (paths and names, no rows): the plan is handed from the step that lists the
    inbox to one step per county and to the step that assembles the feed, which may run in other
    processes or on other machines sharing the warehouse folder. Every step works from the same list,
    so a file copied into the inbox while the night runs is left for the next night, never half-seen.
    """

    feed: str
    as_of: date
    found: tuple[Delivery, ...]  # every file of the feed's folder, in delivery order (`discover`)
    county_problems: tuple[str | None, ...]  # per found file: why its county cannot be used (unread), or None

    def readable(self, county: str | None = None) -> list[int]:
        """Indexes (in delivery order) of the files to read: all of them, or those of one county."""
        return [i for i, (d, problem) in enumerate(zip(self.found, self.county_problems))
                if not d.problem and problem is None and (county is None or d.county == county)]

    @property
    def counties(self) -> tuple[str, ...]:
        """Counties with at least one file to read, sorted: the unit of work of ingestion."""
        return tuple(sorted({self.found[i].county for i in self.readable()}))

    def readable_bytes(self) -> int:
        return sum(self.found[i].size or 0 for i in self.readable())

    def units(self, fanout_min_bytes: int) -> tuple[str | None, ...]:
        """The steps that read the feed: one per county, or one for every county (None) when the feed is small.

        A step out of process costs about half a CPU second before it reads a row (fork, Dagster's
        instance and plan, its event records); a county's few deaths or certificates are read in less.
        Below `fanout_min_bytes` of readable files the feed is read in one step, as `ingest_feed` does;
        from that size up each county is a step of its own, which is where the cores and machines help.
        """
        counties = self.counties
        if len(counties) > 1 and self.readable_bytes() < fanout_min_bytes:
            return (None,)
        return counties


@dataclass
class CountyResult:
    """What reading one county's files of a feed gave (or all files, `county` None): small and picklable.

    Everything here is per file or per county (the parsed cache, the file's parts, the verdict, which
    depends on the county's previous snapshot only); what depends on the feed's whole set of files
    (duplicates across deliveries, the staging manifest, the content-hash index) is done once per
    feed by `finish_feed`. `rows` and the lists carry each file's index in the plan, so the feed is
    assembled in delivery order whatever order the counties finished in.
    """

    feed: str
    county: str | None
    rows: dict[int, dict] = field(default_factory=dict)  # plan index -> provisional deliveries row
    verdicts: dict[int, _Verdict] = field(default_factory=dict)
    used: list[tuple[int, FileParts, Path]] = field(default_factory=list)  # files whose valid rows are used
    quarantine: list[tuple[int, str]] = field(default_factory=list)  # (plan index, quarantine part)
    files: list[tuple[int, DeliveredFile]] = field(default_factory=list)
    hashes: dict[str, list] = field(default_factory=dict)  # content hashes met (`HashIndex.seen`), saved by the feed
    untouched: dict[int, int] = field(default_factory=dict)  # plan index -> rows of a returned form left blank
    warnings: list[str] = field(default_factory=list)

    @property
    def rows_read(self) -> int:
        return sum(r["rows_read"] for r in self.rows.values())


def plan_feed(spec: FeedSpec, inbox: Path, as_of: date, policy: Policy | None = None,
              today: date | None = None) -> FeedPlan:
    """List the feed's deliveries as of `as_of` and which of them can be read (nothing is opened)."""
    policy = policy or _bundled_policy()
    found = tuple(discover(inbox, spec.name, as_of, today))
    problems = tuple(None if d.problem else county_problem(d.county, policy.served_counties, policy.path) for d in found)
    return FeedPlan(spec.name, as_of, found, problems)


def _unread_row(spec: FeedSpec, d: Delivery, county_problem_text: str | None) -> dict:
    return {"feed": spec.name, "file_name": d.file_name, "county": d.county, "extracted_on": d.extracted_on,
            "sha256": None, "size_bytes": d.size, "format": d.extension.lstrip(".") or None,
            "status": d.status if d.problem else "rejected", "message": d.problem or county_problem_text,
            "rows_read": 0, "rows_accepted": 0, "rows_quarantined": 0}


def ingest_county(
    spec: FeedSpec, plan: FeedPlan, county: str | None, work_dir: Path, blocking_share: float = DEFAULT_BLOCKING_SHARE,
    policy: Policy | None = None,
    on_file: Callable[[DeliveredFile, pl.DataFrame | None], None] | None = None,
) -> CountyResult:
    """Read, validate and split into parts the plan's files of one county (`county` None: every readable file).

    Safe to run for several counties of a feed at once, in separate processes: each file's parsed
    cache, parts and held-back part are named by its content, date, county and name, so two counties
    never write the same file, and the feed-wide files (content-hash index, duplicate markers, the
    empty part) are left to `finish_feed`. Each file gets one progress line, numbered by its place
    among the feed's files.
    """
    policy = policy or _bundled_policy()
    acceptances, warnings = load_acceptances(work_dir)
    out = CountyResult(spec.name, county, warnings=warnings)
    in_use: dict[str, tuple[str, int]] = {}  # county → (file name, rows) of the snapshot in use so far
    hashes = HashIndex(work_dir, spec.name)
    progress = FeedProgress(spec.name, len(plan.found), scope="feed" if county is None else f"county {county}")
    # one background thread writes each new file's parsed cache (see `_parsed_file`)
    writer = ThreadPoolExecutor(1, thread_name_prefix="parsed-cache")
    try:
        for i in plan.readable(county):
            d = plan.found[i]
            started = time.monotonic()
            row = _unread_row(spec, d, None)
            out.rows[i] = row
            try:
                sha = hashes.sha256(d.path, sha256_of)
                row["sha256"] = sha
                cache, meta, parsed, pending = _parsed_file(d, spec, sha, work_dir, warnings, writer)
            except DeliveryError as exc:
                row["message"] = redact(str(exc))
                continue
            except OSError as exc:  # the file vanished, was swapped for a link, or is not readable by the pipeline
                if row["sha256"] is not None:
                    raise  # the hash was read: this is the working storage failing, not the file
                row["message"] = f"cannot be read: {exc.strerror or type(exc).__name__}"
                continue
            row["format"] = meta["format"]
            rows, invalid = int(meta["rows"]), int(meta["invalid"])
            delivered = DeliveredFile(d.file_name, d.county, d.extracted_on, sha, cache, rows, list(meta.get("missing", [])))
            out.files.append((i, delivered))
            row["rows_read"] = rows
            parse_key = cache.stem
            try:  # while the parsed cache is written: nothing here reads it
                parts = file_parts(spec, work_dir, parse_key, d.file_name, sha, d.extracted_on, d.county, cache, parsed)
                if on_file is not None:
                    on_file(delivered, parsed)
            except BaseException:
                if pending is not None:
                    wait([pending])  # its own failure, if any, is secondary to this one
                raise
            if pending is not None:
                pending.result()  # the cache is complete before anything may read it (a held-back file's part does)
            progress.file_seen(d.file_name, rows, time.monotonic() - started, parsed_now=parsed is not None,
                               position=None if county is None else i + 1)
            del parsed
            shrink = float(policy.in_force(d.county, plan.as_of)["snapshot_shrink_share"])
            verdict = _judge(spec, d, sha, rows, invalid, meta.get("message"), blocking_share, shrink, in_use, acceptances)
            out.untouched[i] = int(meta.get("untouched", 0))  # rows of a returned form left blank (not records: see reading.py)
            if rows == 0 and out.untouched[i] and verdict.status == "rejected" and meta.get("message") is None:
                verdict = _Verdict(None, None)  # a returned worklist with nothing filled in: no outcome, nothing wrong
            out.verdicts[i] = verdict
            row["message"] = verdict.message
            if verdict.status == "blocked":
                row["status"] = verdict.status
                out.quarantine.append((i, held_back_part(spec, work_dir, parts, d.file_name, sha, d.extracted_on, d.county,
                                                         cache, verdict.message)))
                row["rows_accepted"] = 0
                continue
            if verdict.status is not None:  # rejected: a structural fault quarantines every row already
                row["status"] = verdict.status
            elif spec.kind == "snapshot":
                in_use[d.county] = (d.file_name, rows)
            out.quarantine.append((i, parts.quarantine))
            out.used.append((i, parts, cache))
            row["rows_accepted"] = parts.accepted_rows
    finally:
        writer.shutdown(wait=True)
    out.hashes = hashes.seen
    return out


def finish_feed(spec: FeedSpec, plan: FeedPlan, counties: list[CountyResult], work_dir: Path,
                blocking_share: float = DEFAULT_BLOCKING_SHARE, connect=None) -> FeedResult:
    """Assemble the feed from its counties' results: duplicates across deliveries, statuses, the staging manifest.

    The one step per feed that writes feed-wide working files: the content-hash index (the counties'
    hashes merged) and the duplicate markers. Duplicates are resolved over every county's files in
    delivery order, as one query: a unique key (发放流水号, 结算ID, ...) is unique across the feed, and a
    key repeated in another county's later file is a copy too (docs/decisions.md, fanout).
    """
    connect = connect or _connect_bounded
    results = sorted(counties, key=lambda r: (r.county is not None, r.county or ""))
    expected = set(plan.readable())
    covered = [i for r in results for i in r.rows]
    if sorted(covered) != sorted(expected):
        missing = sorted({plan.found[i].file_name for i in expected - set(covered)})
        raise ValueError(f"{spec.name}: the county results do not cover the feed's files exactly once "
                         f"(e.g. {missing[:1] or 'a file read twice'})")
    rows_by_index = {i: row for r in results for i, row in r.rows.items()}
    deliveries = [rows_by_index.get(i) or _unread_row(spec, d, problem)
                  for i, (d, problem) in enumerate(zip(plan.found, plan.county_problems))]
    verdicts = {i: v for r in results for i, v in r.verdicts.items()}
    untouched = {i: n for r in results for i, n in r.untouched.items()}
    quarantine = [part for _, part in sorted((q for r in results for q in r.quarantine), key=lambda q: q[0])]
    used = sorted((u for r in results for u in r.used), key=lambda u: u[0])
    files = [f for _, f in sorted((f for r in results for f in r.files), key=lambda f: f[0])]
    warnings = list(dict.fromkeys(w for r in results for w in r.warnings))  # the acceptances' warnings come once
    hashes = HashIndex(work_dir, spec.name)
    for r in results:
        hashes.seen.update(r.hashes)
    hashes.save()
    kept: list[str] = []
    latest: dict[str, str] = {}  # county → newest file with accepted rows (snapshots)
    total = 0
    if spec.unique_key and used:
        chain = [InUse(parts, plan.found[i].file_name, cache) for i, parts, cache in used]
        resolve_duplicates(spec, work_dir, chain, connect)
        by_name = {row["file_name"]: row for row in deliveries}
        for f in chain:
            by_name[f.file_name]["rows_accepted"] = f.kept_rows
            if f.kept_rows:
                kept.append(f.kept)
                total += f.kept_rows
            if f.duplicates:
                quarantine.append(f.duplicates)
    else:
        for i, parts, _ in used:
            if parts.accepted_rows:
                d = plan.found[i]
                kept.append(parts.accepted)
                total += parts.accepted_rows
                latest[d.county] = d.file_name
    for i, row in enumerate(deliveries):
        verdict = verdicts.get(i)
        if verdict is None:  # not read: its status and message were set above
            continue
        row["rows_quarantined"] = row["rows_read"] - row["rows_accepted"]
        if verdict.status is None:
            row["status"] = "accepted" if row["rows_quarantined"] == 0 else "partly_quarantined"
            row["message"] = _use_message(spec, row, verdict.message, blocking_share)
        if untouched.get(i):
            row["message"] = "; ".join(m for m in (_untouched_message(row, untouched[i]), row["message"]) if m)
    staging = Staging(
        spec.name, spec.kind == "snapshot", str(empty_part(spec, work_dir).relative_to(work_dir)), tuple(kept),
        tuple(sorted(latest.values())) if spec.kind == "snapshot" else (), tuple(quarantine), total,
    )
    return FeedResult(spec.name, staging, pl.DataFrame(deliveries, schema=_DELIVERY_SCHEMA), work_dir, files, warnings)


def ingest_feed(
    spec: FeedSpec, inbox: Path, as_of: date, work_dir: Path, blocking_share: float = DEFAULT_BLOCKING_SHARE,
    policy: Policy | None = None, today: date | None = None, connect=None,
    on_file: Callable[[DeliveredFile, pl.DataFrame | None], None] | None = None,
) -> FeedResult:
    """Account for every delivery of `spec` dated on or before `as_of` and list the parts of its staging.

    Every file of the feed's folder gets a row in `deliveries` (used, held back, rejected, left for a
    later run). A file named for a county that is not in GB/T 2260 or not served (`policy.served_counties`)
    is rejected unread; a row whose division code lies in another county is quarantined. What is held back
    follows `_judge`. Each file is parsed and split into parts once (`lowincome.parts`); a night reads
    only the files it has not seen, and the rest from their small meta files. `policy` defaults to the
    bundled policy file; `today` (Asia/Shanghai) to the real date; `connect` to a bounded DuckDB connection.

    The same three stages the pipeline runs as separate steps (`plan_feed`, `ingest_county` per county,
    `finish_feed`), here in one call over every county at once; the result is the same either way.

    `on_file(file, frame)` is called for every readable file in delivery order, with its validated
    rows while they are in memory (`validate_rows` output) when the file was parsed just now, else
    None: the validation suite (`checks.record.SuitePass`) computes a new file's statistics from
    that frame instead of reading the parsed cache again.
    """
    policy = policy or _bundled_policy()
    plan = plan_feed(spec, inbox, as_of, policy, today)
    part = ingest_county(spec, plan, None, work_dir, blocking_share, policy, on_file)
    return finish_feed(spec, plan, [part], work_dir, blocking_share, connect)
