"""Flag lifecycle and the marts: what is new, open, resolved, confirmed, dismissed or overdue on day D.

The state on day D is derived from the days up to D and the caseworkers'
outcomes decided up to D, which answers "what did we know on day D" for any
past day and makes backfills reproduce what each day knew. A night costs what
it changes, not what the history holds: the state of the newest earlier day
(first/last seen, days seen, last held, latest evidence, the log of evidence
changes, the trend) plus today's evaluation gives today's state in O(flags);
each day is recorded once in the history as a small delta against the day it
was built on (lowincome/rules/lifecycle_history.py). `LIFECYCLE_SQL` and
`TREND_SQL` remain the definition over every day's full flag list; the
incremental result is tested to equal them.

Stale data resolves nothing (rules.md): a flag that held on the previous
evaluated day and does not hold today, while a feed its rule reads is stale in
the flag's county, is carried forward: recorded for the day as `carried`, with
the stale feeds named, keeping its status and evidence until fresh data decides it.

A dismissal stands while the same condition simply continues (rules.md Lifecycle): it is measured
against the flag's level and `substance` (the kinds of fact its rule names) on the last day on or
before the decision, not against its evidence, which grows with every month of a run
(`SUBSTANCE_CHANGED`). Outcomes recorded on the per-month flags of the previous version apply to the
run flag that replaces them (`migrate_outcomes`, with the engine's aliases).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ..config import Settings, configure_duckdb, load_settings
from ..workstore import WorkStore, write_atomic
from . import lifecycle_history as history
from .catalog import LEVEL_RANK, RULES
from .engine import Evaluation

MART_TABLES = ("flags", "household_risk", "county_summary", "flag_trend")
FLAG_DAY = history.FLAG_DAY  # the flags that held (or were carried) on the day, in each run folder (for audits)
_DEFAULT = "*"


@dataclass
class Marts:
    paths: dict[str, Path]  # table name (schema-qualified) → Parquet file, for publishing
    restricted_paths: dict[str, Path]
    counts: dict[str, int]


# A dismissal stands while the same condition simply continues (rules.md Lifecycle): the flag reopens only
# when, compared with the last evidence on or before the decision, its level is higher or a kind of fact
# (another source, another benefit type, another reason: the flag's `substance`) is new. No evidence on or
# before the decision (the flag was first seen after it: an outcome migrated from a per-month flag), or no
# substance recorded then (decided before substance was recorded): the dismissal stands.
SUBSTANCE_CHANGED = """e.substance IS NOT NULL AND l.substance IS NOT NULL AND (
        (CASE l.level WHEN '红' THEN 3 WHEN '橙' THEN 2 WHEN '黄' THEN 1 ELSE 0 END)
            > (CASE e.level WHEN '红' THEN 3 WHEN '橙' THEN 2 WHEN '黄' THEN 1 ELSE 0 END)
        OR NOT list_has_all(string_split(e.substance, '|'), string_split(l.substance, '|')))"""

LIFECYCLE_SQL = """
WITH days AS (
    SELECT * REPLACE (coalesce(carried, false) AS carried)
    FROM read_parquet($days, union_by_name = true) WHERE as_of <= $as_of
),
seen AS (
    SELECT flag_id, min(as_of) AS first_seen_on, max(as_of) AS last_seen_on, count(*) AS days_seen,
           max(as_of) FILTER (WHERE NOT carried) AS last_held_on
    FROM days GROUP BY flag_id
),
latest AS (
    SELECT * FROM days QUALIFY row_number() OVER (PARTITION BY flag_id ORDER BY as_of DESC) = 1
),
previous_day AS (
    SELECT max(as_of) AS d FROM days WHERE as_of < $as_of
),
outcomes AS (
    SELECT flag_id, outcome, decided_on
    FROM outcomes_raw
    WHERE decided_on <= $as_of
    QUALIFY row_number() OVER (PARTITION BY flag_id ORDER BY decided_on DESC, delivered_on DESC, source_file DESC,
                                                          source_row DESC) = 1
),
evidence_at_decision AS (
    SELECT o.flag_id, d.evidence_hash, d.level, d.substance
    FROM outcomes AS o JOIN days AS d ON d.flag_id = o.flag_id AND d.as_of <= o.decided_on
    QUALIFY row_number() OVER (PARTITION BY o.flag_id ORDER BY d.as_of DESC) = 1
)
SELECT
    l.flag_id, l.rule_id, l.rule_name, l.kind, l.level, l.subject_type, l.subject_key, l.county_code, l.period,
    $as_of::DATE AS as_of, s.first_seen_on, s.last_seen_on,
    CASE
        WHEN s.last_seen_on < $as_of THEN 'resolved'
        WHEN o.outcome = 'confirmed' THEN 'confirmed'
        WHEN o.outcome = 'dismissed' AND NOT (__SUBSTANCE_CHANGED__) THEN 'dismissed'
        ELSE 'open'
    END AS status,
    s.first_seen_on = $as_of AS is_new,
    s.last_seen_on < $as_of AND s.last_seen_on = (SELECT d FROM previous_day) AS resolved_today,
    o.outcome = 'dismissed' AND s.last_seen_on = $as_of AND (__SUBSTANCE_CHANGED__) AS reopened,
    o.outcome, o.decided_on AS outcome_decided_on,
    s.last_seen_on = $as_of AND o.outcome IS NULL
        AND date_diff('day', s.first_seen_on, $as_of::DATE) > coalesce(od.overdue_days, $overdue_days) AS overdue,
    s.days_seen,
    s.last_held_on,
    l.as_of = $as_of AND l.carried AS data_stale,
    CASE WHEN l.as_of = $as_of AND l.carried THEN l.stale_feeds END AS stale_feeds,
    l.evidence, l.evidence_hash
