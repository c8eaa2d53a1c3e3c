"""The restricted person index costs what a night adds, and says exactly what a full rebuild says.

`restricted.person_index` is kept as a per-person state of the parts indexed last time, merged
with the rows of the parts added since. These tests check it against an index computed here
independently, in Polars, from the staged rows: after a night that adds parts (merge), after a
replay of an older day (no saved state fits: rebuild) and after the newer day again (merge from the
older state).
"""

from __future__ import annotations

import json
from datetime import timedelta

import duckdb
import polars as pl

from lowincome.config import load_settings
from lowincome.feeds import FEEDS
from lowincome.keys import pseudonym
from lowincome.publish import PERSON_STATE_DIR, mart_tables, publish
from lowincome.workstore import WorkStore
from pipelines.definitions import defs

from .conftest import SAMPLE_END

EARLIER = SAMPLE_END - timedelta(days=31)


def _run(day) -> None:
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def _expected(store: WorkStore, day, secret: str) -> pl.DataFrame:
    """person_index as feeds.md/outputs.md define it: per ID, the name and county of its newest delivery."""
    rows = []
    for feed, spec in FEEDS.items():
        if "id_number" not in spec.by_name:
            continue
        frame = store.staging(day, feed).frame(store.root)
        county = pl.col("county_code") if "county_code" in spec.by_name else pl.lit(None, pl.String)
        rows.append(frame.select(
            pl.col("id_number"),
            (pl.col("name") if "name" in spec.by_name else pl.lit(None, pl.String)).alias("name"),
            pl.coalesce(county, pl.col("file_county")).alias("county_code"),
            pl.col("delivered_on"),
        ))
        if feed == "civil_roster":
            rows.append(frame.select(pl.col("head_id_number").alias("id_number"), pl.lit(None, pl.String).alias("name"),
                                     pl.col("county_code"), pl.col("delivered_on")))
    seen = pl.concat(rows).filter(pl.col("id_number").is_not_null())
    names = (seen.filter(pl.col("name").is_not_null()).sort("delivered_on", "name")
             .group_by("id_number").agg(pl.col("name").last()))
    counties = (seen.filter(pl.col("county_code").is_not_null()).sort("delivered_on", "county_code")
                .group_by("id_number").agg(pl.col("county_code").last()))
    people = seen.select("id_number").unique().join(names, on="id_number", how="left").join(counties, on="id_number", how="left")
    keys = [pseudonym(secret, v) for v in people["id_number"].to_list()]  # small test data: one key per person
    return people.with_columns(pl.Series("person_key", keys)).select("person_key", "id_number", "name", "county_code")


def _published(warehouse) -> pl.DataFrame:
    con = duckdb.connect(str(warehouse / "restricted.duckdb"), read_only=True)
    try:
        return pl.from_arrow(con.sql("SELECT person_key, id_number, name, county_code FROM person_index").to_arrow_table())
    finally:
        con.close()


