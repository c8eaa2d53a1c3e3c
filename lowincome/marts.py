"""Two marts built where the others are published: mart.rule_effectiveness and mart.household_timeline.

`mart.rule_effectiveness` is small (rule x county x month raised): it is computed from the
publication's own mart.flags inside the analysts' database being built (sql/marts/rule_effectiveness.sql).

`mart.household_timeline` has one row per dated event of every household, so it is never a table
copied into lowincome.duckdb: it is a view over pseudonymous Parquet files under
`<warehouse>/published/timeline/`, written like the analysts' staging parts (lowincome/publish.py):

- `subsidy_payments/`, `medical_claims/`: the payment and large-claim events of ONE delivered file each
  (sql/marts/household_timeline_payments.sql, _claims.sql), written once per staging part, keyed by
  person only; a night computes the files it delivered, not the history. The part name carries the
  staging part (its content and the delivery prefix), the pseudonym key's tag and the SQL and
  threshold in force, so a new key, a changed SQL or a new yellow amount makes new parts.
- `map/`: person_key -> household_key of the publication's day (sql/marts/person_household.sql);
  the per-file events are joined to it when the view is read, so a household change never rewrites them.
- `night/`: the events of the latest snapshots and the 人社 history (sql/marts/household_timeline.sql),
  set-based in one COPY that spills to disk if it must. With `map/`, a function of the parts of the
  snapshot feeds and the 人社 history only: `inputs/<tag>.json` names the two files built from the
  parts a tag stands for, and a night whose tag was built before (a re-run, a night that delivered
  only payments or claims) keeps them instead of building them again.
- `flags/`: the flags' events (sql/marts/household_timeline_flags.sql), rebuilt each night too, but a
  file of their own: a night that delivers nothing new may still resolve a flag or record an outcome,
  and then writes this small file and keeps the snapshot events' file (both named by their content).

The builder reads identified staging in a private connection (like the engine) and writes keys only:
no ID number or name leaves it. Every file it returns is referenced by the publication's generation
note, so `prune_published` keeps what a reader's view still names.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from .keys import install_key_macro
from .rules.catalog import MODELS, RULES, SQL_DIR
from .staging import Staging, sql_list, sql_text
from .temporaries import write_text_atomic

log = logging.getLogger(__name__)

MARTS_SQL = SQL_DIR / "marts"
TIMELINE_DIR = "timeline"  # under <warehouse>/published/
PER_FILE = {"subsidy_payments": "household_timeline_payments.sql", "medical_claims": "household_timeline_claims.sql"}
TIMELINE_ORDER = "household_key, event_date, event_rank, person_key, source_file, source_row, flag_id"

# mart.flags columns the marts read, for a publication that has no flags table (an empty lifecycle)
_EMPTY_FLAGS = ("SELECT NULL::VARCHAR AS flag_id, NULL::VARCHAR AS rule_id, NULL::VARCHAR AS level, "
                "NULL::VARCHAR AS subject_type, NULL::VARCHAR AS subject_key, NULL::VARCHAR AS county_code, "
                "NULL::DATE AS first_seen_on, NULL::DATE AS last_seen_on, NULL::VARCHAR AS status, "
                "NULL::VARCHAR AS outcome, NULL::DATE AS outcome_decided_on, NULL::BOOLEAN AS overdue WHERE false")


def read_sql(name: str) -> str:
    return (MARTS_SQL / name).read_text(encoding="utf-8")


def _rule_names() -> pl.DataFrame:
    return pl.DataFrame({"rule_id": [r.rule_id for r in RULES], "rule_name": [r.name for r in RULES],
                         "rule_name_zh": [r.name_zh for r in RULES]})


def _flags_source(flags_path: Path | None) -> str:
    return f"SELECT * FROM read_parquet({sql_text(str(flags_path))})" if flags_path is not None else _EMPTY_FLAGS


def rule_effectiveness_sql(con, flags_source: str, as_of: date) -> duckdb.DuckDBPyRelation:
    """The mart's rows over `flags_source` (a SELECT of mart.flags), as a relation of `con`."""
    con.execute(f"CREATE OR REPLACE TEMP VIEW flags AS {flags_source}")
    con.register("rule_names", _rule_names().to_arrow())
    return con.sql(read_sql("rule_effectiveness.sql"), params={"as_of": as_of})