FROM latest AS l
JOIN seen AS s USING (flag_id)
LEFT JOIN outcomes AS o USING (flag_id)
LEFT JOIN evidence_at_decision AS e USING (flag_id)
LEFT JOIN overdue_by_county AS od ON od.county_code = l.county_code
ORDER BY l.rule_id, l.county_code, l.subject_key, l.period, l.flag_id
"""

LIFECYCLE_SQL = LIFECYCLE_SQL.replace("__SUBSTANCE_CHANGED__", SUBSTANCE_CHANGED)

TREND_SQL = """
WITH days AS (
    SELECT flag_id, as_of FROM read_parquet($days, union_by_name = true) WHERE as_of <= $as_of
),
run_days AS (
    SELECT DISTINCT as_of FROM days
),
ordered AS (
    SELECT as_of, lag(as_of) OVER (ORDER BY as_of) AS previous FROM run_days
),
first_seen AS (
    SELECT flag_id, min(as_of) AS first_seen_on FROM days GROUP BY flag_id
)
SELECT
    o.as_of,
    (SELECT count(*) FROM days AS d WHERE d.as_of = o.as_of) AS holding,
    (SELECT count(*) FROM first_seen AS f WHERE f.first_seen_on = o.as_of) AS new_flags,
    (SELECT count(*) FROM days AS p WHERE p.as_of = o.previous
        AND p.flag_id NOT IN (SELECT flag_id FROM days AS c WHERE c.as_of = o.as_of)) AS resolved_flags
