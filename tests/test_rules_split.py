"""Rules per county (issue 10): the union of the county steps is the whole evaluation, exactly.

The bundled night has one person on two counties' rosters and nothing else that crosses a county,
so the tests scatter it: every fact row (payments, claims, deaths, certificates, 人社 rows) is moved
to one of three counties at random, whole roster and monitoring households move county, and some
roster rows move alone (a person on two rosters, a household split over two counties). Then every
frame the rules hand on (flags, subjects, households, roster sizes, aliases, not-assessable
subjects) must be the same whether evaluated in one step or in two or three county steps.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lowincome.config import DEFAULT_POLICY, load_settings
from lowincome.feeds import DEPARTMENT_FEEDS
from lowincome.rules import engine, routing, steps
from lowincome.rules.policy import load_policy
from lowincome.workstore import WorkStore

from .conftest import SAMPLE_END

THIRD_COUNTY = "371311"  # a county the samples do not have: facts and households move there too
HOUSEHOLD = {"civil_roster": "household_id", "rural_monitoring": "rural_household_id"}


def _moved_county(frame: pl.DataFrame, key: pl.Expr, counties: list[str], share: int) -> pl.Expr:
    """Rows whose key hashes into the first `share` of 6 buckets move to a county chosen by the hash."""
    h = key.hash(seed=11)
    return (pl.when((h % 6) < share)
            .then(pl.lit(pl.Series(counties)).get((h // 6) % len(counties)))
            .otherwise(pl.col("file_county")))


@pytest.fixture(scope="module")
def scattered(published, tmp_path_factory) -> dict[str, Path]:
    """The sample night's staging with its facts and households scattered over three counties (Parquet per feed)."""
    warehouse, _ = published
    store = WorkStore(warehouse)
    counties = ["371302", "371324", THIRD_COUNTY]
    folder = tmp_path_factory.mktemp("scattered")
    out = {}
    con = duckdb.connect()
    for feed in DEPARTMENT_FEEDS:
        frame = pl.from_arrow(con.sql(store.staging(SAMPLE_END, feed).relation_sql(store.root)).to_arrow_table())
        if feed in HOUSEHOLD:
            household = pl.concat_str([pl.col("file_county"), pl.col(HOUSEHOLD[feed])])
            county = _moved_county(frame, household, counties, 3)
            if feed == "civil_roster":  # and a few rows alone: two rosters for one person, split households
                alone = pl.concat_str([pl.col("id_number"), pl.lit("alone")])
                county = pl.when((alone.hash(seed=5) % 9) == 0).then(
                    _moved_county(frame, alone, counties, 6)).otherwise(county)
        else:
            county = _moved_county(frame, pl.concat_str([pl.col("source_file"), pl.col("source_row").cast(pl.String)]),
                                   counties, 4)
        frame = frame.with_columns(county.alias("file_county"))
        if "county_code" in frame.columns:
            frame = frame.with_columns(pl.col("file_county").alias("county_code"))
        out[feed] = folder / f"{feed}.parquet"
        frame.write_parquet(out[feed])
    con.close()
    return out


def _settings(tmp_path, rule_steps: int):
    return dataclasses.replace(load_settings({}), warehouse=tmp_path / "wh", rule_steps=rule_steps)


def _whole(staging, tmp_path) -> engine.Evaluation:
    return engine._evaluate(staging, load_policy(DEFAULT_POLICY), SAMPLE_END, "k" * 32, _settings(tmp_path, 1), {})


def _split(staging, tmp_path, rule_steps: int, weights=None) -> engine.Evaluation:
    return steps.evaluate_split(staging, load_policy(DEFAULT_POLICY), SAMPLE_END, "k" * 32,
                                _settings(tmp_path, rule_steps), {}, weights or {}, tmp_path / f"steps{rule_steps}")


def _assert_same(whole: engine.Evaluation, split: engine.Evaluation) -> None:
    for name in steps.FRAMES:
        a, b = getattr(whole, name), getattr(split, name)
        assert a.schema == b.schema, name
        if not a.equals(b):
            only_whole, only_split = a.join(b, on=a.columns, how="anti", nulls_equal=True), b.join(a, on=a.columns, how="anti", nulls_equal=True)
            shown = [c for c in a.columns if c in ("rule_id", "county_code", "period", "flag_id", "evidence")]
            raise AssertionError(f"{name}: whole {a.height} rows, split {b.height}; only in the whole evaluation: "
                                 f"{only_whole.select(shown).to_dicts()[:3]}; only in the split: "
                                 f"{only_split.select(shown).to_dicts()[:3]}")