def create_rule_effectiveness(con, flags_path: Path | None, as_of: date) -> None:
    """CREATE TABLE mart.rule_effectiveness in the analysts' database being built."""
    rel = rule_effectiveness_sql(con, _flags_source(flags_path), as_of)
    rel.create("mart.rule_effectiveness")
    con.execute("DROP VIEW flags")
    con.unregister("rule_names")


# ---- the household timeline ------------------------------------------------------------------


@dataclass
class Timeline:
    per_file: list[str]  # person events of each delivered payments / claims file
    household_map: str  # person_key -> household_key of the day
    night: str  # the snapshots' and the 人社 history's events, already per household
    flag_events: str  # the flags' events, already per household
    new_files: int = 0  # per-file parts written by this publication (the others were kept from earlier nights)
    seconds: dict[str, float] | None = None  # wall time of the per-file parts and of the nightly part

    @property
    def files(self) -> list[str]:
        return [*self.per_file, self.household_map, self.night, self.flag_events]


def _tag(*texts: str) -> str:
    return hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:12]


def _content_addressed(con, sql: str, folder: Path) -> Path:
    """Write a SELECT's result once under the name of its content: a night that changes nothing adds no file.

    The nightly parts are rebuilt every night; named by their bytes, an unchanged night finds the file it
    would write already there (written once, read-only, never changed) and keeps it.
    """
    from .publish import _copy_part

    scratch = folder / f".building.{time.time_ns()}.parquet"
    _copy_part(con, sql, scratch)
    try:
        with open(scratch, "rb") as f:
            digest = hashlib.file_digest(f, "sha256").hexdigest()[:24]
        target = folder / f"{digest}.parquet"
        if target.exists():
            scratch.unlink()
        else:
            scratch.rename(target)
    finally:
        scratch.unlink(missing_ok=True)
    return target


def _yellow_table(settings, as_of: date) -> pl.DataFrame:
    """county_code -> medical_yellow_amount in force on `as_of` ('*': the default block)."""
    from .rules.policy import load_policy

    policy = load_policy(settings.policy)
    return policy.table([], as_of).select("county_code", "medical_yellow_amount").sort("county_code")


def _per_file_parts(con, root: Path, as_of: date, manifests: dict[str, Staging], settings, key_tag: str,
                    folder: Path) -> tuple[list[str], int]:
    """The person events of each staged payments / claims part, written once per part (named by part, SQL and
    key): (their paths, how many were written now). `con` has the key macro installed."""
    from .publish import _copy_part  # written once, read-only, swapped in whole: as the staging parts

    yellow = _yellow_table(settings, as_of)
    con.register("yellow", yellow.to_arrow())
    per_file, new_files = [], 0
    for feed, name in PER_FILE.items():
        sql = read_sql(name)
        extra = json.dumps(yellow.rows()) if feed == "medical_claims" else ""
        tag = _tag(key_tag, sql, extra)
        staging = manifests[feed]
        for rel in staging.parts or (staging.empty,):
            target = folder / feed / f"{Path(rel).stem}.{tag}.parquet"
            if not target.exists():
                con.execute(f"CREATE OR REPLACE TEMP VIEW part AS SELECT * FROM read_parquet({sql_text(str(root / rel))})")
                _copy_part(con, sql, target)
                new_files += 1
            per_file.append(str(target))
    con.execute("DROP VIEW IF EXISTS part")
    con.unregister("yellow")
    return per_file, new_files


def write_per_file_parts(store, as_of: date, manifests: dict[str, Staging], pseudonym_key: str, settings,
                         key_tag: str, folder: Path) -> int:
    """The timeline's per-file parts ahead of the publication (publish.prepare_analysts_parts); returns how many were new."""
    from .config import configure_duckdb

    con = configure_duckdb(duckdb.connect(), settings)
    try:
        install_key_macro(con, pseudonym_key)
        return _per_file_parts(con, store.root, as_of, manifests, settings, key_tag, folder)[1]
    finally:
        con.close()


