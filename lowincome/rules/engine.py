"""Evaluate every rule for one as-of day over the day's staging files.

Runs in a private in-memory DuckDB on the identified staging data (the
working storage), binds `$as_of` and reads the policy from a table, never
from formatted SQL. The output carries pseudonymous keys for the analysts'
mart and, separately, the identified subject for the caseworkers' list.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import duckdb
import polars as pl

from ..config import Settings, configure_duckdb, load_settings
from ..errors import LowincomeError
from ..feeds import DEPARTMENT_FEEDS
from ..keys import install_key_macro
from .catalog import MODELS, RULES, SQL_DIR
from .policy import Policy
from .reuse import FRAMES, KeptResult
from .routing import Routing, county_in_group, group_staging, owned_predicate

class RuleError(LowincomeError):
    pass


FLAG_COLUMNS = ("flag_id", "rule_id", "rule_name", "kind", "level", "subject_type", "subject_key", "county_code",
                "period", "as_of", "evidence", "evidence_hash", "substance")

# One flag per continuing condition (rules.md, "What one flag is"): a payment rule's run of months goes on
# across at most this many months without any payment of the benefit (a late or missing monthly payment
# file, a payment made two months at once); a longer gap, or a month paid while the condition did not
# hold, ends the run, and a later month where it holds again starts a new flag. A definition of
# "continuous", the same everywhere, not a policy threshold (docs/rules.md "Runs").
RUN_GAP_MONTHS = 2
# Feeds whose quarantined rows make a person "not assessable" for rules that fire on absence
# (rules.md "Unknown is not absent"): the certificate register and the civil roster.
ABSENCE_FEEDS = ("disability_cert", "civil_roster")
NOT_ASSESSABLE_COLUMNS = {"rule_id": pl.String, "county_code": pl.String, "level": pl.String, "subject_key": pl.String}


@dataclass
class Evaluation:
    flags: pl.DataFrame  # one row per (rule, subject, period) that holds on the as-of day, keys only
    subjects: pl.DataFrame  # flag_id → identified subject (restricted: caseworkers only)
    timings: dict[str, float]
    households: pl.DataFrame  # person_key → household_key, county_code (keys only)
    roster_sizes: pl.DataFrame  # county_code → roster and monitoring sizes
    # flag_id → legacy_flag_id: the per-month flags of the earlier version a run's flag replaces (migration
    # of caseworkers' outcomes, docs/decisions.md "One flag per continuing condition")
    aliases: pl.DataFrame | None = None
    # rule_id, county_code, level, subject_key: subjects not flagged because a row the rule would read was
    # quarantined in the newest snapshot (rules.md "Unknown is not absent"); their earlier flags are carried
    not_assessable: pl.DataFrame | None = None

    def frames(self) -> dict[str, pl.DataFrame]:
        """The frames a result is kept as and handed between steps, by name (reuse.FRAMES)."""
        return {name: getattr(self, name) for name in FRAMES}

    @classmethod
    def from_frames(cls, frames: dict[str, pl.DataFrame], timings: dict[str, float]) -> "Evaluation":
        """The inverse of `frames`: a kept result, or a rules step's result read back."""
        return cls(frames["flags"], frames["subjects"], timings, frames["households"], frames["roster_sizes"],
                   frames["aliases"], frames["not_assessable"])


