"""Flag lifecycle and the marts: what is new, open, resolved, confirmed, dismissed or overdue on day D.

Every evaluated day is kept as one Parquet file of the flags that held that
day (`work/history/flag_days/<D>.parquet`), so nothing is overwritten except a
re-run of the same day, which replaces its own file with identical content.
The state on day D is derived from the days up to D and the caseworkers'
outcomes decided up to D, which answers "what did we know on day D" for any
past day and makes backfills reproduce what each day knew.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ..workstore import WorkStore, write_atomic
from .catalog import LEVEL_RANK, RULES
from .engine import Evaluation

MART_TABLES = ("flags", "household_risk", "county_summary", "flag_trend")


@dataclass
class Marts:
    paths: dict[str, Path]  # table name (schema-qualified) → Parquet file, for publishing
    restricted_paths: dict[str, Path]
    counts: dict[str, int]


LIFECYCLE_SQL = """
WITH days AS (
    SELECT * FROM read_parquet($days, union_by_name = true) WHERE as_of <= $as_of
),
seen AS (
    SELECT flag_id, min(as_of) AS first_seen_on, max(as_of) AS last_seen_on, count(*) AS days_seen
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
    SELECT o.flag_id, d.evidence_hash
    FROM outcomes AS o JOIN days AS d ON d.flag_id = o.flag_id AND d.as_of <= o.decided_on
    QUALIFY row_number() OVER (PARTITION BY o.flag_id ORDER BY d.as_of DESC) = 1
)
SELECT
    l.flag_id, l.rule_id, l.rule_name, l.kind, l.level, l.subject_type, l.subject_key, l.county_code, l.period,
    $as_of::DATE AS as_of, s.first_seen_on, s.last_seen_on,
    CASE
        WHEN s.last_seen_on < $as_of THEN 'resolved'
        WHEN o.outcome = 'confirmed' THEN 'confirmed'
        WHEN o.outcome = 'dismissed' AND (e.evidence_hash IS NULL OR e.evidence_hash = l.evidence_hash) THEN 'dismissed'
        ELSE 'open'
    END AS status,
    s.first_seen_on = $as_of AS is_new,
    s.last_seen_on < $as_of AND s.last_seen_on = (SELECT d FROM previous_day) AS resolved_today,
    o.outcome = 'dismissed' AND s.last_seen_on = $as_of AND e.evidence_hash IS NOT NULL
        AND e.evidence_hash <> l.evidence_hash AS reopened,
    o.outcome, o.decided_on AS outcome_decided_on,
    s.last_seen_on = $as_of AND o.outcome IS NULL
        AND date_diff('day', s.first_seen_on, $as_of::DATE) > $overdue_days AS overdue,
    s.days_seen,
    l.evidence, l.evidence_hash
FROM latest AS l
JOIN seen AS s USING (flag_id)
LEFT JOIN outcomes AS o USING (flag_id)
LEFT JOIN evidence_at_decision AS e USING (flag_id)
ORDER BY l.rule_id, l.county_code, l.subject_key, l.period
"""

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


def _outcomes_frame(store: WorkStore, as_of: date) -> pl.DataFrame:
    path = store.path(as_of, "staging", "verification_outcomes")
    cols = {"flag_id": pl.String, "outcome": pl.String, "decided_on": pl.Date, "delivered_on": pl.Date,
            "source_file": pl.String, "source_row": pl.Int64}
    if not path.exists():
        return pl.DataFrame(schema=cols)
    frame = pl.read_parquet(path)
    return frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c) for c, t in cols.items()])


def build_marts(store: WorkStore, as_of: date, evaluation: Evaluation, overdue_days: int,
                households: pl.DataFrame, roster_sizes: pl.DataFrame) -> Marts:
    """Record day `as_of` and derive mart.flags, mart.household_risk, mart.county_summary, audit.flag_trend.

    `households` maps person_key → household_key (and county) for rolling person flags up to households;
    `roster_sizes` has county_code, roster_households, roster_persons, monitored_households.
    """
    store.write_history("flag_days", as_of.isoformat(), evaluation.flags)
    out_dir = store.day_dir(as_of) / "mart"
    days_glob = str(store.history_dir("flag_days") / "*.parquet")
    con = duckdb.connect()
    try:
        con.register("outcomes_raw", _outcomes_frame(store, as_of).to_arrow())
        params = {"days": days_glob, "as_of": as_of, "overdue_days": overdue_days}
        flags = pl.from_arrow(con.sql(LIFECYCLE_SQL, params=params).to_arrow_table())
        trend = pl.from_arrow(con.sql(TREND_SQL, params={"days": days_glob, "as_of": as_of}).to_arrow_table())
    finally:
        con.close()

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
        )
        .join(roster_sizes, on="county_code", how="left")
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
    restricted = {
        "caseworker_flags": write_atomic(out_dir / "caseworker_flags.parquet", evaluation.subjects),
    }
    counts = {
        "flags": flags.height,
        "open": int((flags["status"] == "open").sum()),
        "new": int(flags["is_new"].sum()),
        "resolved_today": int(flags["resolved_today"].sum()),
        "overdue": int(flags["overdue"].sum()),
        "households_at_risk": household_risk.height,
    }
    return Marts(paths, restricted, counts)
