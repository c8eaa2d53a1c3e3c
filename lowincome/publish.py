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
from .errors import ConfigError
from .feeds import FEEDS, FeedSpec
from .privacy import PRIVATE_DIR_MODE, install_key_macro
from .staging import Staging, sql_list, sql_text
from .workstore import WorkStore

ANALYSTS_DB = "lowincome.duckdb"
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


def analyst_copy_sql(spec: FeedSpec, columns: list[str], source: str) -> str:
    """SELECT of the analysts' copy of one part, each key computed once per distinct value.

    The pseudonymous key is an HMAC (two SHA-256 per value): a claims file repeats each person many
    times, so keying the distinct values and joining them back costs a fraction of keying every row.
    """
    cols = _analyst_columns(spec, columns)
    keyed = [(i, sql) for i, (sql, _, key) in enumerate(cols) if key]
    ctes = [f"src AS (SELECT * FROM read_parquet({source}))"]
    joins, select = [], []
    for i, sql in keyed:
        ctes.append(f"k{i} AS (SELECT v, pkey(v) AS k FROM (SELECT DISTINCT ({sql}) AS v FROM src) WHERE v IS NOT NULL)")
        joins.append(f"LEFT JOIN k{i} ON k{i}.v = ({sql})")  # k<i> has only v and k: the other names are src's
    for i, (sql, alias, key) in enumerate(cols):
        if key:
            select.append(f"k{i}.k AS {alias}")
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
    _public_dir(target.parent)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        con.execute(f"COPY ({select_sql}) TO '{tmp}' (FORMAT parquet, COMPRESSION zstd)")
        os.chmod(tmp, PART_MODE)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def analyst_parts(con, store: WorkStore, staging: Staging, pseudonym_key: str) -> list[str]:
    """The analysts' copy of every part of `staging` (pseudonymous keys, no names, no free text), made once each.

    A part is immutable (its name carries the delivered file's content and the code that read it), so
    its copy is too: a night copies only the parts it has not published before.
    """
    spec = FEEDS[staging.feed]
    tag = _key_tag(pseudonym_key)
    folder = store.warehouse / PUBLISHED_DIR / "staging" / staging.feed
    out = []
    for rel in staging.parts or (staging.empty,):
        source = store.root / rel
        target = folder / f"{Path(rel).stem}.{tag}.parquet"
        if not target.exists():
            cols = [f.name for f in pq.read_schema(source)]
            _copy_part(con, analyst_copy_sql(spec, cols, sql_text(str(source))), target)
        out.append(str(target))
    return out


_QUARANTINE_COLUMNS = ("feed, source_file AS file_name, source_row AS row_number, file_sha256, delivered_on, "
                       "reasons, reason_count, record_masked AS record")


def analyst_quarantine(con, store: WorkStore, staging: Staging) -> list[str]:
    """The analysts' copy of every quarantine part: the masked record only."""
    folder = store.warehouse / PUBLISHED_DIR / "quarantine" / staging.feed
    out = []
    for rel in staging.quarantine:
        target = folder / f"{Path(rel).stem}.parquet"
        if not target.exists():
            _copy_part(con, f"SELECT {_QUARANTINE_COLUMNS} FROM read_parquet({sql_text(str(store.root / rel))})", target)
        out.append(str(target))
    return out


_EMPTY_QUARANTINE = ("SELECT NULL::VARCHAR feed, NULL::VARCHAR file_name, NULL::BIGINT row_number, NULL::VARCHAR file_sha256, "
                     "NULL::DATE delivered_on, NULL::VARCHAR reasons, NULL::INTEGER reason_count, NULL::VARCHAR record "
                     "WHERE false")


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
        con = _build(analysts_tmp)
        try:
            configure_duckdb(con, settings)
            install_key_macro(con, pseudonym_key)
            for schema in ("staging", "quarantine", "audit", "mart"):
                con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
            quarantine: list[str] = []
            for spec in FEEDS.values():
                staging = manifests[spec.name]
                parts = analyst_parts(con, store, staging, pseudonym_key)
                referenced += parts
                con.execute(f"CREATE VIEW staging.{spec.name} AS {staging.relation_sql(store.root, parts)}")
                counts[f"staging.{spec.name}"] = staging.rows
                quarantine += analyst_quarantine(con, store, staging)
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
                con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_parquet($p)", {"p": str(path)})
            con.execute(
                "CREATE TABLE audit.publication AS SELECT $as_of::DATE AS as_of, $at::TIMESTAMP AS published_at",
                {"as_of": as_of, "at": datetime.now()},
            )
            con.execute("CHECKPOINT")
        finally:
            con.close()

        rcon = _build(restricted_tmp)
        try:
            install_key_macro(rcon, pseudonym_key)
            configure_duckdb(rcon, settings)
            _build_restricted(rcon, store, manifests, restricted_tables or {}, (extra_tables or {}).get("mart.flags"))
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


