"""Flag volume per 1,000 roster persons, per rule and county: a flood is visible the night it starts.

A county office can visit only so many households. At the city tier W01 once raised 498k open flags
for 243k roster persons (issue 11): nobody noticed until someone counted. The run report and the
rules asset's Dagster metadata show, for every rule and county, the open and new flags per 1,000
persons on the county's roster, and mark 异常 (flood) where the open flags exceed `FLOOD_PER_1000`.

Roster persons are the distinct persons 在保 in the county's latest accepted civil-roster snapshot
(the same count as mart.county_summary.roster_persons). A county with flags and no roster persons
has no rate; it is marked 异常 as soon as its open flags reach `FLOOD_PER_1000` (a flood with no
roster to compare with is still a flood).

One SQL definition serves both readers: `VOLUME_SQL` over a relation `flags` (county_code, rule_id,
status, is_new) and a relation `roster` (county_code, roster_persons).
"""

from __future__ import annotations

FLOOD_PER_1000 = 50  # open flags of one rule per 1,000 roster persons of a county above which the row is 异常

VOLUME_SQL = f"""
WITH f AS (
    SELECT county_code, rule_id, count(*) FILTER (WHERE status = 'open') AS open_flags,
           count(*) FILTER (WHERE is_new) AS new_flags
    FROM flags GROUP BY county_code, rule_id
),
r AS (SELECT county_code, max(roster_persons) AS roster_persons FROM roster GROUP BY county_code)
SELECT f.county_code, f.rule_id, f.open_flags, f.new_flags, coalesce(r.roster_persons, 0) AS roster_persons,
       CASE WHEN r.roster_persons > 0 THEN round(1000.0 * f.open_flags / r.roster_persons, 1) END AS open_per_1000,
       CASE WHEN r.roster_persons > 0 THEN round(1000.0 * f.new_flags / r.roster_persons, 1) END AS new_per_1000,
       CASE WHEN r.roster_persons > 0 THEN 1000.0 * f.open_flags / r.roster_persons > {FLOOD_PER_1000}
            ELSE f.open_flags >= {FLOOD_PER_1000} END AS flood
FROM f LEFT JOIN r USING (county_code)
WHERE f.open_flags > 0 OR f.new_flags > 0
ORDER BY flood DESC, open_per_1000 DESC NULLS FIRST, county_code, rule_id
"""

# The roster persons of the analysts' database: the same count the rules step makes (engine.roster_sizes).
ROSTER_SQL = """
SELECT file_county AS county_code, count(DISTINCT person_key) AS roster_persons
FROM staging.civil_roster WHERE is_latest AND status = '在保' GROUP BY 1
"""


def volume(con, flags_sql: str, roster_sql: str) -> list[dict]:
    """The volume rows (dicts) for the relations given as SQL, on an open DuckDB connection."""
    sql = f"WITH flags AS ({flags_sql}), roster AS ({roster_sql}), " + VOLUME_SQL.strip().removeprefix("WITH ")
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def volume_of_frames(flags, roster_sizes) -> list[dict]:
    """The same rows from the rules step's frames (Polars: mart.flags and engine roster_sizes)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("flags_frame", flags.select("county_code", "rule_id", "status", "is_new").to_arrow())
        con.register("roster_frame", roster_sizes.select("county_code", "roster_persons").to_arrow())
        return volume(con, "SELECT * FROM flags_frame", "SELECT * FROM roster_frame")
    finally:
        con.close()


def markdown(rows: list[dict], limit: int = 40) -> str:
    """A Markdown table for Dagster metadata: the 异常 rows first, at most `limit` rows."""
    from .rules.catalog import BY_ID

    lines = [f"异常 = more than {FLOOD_PER_1000} open flags per 1,000 roster persons",
             "", "| 区县 county | 规则 rule | 未结 open | 新增 new | 在册人数 roster persons | 每千人未结 open/1000 | |",
             "|---|---|---|---|---|---|---|"]
    for r in rows[:limit]:
        rule = BY_ID.get(r["rule_id"])
        name = f"{r['rule_id']} {rule.name_zh}" if rule else r["rule_id"]
        rate = "—" if r["open_per_1000"] is None else f"{r['open_per_1000']:,.1f}"
        lines.append(f"| {r['county_code']} | {name} | {r['open_flags']:,} | {r['new_flags']:,} | {r['roster_persons']:,} "
                     f"| {rate} | {'异常 flood' if r['flood'] else ''} |")
    if len(rows) > limit:
        lines.append(f"| … {len(rows) - limit} more | | | | | | |")
    return "\n".join(lines)
