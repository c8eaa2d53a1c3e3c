"""The delivery store: what one delivered file contributes, computed once and kept as immutable Parquet parts.

For every file (by content, extraction date, county, name and validating code)
the store keeps, under `<work>/store/<feed>/`:

- `<key>.accepted.parquet`: its valid rows, typed, with lineage (a snapshot's
  repeated keys within the file already removed);
- `<key>.quarantine.parquet`: its rejected rows, reasons and record (masked for
  analysts, as delivered for caseworkers);
- for increments, `<key>.dups.<prefix>.json` (+ `.kept.` / `.dupq.` parts when
  there are duplicates): which of its rows repeat a row delivered before it.

Duplicates depend on which files came before (the *prefix*: the files in use in
delivery order); the prefix is hashed into the name, so a night that only adds
files computes duplicates for the new files alone, with one DuckDB query that
semi-joins their keys against the keys of earlier parts and spills to disk if it
must. A corrected or late-dated file changes the prefix of the files after it,
which are then computed again.

Polars here only ever holds one file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import duckdb
import polars as pl
import pyarrow.parquet as pq

from .feeds import FeedSpec
from .privacy import (MAX_NAME_CHARS, MIN_NAME_CHARS, WITHHELD, _NAME_TRIM, format_words, known_names, mask_content_expr,
                      mask_id_expr, mask_name_expr)
from .reading import EXTRA_COLUMN, ROW_COLUMN
from .reasons import codes_expr as reason_codes_expr
from .reasons import zh_expr as reasons_zh_expr
from .staging import sql_list
from .temporaries import write_text_atomic
from .workstore import write_atomic
from .validation import RAW_PREFIX, REASONS, typed_columns

LINEAGE = ["source_file", "source_row", "file_sha256", "delivered_on", "file_county"]
QUARANTINE_SCHEMA = {"feed": pl.String, "source_file": pl.String, "source_row": pl.Int64, "file_sha256": pl.String,
                     "delivered_on": pl.Date, "reasons": pl.String, "reason_count": pl.Int32, "record_masked": pl.String,
                     "record": pl.String, "extra_columns": pl.String,
                     "reasons_zh": pl.String, "reason_codes": pl.String}


def store_dir(work_dir: Path, feed: str) -> Path:
    return work_dir / "store" / feed


def short_hash(*texts: str) -> str:
    return hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:16]


# ---- content hashes, once per file version ----------------------------------------------------


class HashIndex:
    """sha256 of delivered files, remembered by (size, mtime_ns, inode, ctime_ns) so a night hashes only new files.

    Hashing every file of years of deliveries each night would read the whole history from disk. A
    file rewritten in place gets a new mtime and ctime (a corrected file under the same name), so its
    content is hashed again. The index is working storage: lost or damaged, every file is hashed again.
    """

    def __init__(self, work_dir: Path, feed: str):
        self.path = store_dir(work_dir, feed) / "hashes.json"
        try:
            self.entries = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(self.entries, dict):
                self.entries = {}
        except (OSError, ValueError):
            self.entries = {}
        self.seen: dict[str, list] = {}

    def sha256(self, path: Path, hash_file) -> str:
        st = os.lstat(path)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_ctime_ns]
        known = self.entries.get(path.name)
        if isinstance(known, list) and len(known) == 5 and known[:4] == stamp:
            sha = known[4]
        else:
            sha = hash_file(path)
        self.seen[path.name] = [*stamp, sha]
        return sha

    def save(self) -> None:
        """Add this night's entries (a backfill of an earlier day must not forget the newer files)."""
        merged = {**self.entries, **self.seen}
        if merged == self.entries:
            return
        self.seen = merged
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.seen))


# ---- quarantine rows ---------------------------------------------------------------------


def record_json(spec: FeedSpec, masked: bool, names: list[str] | tuple[str, ...] = (), *, by_content: bool = True) -> pl.Expr:
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


def _name_columns(spec: FeedSpec) -> list[str]:
    return [RAW_PREFIX + c.name for c in spec.columns if c.personal and c.kind == "text"]


def file_names(spec: FeedSpec, parsed: pl.DataFrame) -> list[str]:
    """Names known from one delivered file: its 姓名 (and caseworker) values."""
    columns = [c for c in _name_columns(spec) if c in parsed.columns]
    if not columns or parsed.is_empty():
        return []
    return known_names(parsed.select(columns).unpivot()["value"], exclude=format_words(spec))