FROM ordered AS o
ORDER BY o.as_of
"""


INCREMENTAL_SQL = """
WITH outcomes AS (
    SELECT flag_id, outcome, decided_on
    FROM outcomes_raw
    WHERE decided_on <= $as_of
    QUALIFY row_number() OVER (PARTITION BY flag_id ORDER BY decided_on DESC, delivered_on DESC, source_file DESC,
                                                          source_row DESC) = 1
),
evidence_at_decision AS (  -- the evidence on the latest evaluated day <= decided_on: the latest change by then
    SELECT o.flag_id, e.evidence_hash, e.level, e.substance
    FROM outcomes AS o JOIN evidence_log AS e ON e.flag_id = o.flag_id AND e.from_day <= o.decided_on
    QUALIFY row_number() OVER (PARTITION BY o.flag_id ORDER BY e.from_day DESC) = 1
)
SELECT
    l.flag_id, l.rule_id, l.rule_name, l.kind, l.level, l.subject_type, l.subject_key, l.county_code, l.period,
    $as_of::DATE AS as_of, l.first_seen_on, l.as_of AS last_seen_on,
    CASE
        WHEN l.as_of < $as_of THEN 'resolved'
        WHEN o.outcome = 'confirmed' THEN 'confirmed'
        WHEN o.outcome = 'dismissed' AND NOT (__SUBSTANCE_CHANGED__) THEN 'dismissed'
        ELSE 'open'
    END AS status,
    l.first_seen_on = $as_of AS is_new,
    l.as_of < $as_of AND l.as_of = $previous_day::DATE AS resolved_today,
    o.outcome = 'dismissed' AND l.as_of = $as_of AND (__SUBSTANCE_CHANGED__) AS reopened,
    o.outcome, o.decided_on AS outcome_decided_on,
    l.as_of = $as_of AND o.outcome IS NULL
        AND date_diff('day', l.first_seen_on, $as_of::DATE) > coalesce(od.overdue_days, $overdue_days) AS overdue,
    l.days_seen,
    l.last_held_on,
    l.as_of = $as_of AND coalesce(l.carried, false) AS data_stale,
    CASE WHEN l.as_of = $as_of AND l.carried THEN l.stale_feeds END AS stale_feeds,
    l.evidence, l.evidence_hash