def read_sql(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def staging_views(con: duckdb.DuckDBPyConnection, staging: dict[str, Path | str]) -> None:
    """`stg_<feed>` views: over a Parquet file, or over a SELECT (the day's parts, `Staging.relation_sql`)."""
    for feed, source in staging.items():
        if isinstance(source, Path):
            con.read_parquet(str(source)).create_view(f"stg_{feed}")
        else:
            con.execute(f"CREATE VIEW stg_{feed} AS {source}")


def connect(staging: dict[str, Path | str], policy_table: pl.DataFrame | None, pseudonym_key: str,
            settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    """A private in-memory database bounded by LOWINCOME_MEMORY_LIMIT, spilling into working storage."""
    con = configure_duckdb(duckdb.connect(), settings or load_settings())
    install_key_macro(con, pseudonym_key)
    staging_views(con, staging)
    if policy_table is None:
        return con
    con.register("_policy", policy_table.to_arrow())
    con.execute("CREATE TABLE policy AS SELECT * FROM _policy")
    con.unregister("_policy")
    return con


def quarantined_sql(manifests: dict, root: Path) -> dict[str, str]:
    """Per absence feed, a SELECT of the ID numbers of rows quarantined in the newest snapshot of each county.

    `manifests` maps feeds to their `Staging`. The ID is read from the delivered record (`身份证号`),
    trimmed and upper-cased; a record whose ID is not an 18-character number after that (15 digits,
    shifted columns, garbage) cannot be matched to anybody and makes nobody not assessable.
    """
    from ..staging import sql_list, sql_text

    out = {}
    for feed in ABSENCE_FEEDS:
        m = manifests.get(feed)
        if m is None or not m.quarantine or not m.latest:
            continue
        out[feed] = (f"SELECT upper(trim(json_extract_string(record, '$.\"身份证号\"'))) AS id_number "
                     f"FROM read_parquet({sql_list(m.quarantine_paths(root))}, union_by_name = true) "
                     f"WHERE source_file IN ({', '.join(sql_text(n) for n in m.latest)})")
    return out


def evaluate(staging: dict[str, Path | str], policy: Policy, as_of: date, pseudonym_key: str,
             settings: Settings | None = None, kept: KeptResult | None = None,
             quarantined: dict[str, str] | None = None) -> Evaluation:
    """All rules as of `as_of`. `staging` maps each feed to its staging: a Parquet file or a SELECT over its parts.

    `settings` bound the memory and the spill folder; without them they are read from the environment.
    `kept`: where the result of these exact inputs is kept (`reuse.KeptResult.for_inputs`): read from
    there when an earlier run kept it, else evaluated and kept there.
    `quarantined`: per absence feed, a SELECT of the ID numbers quarantined in its newest snapshots
    (`quarantined_sql`); those persons are not assessable for the rules that fire on absence.
    """
    missing = [f for f in DEPARTMENT_FEEDS if f not in staging]
    if missing:
        raise ValueError(f"staging missing for {missing}")
    if kept is not None:
        t = time.perf_counter()
        frames = kept.load()
        if frames is not None:
            return Evaluation.from_frames(frames, {"reused": time.perf_counter() - t})
    evaluation = _evaluate(staging, policy, as_of, pseudonym_key, settings, quarantined or {})
    if kept is not None:
        kept.save(evaluation.frames())
    return evaluation


def parameters(policy_table: pl.DataFrame, as_of: date) -> dict[str, date]:
    """The values a rule's SQL may bind: `$as_of`, and constants derived from the policy table.

    `$medical_window_start`: the day before the longest medical look-back window in force in any
    county begins (a claim counts when settled after it). Every county's own window is within it, so a
    rule may add `settled_on > $medical_window_start` to its scan without changing its result: as a
    constant, DuckDB checks it against each Parquet row group's statistics and skips the claims of
    older parts (a history longer than the window is not read for W01). The policy table itself stays
    the rules' source of each county's value.
    """
    longest = int(policy_table["medical_lookback_days"].max())
    return {"as_of": as_of, "medical_window_start": as_of - timedelta(days=longest), "run_gap_months": RUN_GAP_MONTHS}


def bound(sql: str, values: dict) -> dict | None:
    """The parameters `sql` uses (DuckDB refuses unused ones)."""
    used = {k: v for k, v in values.items() if re.search(rf"\${k}\b", sql)}
    return used or None


def as_selects(staging: dict[str, Path | str]) -> dict[str, str]:
    """Each feed's staging as a SELECT (a Parquet file given by its path becomes a read of it)."""
    from ..staging import sql_text

    return {f: v if isinstance(v, str) else f"SELECT * FROM read_parquet({sql_text(str(v))})" for f, v in staging.items()}


def data_counties(staging: dict[str, Path | str], settings: Settings | None = None) -> list[str]:
    """Every county that delivered a row the rules may read, sorted: the policy table's counties."""
    con = connect(staging, None, "", settings)
    try:
        return _counties_in(con, staging)
    finally:
        con.close()


def _counties_in(con: duckdb.DuckDBPyConnection, feeds) -> list[str]:
    return sorted(r[0] for r in con.execute(" UNION ".join(
        f"SELECT DISTINCT file_county FROM stg_{f} WHERE file_county IS NOT NULL" for f in feeds)).fetchall())


def _evaluate(staging: dict[str, Path | str], policy: Policy, as_of: date, pseudonym_key: str,
              settings: Settings | None, quarantined: dict[str, str], counties: list[str] | None = None,
              step: tuple[Routing, int] | None = None) -> Evaluation:
    """Every rule over `staging`. `counties`: the policy table's counties (default: those in `staging`).
    `step`: (routing, group) when this is one county step of a split night (lowincome/rules/routing.py):
    `staging` is then the step's rows, and only the subjects and counties the step owns are returned."""
    if step is not None:
        staging = group_staging(as_selects(staging), *step)
    con = connect(staging, None, pseudonym_key, settings)
    parts = [f"SELECT '{feed}' AS feed, id_number FROM ({sql})" for feed, sql in quarantined.items() if feed in ABSENCE_FEEDS]
    con.execute("CREATE TABLE unassessable AS "
                + (" UNION ".join(parts) + " WHERE length(id_number) = 18" if parts else
                   "SELECT NULL::VARCHAR AS feed, NULL::VARCHAR AS id_number WHERE false"))
    t = time.perf_counter()
    if counties is None:
        counties = _counties_in(con, staging)
    table = policy.table(counties, as_of)
    con.register("_policy", table.to_arrow())
    con.execute("CREATE TABLE policy AS SELECT * FROM _policy")
    con.unregister("_policy")
    timings: dict[str, float] = {"policy": time.perf_counter() - t}
    values = parameters(table, as_of)
    try:
        for model in MODELS:
            t = time.perf_counter()
            sql = read_sql(SQL_DIR / "models" / f"{model}.sql")
            try:
                con.execute(f"CREATE TABLE {model} AS {sql}", bound(sql, values))
            except duckdb.Error as exc:
                raise RuleError(f"model {model} (sql/models/{model}.sql) failed: {str(exc).splitlines()[0]}") from None
            timings[f"model.{model}"] = time.perf_counter() - t
        parts = []
        for rule in RULES:
            t = time.perf_counter()
            sql = read_sql(rule.sql_path)
            try:
                con.execute(f"CREATE TABLE flags_{rule.rule_id} AS {sql}", bound(sql, values))
            except duckdb.Error as exc:
                raise RuleError(f"rule {rule.rule_id} ({rule.sql_path.name}) failed: {str(exc).splitlines()[0]}") from None
            parts.append(f"SELECT *, '{rule.name}' AS rule_name, '{rule.kind}' AS kind FROM flags_{rule.rule_id}")
            timings[f"rule.{rule.rule_id}"] = time.perf_counter() - t
        t = time.perf_counter()
        con.execute("CREATE TABLE flags_all AS " + " UNION ALL BY NAME ".join(parts))
        if "not_assessable" not in [c[0] for c in con.execute("DESCRIBE flags_all").fetchall()]:
            con.execute("ALTER TABLE flags_all ADD COLUMN not_assessable BOOLEAN")
        for column in ("substance", "legacy_ids"):
            if column not in [c[0] for c in con.execute("DESCRIBE flags_all").fetchall()]:
                con.execute(f"ALTER TABLE flags_all ADD COLUMN {column} VARCHAR[]")
        if step is not None:  # another step keeps the flags of subjects this one does not own
            con.execute(f"DELETE FROM flags_all WHERE NOT ({owned_predicate(*step)})")
        con.execute("CREATE TABLE flags_raw AS SELECT * FROM flags_all WHERE NOT coalesce(not_assessable, false)")
        not_assessable = pl.from_arrow(con.sql(
            """SELECT DISTINCT rule_id, county_code, level,
                      CASE WHEN subject_type = 'person' THEN pkey(subject_id)
                           ELSE pkey('household:' || subject_county || ':' || subject_id) END AS subject_key
               FROM flags_all WHERE coalesce(not_assessable, false)
               ORDER BY ALL""").to_arrow_table())
        con.execute(
            """CREATE TABLE flags AS
               SELECT pkey('flag|' || rule_id || '|' || subject_type || '|' || coalesce(subject_county, '') || '|'
                           || subject_id || '|' || period) AS flag_id,
                      rule_id, rule_name, kind, level, subject_type,
                      CASE WHEN subject_type = 'person' THEN pkey(subject_id)
                           ELSE pkey('household:' || subject_county || ':' || subject_id) END AS subject_key,
                      county_code, period, $as_of::DATE AS as_of, evidence::VARCHAR AS evidence,
                      md5(evidence::VARCHAR) AS evidence_hash,
                      -- what a dismissal is measured against (rules.md Lifecycle): the kinds of fact, sorted
                      coalesce(array_to_string(list_sort(list_distinct(substance)), '|'), '') AS substance,
                      legacy_ids, subject_id, subject_county
               FROM flags_raw""",
            {"as_of": as_of},
        )
        flags = pl.from_arrow(con.sql(
            f"SELECT {', '.join(FLAG_COLUMNS)} FROM flags ORDER BY rule_id, county_code, subject_key, period, flag_id"
        ).to_arrow_table())
        aliases = pl.from_arrow(con.sql(
            """WITH l AS (SELECT flag_id, unnest(legacy_ids) AS legacy FROM flags WHERE legacy_ids IS NOT NULL)
               SELECT DISTINCT flag_id, pkey('flag|' || legacy) AS legacy_flag_id FROM l"""
        ).to_arrow_table()).filter(pl.col("flag_id") != pl.col("legacy_flag_id")).sort("flag_id", "legacy_flag_id")
        subjects = pl.from_arrow(con.sql(
            """SELECT f.flag_id, f.subject_type, f.subject_county AS county_code,
                      CASE WHEN f.subject_type = 'person' THEN f.subject_id END AS id_number,
                      CASE WHEN f.subject_type = 'household' THEN f.subject_id END AS household_id
               FROM flags AS f ORDER BY flag_id"""
        ).to_arrow_table())
        households = pl.from_arrow(con.sql(
            # a household's key is computed once, not once per member: the HMAC is the cost here
            """WITH members AS (
                   SELECT id_number, county_code, household_id, household_source
                   FROM household_of_person WHERE household_source <> 'person'
               ),
               household_keys AS (
                   SELECT county_code, household_id, pkey('household:' || county_code || ':' || household_id) AS household_key
                   FROM (SELECT DISTINCT county_code, household_id FROM members)
               )
               SELECT pkey(m.id_number) AS person_key, k.household_key, m.county_code, m.household_source
               FROM members AS m
               JOIN household_keys AS k
                 ON k.county_code IS NOT DISTINCT FROM m.county_code AND k.household_id IS NOT DISTINCT FROM m.household_id
               WHERE """ + (county_in_group(*step, "m.county_code") if step else "true") + """
               ORDER BY person_key"""
        ).to_arrow_table())
        roster_sizes = pl.from_arrow(con.sql(
            """WITH r AS (
                   SELECT roster_county AS county_code, count(DISTINCT household_id) AS roster_households,
                          count(DISTINCT id_number) AS roster_persons
                   FROM roster_latest WHERE active GROUP BY 1),
               m AS (
                   SELECT rural_county AS county_code, count(DISTINCT rural_household_id) AS monitored_households
                   FROM rural_latest WHERE monitored GROUP BY 1)
               SELECT county_code, coalesce(r.roster_households, 0) AS roster_households,
                      coalesce(r.roster_persons, 0) AS roster_persons,
                      coalesce(m.monitored_households, 0) AS monitored_households
               FROM r FULL JOIN m USING (county_code)
               WHERE """ + (county_in_group(*step, "county_code") if step else "true") + """
               ORDER BY county_code"""
        ).to_arrow_table())
        timings["outputs"] = time.perf_counter() - t  # keys, evidence hashes and the frames handed back
    finally:
        con.close()
    return Evaluation(flags, subjects, timings, households, roster_sizes,
                      aliases.select(pl.col("flag_id").cast(pl.String), pl.col("legacy_flag_id").cast(pl.String)),
                      not_assessable.cast(NOT_ASSESSABLE_COLUMNS) if not_assessable.height
                      else pl.DataFrame(schema=NOT_ASSESSABLE_COLUMNS))