_SEP = "\x1f"  # joins reasons and record for one masking pass; never part of a name


def names_in(texts: pl.Series, names: list[str]) -> list[str]:
    """The known names that occur in `texts` (one Aho-Corasick pass), longest first as `known_names` gave them.

    A big file knows hundreds of thousands of names and quarantines a few rows: masking with only
    the names present gives the same text at a fraction of the cost.
    """
    if not names or texts.is_empty():
        return []
    present = set(texts.str.extract_many(names, overlapping=True).explode().drop_nulls().unique().to_list())
    return [n for n in names if n in present]


_WINDOW_CHARS = 200_000  # quoted text up to which the file's names are looked up by the text's windows


def present_names(spec: FeedSpec, parsed: pl.DataFrame, texts: pl.Series) -> list[str]:
    """`names_in(texts, file_names(spec, parsed))`, without listing every distinct name of the file first.

    A large file quarantines a few rows; finding its hundreds of thousands of distinct names (to mask a
    few texts) cost more than the quarantine itself. Every 2..12-character window of the texts is looked
    up among the file's trimmed names instead (one `is_in`), and `known_names` then filters and orders
    the few found exactly as it would the whole list: a name occurs in a text exactly when it is one of
    its windows. Long texts (a held-back file quarantines every row) take the direct way.
    """
    columns = [c for c in _name_columns(spec) if c in parsed.columns]
    if not columns or parsed.is_empty() or texts.is_empty():
        return []
    quoted = texts.drop_nulls().to_list()
    if sum(len(t) for t in quoted) > _WINDOW_CHARS:
        return names_in(texts, file_names(spec, parsed))
    windows = pl.Series([t[i:i + n] for t in quoted for n in range(MIN_NAME_CHARS, MAX_NAME_CHARS + 1)
                         for i in range(len(t) - n + 1)], dtype=pl.String).unique()
    values = parsed.select(pl.concat_list([pl.col(c).str.strip_chars(_NAME_TRIM) for c in columns]).alias("v")).explode("v")["v"]
    return names_in(texts, known_names(values.filter(values.is_in(windows)), exclude=format_words(spec)))


def quarantine_rows(spec: FeedSpec, bad: pl.DataFrame, names: list[str] | Callable[[pl.Series], list[str]]) -> pl.DataFrame:
    """One row per rejected row of ONE file; reasons and the analysts' record masked by content.

    Reasons quote values of enum, date and money columns; after a shifted row those can be an ID
    number or a name. Both texts of a row are masked in one pass (one automaton per file).
    `bad` has the file's raw_* text, `reasons` (a list), the extra columns and lineage. `names` are
    the file's known names, or a function giving those that occur in the texts (`present_names`).
    """
    if bad.is_empty():
        return pl.DataFrame(schema=QUARANTINE_SCHEMA)
    # the Chinese beside the English, for the sending department (lowincome/reasons.py): masked in the same pass
    bad = bad.with_columns(reasons_zh_expr(pl.col(REASONS)).list.join("；").alias("_zh"),
                           reason_codes_expr(pl.col(REASONS)).list.join(",").alias("reason_codes"))
    text = pl.concat_str([pl.col(REASONS).list.join("; "), record_json(spec, masked=True, by_content=False), pl.col("_zh")],
                         separator=_SEP)
    bad = bad.with_columns(text.alias("_text"))
    names = names(bad["_text"]) if callable(names) else names_in(bad["_text"], names)
    both = mask_content_expr(pl.col("_text"), names, format_words(spec)).str.splitn(_SEP, 3)
    rows = bad.with_columns(both.alias("_masked"))  # computed once as a column, then taken apart
    return rows.select(
        pl.lit(spec.name).alias("feed"),
        "source_file",
        pl.col("source_row").cast(pl.Int64),
        "file_sha256",
        "delivered_on",
        pl.col("_masked").struct.field("field_0").alias("reasons"),
        pl.col(REASONS).list.len().cast(pl.Int32).alias("reason_count"),
        pl.col("_masked").struct.field("field_1").alias("record_masked"),
        record_json(spec, masked=False).alias("record"),
        pl.col(EXTRA_COLUMN).alias("extra_columns"),
        pl.col("_masked").struct.field("field_2").alias("reasons_zh"),
        "reason_codes",
    ).sort("source_row")