def build_timeline(store, as_of: date, manifests: dict[str, Staging], pseudonym_key: str, settings, key_tag: str,
                   folder: Path, flags_path: Path | None, trend_path: Path | None) -> Timeline:
    """Write the timeline's Parquet files for `as_of` under `folder` (published/timeline/) and name them.

    Cost: the per-file events of the staging parts not seen before, plus one set-based pass over the
    latest snapshots, the 人社 history and the flags. `key_tag` names the pseudonym key (publish._key_tag).
    """
    from .config import configure_duckdb

    root = store.root
    started = time.perf_counter()
    con = configure_duckdb(duckdb.connect(), settings)
    try:
        install_key_macro(con, pseudonym_key)
        per_file, new_files = _per_file_parts(con, root, as_of, manifests, settings, key_tag, folder)
        per_file_done = time.perf_counter()

        inputs = _snapshot_inputs_tag(manifests, root, key_tag, as_of)
        kept = _kept_snapshot_parts(folder, inputs)
        if kept is not None:  # the snapshots and the 人社 history are those of a night already built
            household_map, night = kept
        else:
            household_map = _build_map(con, root, manifests, folder, as_of)
        con.execute(f"CREATE TEMP TABLE person_household AS SELECT * FROM read_parquet({sql_text(str(household_map))})")
        con.execute(f"CREATE TEMP VIEW flags AS {_flags_source(flags_path)}")
        if trend_path is not None:
            con.execute(f"CREATE TEMP TABLE run_days AS SELECT DISTINCT as_of FROM read_parquet({sql_text(str(trend_path))})")
        else:
            con.execute("CREATE TEMP TABLE run_days AS SELECT DISTINCT as_of FROM flags")
        con.execute("SET preserve_insertion_order = true")  # the file is written in the timeline's order
        if kept is None:
            night = _content_addressed(con, read_sql("household_timeline.sql"), folder / "night")
            _remember_snapshot_parts(folder, inputs, household_map, night)
        flag_events = _content_addressed(con, read_sql("household_timeline_flags.sql"), folder / "flags")
    finally:
        con.close()
    done = time.perf_counter()
    timeline = Timeline(per_file, str(household_map), str(night), str(flag_events), new_files,
                        {"per_file": round(per_file_done - started, 2), "night": round(done - per_file_done, 2)})
    log.info("household timeline: %d per-file part(s), %d new (%.1fs); nightly parts %.1fs%s, %s + %s bytes (flags)",
             len(per_file), new_files, per_file_done - started, done - per_file_done,
             " (snapshot events of identical inputs kept)" if kept is not None else "", f"{night.stat().st_size:,}",
             f"{flag_events.stat().st_size:,}")
    return timeline


# ---- the snapshot events, kept while their inputs stay the same -----------------------------------

SNAPSHOT_SQL = ("person_household.sql", "household_timeline.sql")  # under sql/marts/, with every model they read
INPUTS_DIR = "inputs"  # under the timeline folder: input tag -> the map and night files built from those inputs
INPUTS_KEPT = 8
SNAPSHOT_VERSION = "1"  # bump when the map or the snapshot events change meaning without their SQL changing


def _snapshot_sql_texts() -> list[str]:
    return ([(SQL_DIR / "models" / f"{m}.sql").read_text(encoding="utf-8") for m in MODELS]
            + [read_sql(name) for name in SNAPSHOT_SQL])


def _snapshot_inputs_tag(manifests: dict[str, Staging], root: Path, key_tag: str, as_of: date) -> str:
    """What the map and the snapshot events are a function of: their SQL, the key, and the parts they read.

    The parts are those of every feed the SQL names (`stg_<feed>`), as the staging's relation names them
    (content-addressed part files, with which rows are the latest snapshot), and the as-of day only if
    some of the SQL reads it (none does today). So a night that delivers no roster, rural-monitoring,
    certificate, death or 人社 file, and a re-run, get the tag of the night before.
    """
    texts = _snapshot_sql_texts()
    feeds = sorted({f for text in texts for f in re.findall(r"\bstg_([a-z_]+)", text)})
    day = as_of.isoformat() if any("$as_of" in text for text in texts) else ""
    return _tag(SNAPSHOT_VERSION, key_tag, day, *texts, *(f"{f}={manifests[f].relation_sql(root)}" for f in feeds))


