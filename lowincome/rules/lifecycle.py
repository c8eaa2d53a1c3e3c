"""Flag lifecycle and the marts: what is new, open, resolved, confirmed, dismissed or overdue on day D.

Every evaluated day keeps one Parquet file of the flags that held that day
(`mart/flag_day.parquet` in the day's committed run folder), so nothing is
overwritten except a re-run of the same day, which replaces its own day with
identical content. The state on day D is derived from the days up to D and the
caseworkers' outcomes decided up to D, which answers "what did we know on day
D" for any past day and makes backfills reproduce what each day knew.

Stale data resolves nothing (rules.md): a flag that held on the previous
evaluated day and does not hold today, while a feed its rule reads is stale in
the flag's county, is carried forward: recorded for the day as `carried`, with
the stale feeds named, keeping its status and evidence until fresh data decides it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ..workstore import WorkStore, write_atomic
from .catalog import LEVEL_RANK, RULES
from .engine import Evaluation

MART_TABLES = ("flags", "household_risk", "county_summary", "flag_trend")
FLAG_DAY = "mart/flag_day.parquet"  # the flags that held (or were carried) on the day, in each run folder
_DEFAULT = "*"


@dataclass
class Marts:
    paths: dict[str, Path]  # table name (schema-qualified) → Parquet file, for publishing
    restricted_paths: dict[str, Path]
    counts: dict[str, int]


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
    cols = {"flag_id": pl.String, "outcome": pl.String, "decided_on": pl.Date, "delivered_on": pl.Date,
            "source_file": pl.String, "source_row": pl.Int64}
    if not store.staging_path(as_of, "verification_outcomes").exists():
        return pl.DataFrame(schema=cols)
    frame = store.staging_frame(as_of, "verification_outcomes")
    return frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c) for c, t in cols.items()])


def _day_files(store: WorkStore, as_of: date) -> dict[date, Path]:
    """The flag day of every committed day before `as_of` (and, for warehouses of the earlier layout, its history)."""
    files: dict[date, Path] = {}
    legacy = store.history_dir("flag_days")
    if legacy.is_dir():
        for path in legacy.glob("*.parquet"):
            try:
                day = date.fromisoformat(path.stem)
            except ValueError:
                continue
            if day < as_of:
                files[day] = path
    for day in store.completed_days():
        folder = store.committed_dir(day)
        if day < as_of and folder is not None and (folder / FLAG_DAY).exists():
            files[day] = folder / FLAG_DAY
    return files


def carried_flags(previous: pl.DataFrame, today_ids: pl.Series, as_of: date, freshness: pl.DataFrame | None) -> pl.DataFrame:
    """Flags of the previous evaluated day that do not hold today but rest on a feed stale in their county.

    They are copied unchanged (status, evidence, evidence hash) into day `as_of`, marked carried,
    with the stale feeds named: stale data resolves nothing.
    """
    empty = previous.head(0).with_columns(pl.lit(True).alias("carried"), pl.lit(None, dtype=pl.String).alias("stale_feeds"))
    if previous.is_empty() or freshness is None or freshness.is_empty():
        return empty
    stale = freshness.filter(pl.col("stale")).select("feed", pl.col("county").alias("county_code"))
    if stale.is_empty():
        return empty
    deps = pl.DataFrame([{"rule_id": r.rule_id, "feed": f} for r in RULES for f in r.feeds])
    gone = previous.filter(~pl.col("flag_id").is_in(today_ids))
    hits = (gone.select("flag_id", "rule_id", "county_code").join(deps, on="rule_id")
            .join(stale, on=["feed", "county_code"], how="semi")
            .group_by("flag_id").agg(pl.col("feed").unique().sort().str.join(",").alias("stale_feeds")))
    if hits.is_empty():
        return empty
    return (gone.drop("carried", "stale_feeds", strict=False).join(hits, on="flag_id")
            .with_columns(pl.lit(as_of).alias("as_of"), pl.lit(True).alias("carried"))
            .select(*empty.columns))


def _overdue_table(overdue_days: int | Mapping[str, int]) -> tuple[pl.DataFrame, int]:
    """Days to an outcome before a flag is overdue, per flag county (policy), and the default."""
    if isinstance(overdue_days, Mapping):
        default = int(overdue_days.get(_DEFAULT, 15))
        rows = [{"county_code": c, "overdue_days": int(v)} for c, v in overdue_days.items() if c != _DEFAULT]
    else:
        default, rows = int(overdue_days), []
    return pl.DataFrame(rows, schema={"county_code": pl.String, "overdue_days": pl.Int64}), default


def _previous_subjects(store: WorkStore, previous_day: date | None, carried: pl.DataFrame, columns: list[str]) -> pl.DataFrame | None:
    if previous_day is None or carried.is_empty():
        return None
    folder = store.committed_dir(previous_day)
    path = folder / "mart" / "caseworker_flags.parquet" if folder else None
    if path is None or not path.exists():
        return None
    return pl.read_parquet(path).join(carried.select("flag_id"), on="flag_id", how="semi").select(columns)


def build_marts(store: WorkStore, as_of: date, evaluation: Evaluation, overdue_days: int | Mapping[str, int],
                households: pl.DataFrame, roster_sizes: pl.DataFrame, freshness: pl.DataFrame | None = None) -> Marts:
    """Record day `as_of` and derive mart.flags, mart.household_risk, mart.county_summary, audit.flag_trend.

    `households` maps person_key → household_key (and county) for rolling person flags up to households;
    `roster_sizes` has county_code, roster_households, roster_persons, monitored_households;
    `overdue_days` is the policy's `outcome_overdue_days` per flag county (key "*" for the others);
    `freshness` is the completeness guard's table for the day (lowincome/freshness.py).
    """
    earlier = _day_files(store, as_of)
    previous_day = max(earlier) if earlier else None
    today = evaluation.flags.with_columns(pl.lit(False).alias("carried"), pl.lit(None, dtype=pl.String).alias("stale_feeds"))
    previous = pl.read_parquet(earlier[previous_day]) if previous_day else today.head(0)
    if "carried" not in previous.columns:
        previous = previous.with_columns(pl.lit(False).alias("carried"), pl.lit(None, dtype=pl.String).alias("stale_feeds"))
    carried = carried_flags(previous.select(today.columns), today["flag_id"], as_of, freshness)
    day = pl.concat([today, carried], how="vertical_relaxed")
    out_dir = store.day_dir(as_of) / "mart"
    day_path = write_atomic(store.day_dir(as_of) / FLAG_DAY, day)
    day_files = [str(p) for _, p in sorted(earlier.items())] + [str(day_path)]
    overdue_table, default_overdue = _overdue_table(overdue_days)
    con = duckdb.connect()
    try:
        con.register("outcomes_raw", _outcomes_frame(store, as_of).to_arrow())
        con.register("overdue_by_county", overdue_table.to_arrow())
        params = {"days": day_files, "as_of": as_of, "overdue_days": default_overdue}
        flags = pl.from_arrow(con.sql(LIFECYCLE_SQL, params=params).to_arrow_table())
        trend = pl.from_arrow(con.sql(TREND_SQL, params={"days": day_files, "as_of": as_of}).to_arrow_table())
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
            pl.col("data_stale").sum().alias("stale_flags"),
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
    subjects = evaluation.subjects
    kept = _previous_subjects(store, previous_day, carried, subjects.columns)
    if kept is not None:
        subjects = pl.concat([subjects, kept], how="vertical_relaxed").unique("flag_id", keep="first").sort("flag_id")
    if freshness is not None:
        from ..freshness import freshness_history

        paths["audit.feed_freshness"] = write_atomic(out_dir / "feed_freshness.parquet",
                                                     freshness_history(store, as_of, freshness))
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
    }
    return Marts(paths, restricted, counts)