# ---- one file's parts ----------------------------------------------------------------------


@dataclass(frozen=True)
class FileParts:
    """The parts of one delivered file in the store (paths relative to the work root)."""

    key: str
    accepted: str
    quarantine: str
    accepted_rows: int


def _with_lineage(frame: pl.DataFrame, file_name: str, sha: str, delivered_on, county: str) -> pl.DataFrame:
    return frame.rename({ROW_COLUMN: "source_row"}).with_columns(
        pl.lit(file_name).alias("source_file"),
        pl.lit(sha).alias("file_sha256"),
        pl.lit(delivered_on, dtype=pl.Date).alias("delivered_on"),
        pl.lit(county).alias("file_county"),
    )


def _within_file_copies(spec: FeedSpec, good: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Snapshots: a key repeated inside one file keeps its first row; the others are quarantined."""
    key = list(spec.snapshot_key)
    later = good.select(~pl.struct(key).is_first_distinct()).to_series()
    if not later.any():
        return good, good.clear()
    copies = good.filter(later)
    good = good.filter(~later)
    firsts = good.join(copies.select(key).unique(), on=key, how="semi").select(*key, pl.col("source_row").alias("_first_row"))
    headers = " and ".join(spec.column(k).header for k in key)
    message = pl.lit(f"duplicate: same {headers} as the row duplicate of this file row ") + pl.col("_first_row").cast(pl.String)
    copies = copies.join(firsts, on=key, how="left").with_columns(
        pl.col(REASONS).list.concat(pl.concat_list(message)).alias(REASONS)).drop("_first_row")
    return good, copies


def file_parts(spec: FeedSpec, work_dir: Path, parse_key: str, file_name: str, sha: str, delivered_on, county: str,
               parsed_cache: Path, parsed: pl.DataFrame | None) -> FileParts:
    """The accepted and quarantine parts of one file, built from its parsed rows the first time only."""
    key = f"{parse_key}_{short_hash(file_name)}"
    folder = store_dir(work_dir, spec.name)
    accepted = folder / f"{key}.accepted.parquet"
    quarantine = folder / f"{key}.quarantine.parquet"
    meta = folder / f"{key}.parts.json"
    rel = lambda p: str(p.relative_to(work_dir))  # noqa: E731
    if meta.exists() and accepted.exists() and quarantine.exists():
        try:
            rows = int(json.loads(meta.read_text(encoding="utf-8"))["accepted_rows"])
            return FileParts(key, rel(accepted), rel(quarantine), rows)
        except (ValueError, KeyError, TypeError):
            pass  # damaged: rebuilt below
    ok = pl.col(REASONS).list.len() == 0
    if parsed is None and not spec.snapshot_key:  # read back narrowly: the good rows' typed columns, the bad rows whole
        scan = _with_lineage(pl.scan_parquet(parsed_cache), file_name, sha, delivered_on, county)
        write_atomic(accepted, scan.filter(ok).select(*LINEAGE, *typed_columns(spec)).collect())
        rows = pq.ParquetFile(accepted).metadata.num_rows
        rejected = scan.filter(~ok).collect()
        names = file_names(spec, scan.select(_name_columns(spec)).collect()) if rejected.height else []
        write_atomic(quarantine, quarantine_rows(spec, rejected, names))
        meta.write_text(json.dumps({"accepted_rows": rows}), encoding="utf-8")
        return FileParts(key, rel(accepted), rel(quarantine), rows)
    frame = parsed if parsed is not None else pl.read_parquet(parsed_cache)
    frame = _with_lineage(frame, file_name, sha, delivered_on, county)
    bad = [frame.filter(~ok)]  # few rows, with their delivered text
    if spec.snapshot_key:  # a repeated key's quarantine row needs the delivered text too
        good, copies = _within_file_copies(spec, frame.filter(ok))
        bad.append(copies)
        good = good.select(LINEAGE + typed_columns(spec))
    else:  # the typed columns only: copying the delivered text of millions of good rows would double the peak
        good = frame.select(*LINEAGE, *typed_columns(spec), REASONS).filter(ok).drop(REASONS)
    write_atomic(accepted, good)  # in row order already: rows are read and filtered in order
    rows = good.height
    del good
    rejected = pl.concat(bad, how="vertical_relaxed")
    write_atomic(quarantine, quarantine_rows(spec, rejected, lambda texts: present_names(spec, frame, texts)))
    meta.write_text(json.dumps({"accepted_rows": rows}), encoding="utf-8")
    return FileParts(key, rel(accepted), rel(quarantine), rows)


def held_back_part(spec: FeedSpec, work_dir: Path, parts: FileParts, file_name: str, sha: str, delivered_on, county: str,
                   parsed_cache: Path, reason: str) -> str:
    """Every row of a held-back file, quarantined with the reason it was held back (its good rows wait too)."""
    path = store_dir(work_dir, spec.name) / f"{parts.key}.held.{short_hash(reason)}.parquet"
    if not path.exists():
        frame = _with_lineage(pl.read_parquet(parsed_cache), file_name, sha, delivered_on, county)
        frame = frame.with_columns(pl.concat_list(pl.lit([reason]), pl.col(REASONS)).alias(REASONS))
        write_atomic(path, quarantine_rows(spec, frame, lambda texts: present_names(spec, frame, texts)))
    return str(path.relative_to(work_dir))


# ---- duplicates across deliveries (increments) -------------------------------------------------


@dataclass
class InUse:
    """An increment file whose valid rows are used, in delivery order."""

    parts: FileParts
    file_name: str
    parsed_cache: Path
    kept: str = ""  # accepted rows minus later copies
    duplicates: str | None = None  # quarantine part of its later copies
    kept_rows: int = 0


def _dup_marker(work_dir: Path, feed: str, key: str, prefix: str) -> Path:
    return store_dir(work_dir, feed) / f"{key}.dups.{prefix}.json"


def resolve_duplicates(spec: FeedSpec, work_dir: Path, files: list[InUse], connect) -> None:
    """Fill `kept`, `duplicates`, `kept_rows` of every file: a key delivered before (or earlier in the file) is a copy.

    The first occurrence in delivery order (file date, file name, row) is the one kept. Files whose prefix
    was already resolved are read from their marker; the others are resolved together in one DuckDB query
    (`connect()` gives a connection bounded by the memory budget).
    """
    prefix = "0"
    first_todo = None
    prefixes = []
    for i, f in enumerate(files):
        prefixes.append(prefix)
        marker = _dup_marker(work_dir, spec.name, f.parts.key, prefix)
        if first_todo is None:
            done = _read_marker(marker)
            if done is None:
                first_todo = i
            else:
                f.kept, f.duplicates, f.kept_rows = done
        prefix = short_hash(prefix, f.parts.key)
    if first_todo is None:
        return
    todo = files[first_todo:]
    copies = _later_copies(spec, work_dir, files[:first_todo], todo, connect)
    by_file = {name: frame for (name,), frame in copies.partition_by("source_file", as_dict=True).items()} if copies.height else {}
    for f, prefix in zip(todo, prefixes[first_todo:]):
        found = by_file.get(f.file_name)
        folder = store_dir(work_dir, spec.name)
        if found is None or found.is_empty():
            f.kept, f.duplicates, f.kept_rows = f.parts.accepted, None, f.parts.accepted_rows
        else:
            # the part minus its copies, filtered while it is read (never the part and its copy at once),
            # and released before the quarantine reads the same file again
            copies = _rows_in("source_row", found["source_row"])
            kept = pl.scan_parquet(work_dir / f.parts.accepted).filter(~copies).collect()
            kept_path = write_atomic(folder / f"{f.parts.key}.kept.{prefix}.parquet", kept)
            kept_rows = kept.height
            del kept
            dupq = write_atomic(folder / f"{f.parts.key}.dupq.{prefix}.parquet", _duplicate_quarantine(spec, work_dir, f, found))
            f.kept, f.duplicates, f.kept_rows = (str(kept_path.relative_to(work_dir)), str(dupq.relative_to(work_dir)),
                                                 kept_rows)
        marker = _dup_marker(work_dir, spec.name, f.parts.key, prefix)
        marker.write_text(json.dumps({"kept": f.kept, "duplicates": f.duplicates, "kept_rows": f.kept_rows}), encoding="utf-8")


def _read_marker(marker: Path) -> tuple[str, str | None, int] | None:
    try:
        d = json.loads(marker.read_text(encoding="utf-8"))
        return d["kept"], d["duplicates"], int(d["kept_rows"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _later_copies(spec: FeedSpec, work_dir: Path, before: list[InUse], todo: list[InUse], connect) -> pl.DataFrame:
    """(source_file, source_row, first_file, first_row) of every later copy among the `todo` files' accepted rows."""
    key = list(spec.unique_key)
    cols = ", ".join(key)
    on = " AND ".join(f"a.{k} = d.{k}" for k in key)
    semi = " AND ".join(f"p.{k} = k.{k}" for k in key)
    cur = sql_list(str(work_dir / f.parts.accepted) for f in todo)
    prev = sql_list(str(work_dir / f.parts.accepted) for f in before)
    prev_rows = (f"""UNION ALL
               SELECT {cols}, source_file, source_row, delivered_on, false AS is_cur
               FROM read_parquet({prev}) AS p SEMI JOIN cur_keys AS k ON {semi}""" if before else "")
    sql = f"""
        WITH cur AS (
            SELECT {cols}, source_file, source_row, delivered_on, true AS is_cur FROM read_parquet({cur})
        ),
        cur_keys AS (SELECT DISTINCT {cols} FROM cur),
        candidates AS (
            SELECT * FROM cur
            {prev_rows}
        ),
        repeated AS (SELECT {cols} FROM candidates GROUP BY ALL HAVING count(*) > 1),
        ranked AS (
            SELECT a.source_file, a.source_row, a.is_cur,
                   row_number() OVER w AS rn,
                   first_value(a.source_file) OVER w AS first_file,
                   first_value(a.source_row) OVER w AS first_row
            FROM candidates AS a JOIN repeated AS d ON {on}
            WINDOW w AS (PARTITION BY {', '.join('a.' + k for k in key)} ORDER BY a.delivered_on, a.source_file, a.source_row)
        )
        SELECT source_file, source_row, first_file, first_row FROM ranked WHERE is_cur AND rn > 1
    """
    con = connect()
    try:
        return pl.from_arrow(con.sql(sql).to_arrow_table())
    finally:
        con.close()


def _rows_in(column: str, rows: pl.Series) -> pl.Expr:
    """`column` is one of `rows` (row numbers of one file): a filter applied while a part is read."""
    return pl.col(column).is_in(rows.unique().implode())


def _duplicate_quarantine(spec: FeedSpec, work_dir: Path, f: InUse, found: pl.DataFrame) -> pl.DataFrame:
    """Quarantine rows for the later copies in one file, with the delivered text and the row that was kept.

    Only the copies' rows of the parsed file and of its accepted part are read, and the name columns
    of the whole file (the names that mask the records): reading a 3.7M-row claims file whole, next
    to its accepted part, took this step to 6 GiB on the 24-month city (docs/decisions.md, mem24).
    """
    cache = pl.scan_parquet(f.parsed_cache)
    parsed = cache.filter(_rows_in(ROW_COLUMN, found["source_row"])).collect()
    present = set(pq.read_schema(f.parsed_cache).names)
    name_columns = cache.select([c for c in _name_columns(spec) if c in present]).collect()
    accepted = (pl.scan_parquet(work_dir / f.parts.accepted).select(LINEAGE)
                .filter(_rows_in("source_row", found["source_row"])).collect())
    headers = " and ".join(spec.column(k).header for k in spec.unique_key)
    message = (pl.lit(f"duplicate: same {headers} as the row already delivered in ")
               + pl.when(pl.col("first_file") == pl.col("source_file")).then(pl.lit("this file")).otherwise(pl.col("first_file"))
               + pl.lit(" row ") + pl.col("first_row").cast(pl.String))
    rows = (found.join(accepted, on=["source_file", "source_row"], how="left")
            .join(parsed.rename({ROW_COLUMN: "source_row"}), on="source_row", how="left")
            .with_columns(pl.col(REASONS).list.concat(pl.concat_list(message)).alias(REASONS)))
    return quarantine_rows(spec, rows, lambda texts: present_names(spec, name_columns, texts))