FROM state AS l
LEFT JOIN outcomes AS o USING (flag_id)
LEFT JOIN evidence_at_decision AS e USING (flag_id)
LEFT JOIN overdue_by_county AS od ON od.county_code = l.county_code
ORDER BY l.rule_id, l.county_code, l.subject_key, l.period, l.flag_id
"""


INCREMENTAL_SQL = INCREMENTAL_SQL.replace("__SUBSTANCE_CHANGED__", SUBSTANCE_CHANGED)


def migrate_outcomes(outcomes: pl.DataFrame, aliases: pl.DataFrame | None) -> pl.DataFrame:
    """Outcomes recorded on a per-month flag of the earlier version apply to the run's flag that replaces it.

    `aliases` (engine: flag_id → legacy_flag_id) names, for each of today's flags, the flag ids the earlier
    version gave the months (or payees) it covers. An outcome whose flag id is such a legacy id is added
    again under the new flag id (the original row stays for the old flag); when several month-flags of one
    run carry outcomes, the latest decision counts, as for several outcomes on one flag.
    """
    if aliases is None or aliases.is_empty() or outcomes.is_empty():
        return outcomes
    moved = (outcomes.join(aliases.select(pl.col("legacy_flag_id").alias("flag_id"), pl.col("flag_id").alias("_new")),
                           on="flag_id", how="inner")
             .with_columns(pl.col("_new").alias("flag_id")).drop("_new"))
    return pl.concat([outcomes, moved.select(outcomes.columns)], how="vertical_relaxed")


def _outcomes_frame(store: WorkStore, as_of: date) -> pl.DataFrame:
    cols = {"flag_id": pl.String, "outcome": pl.String, "decided_on": pl.Date, "delivered_on": pl.Date,
            "source_file": pl.String, "source_row": pl.Int64}
    if store.staging_path(as_of, "verification_outcomes").exists():  # the day's manifest of parts
        frame = store.staging_frame(as_of, "verification_outcomes")
    elif store.path(as_of, "staging", "verification_outcomes").exists():  # one Parquet file (tools, tests)
        frame = pl.read_parquet(store.path(as_of, "staging", "verification_outcomes"))
    else:
        return pl.DataFrame(schema=cols)
    return frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c) for c, t in cols.items()])


UNASSESSABLE_MARK = "quarantined_row"  # in stale_feeds: carried because the subject is not assessable today


def carried_flags(previous: pl.DataFrame, today_ids: pl.Series, as_of: date, freshness: pl.DataFrame | None,
                  not_assessable: pl.DataFrame | None = None) -> pl.DataFrame:
    """Flags of the previous evaluated day that do not hold today but rest on a feed stale in their county,
    or whose subject is not assessable today for their rule (a row it reads was quarantined).

    They are copied unchanged (status, evidence, evidence hash) into day `as_of`, marked carried,
    with the stale feeds named (`quarantined_row` for a subject not assessable): stale data resolves
    nothing, and neither does a row the sender must correct (unknown is not absent).
    """
    empty = previous.head(0).with_columns(pl.lit(True).alias("carried"), pl.lit(None, dtype=pl.String).alias("stale_feeds"))
    if previous.is_empty():
        return empty
    gone = previous.filter(~pl.col("flag_id").is_in(today_ids))
    found = []
    stale = (freshness.filter(pl.col("stale")).select("feed", pl.col("county").alias("county_code"))
             if freshness is not None and not freshness.is_empty() else None)
    if stale is not None and not stale.is_empty():
        deps = pl.DataFrame([{"rule_id": r.rule_id, "feed": f} for r in RULES for f in r.feeds])
        found.append(gone.select("flag_id", "rule_id", "county_code").join(deps, on="rule_id")
                     .join(stale, on=["feed", "county_code"], how="semi").select("flag_id", "feed"))
    if not_assessable is not None and not not_assessable.is_empty():
        # only flags of this version (with a substance): a per-month flag of the previous version is replaced by
        # its run's flag, and carrying several of them would keep one condition open several times over
        ours = gone.filter(pl.col("substance").is_not_null()) if "substance" in gone.columns else gone.head(0)
        found.append(ours.join(not_assessable.select("rule_id", "subject_key").unique(), on=["rule_id", "subject_key"],
                               how="semi").select("flag_id", pl.lit(UNASSESSABLE_MARK).alias("feed")))
    if not found:
        return empty
    hits = (pl.concat(found).group_by("flag_id")
            .agg(pl.col("feed").unique().sort().str.join(",").alias("stale_feeds")))
    if hits.is_empty():
        return empty
    return (gone.drop("carried", "stale_feeds", strict=False).join(hits, on="flag_id")
            .with_columns(pl.lit(as_of).alias("as_of"), pl.lit(True).alias("carried"))
            .select(*empty.columns)
            .sort("rule_id", "county_code", "subject_key", "period", "flag_id"))  # as the rules' output: reproducible


def _overdue_table(overdue_days: int | Mapping[str, int]) -> tuple[pl.DataFrame, int]:
    """Days to an outcome before a flag is overdue, per flag county (policy), and the default."""
    if isinstance(overdue_days, Mapping):
        default = int(overdue_days.get(_DEFAULT, 15))
        rows = [{"county_code": c, "overdue_days": int(v)} for c, v in overdue_days.items() if c != _DEFAULT]
    else:
        default, rows = int(overdue_days), []
    return pl.DataFrame(rows, schema={"county_code": pl.String, "overdue_days": pl.Int64}), default


def _with_not_assessable(summary: pl.DataFrame, not_assessable: pl.DataFrame | None) -> pl.DataFrame:
    """mart.county_summary's `not_assessable`: subjects a rule firing on absence could not judge (quarantined rows).

    A county and rule with such subjects but no flag gets a row of its own (zero flags), so no count is lost.
    """
    if not_assessable is None or not_assessable.is_empty():
        return summary.with_columns(pl.lit(0, dtype=pl.Int64).alias("not_assessable"))
    counts = (not_assessable.group_by("county_code", "rule_id", "level")
              .agg(pl.col("subject_key").n_unique().cast(pl.Int64).alias("not_assessable")))
    names = pl.DataFrame([{"rule_id": r.rule_id, "rule_name": r.name, "kind": r.kind} for r in RULES])
    missing = (counts.join(summary.select("county_code", "rule_id", "level"), on=["county_code", "rule_id", "level"],
                           how="anti", nulls_equal=True)
               .join(names, on="rule_id").select("county_code", "rule_id", "rule_name", "kind", "level"))
    if missing.height:
        zeros = [c for c in summary.columns if c not in missing.columns]
        missing = missing.with_columns([pl.lit(0, dtype=summary.schema[c]).alias(c) for c in zeros]).select(summary.columns)
        summary = pl.concat([summary, missing], how="vertical_relaxed")
    return (summary.join(counts, on=["county_code", "rule_id", "level"], how="left", nulls_equal=True)
            .with_columns(pl.col("not_assessable").fill_null(0)))


def _previous_subjects(store: WorkStore, previous_day: date | None, carried: pl.DataFrame, columns: list[str]) -> pl.DataFrame | None:
    if previous_day is None or carried.is_empty():
        return None
    folder = store.committed_dir(previous_day)
    path = folder / "mart" / "caseworker_flags.parquet" if folder else None
    if path is None or not path.exists():
        return None
    return pl.read_parquet(path).join(carried.select("flag_id"), on="flag_id", how="semi").select(columns)


def build_marts(store: WorkStore, as_of: date, evaluation: Evaluation, overdue_days: int | Mapping[str, int],
                households: pl.DataFrame, roster_sizes: pl.DataFrame, freshness: pl.DataFrame | None = None,
                settings: Settings | None = None) -> Marts:
    """Record day `as_of` and derive mart.flags, mart.household_risk, mart.county_summary, audit.flag_trend.

    `households` maps person_key → household_key (and county) for rolling person flags up to households;
    `roster_sizes` has county_code, roster_households, roster_persons, monitored_households;
    `overdue_days` is the policy's `outcome_overdue_days` per flag county (key "*" for the others);
    `freshness` is the completeness guard's table for the day (lowincome/freshness.py);
    `settings` bound DuckDB's memory (read from the environment when not given).
    """
    previous_state, tokens, digests = history.state_before(store, as_of)
    previous_day = previous_state.day
    today = evaluation.flags.with_columns(pl.lit(False).alias("carried"), pl.lit(None, dtype=pl.String).alias("stale_feeds"))
    previous = previous_state.facts()
    carried = carried_flags(previous.select(today.columns), today["flag_id"], as_of, freshness, evaluation.not_assessable)
    day = pl.concat([today, carried], how="vertical_relaxed")
    run_folder = store.day_dir(as_of)
    out_dir = run_folder / "mart"
    history.write_flag_day(run_folder, day)  # without the constant as_of: unchanged nights share the file
    state = history.step(previous_state, day, freshness, as_of)
    history.record_day(run_folder, state, as_of, day, freshness, previous_state, tokens, digests)
    overdue_table, default_overdue = _overdue_table(overdue_days)
    con = configure_duckdb(duckdb.connect(), settings or replace(load_settings(), warehouse=store.warehouse))
    try:
        con.register("state", state.flags.to_arrow())
        con.register("evidence_log", state.evidence.to_arrow())
        con.register("outcomes_raw", migrate_outcomes(_outcomes_frame(store, as_of), evaluation.aliases).to_arrow())
        con.register("overdue_by_county", overdue_table.to_arrow())
        params = {"as_of": as_of, "previous_day": previous_day, "overdue_days": default_overdue}
        flags = pl.from_arrow(con.sql(INCREMENTAL_SQL, params=params).to_arrow_table())
    finally:
        con.close()
    trend = state.trend

    active = flags.filter(pl.col("status").is_in(["open", "confirmed"]))
    # person flags count for the person's household; household flags for themselves
    mapped = active.join(households.select("person_key", "household_key", pl.col("county_code").alias("hh_county")),
                         left_on="subject_key", right_on="person_key", how="left")
    mapped = mapped.with_columns(
        household_key=pl.when(pl.col("subject_type") == "household").then(pl.col("subject_key"))
        .otherwise(pl.coalesce("household_key", "subject_key")),
        county_code=pl.coalesce("hh_county", "county_code"),
        rank=pl.col("level").replace_strict(LEVEL_RANK, return_dtype=pl.Int8),
    )
    household_risk = (
        mapped.group_by("household_key")
        .agg(
            pl.col("county_code").drop_nulls().first(),
            pl.col("rank").max().alias("rank"),
            pl.len().alias("open_flags"),
            pl.col("rule_id").unique().sort().str.join(",").alias("rule_ids"),
            (pl.col("kind") == "review").sum().alias("review_flags"),
            (pl.col("kind") == "warning").sum().alias("warning_flags"),
        )
        .with_columns(level=pl.col("rank").replace_strict({v: k for k, v in LEVEL_RANK.items()}, return_dtype=pl.String))
        .select("household_key", "county_code", "level", "open_flags", "rule_ids", "review_flags", "warning_flags")
        .sort("county_code", "household_key")
    )
    summary = (
        flags.group_by("county_code", "rule_id", "rule_name", "kind", "level")
        .agg(
            (pl.col("status") == "open").sum().alias("open_flags"),
            pl.col("is_new").sum().alias("new_flags"),
            pl.col("resolved_today").sum().alias("resolved_flags"),
            (pl.col("status") == "confirmed").sum().alias("confirmed_flags"),
            (pl.col("status") == "dismissed").sum().alias("dismissed_flags"),
            pl.col("overdue").sum().alias("overdue_flags"),
            pl.col("reopened").sum().alias("reopened_flags"),
            pl.col("data_stale").sum().alias("stale_flags"),
        )
    )
    summary = _with_not_assessable(summary, evaluation.not_assessable)
    summary = (
        summary.join(roster_sizes, on="county_code", how="left")
        .with_columns(pl.lit(as_of).alias("as_of"))
        .sort("county_code", "rule_id", "level")
    )
    flags_out = flags.drop("evidence_hash")
    paths = {
        "mart.flags": write_atomic(out_dir / "flags.parquet", flags_out),
        "mart.household_risk": write_atomic(out_dir / "household_risk.parquet", household_risk),
        "mart.county_summary": write_atomic(out_dir / "county_summary.parquet", summary),
        "audit.flag_trend": write_atomic(out_dir / "flag_trend.parquet", trend),
        "mart.rules": write_atomic(out_dir / "rules.parquet", pl.DataFrame(
            [{"rule_id": r.rule_id, "rule_name": r.name, "kind": r.kind, "summary": r.summary,
              "sql_file": f"sql/rules/{r.sql_path.name}"} for r in RULES])),
    }
    subjects = evaluation.subjects
    kept = _previous_subjects(store, previous_day, carried, subjects.columns)
    if kept is not None:
        subjects = pl.concat([subjects, kept], how="vertical_relaxed").unique("flag_id", keep="first").sort("flag_id")
    if freshness is not None:  # audit.feed_freshness: the guard's table of every recorded day up to this one
        paths["audit.feed_freshness"] = write_atomic(out_dir / "feed_freshness.parquet",
                                                     state.freshness.sort("as_of", "feed", "county"))
    restricted = {
        "caseworker_flags": write_atomic(out_dir / "caseworker_flags.parquet", subjects),
    }
    counts = {
        "flags": flags.height,
        "open": int((flags["status"] == "open").sum()),
        "new": int(flags["is_new"].sum()),
        "resolved_today": int(flags["resolved_today"].sum()),
        "carried_stale": int(flags["data_stale"].sum()),
        "overdue": int(flags["overdue"].sum()),
        "households_at_risk": household_risk.height,
        "not_assessable": int(summary["not_assessable"].sum()),
    }
    return Marts(paths, restricted, counts)


def commit_history(store: WorkStore, as_of: date) -> bool:
    """Record the committed run's day in the lifecycle history (call right after `WorkStore.commit`).

    Small and idempotent: an unchanged night adds a few hundred bytes. It never fails the run once
    the day is committed: should it not complete (a full disk), the next night's `build_marts`
    records the committed day from its run folder before anything reads the history.
    """
    folder = store.committed().committed_dir(as_of)
    try:
        return folder is not None and history.adopt(store, as_of, folder)
    except OSError:
        return False


def full_lifecycle(day_files: list[Path], outcomes: pl.DataFrame, as_of: date, overdue_days: int | Mapping[str, int],
                   settings: Settings | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """mart.flags (with evidence_hash) and audit.flag_trend by the definition: every day's full flag list at once.

    The reference the incremental lifecycle is tested against, and a tool for audits; O(days x flags).
    """
    overdue_table, default_overdue = _overdue_table(overdue_days)
    con = configure_duckdb(duckdb.connect(), settings or load_settings())
    try:
        con.register("outcomes_raw", outcomes.to_arrow())
        con.register("overdue_by_county", overdue_table.to_arrow())
        files = [str(p) for p in day_files]
        flags = pl.from_arrow(con.sql(LIFECYCLE_SQL, params={"days": files, "as_of": as_of,
                                                                           "overdue_days": default_overdue}).to_arrow_table())
        trend = pl.from_arrow(con.sql(TREND_SQL, params={"days": files, "as_of": as_of}).to_arrow_table())
    finally:
        con.close()
    return flags, trend
