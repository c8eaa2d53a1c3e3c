"""Publishing: the analysts' database and the restricted database, each swapped in whole.

Both files are built beside the published ones, checkpointed, closed and moved
over them with `os.replace`: a reader that opened the old file keeps reading
it, a new reader sees the new one, nobody sees half a file, and a run that
fails before the swap leaves the last publication untouched.

The analysts' database never receives an ID number or a name: identified
columns are replaced by pseudonymous keys computed inside DuckDB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl
import pyarrow.parquet as pq

from .audit import load_deliveries, load_validation
from .chinese import check_zh_sql, mart_select, rule_name_zh_sql
from .dictionary import apply_comments
from .errors import ConfigError, LowincomeError
from .feeds import FEEDS, FeedSpec
from .keys import install_key_macro
from .privacy import PRIVATE_DIR_MODE
from .staging import Staging, sql_list, sql_text
from .temporaries import temporary_path
from .workstore import PARQUET_ZSTD_LEVEL, WorkStore

log = logging.getLogger(__name__)

ANALYSTS_DB = "lowincome.duckdb"
LATEST_VIEWS_SQL = Path(__file__).resolve().parent.parent / "sql" / "audit" / "latest_views.sql"
RESTRICTED_DB = "restricted.duckdb"

# Identified text columns that become keys (or disappear) in the analysts' database.
_KEYED = {
    "id_number": "person_key",
    "head_id_number": "head_person_key",
    "certificate_id": "certificate_key",
}
_HOUSEHOLD_KEYED = {"household_id": "household_key", "rural_household_id": "rural_household_key"}


def household_key_sql(id_column: str, county_column: str = "file_county") -> str:
    """Household keys are scoped by county: feeds.md makes 家庭编号 unique only within one."""
    return f"pkey('household:' || {county_column} || ':' || {id_column})"


def _analyst_columns(spec: FeedSpec, columns: list[str]) -> list[tuple[str, str, bool]]:
    """What analysts get of one staging table, as (SQL, name, is a key): keys for identifiers; no names, no free text.

    Names (of residents and of caseworkers) stay in the restricted database; free-text columns
    (`Column.free_text`, e.g. the note of a verification outcome) are not published at all; a
    column with a `publish_pattern` (主要诊断编码) is published only where the value has that
    shape (an ICD-10 code), else NULL, since a code field can carry a clerk's free text. For a key,
    the SQL is the text that `pkey` turns into the pseudonymous key.
    """
    out = []
    for name in columns:
        column = spec.by_name.get(name)
        if name in _KEYED:
            out.append((name, _KEYED[name], True))
        elif name in _HOUSEHOLD_KEYED:
            out.append(("'household:' || file_county || ':' || " + name, _HOUSEHOLD_KEYED[name], True))
        elif name == "name" or (column is not None and (column.personal or column.free_text)):
            continue
        elif column is not None and column.publish_pattern:
            pattern = "'" + f"^(?:{column.publish_pattern})$".replace("'", "''") + "'"
            out.append((f"CASE WHEN regexp_matches(trim({name}), {pattern}, 'i') THEN upper(trim({name})) END", name, False))
        else:
            out.append((name, name, False))
    return out


def _analyst_select(spec: FeedSpec, columns: list[str]) -> str:
    """The analysts' columns as one SELECT list (keys computed row by row)."""
    return ", ".join(f"pkey({sql}) AS {alias}" if key else (sql if sql == alias else f"{sql} AS {alias}")
                     for sql, alias, key in _analyst_columns(spec, columns))


def analyst_copy_sql(spec: FeedSpec, columns: list[str], source: str, keys: str | None = None,
                     derived_only: bool = False) -> str:
    """SELECT of the analysts' copy of one part, each key computed once per distinct value.

    The pseudonymous key is an HMAC (two SHA-256 per value): a claims file repeats each person many
    times, so keying the distinct values and joining them back costs a fraction of keying every row.
    With `keys` (a table of (v, k) already holding every value of the part, see `_copy_parts`), the
    part's values are looked up there instead of keyed again. With `derived_only`, only `source_row`
    and the columns SQL computes (keys, pattern-checked codes) are selected: the half of the copy that
    `_write_analyst_part` puts beside the columns published as they are.
    """
    cols = _analyst_columns(spec, columns)
    keyed = [(i, sql) for i, (sql, _, key) in enumerate(cols) if key]
    ctes = [f"src AS (SELECT * FROM read_parquet({source}))"]
    joins, select = [], ["src.source_row"] if derived_only else []
    for i, sql in keyed:
        if keys:  # joined as it is: a semi-join to the part's own values first scanned the part twice (measured: +1 s on 4.8M claims rows, a tenth of the copy)
            joins.append(f"LEFT JOIN {keys} AS k{i} ON k{i}.v = ({sql})")
            continue
        ctes.append(f"k{i} AS (SELECT v, pkey(v) AS k FROM (SELECT DISTINCT ({sql}) AS v FROM src) WHERE v IS NOT NULL)")
        joins.append(f"LEFT JOIN k{i} ON k{i}.v = ({sql})")  # k<i> has only v and k: the other names are src's
    for i, (sql, alias, key) in enumerate(cols):
        if key:
            select.append(f"k{i}.k AS {alias}")
        elif derived_only and sql == alias:
            continue
        else:
            select.append(sql if sql == alias else f"{sql} AS {alias}")
    return (f"WITH {', '.join(ctes)} SELECT {', '.join(select)} FROM src {' '.join(joins)} ORDER BY src.source_row")