def test_scattering_makes_facts_and_households_cross_counties(scattered, tmp_path):
    """The data the tests below use really crosses counties, and the whole evaluation flags across them."""
    con = duckdb.connect()
    rows = " UNION ALL ".join(
        f"SELECT id_number, file_county FROM read_parquet('{p}') WHERE id_number IS NOT NULL" for p in scattered.values())
    movers = con.execute(f"SELECT count(*) FROM (SELECT id_number FROM ({rows}) GROUP BY 1 "
                         "HAVING count(DISTINCT file_county) > 1)").fetchall()[0][0]
    assert movers > 500
    whole = _whole(scattered, tmp_path)
    assert whole.flags["county_code"].n_unique() == 3
    assert set(whole.flags["rule_id"]) >= {"R01", "R02", "R03", "R05", "R06", "W01", "W02", "W03", "W04"}


@pytest.mark.parametrize("rule_steps", [2, 3])
def test_county_steps_give_the_whole_evaluation(scattered, tmp_path, rule_steps):
    _assert_same(_whole(scattered, tmp_path), _split(scattered, tmp_path, rule_steps))


def test_persons_whose_routing_keys_collide_are_still_exact(scattered, tmp_path, monkeypatch):
    """Routing only needs a key that is a function of the ID number: with a key of five values nearly every
    person shares it with thousands of others, and the union of the steps is still the whole evaluation."""
    monkeypatch.setattr(routing, "PERSON_KEY", "(hash({}) % 5)")
    _assert_same(_whole(scattered, tmp_path), _split(scattered, tmp_path, 3))


def test_groups_follow_the_weights_and_each_county_is_in_one_step(scattered, tmp_path):
    weights = {"371302": 100, "371324": 60, THIRD_COUNTY: 50}
    assert routing.share_counties(weights, 2) == (("371302",), ("371311", "371324"))
    assert routing.share_counties(weights, 9) == (("371302",), ("371311",), ("371324",))
    assert routing.share_counties({"371302": 0, "371324": 0}, 2) == (("371302",), ("371324",))
    _assert_same(_whole(scattered, tmp_path), _split(scattered, tmp_path, 2, weights))


def test_without_the_routed_rows_the_steps_would_be_wrong(scattered, tmp_path, monkeypatch):
    """The routed rows are what makes the split exact: a step that reads only its own counties' rows flags
    other persons (a death reported elsewhere unseen, claims of another county missing)."""
    real = routing.group_staging

    def own_rows_only(staging, r, g):
        return {f: s.split(" UNION ALL BY NAME ")[0] for f, s in real(staging, r, g).items()}

    monkeypatch.setattr(engine, "group_staging", own_rows_only)
    whole, split = _whole(scattered, tmp_path), _split(scattered, tmp_path, 3)
    assert not whole.flags.equals(split.flags)


