"""Short textual summaries of a publication, for the command line."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from .publish import ANALYSTS_DB


def summary_line(warehouse: Path, as_of: date) -> str:
    path = Path(warehouse) / ANALYSTS_DB
    con = duckdb.connect(str(path), read_only=True)
    try:
        files, read, accepted, quarantined = con.execute(
            """SELECT count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_accepted), 0),
                      coalesce(sum(rows_quarantined), 0)
               FROM audit.deliveries WHERE as_of = $as_of
                 AND run_id = (SELECT run_id FROM audit.runs WHERE as_of = $as_of ORDER BY finished_at DESC LIMIT 1)""",
            {"as_of": as_of},
        ).fetchone()
        rejected = con.execute(
            """SELECT count(*) FROM audit.deliveries WHERE as_of = $as_of AND status = 'rejected'
                 AND run_id = (SELECT run_id FROM audit.runs WHERE as_of = $as_of ORDER BY finished_at DESC LIMIT 1)""",
            {"as_of": as_of},
        ).fetchone()[0]
        stale = []
        if con.execute("SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'audit' AND table_name = 'feed_freshness'"
                       ).fetchone()[0]:
            stale = con.execute(
                "SELECT feed, county, stale_since FROM audit.feed_freshness WHERE as_of = $as_of AND stale ORDER BY 1, 2",
                {"as_of": as_of},
            ).fetchall()
        unassessed = []  # rules.md "Unknown is not absent": subjects not judged because their row was quarantined
        if con.execute("""SELECT count(*) FROM duckdb_columns() WHERE schema_name = 'mart'
                          AND table_name = 'county_summary' AND column_name = 'not_assessable'""").fetchone()[0]:
            unassessed = con.execute(
                """SELECT rule_id, sum(not_assessable)::BIGINT FROM mart.county_summary
                   GROUP BY rule_id HAVING sum(not_assessable) > 0 ORDER BY rule_id""").fetchall()
    finally:
        con.close()
    line = (
        f"as of {as_of}: {files} file(s) ({rejected} rejected whole), {read} rows read, {accepted} accepted, "
        f"{quarantined} quarantined; published {path}"
    )
    if unassessed:  # on the summary line itself: --quiet prints one line
        per_rule = ", ".join(f"{rule} {n}" for rule, n in unassessed)
        line += f"; 无法判断 not assessable (row quarantined in the newest snapshot, not flagged): {per_rule}"
    if stale:
        pairs = ", ".join(f"{feed}/{county} since {since}" for feed, county, since in stale)
        line += f"\n数据过期 stale data, dependent flags carried (not resolved): {pairs}"
    return line