# Modes of the published files. Analysts' database: read-only for everyone, so no stray writer
# can open it read-write and leave a WAL behind. Restricted: owner only, or owner + a group.
ANALYSTS_MODE = 0o444
RESTRICTED_MODE = 0o600
RESTRICTED_GROUP_MODE = 0o640


def restricted_mode(group: str | None) -> int:
    return RESTRICTED_GROUP_MODE if group else RESTRICTED_MODE


def _restricted_group() -> str | None:
    """`Settings.restricted_group` (LOWINCOME_RESTRICTED_GROUP), where the settings have it."""
    from .config import load_settings

    return getattr(load_settings(), "restricted_group", None) or None


def published_mode(target: Path) -> tuple[int | None, str | None]:
    """(mode, group) a published file must have: analysts' read-only, restricted owner(+group)-only."""
    if target.name == ANALYSTS_DB:
        return ANALYSTS_MODE, None
    if target.name == RESTRICTED_DB:
        group = _restricted_group()
        return restricted_mode(group), group
    return None, None


def _published_name(built: Path) -> Path:
    """`.building/restricted.<token>.duckdb` → `restricted.duckdb` (what the built file becomes)."""
    return built.with_name(built.name.split(".", 1)[0] + ".duckdb")


def _protect(built: Path, published: Path, *, final: bool) -> None:
    """Give a built file the group and mode that `published` (its name once swapped in) requires.

    The restricted file gets them as soon as it exists (a missing group fails the run before
    anything is swapped); the analysts' file becomes read-only only when it is final.
    """
    mode, group = published_mode(published)
    if mode is None or (not final and mode == ANALYSTS_MODE):
        return
    if group:
        try:
            shutil.chown(built, group=group)
        except (LookupError, PermissionError) as exc:
            raise ConfigError(
                f"restricted_group '{group}': cannot give {published.name} to this group ({exc}); "
                "the last published databases are unchanged"
            ) from None
    os.chmod(built, mode)


def _build(path: Path) -> duckdb.DuckDBPyConnection:
    """A fresh database file to build in; `.building/` is owner-only (it holds restricted data)."""
    path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path.parent, PRIVATE_DIR_MODE)
    for stale in (path, path.with_name(path.name + ".wal")):
        stale.unlink(missing_ok=True)
    con = duckdb.connect(str(path))
    try:
        _protect(path, _published_name(path), final=False)
    except BaseException:
        con.close()
        raise
    return con


def _swap(built: Path, target: Path) -> None:
    """Move a built (checkpointed, closed) database over the published one.

    `os.replace` gives the published file the built file's mode and owner, so mode and group are
    set on the built file first, every run: an administrator's `chmod` cannot be undone and a
    fresh file is never world-readable. A WAL left beside the published file (a stray read-write
    connection that wrote without a checkpoint) belongs to the old file: it is removed before the
    swap, or DuckDB would try to replay it into the new file and refuse to open it.
    """
    _protect(built, target, final=True)
    target.with_name(target.name + ".wal").unlink(missing_ok=True)
    os.replace(built, target)


def _load_history(con, store: WorkStore, kind: str, table: str, empty_sql: str, also: pl.DataFrame | None = None) -> None:
    glob = store.history_glob(kind)
    if glob:
        con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet($g, union_by_name = true)", {"g": glob})
    else:
        con.execute(f"CREATE TABLE {table} AS {empty_sql}")
    if also is not None and also.height:  # rows that become true with this very publication (the run's success)
        con.register("_also", also.to_arrow())
        con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _also")
        con.unregister("_also")


