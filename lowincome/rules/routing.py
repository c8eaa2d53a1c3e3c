"""Which rows each county step of the rules reads, and which of its flags it keeps (issue 10, rules per county).

Almost no rule looks inside one county (docs/decisions.md 182): R01 pays a county's benefit to a
person whose death another county reported, W01 adds up claims settled anywhere for a household
of any county, R06 is about one person on two counties' rosters. So a county step cannot read only
its own counties' files. It reads them and, from the other counties, exactly the rows its subjects
depend on. The routing step computes those once per night, over a small projection (person, county,
household), and writes them as one small Parquet file per feed:

- a step covers a *group* of counties (LOWINCOME_RULE_STEPS groups, counties shared out by size);
- a person is *anchored* in a group when some row of any feed about them was delivered by one of
  its counties; the group *needs* every person anchored in it and every member of a household (civil
  roster or rural monitoring, any snapshot) that such a person belongs to;
- a step reads its counties' rows whole, and from other counties every row of each person it
  needs and every roster or monitoring row of each household it needs (a member without an ID
  still counts in a household's size);
- a flag is kept by one step only: a household's by the step of the household's county, a person's
  by the lowest group the person is anchored in (a person anchored in one group only is only in that
  step's rows). Every step evaluates every rule; the flags of subjects it does not own are dropped.

Persons are routed by a key computed from the ID number (`PERSON_KEY`: the number itself). Were two
ID numbers to share a key, they would be routed as one person: both travel wherever either is
needed and are owned by one step, which then has every row of both, so a coarser key only moves
more rows and the result stays exact (a test routes by a key of five values).

Why this is exact: every rule judges a subject (a person, or a household of one county) from the
subject's own rows and the rows of the subject's household members (docs/rules.md). The owning
step has all of them, from whatever county, because the subject is anchored there and the
household closure brings its members; the snapshot a `*_latest` model picks is named by the file
list (`is_latest`), not by the rows a step happens to see. Tests compare every output of the split
with the whole evaluation on data whose facts are scattered over counties
(tests/test_rules_split.py).

The only feed read with a restriction is the claims feed: W01 is its one reader and reads claims
settled after `$medical_window_start` only (a test checks every use of `stg_medical_claims` in sql/
says so), so older claims neither anchor a person nor travel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..config import Settings, configure_duckdb
from ..staging import sql_text
from ..temporaries import temporary_path

# feed → the only rows of it a rule reads (with the rules' own parameters); other feeds: every row
ROWS_RULES_READ = {"medical_claims": "settled_on > $medical_window_start::DATE"}
# feed → the household key of its rows (a household is one county's: the county is part of the key)
HOUSEHOLD_COLUMN = {"civil_roster": "household_id", "rural_monitoring": "rural_household_id"}
OWNERS = "owners"
# SQL of a person's routing key from an ID number column: the ID number itself. Any function of it would
# do (see the module's docstring on collisions); a 64-bit hash groups faster but, as an expression, keeps
# DuckDB from filtering the claims by the routed IDs' range before the join (decision 193).
PERSON_KEY = "{}"


def _person(column: str) -> str:
    return PERSON_KEY.format(column)


@dataclass(frozen=True)
class Routing:
    """What the routing step decided for one night: small and picklable (paths, never rows)."""

    groups: tuple[tuple[str, ...], ...]  # county codes per step, in step order
    folder: str | None = None  # foreign rows per feed and the owners table; None: one step, nothing routed

    def path(self, name: str) -> str:
        return str(Path(self.folder) / f"{name}.parquet")


def share_counties(weights: dict[str, int], steps: int) -> tuple[tuple[str, ...], ...]:
    """Counties shared out over at most `steps` groups, the largest first into the lightest group.

    Sizes are the rows delivered (any measure of work will do: it only balances the steps); ties are
    broken by the county code, so the same inputs always give the same groups.
    """
    steps = max(1, min(steps, len(weights)))
    groups: list[list[str]] = [[] for _ in range(steps)]
    loads = [0] * steps
    for county in sorted(weights, key=lambda c: (-weights[c], c)):
        lightest = min(range(steps), key=lambda g: (loads[g], len(groups[g]), g))
        groups[lightest].append(county)
        loads[lightest] += weights[county]
    return tuple(tuple(sorted(g)) for g in sorted((g for g in groups if g), key=min))


def _group_case(groups: tuple[tuple[str, ...], ...], column: str) -> str:
    """SQL: the group of the county in `column` (0 for a county no group names, and for NULL)."""
    arms = " ".join(f"WHEN {column} IN ({', '.join(sql_text(c) for c in counties)}) THEN {g}"
                    for g, counties in enumerate(groups) if g > 0)
    return f"(CASE {arms} ELSE 0 END)" if arms else "0"


def own_rows_filter(groups: tuple[tuple[str, ...], ...], g: int) -> str:
    """SQL: a row delivered by a county of group `g` (a plain IN list, so Parquet statistics skip other parts)."""
    if g > 0:
        return f"file_county IN ({', '.join(sql_text(c) for c in groups[g])})"
    others = [c for k, counties in enumerate(groups) if k != 0 for c in counties]
    if not others:
        return "true"
    return f"(file_county IS NULL OR file_county NOT IN ({', '.join(sql_text(c) for c in others)}))"


def _rows_sql(feed: str, source: str) -> str:
    where = ROWS_RULES_READ.get(feed)
    return f"(SELECT * FROM ({source}) WHERE {where})" if where else f"({source})"


def route(staging: dict[str, str], groups: tuple[tuple[str, ...], ...], values: dict, settings: Settings,
          folder: Path) -> Routing:
    """Compute the night's routing into `folder` (created): foreign rows per feed, and the owners of persons
    present in more than one step. `staging` maps each department feed to its SELECT (`Staging.relation_sql`);
    `values` are the rules' parameters (`engine.parameters`)."""
    if len(groups) < 2:
        return Routing(groups)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    con = configure_duckdb(duckdb.connect(), settings)
    try:
        def run(sql: str) -> None:
            used = {k: v for k, v in values.items() if f"${k}" in sql}
            con.execute(sql, used or None)

        group = _group_case(groups, "file_county")
        anchors = " UNION ALL ".join(
            f"SELECT DISTINCT {_person('id_number')} AS h, {group} AS g FROM {_rows_sql(feed, source)} WHERE id_number IS NOT NULL"
            for feed, source in staging.items())
        run(f"CREATE TEMP TABLE anchored AS SELECT DISTINCT h, g FROM ({anchors})")
        members = " UNION ".join(
            f"SELECT DISTINCT {_person('id_number')} AS h, '{feed}' AS feed, file_county AS county, {column} AS household "
            f"FROM ({staging[feed]}) WHERE id_number IS NOT NULL"
            for feed, column in HOUSEHOLD_COLUMN.items() if feed in staging) or (
            f"SELECT {_person('NULL::VARCHAR')} AS h, NULL AS feed, NULL AS county, NULL AS household WHERE false")
        run(f"CREATE TEMP TABLE member AS {members}")
        # households a group needs from another county, and the persons it needs (anchored, or a co-member)
        run(f"""CREATE TEMP TABLE needs_household AS
                SELECT DISTINCT a.g, m.feed, m.county, m.household
                FROM anchored AS a JOIN member AS m USING (h)
                WHERE {_group_case(groups, 'm.county')} <> a.g""")
        run("""CREATE TEMP TABLE needs AS
               SELECT h, g FROM anchored
               UNION
               SELECT m.h, n.g FROM needs_household AS n
               JOIN member AS m ON m.feed = n.feed AND m.county = n.county AND m.household = n.household""")
        run("""CREATE TEMP TABLE shared AS
               SELECT h FROM needs GROUP BY h HAVING count(*) > 1""")
        written = Routing(groups, str(folder))

        def copy(sql: str, name: str) -> None:  # whole or not at all: a retried step may find the folder
            target = Path(written.path(name))
            tmp = temporary_path(target, ".parquet")
            run(f"COPY ({sql}) TO {sql_text(str(tmp))} (FORMAT parquet)")
            tmp.replace(target)

        copy("""SELECT a.h, min(a.g) AS owner FROM anchored AS a SEMI JOIN shared USING (h)
                GROUP BY a.h ORDER BY a.h""", OWNERS)
        run("CREATE TEMP TABLE travels AS SELECT n.h, n.g FROM needs AS n SEMI JOIN shared USING (h)")
        quiet = con.execute("SELECT NOT EXISTS (FROM travels) AND NOT EXISTS (FROM needs_household)").fetchall()[0][0]
        for feed, source in staging.items():
            rows = _rows_sql(feed, source)
            if quiet:  # nobody crosses a group: an empty file of the feed's columns, without hashing every row
                copy(f"SELECT 0 AS _group, * FROM {rows} LIMIT 0", feed)
                continue
            by_person = (f"SELECT t.g AS _group, s.* FROM {rows} AS s JOIN travels AS t ON t.h = {_person('s.id_number')} "
                         f"WHERE {_group_case(groups, 's.file_county')} <> t.g")
            column = HOUSEHOLD_COLUMN.get(feed)
            sql = by_person if column is None else (
                f"{by_person} UNION SELECT h.g AS _group, s.* FROM {rows} AS s JOIN needs_household AS h "
                f"ON h.feed = '{feed}' AND h.county = s.file_county AND h.household = s.{column}")
            copy(sql, feed)
    finally:
        con.close()
    return written