def _same(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.sort("id_number").equals(b.sort("id_number"))


def _states(store: WorkStore) -> list[set[str]]:
    folder = store.root / PERSON_STATE_DIR
    notes = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    return [set(json.loads(n.read_text(encoding="utf-8"))) for n in notes]


def _parts(store: WorkStore, day) -> set[str]:
    return {p for f in FEEDS for p in store.staging(day, f).parts
            if "id_number" in FEEDS[f].by_name or f == "civil_roster"}


def test_person_index_merged_equals_rebuilt(generated, lowincome_env, monkeypatch):
    out, _ = generated
    warehouse = lowincome_env(out / "inbox")
    monkeypatch.setenv("LOWINCOME_RETENTION_DAYS", "60")  # the earlier day is published again below
    secret = load_settings().pseudonym_key
    _run(EARLIER)
    store = WorkStore(warehouse).committed()
    first = _parts(store, EARLIER)
    assert _same(_published(warehouse), _expected(store, EARLIER, secret))
    assert _states(store)[-1] == first

    _run(SAMPLE_END)  # adds parts: merged with the earlier night's state
    store = WorkStore(warehouse).committed()
    later = _parts(store, SAMPLE_END)
    assert first < later, "the later night must add parts for this test to mean anything"
    expected_later = _expected(store, SAMPLE_END, secret)
    assert _same(_published(warehouse), expected_later)
    assert _states(store)[-1] == later

    # an older day published again: the newest state covers parts that are not in use then, so it is rebuilt
    # (the earlier night's own state, which would fit, is removed first)
    folder = store.root / PERSON_STATE_DIR
    for note in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)[:-1]:
        note.unlink()
    assert _states(store) == [later]
    settings = load_settings()
    publish(store, EARLIER, settings.pseudonym_key, **mart_tables(store, EARLIER), settings=settings)
    assert _same(_published(warehouse), _expected(store, EARLIER, secret))
    assert _states(store)[-1] == first
    # and the newer day again, merged from the older state (the newer one removed to make it the only fit)
    for note in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)[:-1]:
        note.unlink()
    publish(store, SAMPLE_END, settings.pseudonym_key, **mart_tables(store, SAMPLE_END), settings=settings)
    assert _same(_published(warehouse), expected_later)
    assert _states(store)[-1] == later
    assert len(_states(store)) <= 2  # a few recent states, not one per night


def test_merging_two_states_equals_aggregating_their_rows():
    """The one-join merge of a saved state with the added parts' state gives what the aggregate over all rows gives.

    Rows are drawn so that every case of the merge occurs: a person only one side knows, a newer name or
    county on either side, two values on the same day (the larger wins, as arg_max on (day, value) does),
    and a newer row without a name or county (it must not erase the older value).
    """
    import random
    from datetime import date, timedelta

    from lowincome.publish import _MERGE_PERSON_STATE, _PERSON_STATE_AGG

    rnd = random.Random(11)
    rows = []
    for side in ("state", "added"):
        for _ in range(4000):
            rows.append((side, f"ID{rnd.randrange(900):04d}", rnd.choice([None, "甲", "乙", "丙"]),
                         rnd.choice([None, "371302", "371324"]), date(2026, 1, 1) + timedelta(days=rnd.randrange(6))))
    con = duckdb.connect()
    con.register("raw", pl.DataFrame(rows, schema=["side", "id_number", "name", "county_code", "delivered_on"], orient="row"))
    aggregate = _PERSON_STATE_AGG.format(on="delivered_on", con="delivered_on")
    con.execute(f"CREATE TABLE state AS SELECT id_number, 'key-' || id_number AS person_key, {aggregate} "
                "FROM raw WHERE side = 'state' GROUP BY id_number")
    con.execute(f"CREATE TABLE person_added AS SELECT id_number, NULL::VARCHAR AS person_key, {aggregate} "
                "FROM raw WHERE side = 'added' GROUP BY id_number")
    both = set(con.execute("SELECT id_number FROM state INTERSECT SELECT id_number FROM person_added").fetchall())
    assert len(both) > 500, "the two sides must share persons for the merge to be exercised"
    merged = con.execute(f"SELECT id_number, name, name_on, county_code, county_on FROM ({_MERGE_PERSON_STATE.format(state='state')}) "
                         "ORDER BY id_number").fetchall()
    expected = con.execute(f"SELECT id_number, {aggregate} FROM raw GROUP BY id_number ORDER BY id_number").fetchall()
    assert merged == expected
    keys = dict(con.execute(f"SELECT id_number, person_key FROM ({_MERGE_PERSON_STATE.format(state='state')})").fetchall())
    state_ids = {r[0] for r in con.execute("SELECT id_number FROM state").fetchall()}
    assert all(keys[i] == f"key-{i}" for i in state_ids) and all(keys[i] is None for i in set(keys) - state_ids)