def test_a_step_receives_the_households_of_its_people_from_other_counties(scattered, tmp_path):
    """Household closure: a step that needs a person also gets, from any county, every roster row of the
    person's households (members without an ID included) and every row of those households' members. No
    rule of today judges a person by another member's rows (those are household flags, kept by the
    household's county), but a rule that did would still be exact."""
    plan = steps.plan_rules(scattered, load_policy(DEFAULT_POLICY), SAMPLE_END, _settings(tmp_path, 3), {},
                            tmp_path / "route")
    assert plan.steps == 3
    con = duckdb.connect()
    for feed, path in scattered.items():
        con.execute(f"CREATE VIEW {feed} AS SELECT * FROM read_parquet('{path}')")
        con.execute(f"CREATE VIEW routed_{feed} AS SELECT * FROM read_parquet('{plan.routing.path(feed)}')")
    checked = 0
    for g, counties in enumerate(plan.routing.groups):
        inside = ", ".join(f"'{c}'" for c in counties)
        # households of another group's county with a member who has a payment delivered by this group
        expected = con.execute(f"""
            SELECT DISTINCT r.file_county, r.household_id FROM civil_roster AS r
            WHERE r.file_county NOT IN ({inside})
              AND r.id_number IN (SELECT id_number FROM subsidy_payments WHERE file_county IN ({inside}))""").fetchall()
        for county, household in expected:
            whole = con.execute("SELECT source_file, source_row FROM civil_roster WHERE file_county = ? AND household_id = ? "
                                "ORDER BY ALL", [county, household]).fetchall()
            got = con.execute("SELECT source_file, source_row FROM routed_civil_roster WHERE _group = ? AND file_county = ? "
                              "AND household_id = ? ORDER BY ALL", [g, county, household]).fetchall()
            assert got == whole, (g, county)
            members_hrss = con.execute(f"""
                SELECT count(*) FROM hrss_benefits WHERE file_county NOT IN ({inside}) AND id_number IN (
                    SELECT id_number FROM civil_roster WHERE file_county = ? AND household_id = ?)""",
                                       [county, household]).fetchall()[0][0]
            routed_hrss = con.execute(f"""
                SELECT count(*) FROM routed_hrss_benefits WHERE _group = ? AND id_number IN (
                    SELECT id_number FROM civil_roster WHERE file_county = ? AND household_id = ?)""",
                                      [g, county, household]).fetchall()[0][0]
            assert routed_hrss == members_hrss
            checked += 1
    assert checked > 50


def test_one_step_routes_nothing(scattered, tmp_path):
    plan = steps.plan_rules(scattered, load_policy(DEFAULT_POLICY), SAMPLE_END, _settings(tmp_path, 1), {},
                            tmp_path / "route")
    assert plan.steps == 1 and plan.routing.folder is None and plan.step_name(0) == "all"
    assert not (tmp_path / "route").exists()


def test_the_claims_feed_is_read_by_the_rules_only_inside_the_medical_window():
    """routing.ROWS_RULES_READ routes only the claims a rule reads: every read of the feed must say so."""
    sql_dir = Path(engine.SQL_DIR)
    uses = []
    for path in sorted(sql_dir.rglob("*.sql")):
        if path.parent.name not in ("rules", "models"):
            continue
        text = path.read_text(encoding="utf-8")
        for block in text.split("FROM stg_medical_claims")[1:]:
            uses.append((path.name, "settled_on > $medical_window_start" in block.split(")")[0] + block[:400]))
    assert uses and all(ok for _, ok in uses), uses


def test_a_night_with_two_rule_steps_publishes_what_one_step_publishes(published, generated, lowincome_env,
                                                                      monkeypatch):
    """The real Dagster job in-process with LOWINCOME_RULE_STEPS=2: route, two county steps, collect; every
    published table equals the shared one-step night's; a re-run with identical inputs runs no county step."""
    from pipelines.definitions import defs

    from .warehouse_compare import differences

    reference, _ = published
    out, _ = generated
    warehouse = lowincome_env(out / "inbox")
    monkeypatch.setenv("LOWINCOME_FANOUT_MIN_MB", "0")  # as the shared night ran
    monkeypatch.setenv("LOWINCOME_RULE_STEPS", "2")
    job = defs.resolve_job_def("nightly")
    first = job.execute_in_process(partition_key=SAMPLE_END.isoformat())
    assert first.success
    ran = sorted(e.step_key for e in first.all_events if e.is_step_success and e.step_key.startswith("mart__flags"))
    assert ran == ["mart__flags.collect", "mart__flags.county[371302]", "mart__flags.county[371324]",
                   "mart__flags.route"]
    found, compared = differences(reference, warehouse)
    assert compared >= 20 and not found, "\n".join(found)
    again = job.execute_in_process(partition_key=SAMPLE_END.isoformat())
    assert again.success
    ran = sorted(e.step_key for e in again.all_events if e.is_step_success and e.step_key.startswith("mart__flags"))
    assert ran == ["mart__flags.collect", "mart__flags.route"]
    log = (warehouse / "logs" / "lowincome.log").read_text(encoding="utf-8")
    assert log.count("2 county steps (371302; 371324)") == 1
    assert log.count("(result of identical inputs reused)") == 1