def group_staging(staging: dict[str, str], routing: Routing, g: int) -> dict[str, str]:
    """The `stg_<feed>` SELECTs of step `g`: its counties' rows, and the rows routed to it from the others."""
    if routing.folder is None:
        return dict(staging)
    out = {}
    for feed, source in staging.items():
        foreign = f"SELECT * EXCLUDE (_group) FROM read_parquet({sql_text(routing.path(feed))}) WHERE _group = {g}"
        out[feed] = (f"SELECT * FROM ({source}) WHERE {own_rows_filter(routing.groups, g)} "
                     f"UNION ALL BY NAME {foreign}")
    return out


def owned_predicate(routing: Routing, g: int) -> str:
    """SQL over a rule's output row: true when step `g` is the one that keeps this subject's flags."""
    person_owner = f"coalesce((SELECT o.owner FROM read_parquet({sql_text(routing.path(OWNERS))}) AS o " \
                   f"WHERE o.h = {_person('subject_id')}), {g})"
    return (f"CASE WHEN subject_type = 'household' THEN {_group_case(routing.groups, 'subject_county')} = {g} "
            f"ELSE {person_owner} = {g} END")


def county_in_group(routing: Routing, g: int, column: str) -> str:
    """SQL: the county in `column` belongs to step `g` (households and roster sizes are per county)."""
    return f"{_group_case(routing.groups, column)} = {g}"