def mart_tables(store: WorkStore, as_of: date) -> dict:
    """The rules' outputs for `as_of` (analysts' tables and the caseworkers' list), where the day has them."""
    mart = store.day_dir(as_of) / "mart"
    analysts = {"mart.flags": "flags", "mart.household_risk": "household_risk", "mart.county_summary": "county_summary",
                "mart.rules": "rules", "audit.flag_trend": "flag_trend", "audit.feed_freshness": "feed_freshness"}
    extra = {t: mart / f"{n}.parquet" for t, n in analysts.items() if (mart / f"{n}.parquet").exists()}
    restricted = {"caseworker_flags": mart / "caseworker_flags.parquet"} if (mart / "caseworker_flags.parquet").exists() else {}
    return {"extra_tables": extra, "restricted_tables": restricted}


PUBLISHED_DIR = "published"  # the analysts' Parquet parts (pseudonymous), read through the views of lowincome.duckdb
PART_MODE = 0o444
PUBLIC_DIR_MODE = 0o755


def _key_tag(pseudonym_key: str) -> str:
    """Names the pseudonym key a part was keyed with (a new key makes new parts), without revealing it."""
    return hashlib.sha256(("lowincome published part|" + pseudonym_key).encode("utf-8")).hexdigest()[:12]


def _public_dir(path: Path) -> Path:
    """Folders of the analysts' parts: readable by everyone who may read lowincome.duckdb."""
    path.mkdir(mode=PUBLIC_DIR_MODE, parents=True, exist_ok=True)
    return path


def _copy_part(con, select_sql: str, target: Path) -> None:
    """Write one analysts' part once: immutable afterwards, read-only for everyone, swapped in whole."""
    _swap_in_part(target, lambda tmp: con.execute(f"COPY ({select_sql}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)"))