def _build_restricted(con, store: WorkStore, manifests: dict[str, Staging], tables: dict[str, Path], flags: Path | None) -> None:
    """Identified indexes for caseworkers: key → ID number and name, household → members."""
    root = store.root
    staging = {f: m.relation_sql(root) for f, m in manifests.items()}
    seen = " UNION ALL ".join(
        f"SELECT id_number, {'name' if 'name' in FEEDS[f].by_name else 'NULL'} AS name, "
        f"coalesce({'county_code' if 'county_code' in FEEDS[f].by_name else 'NULL'}, file_county) AS county_code, delivered_on "
        f"FROM ({sql}) WHERE id_number IS NOT NULL"
        for f, sql in staging.items() if "id_number" in FEEDS[f].by_name)
    con.execute(
        f"""CREATE TABLE person_index AS
           WITH seen AS (
               {seen}
               UNION ALL
               SELECT head_id_number, NULL, county_code, delivered_on FROM ({staging['civil_roster']})
           )
           SELECT pkey(id_number) AS person_key, id_number,
                  arg_max(name, (delivered_on, name)) FILTER (WHERE name IS NOT NULL) AS name,
                  arg_max(county_code, (delivered_on, county_code)) AS county_code  -- ties: one answer every run
           FROM seen WHERE id_number IS NOT NULL GROUP BY id_number ORDER BY county_code, person_key"""
    )
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
        con.execute(
            f"""CREATE TABLE rejected_records AS
               SELECT feed, source_file AS file_name, source_row AS row_number, reasons, record, extra_columns
               FROM read_parquet({sql_list(quarantine)}, union_by_name = true) ORDER BY feed, file_name, row_number"""
        )
    else:
        con.execute("CREATE TABLE rejected_records (feed VARCHAR, file_name VARCHAR, row_number BIGINT, reasons VARCHAR, "
                    "record VARCHAR, extra_columns VARCHAR)")
    if "caseworker_flags" in tables and flags is not None:
        # the caseworkers' list: every flag that still needs attention, with who it is about
        con.execute(
            """CREATE TABLE caseworker_flags AS
               SELECT f.flag_id, f.rule_id, f.rule_name, f.kind, f.level, f.status, f.overdue, f.period,
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
    """Note which parts the publication just swapped in refers to (kept while a reader may hold it)."""
    folder = warehouse / PUBLISHED_DIR / GENERATIONS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.time_ns()}.json"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(sorted(set(parts))), encoding="utf-8")
    os.replace(tmp, path)
    return path


def prune_published(warehouse: Path, keep_seconds: float) -> list[Path]:
    """Remove analysts' parts no publication of the last `keep_seconds` refers to, and older generation notes.

    A reader who opened an older lowincome.duckdb reads that publication's parts through its views;
    they stay for the retention period (LOWINCOME_RETENTION_DAYS), and the newest publication's parts
    always stay. Call under the warehouse lock.
    """
    folder = warehouse / PUBLISHED_DIR / GENERATIONS
    notes = sorted(folder.glob("*.json"), key=lambda p: int(p.stem) if p.stem.isdigit() else 0)
    if not notes:
        return []
    cutoff = time.time_ns() - int(keep_seconds * 1e9)
    keep_notes = [n for n in notes[:-1] if n.stem.isdigit() and int(n.stem) >= cutoff] + [notes[-1]]
    keep: set[str] = set()
    for note in keep_notes:
        try:
            keep.update(json.loads(note.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return []  # an unreadable note: remove nothing rather than a part someone may read
    removed = []
    for kind in ("staging", "quarantine"):
        for part in (warehouse / PUBLISHED_DIR / kind).glob("*/*.parquet"):
            if str(part) not in keep:
                part.unlink(missing_ok=True)
                removed.append(part)
    for note in notes:
        if note not in keep_notes:
            note.unlink(missing_ok=True)
            removed.append(note)
    return removed