def _kept_snapshot_parts(folder: Path, inputs: str) -> tuple[Path, Path] | None:
    """The map and snapshot-events files built from `inputs` on an earlier night, if both are still there."""
    note = folder / INPUTS_DIR / f"{inputs}.json"
    try:
        built = json.loads(note.read_text(encoding="utf-8"))
        household_map, night = folder / built["map"], folder / built["night"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (household_map.is_file() and night.is_file()):
        return None
    note.touch()  # recently used: kept by the pruning below
    return household_map, night


def _remember_snapshot_parts(folder: Path, inputs: str, household_map: Path, night: Path) -> None:
    notes = folder / INPUTS_DIR
    notes.mkdir(parents=True, exist_ok=True)
    write_text_atomic(notes / f"{inputs}.json", json.dumps({"map": str(household_map.relative_to(folder)),
                                                            "night": str(night.relative_to(folder))}))
    for old in sorted(notes.glob("*.json"), key=lambda p: p.stat().st_mtime_ns, reverse=True)[INPUTS_KEPT:]:
        old.unlink(missing_ok=True)


def _build_map(con, root: Path, manifests: dict[str, Staging], folder: Path, as_of: date) -> Path:
    """The models over identified staging, then person → household of the day (content-addressed)."""
    for feed, staging in manifests.items():
        con.execute(f"CREATE TEMP VIEW stg_{feed} AS {staging.relation_sql(root)}")
    params = {"as_of": as_of}
    for model in MODELS:
        sql = (SQL_DIR / "models" / f"{model}.sql").read_text(encoding="utf-8")
        con.execute(f"CREATE TEMP TABLE {model} AS {sql}", {k: v for k, v in params.items() if f"${k}" in sql} or None)
    return _content_addressed(con, read_sql("person_household.sql"), folder / "map")


_PERSON_COLUMNS = ("person_key, event_date, event_rank, department, feed, event, event_zh, category, amount, "
                   "flag_id, source_file, source_row, source_rows")


def timeline_view_sql(timeline: Timeline, as_of: date) -> str:
    """The SELECT of mart.household_timeline over the timeline's files (literal paths: a view keeps its SQL)."""
    return f"""
        WITH per_file AS (
            SELECT {_PERSON_COLUMNS} FROM read_parquet({sql_list(timeline.per_file)}, union_by_name = true)
        ),
        households AS (SELECT * FROM read_parquet({sql_text(timeline.household_map)}))
        SELECT coalesce(h.household_key, e.person_key) AS household_key,
               coalesce(h.household_source, 'person') AS household_source,
               e.*, DATE '{as_of.isoformat()}' AS as_of
        FROM per_file AS e LEFT JOIN households AS h USING (person_key)
        UNION ALL BY NAME
        SELECT *, DATE '{as_of.isoformat()}' AS as_of
        FROM read_parquet({sql_list([timeline.night, timeline.flag_events])}, union_by_name = true)"""


COLUMN_ORDER = ("household_key", "household_source", "person_key", "event_date", "event_rank", "department", "feed",
                "event", "event_zh", "category", "amount", "flag_id", "source_file", "source_row", "source_rows", "as_of")


def create_timeline_view(con, timeline: Timeline, as_of: date) -> None:
    """The published view: `date` is the contract's name (outputs.md); `event_date`, the name first published, stays."""
    columns = ", ".join('event_date AS "date", event_date' if c == "event_date" else c for c in COLUMN_ORDER)
    con.execute(f"CREATE VIEW mart.household_timeline AS SELECT {columns} "
                f"FROM ({timeline_view_sql(timeline, as_of)}) ORDER BY {TIMELINE_ORDER}")


def timeline_folder(warehouse: Path) -> Path:
    from .publish import PUBLISHED_DIR

    return warehouse / PUBLISHED_DIR / TIMELINE_DIR