def _swap_in_part(target: Path, write) -> None:
    """`write(tmp)` beside `target`, make it read-only for everyone and swap it in whole (or leave nothing)."""
    _public_dir(target.parent)
    tmp = temporary_path(target)
    try:
        write(tmp)
        os.chmod(tmp, PART_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_analyst_part(con, spec: FeedSpec, columns: list[str], source: Path, target: Path, keys: str | None) -> None:
    """The analysts' copy of one staging part: SQL computes the keys and checked codes, Polars writes the file.

    Measured on the claims parts of a 5.85M-row night, DuckDB's COPY of the whole SELECT took 9.8 s,
    most of it in DuckDB's Parquet writer; Polars writes the same rows in about a third of the time.
    So the SQL (the same `analyst_copy_sql`, the same `pkey`) still decides every value that is not
    published as it is, but only for `source_row` and those columns; the columns published as they are
    come straight from the part, and Polars writes the whole. Both halves are in `source_row` order
    (the SELECT sorts; a part is written in row order, and is sorted here if it is not), and their row
    numbers must agree row for row or nothing is written. One part at a time: memory is bounded by
    the largest delivered file, as in ingestion.
    """
    cols = _analyst_columns(spec, columns)
    plain = [alias for sql, alias, key in cols if not key and sql == alias]
    derived = con.sql(analyst_copy_sql(spec, columns, sql_text(str(source)), keys, derived_only=True)).pl()
    copied = pl.read_parquet(source, columns=list(dict.fromkeys(["source_row", *plain])))
    if not copied["source_row"].is_sorted():
        copied = copied.sort("source_row")
    if not copied["source_row"].equals(derived["source_row"]):
        raise LowincomeError(f"analysts' copy of the part {source.name}: the keyed columns do not line up with "
                             "the part's rows; nothing was published")
    frame = pl.concat([copied, derived.drop("source_row")], how="horizontal").select([alias for _, alias, _ in cols])
    _swap_in_part(target, lambda tmp: frame.write_parquet(tmp, compression="zstd", compression_level=PARQUET_ZSTD_LEVEL))


def analyst_parts(con, store: WorkStore, staging: Staging, pseudonym_key: str) -> list[str]:
    """The analysts' copy of every part of `staging` (pseudonymous keys, no names, no free text), made once each.

    A part is immutable (its name carries the delivered file's content and the code that read it), so
    its copy is too: a night copies only the parts it has not published before.
    """
    spec = FEEDS[staging.feed]
    tag = _key_tag(pseudonym_key)
    folder = store.warehouse / PUBLISHED_DIR / "staging" / staging.feed
    out, todo = [], []
    for rel in staging.parts or (staging.empty,):
        source = store.root / rel
        target = folder / f"{Path(rel).stem}.{tag}.parquet"
        if not target.exists():
            todo.append((source, target))
        out.append(str(target))
    if todo:
        _copy_parts(con, spec, todo)
    return out


_PART_KEYS = "_analyst_keys"


def _copy_parts(con, spec: FeedSpec, todo: list[tuple[Path, Path]]) -> None:
    """Copy the parts of one feed a night has not published yet, keying each distinct value once for them all.

    A person recurs in every monthly part of a feed: keying the distinct values of all new parts at
    once (one temporary table, in the copying connection only) and looking each part's values up
    there does the HMAC once per value instead of once per value and part.
    """
    columns = {source: [f.name for f in pq.read_schema(source)] for source, _ in todo}
    exprs = list(dict.fromkeys(sql for cols in columns.values() for sql, _, key in _analyst_columns(spec, cols) if key))
    shared = bool(exprs) and len(todo) > 1
    if shared:
        files = f"read_parquet({sql_list(source for source, _ in todo)}, union_by_name = true)"
        values = " UNION ALL ".join(f"SELECT ({sql}) AS v FROM {files}" for sql in exprs)
        con.execute(f"CREATE OR REPLACE TEMP TABLE {_PART_KEYS} AS "
                    f"SELECT v, pkey(v) AS k FROM (SELECT DISTINCT v FROM ({values}) WHERE v IS NOT NULL)")
    try:
        for source, target in todo:
            _write_analyst_part(con, spec, columns[source], source, target, _PART_KEYS if shared else None)
    finally:
        if shared:
            con.execute(f"DROP TABLE IF EXISTS {_PART_KEYS}")


_QUARANTINE_COLUMNS = ("feed, source_file AS file_name, source_row AS row_number, file_sha256, delivered_on, "
                       "reasons, {zh} AS reasons_zh, {codes} AS reason_codes, reason_count, record_masked AS record")


def _quarantine_columns(path: Path) -> str:
    """The analysts' columns of one quarantine part (a part written before reasons_zh existed has NULL there)."""
    have = set(pq.read_schema(path).names)
    return _QUARANTINE_COLUMNS.format(zh="reasons_zh" if "reasons_zh" in have else "NULL::VARCHAR",
                                      codes="reason_codes" if "reason_codes" in have else "NULL::VARCHAR")


def analyst_quarantine(con, store: WorkStore, staging: Staging) -> list[str]:
    """The analysts' copy of every quarantine part: the masked record only."""
    folder = store.warehouse / PUBLISHED_DIR / "quarantine" / staging.feed
    out = []
    for rel in staging.quarantine:
        target = folder / f"{Path(rel).stem}.parquet"
        if not target.exists():
            source = store.root / rel
            _copy_part(con, f"SELECT {_quarantine_columns(source)} FROM read_parquet({sql_text(str(source))})", target)
        out.append(str(target))
    return out


_EMPTY_QUARANTINE = ("SELECT NULL::VARCHAR feed, NULL::VARCHAR file_name, NULL::BIGINT row_number, NULL::VARCHAR file_sha256, "
                     "NULL::DATE delivered_on, NULL::VARCHAR reasons, NULL::VARCHAR reasons_zh, NULL::VARCHAR reason_codes, "
                     "NULL::INTEGER reason_count, NULL::VARCHAR record "
                     "WHERE false")


def _analysts_copies(store: WorkStore, manifests: dict[str, Staging], pseudonym_key: str, settings,
                     ) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """The analysts' staging and quarantine parts of every feed, copied where not copied before: (parts, quarantine).

    In a connection of its own: its temporary key table holds ID numbers."""
    from .config import configure_duckdb

    copier = configure_duckdb(duckdb.connect(), settings)
    try:
        install_key_macro(copier, pseudonym_key)
        parts = {f: analyst_parts(copier, store, manifests[f], pseudonym_key) for f in FEEDS}
        quarantine = {f: analyst_quarantine(copier, store, manifests[f]) for f in FEEDS}
    finally:
        copier.close()
    return parts, quarantine


def prepare_analysts_parts(store: WorkStore, as_of: date, pseudonym_key: str, settings) -> dict[str, int]:
    """Write ahead what the publication of `as_of` will refer to and that depends on staging alone.

    The analysts' copies of the staging and quarantine parts and the household timeline's per-file
    parts are each written once, named by their content, immutable, and not referred to by any
    database until a publication does: writing them before the publishing step changes nothing a
    reader sees. Done in a step of its own (`publish/analysts_parts`), they are written while the rules
    run, on another core or machine, instead of inside the one publishing step; `publish` still
    checks each one and writes whatever is missing. Returns counts for the step's metadata.
    """
    from .marts import timeline_folder, write_per_file_parts

    manifests = {f: store.staging(as_of, f) for f in FEEDS}
    parts, quarantine = _analysts_copies(store, manifests, pseudonym_key, settings)
    timeline_new = write_per_file_parts(store, as_of, manifests, pseudonym_key, settings, _key_tag(pseudonym_key),
                                        timeline_folder(store.warehouse))
    return {"staging_parts": sum(map(len, parts.values())), "quarantine_parts": sum(map(len, quarantine.values())),
            "timeline_parts_written": timeline_new}


def publish(store: WorkStore, as_of: date, pseudonym_key: str, extra_tables: dict[str, Path] | None = None,
            restricted_tables: dict[str, Path] | None = None, run_record: pl.DataFrame | None = None,
            settings=None) -> dict:
    """Build both databases for `as_of` from the work store's committed day and swap them in.

    staging.* and quarantine.rejected_rows are views over the analysts' Parquet parts under
    `<warehouse>/published/` (each written once, never changed); marts and audit tables are small
    and copied. `run_record` is the publishing run's own audit.runs row (status success): it is part
    of the new database only, so it becomes visible exactly when the publication is in place.
    """
    from .config import configure_duckdb, load_settings

    settings = settings or load_settings()
    warehouse = store.warehouse
    building = warehouse / ".building"
    token = uuid.uuid4().hex[:8]
    analysts_tmp = building / f"lowincome.{token}.duckdb"
    restricted_tmp = building / f"restricted.{token}.duckdb"
    counts: dict[str, int] = {}
    manifests = {f: store.staging(as_of, f) for f in FEEDS}
    referenced: list[str] = []
    try:
        # the analysts' parts first (usually written ahead by prepare_analysts_parts: then only checked)
        parts, quarantine_parts = _analysts_copies(store, manifests, pseudonym_key, settings)
        # issue 11 marts (lowincome/marts.py): the household timeline's Parquet files, in a connection of their own
        from .marts import build_timeline, create_rule_effectiveness, create_timeline_view, timeline_folder

        mart_paths = extra_tables or {}
        timeline = build_timeline(store, as_of, manifests, pseudonym_key, settings, _key_tag(pseudonym_key),
                                  timeline_folder(warehouse), mart_paths.get("mart.flags"), mart_paths.get("audit.flag_trend"))
        referenced += timeline.files
        con = _build(analysts_tmp)
        try:
            configure_duckdb(con, settings)
            for schema in ("staging", "quarantine", "audit", "mart"):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            quarantine: list[str] = []
            for spec in FEEDS.values():
                staging = manifests[spec.name]
                referenced += parts[spec.name]
                con.execute(f"CREATE VIEW staging.{spec.name} AS {staging.relation_sql(store.root, parts[spec.name])}")
                counts[f"staging.{spec.name}"] = staging.rows
                quarantine += quarantine_parts[spec.name]
            referenced += quarantine
            source = (f"SELECT * FROM read_parquet({sql_list(quarantine)}, union_by_name = true)" if quarantine
                      else _EMPTY_QUARANTINE)
            con.execute(
                f"""CREATE VIEW quarantine.rejected_rows AS
                    SELECT *, DATE '{as_of.isoformat()}' AS as_of FROM ({source})
                    ORDER BY feed, delivered_on, file_name, row_number"""
            )
            counts["quarantine.rejected_rows"] = sum(_rows(store, m.quarantine) for m in manifests.values())
            _load_history(con, store, "runs", "audit.runs",
                          "SELECT NULL::VARCHAR run_id, NULL::DATE as_of, NULL::TIMESTAMP started_at, "
                          "NULL::TIMESTAMP finished_at, NULL::VARCHAR status, NULL::VARCHAR code_version, "
                          "NULL::VARCHAR message WHERE false", also=run_record)
            load_deliveries(con, store)  # audit.deliveries: from listings stored once each (lowincome/audit.py)
            load_validation(con, store)  # audit.validation_results: a view over results stored once per file
            for table, path in (extra_tables or {}).items():
                # Chinese first (lowincome/chinese.py): rule_name_zh, check_zh, level_rank added beside the English
                select = mart_select(table, pq.read_schema(path).names)
                con.execute(f"CREATE TABLE {table} AS SELECT {select} FROM read_parquet($p)", {"p": str(path)})
            create_rule_effectiveness(con, mart_paths.get("mart.flags"), as_of)  # issue 11 marts
            create_timeline_view(con, timeline, as_of)
            publishing_run = run_record["run_id"][0] if run_record is not None and run_record.height else None
            con.execute(
                "CREATE TABLE audit.publication AS "
                "SELECT $as_of::DATE AS as_of, $at::TIMESTAMP AS published_at, $run::VARCHAR AS run_id",
                {"as_of": as_of, "at": datetime.now(), "run": publishing_run},
            )
            con.execute(LATEST_VIEWS_SQL.read_text(encoding="utf-8"))  # audit.latest_run / _deliveries / _validation
            undescribed = apply_comments(con)  # after the last CREATE: a re-created view loses its comments
            if undescribed:
                log.warning("published columns without a data-dictionary entry: %s", ", ".join(undescribed))
            con.execute("CHECKPOINT")
        finally:
            con.close()

        rcon = _build(restricted_tmp)
        try:
            install_key_macro(rcon, pseudonym_key)
            configure_duckdb(rcon, settings)
            _build_restricted(rcon, store, manifests, restricted_tables or {}, (extra_tables or {}).get("mart.flags"),
                              pseudonym_key)
            rcon.execute("CHECKPOINT")
        finally:
            rcon.close()

        _swap(analysts_tmp, warehouse / ANALYSTS_DB)
        _swap(restricted_tmp, warehouse / RESTRICTED_DB)
        record_generation(warehouse, referenced)
    finally:
        for leftover in (analysts_tmp, restricted_tmp):
            leftover.unlink(missing_ok=True)
            leftover.with_name(leftover.name + ".wal").unlink(missing_ok=True)
    return counts


def _rows(store: WorkStore, parts) -> int:
    return sum(pq.ParquetFile(store.root / p).metadata.num_rows for p in parts)


def _seen_sql(feed: str, source: str) -> str:
    """The (id_number, name, county_code, delivered_on) rows of one feed that the person index is made of."""
    by_name = FEEDS[feed].by_name
    rows = (f"SELECT id_number, {'name' if 'name' in by_name else 'NULL'} AS name, "
            f"coalesce({'county_code' if 'county_code' in by_name else 'NULL'}, file_county) AS county_code, delivered_on "
            f"FROM ({source}) WHERE id_number IS NOT NULL")
    if feed == "civil_roster":  # household heads are persons too
        rows += f" UNION ALL SELECT head_id_number, NULL, county_code, delivered_on FROM ({source})"
    return rows


def _person_feeds() -> list[str]:
    return [f for f, spec in FEEDS.items() if "id_number" in spec.by_name or f == "civil_roster"]


# One row per person of a set of parts: the newest name and county with the (delivered_on, value) they won by,
# so that the state of some parts merged with the rows of further parts gives the index of them all.
# arg_max skips rows whose value is NULL; the winning row's day is the newest day among the rows with a
# value (the day comes first in the ordering), so the `_on` columns are a plain max over those rows.
_PERSON_STATE_AGG = """arg_max(name, ({on}, name)) FILTER (WHERE name IS NOT NULL) AS name,
       max({on}) FILTER (WHERE name IS NOT NULL) AS name_on,
       arg_max(county_code, ({con}, county_code)) AS county_code,
       max({con}) FILTER (WHERE county_code IS NOT NULL) AS county_on"""

# The saved state merged with the state of the added parts (`person_added`): one join, each column taken from the
# side whose (day, value) is larger, as `_PERSON_STATE_AGG` over all their rows would choose; a person only one
# side knows keeps that side's row. (Grouping the union of both sides' rows again cost three times as much.)
_MERGE_PERSON_STATE = """
    WITH j AS (
        SELECT coalesce(s.id_number, a.id_number) AS id_number, s.person_key,
               a.name IS NULL OR (s.name IS NOT NULL AND (s.name_on, s.name) > (a.name_on, a.name)) AS name_kept,
               a.county_code IS NULL
                   OR (s.county_code IS NOT NULL AND (s.county_on, s.county_code) > (a.county_on, a.county_code))
                   AS county_kept,
               s.name AS s_name, s.name_on AS s_name_on, a.name AS a_name, a.name_on AS a_name_on,
               s.county_code AS s_county, s.county_on AS s_county_on, a.county_code AS a_county, a.county_on AS a_county_on
        FROM {state} AS s FULL JOIN person_added AS a ON a.id_number = s.id_number
    )
    SELECT id_number, person_key,
           CASE WHEN name_kept THEN s_name ELSE a_name END AS name,
           CASE WHEN name_kept THEN s_name_on ELSE a_name_on END AS name_on,
           CASE WHEN county_kept THEN s_county ELSE a_county END AS county_code,
           CASE WHEN county_kept THEN s_county_on ELSE a_county_on END AS county_on
    FROM j
"""

PERSON_STATE_DIR = "person_index"  # under work/: identified, read only by the publishing run
PERSON_STATE_VERSION = "1"  # bump when the state's meaning changes: older states are then ignored
PERSON_STATES_KEPT = 2


def _state_tag(pseudonym_key: str) -> str:
    return f"v{PERSON_STATE_VERSION}-{_key_tag(pseudonym_key)}"


def _person_state_base(folder: Path, tag: str, parts: set[str]) -> tuple[Path, set[str]] | None:
    """The saved person state covering the most of `parts` and nothing else (None: start from no state)."""
    best = None
    for note in folder.glob(f"{tag}.*.json"):
        data = note.with_suffix(".parquet")
        try:
            covered = set(json.loads(note.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
        if data.exists() and covered <= parts and (best is None or len(covered) > len(best[1])):
            best = (data, covered)
    return best


def _save_person_state(con, folder: Path, tag: str, parts: set[str]) -> None:
    """Keep the state of these parts for the next night (Parquet first, then the note that makes it usable)."""
    folder.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    stem = f"{tag}.{time.time_ns()}"
    data, note = folder / f"{stem}.parquet", folder / f"{stem}.json"
    tmp = temporary_path(folder / stem)
    try:
        con.execute(f"COPY person_state TO {sql_text(str(tmp))} (FORMAT parquet, COMPRESSION zstd)")
        os.replace(tmp, data)
        tmp.write_text(json.dumps(sorted(parts)), encoding="utf-8")
        os.replace(tmp, note)
    finally:
        tmp.unlink(missing_ok=True)
    notes = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in notes[PERSON_STATES_KEPT:]:  # a few recent states: a replay of an older day starts from scratch
        old.unlink(missing_ok=True)
        old.with_suffix(".parquet").unlink(missing_ok=True)
    for stray in folder.glob("*.parquet"):
        if not stray.with_suffix(".json").exists():
            stray.unlink(missing_ok=True)


def _person_index(con, store: WorkStore, manifests: dict[str, Staging], pseudonym_key: str) -> None:
    """`person_index` (person_key → ID number, newest name and county) at the cost of the parts added since last night.

    The index is an aggregate over every staged row with an ID number. The state of the parts indexed
    last time (kept under work/, with the list of those parts) is merged with the rows of the parts
    added since, and keys are computed for new ID numbers only. When a part went away (a corrected
    file, a replay of an older day) no saved state fits and the index is built from every part.
    """
    root = store.root
    parts = {p for f in _person_feeds() for p in manifests[f].parts}
    folder = root / PERSON_STATE_DIR
    tag = _state_tag(pseudonym_key)
    base = _person_state_base(folder, tag, parts)
    covered = base[1] if base else set()
    new = []
    for f in _person_feeds():
        added = [str(root / p) for p in manifests[f].parts if p not in covered]
        if added:
            new.append(_seen_sql(f, f"SELECT * FROM read_parquet({sql_list(added)}, union_by_name = true)"))
    if base and not new:
        con.execute(f"CREATE TEMP TABLE person_state AS SELECT * FROM read_parquet({sql_text(str(base[0]))})")
    else:
        rows = " UNION ALL ".join(new) if new else (
            "SELECT NULL::VARCHAR AS id_number, NULL::VARCHAR AS name, NULL::VARCHAR AS county_code, "
            "NULL::DATE AS delivered_on WHERE false")
        added = (f"SELECT id_number, NULL::VARCHAR AS person_key, {_PERSON_STATE_AGG.format(on='delivered_on', con='delivered_on')} "
                 f"FROM ({rows}) WHERE id_number IS NOT NULL GROUP BY id_number")
        if base:
            con.execute(f"CREATE TEMP TABLE person_added AS {added}")
            merged = _MERGE_PERSON_STATE.format(state=f"read_parquet({sql_text(str(base[0]))})")
        else:
            merged = added
        con.execute(  # keys for the new ID numbers only: CASE computes the HMAC for the rows without one
            f"""CREATE TEMP TABLE person_state AS
                SELECT id_number, CASE WHEN person_key IS NULL THEN pkey(id_number) ELSE person_key END AS person_key,
                       name, name_on::DATE AS name_on, county_code, county_on::DATE AS county_on
                FROM ({merged})"""
        )
        _save_person_state(con, folder, tag, parts)
    # by county, the way caseworkers look persons up; sorting by the key too cost more than the rest of the index
    con.execute("""CREATE TABLE person_index AS
                   SELECT person_key, id_number, name, county_code FROM person_state ORDER BY county_code""")
    con.execute("DROP TABLE person_state")
    con.execute("DROP TABLE IF EXISTS person_added")


def _build_restricted(con, store: WorkStore, manifests: dict[str, Staging], tables: dict[str, Path], flags: Path | None,
                      pseudonym_key: str) -> None:
    """Identified indexes for caseworkers: key → ID number and name, household → members."""
    root = store.root
    staging = {f: m.relation_sql(root) for f, m in manifests.items()}
    _person_index(con, store, manifests, pseudonym_key)
    con.execute(
        f"""CREATE TABLE household_index AS
            SELECT {household_key_sql('household_id')} AS household_key, 'civil_roster' AS source,
                   file_county AS county_code, household_id, pkey(id_number) AS person_key, id_number, relation
            FROM ({staging['civil_roster']}) WHERE is_latest
            UNION ALL
            SELECT {household_key_sql('rural_household_id')}, 'rural_monitoring', file_county, rural_household_id,
                   pkey(id_number), id_number, relation
            FROM ({staging['rural_monitoring']}) WHERE is_latest
            ORDER BY 1, 5"""
    )
    quarantine = [p for m in manifests.values() for p in m.quarantine_paths(root)]
    if quarantine:
        zh = "reasons_zh" if any("reasons_zh" in pq.read_schema(p).names for p in quarantine) else "NULL::VARCHAR"
        con.execute(
            f"""CREATE TABLE rejected_records AS
               SELECT feed, source_file AS file_name, source_row AS row_number, reasons, {zh} AS reasons_zh, record,
                      extra_columns
               FROM read_parquet({sql_list(quarantine)}, union_by_name = true) ORDER BY feed, file_name, row_number"""
        )
    else:
        con.execute("CREATE TABLE rejected_records (feed VARCHAR, file_name VARCHAR, row_number BIGINT, reasons VARCHAR, "
                    "reasons_zh VARCHAR, record VARCHAR, extra_columns VARCHAR)")
    if "caseworker_flags" in tables and flags is not None:
        # the caseworkers' list: every flag that still needs attention, with who it is about
        con.execute(
            f"""CREATE TABLE caseworker_flags AS
               SELECT f.flag_id, f.rule_id, f.rule_name, {rule_name_zh_sql('f.rule_id')} AS rule_name_zh,
                      {check_zh_sql('f.rule_id')} AS check_zh, f.kind, f.level, f.status, f.overdue, f.period,
                      f.first_seen_on, f.last_seen_on, s.subject_type, coalesce(s.county_code, f.county_code) AS county_code,
                      s.id_number, p.name, s.household_id, f.evidence
               FROM read_parquet($flags) AS f
               JOIN read_parquet($subjects) AS s USING (flag_id)
               LEFT JOIN person_index AS p USING (id_number)
               WHERE f.status IN ('open', 'confirmed')
               ORDER BY CASE f.level WHEN '红' THEN 1 WHEN '橙' THEN 2 ELSE 3 END, f.county_code, f.rule_id""",
            {"flags": str(flags), "subjects": str(tables["caseworker_flags"])},
        )


# ---- generations of the analysts' parts ---------------------------------------------------------

GENERATIONS = "generations"


def record_generation(warehouse: Path, parts: list[str]) -> Path:
    """Note which parts the publication just swapped in refers to (kept while a reader may hold it).

    The parts are named relative to `published/`: a note is a third of the size it is with full paths,
    and a night keeps one for every publication of the retention period.
    """
    base = warehouse / PUBLISHED_DIR
    folder = base / GENERATIONS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns()}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    named = {Path(p).relative_to(base).as_posix() if Path(p).is_relative_to(base) else str(p) for p in parts}
    tmp.write_text(json.dumps(sorted(named)), encoding="utf-8")
    os.replace(tmp, path)
    return path


def _noted_parts(warehouse: Path, note: Path) -> set[str]:
    """The full paths a generation note names (notes written before 2026-11-29 hold full paths)."""
    base = warehouse / PUBLISHED_DIR
    return {p if os.path.isabs(p) else str(base / p) for p in json.loads(note.read_text(encoding="utf-8"))}


def prune_published(warehouse: Path, keep_seconds: float) -> list[Path]:
    """Remove analysts' parts no publication of the last `keep_seconds` refers to, and notes no longer needed.

    A reader who opened an older lowincome.duckdb reads that publication's parts through its views;
    they stay for the retention period (LOWINCOME_RETENTION_DAYS), and the newest publication's parts
    always stay. A note whose every part a newer note also names protects nothing the newer one does
    not protect for longer, so it goes too: a night that published the same parts as the night before
    leaves one note, not two. Call under the warehouse lock.
    """
    folder = warehouse / PUBLISHED_DIR / GENERATIONS
    notes = sorted(folder.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    if not notes:
        return []
    cutoff = time.time_ns() - int(keep_seconds * 1e9)
    recent = [n for n in notes[:-1] if n.stem.isdigit() and int(n.stem) >= cutoff] + [notes[-1]]
    keep: set[str] = set()
    keep_notes: list[Path] = []
    for note in reversed(recent):  # newest first: `keep` holds what the newer notes protect
        try:
            named = _noted_parts(warehouse, note)
        except (OSError, ValueError):
            return []  # an unreadable note: remove nothing rather than a part someone may read
        if not keep_notes or not named <= keep:
            keep_notes.append(note)
            keep |= named
    removed = []
    for kind in ("staging", "quarantine", "timeline"):  # timeline: lowincome/marts.py
        for part in (warehouse / PUBLISHED_DIR / kind).glob("*/*.parquet"):
            if str(part) not in keep:
                part.unlink(missing_ok=True)
                removed.append(part)
    for note in notes:
        if note not in keep_notes:
            note.unlink(missing_ok=True)
            removed.append(note)
    return removed
