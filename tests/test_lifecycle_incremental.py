"""The incremental lifecycle equals the full recomputation over every day's flag list, night after night.

Days are generated here (a pool of flags that appear, persist, change evidence,
disappear and come back; caseworkers' outcomes, some delivered days after the
day they were decided; stale feeds that carry flags), driven through
`build_marts` as the nightly run does, and compared with `full_lifecycle`, which
evaluates LIFECYCLE_SQL / TREND_SQL (the definition) over the full flag list of
every recorded day, kept by the test itself. The sequence includes re-runs of
older days (same and different input), a back-filled day before all others,
pruned run folders, a replay after pruning and a warehouse of the earlier layout.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from datetime import date, timedelta
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY, Settings
from lowincome.freshness import FRESHNESS_SCHEMA
from lowincome.rules import lifecycle_history as history
from lowincome.rules.engine import FLAG_COLUMNS, Evaluation
from lowincome.rules.lifecycle import FLAG_DAY, build_marts, carried_flags, commit_history, full_lifecycle
from lowincome.workstore import WorkStore

START = date(2026, 10, 1)
COUNTIES = ("371302", "371324")
RULE_NAMES = {"R05": ("income_above_standard", "review"), "R06": ("duplicate_enrollment", "review"),
              "R07": ("paid_after_exit", "review"), "W05": ("income_below_monitoring_line", "warning")}
OVERDUE = {"*": 3, "371324": 5}
OUTCOME_COLUMNS = {"flag_id": pl.String, "outcome": pl.String, "decided_on": pl.Date, "delivered_on": pl.Date,
                   "source_file": pl.String, "source_row": pl.Int64}


class World:
    """A generated history: which flags hold on each day, with what evidence, and what caseworkers decided."""

    def __init__(self, flags: int, seed: int = 11):
        self.rng = random.Random(seed)
        self.pool = [{"flag_id": f"f{i:05d}", "rule_id": list(RULE_NAMES)[i % 4], "county_code": COUNTIES[i % 2],
                      "subject_key": f"p{i:05d}", "period": f"2026-{1 + i % 9:02d}", "holds": self.rng.random() < 0.6,
                      "version": 0} for i in range(flags)]
        self.outcomes: list[dict] = []

    def evolve(self, churn: float = 0.08, change: float = 0.04) -> None:
        for f in self.pool:
            if self.rng.random() < churn:
                f["holds"] = not f["holds"]
            if self.rng.random() < change:
                f["version"] += 1

    def evaluation(self, day: date, drop: float = 0.0) -> Evaluation:
        rows = []
        for f in self.pool:
            if not f["holds"] or (drop and self.rng.random() < drop):
                continue
            name, kind = RULE_NAMES[f["rule_id"]]
            evidence = f'{{"payments": {f["version"]}, "period": "{f["period"]}"}}'
            rows.append({"flag_id": f["flag_id"], "rule_id": f["rule_id"], "rule_name": name, "kind": kind,
                         "level": "红" if f["rule_id"] < "R06" else ("橙" if f["rule_id"] < "W" else "黄"), "subject_type": "person",
                         "subject_key": f["subject_key"], "county_code": f["county_code"], "period": f["period"],
                         "as_of": day, "evidence": evidence, "evidence_hash": hashlib.md5(evidence.encode()).hexdigest(),
                         # the kinds of fact: another one on odd versions (a dismissal decided on an even version
                         # reopens there; decided on an odd one, it stays through every later version)
                         "substance": "benefit:a" + ("|benefit:b" if f["version"] % 2 == 1 else "")})
        flags = pl.DataFrame(rows, schema={c: (pl.Date if c == "as_of" else pl.String) for c in FLAG_COLUMNS})
        subjects = flags.select("flag_id", "subject_type", "county_code",
                                pl.col("subject_key").alias("id_number"), pl.lit(None, dtype=pl.String).alias("household_id"))
        households = flags.select(pl.col("subject_key").alias("person_key"),
                                  ("h" + pl.col("subject_key")).alias("household_key"), "county_code",
                                  pl.lit("roster").alias("household_source")).unique("person_key")
        sizes = pl.DataFrame({"county_code": list(COUNTIES), "roster_households": [10, 20], "roster_persons": [30, 40],
                              "monitored_households": [5, 6]})
        return Evaluation(flags, subjects, {}, households, sizes)

    def decide(self, day: date, ids: list[str], late_by: int = 0) -> None:
        """Outcomes delivered on `day`, decided `late_by` days earlier."""
        for n, flag_id in enumerate(ids):
            self.outcomes.append({"flag_id": flag_id, "outcome": "dismissed" if n % 3 else "confirmed",
                                  "decided_on": day - timedelta(days=late_by), "delivered_on": day,
                                  "source_file": f"outcomes_{day}.csv", "source_row": n + 1})

    def outcomes_until(self, day: date) -> pl.DataFrame:
        return pl.DataFrame([o for o in self.outcomes if o["delivered_on"] <= day], schema=OUTCOME_COLUMNS)


def freshness(day: date, stale: tuple[tuple[str, str], ...] = (), delivered: date | None = None) -> pl.DataFrame:
    rows = [{"as_of": day, "feed": feed, "delivery": "snapshot", "county": county, "latest_delivery": delivered or day,
             "stale_after_days": 45, "stale": (feed, county) in stale, "reason": None}
            for feed in ("civil_roster", "rural_monitoring", "subsidy_payments", "hrss_benefits") for county in COUNTIES]
    frame = pl.DataFrame(rows)
    return frame.select([pl.col(c).cast(t) if c in frame.columns else pl.lit(None, dtype=t).alias(c)
                         for c, t in FRESHNESS_SCHEMA.items()])


class Nightly:
    """Runs days through build_marts and commits them; keeps its own copy of every committed day's flag list."""

    def __init__(self, warehouse: Path, world: World):
        self.warehouse, self.world = warehouse, world
        self.settings = Settings(inbox=warehouse / "inbox", warehouse=warehouse, policy=DEFAULT_POLICY,
                                 pseudonym_key=DEV_PSEUDONYM_KEY, production=False, memory_limit="512MB",
                                 memory_limit_bytes=512 * 10**6)
        self.recorded: dict[date, pl.DataFrame] = {}  # the test's own record of each day's full flag list
        self.fresh: dict[date, pl.DataFrame] = {}  # ... and of each day's guard table
        self.runs = 0

    def run(self, day: date, evaluation: Evaluation, stale: tuple = (), delivered: date | None = None) -> Path:
        self.runs += 1
        store = WorkStore(self.warehouse, run_id=f"r{self.runs}")
        store.write(day, "staging", "verification_outcomes", self.world.outcomes_until(day))
        fresh = freshness(day, stale, delivered)
        store.write(day, "guard", "feed_freshness", fresh)  # as the flags asset does (FRESHNESS_FILE)
        build_marts(store, day, evaluation, OVERDUE, evaluation.households, evaluation.roster_sizes, fresh,
                    settings=self.settings)
        folder = store.run_dir(day)
        # the day's list is today's flags plus the previous recorded day's flags carried on stale feeds
        earlier = [d for d in self.recorded if d < day]
        today = evaluation.flags.with_columns(pl.lit(False).alias("carried"), pl.lit(None, dtype=pl.String).alias("stale_feeds"))
        previous = self.recorded[max(earlier)] if earlier else today.head(0)
        expected_day = pl.concat([today, carried_flags(previous, today["flag_id"], day, fresh)], how="vertical_relaxed")
        assert "as_of" not in pl.read_parquet_schema(folder / FLAG_DAY)  # the folder's day: not stored per row
        assert_frame_equal(history.read_flag_day(folder / FLAG_DAY, day).sort("flag_id"), expected_day.sort("flag_id"))
        store.commit(day)
        commit_history(store, day)
        self.recorded[day] = expected_day
        self.fresh[day] = fresh
        self.check(day, folder)
        return folder

    def check(self, day: date, folder: Path) -> None:
        tmp = self.warehouse.parent / "reference"
        tmp.mkdir(exist_ok=True)
        files = []
        for d, frame in sorted(self.recorded.items()):
            if d <= day:
                files.append(tmp / f"{d}.parquet")
                frame.write_parquet(files[-1])
        flags, trend = full_lifecycle(files, self.world.outcomes_until(day), day, OVERDUE, self.settings)
        got = pl.read_parquet(folder / "mart" / "flags.parquet")
        assert_frame_equal(got, flags.drop("evidence_hash"))
        assert_frame_equal(pl.read_parquet(folder / "mart" / "flag_trend.parquet"), trend)
        guard = pl.concat([f for d, f in sorted(self.fresh.items()) if d <= day]).sort("as_of", "feed", "county")
        assert_frame_equal(pl.read_parquet(folder / "mart" / "feed_freshness.parquet"), guard)


def days(n: int) -> list[date]:
    return [START + timedelta(days=k) for k in range(n)]


def test_incremental_equals_full_recomputation(tmp_path):
    world = World(flags=300)
    night = Nightly(tmp_path / "warehouse", world)
    d = days(14)
    evaluations = {}
    for k, day in enumerate(d[:9]):
        if k:
            world.evolve()
        if k == 2:
            world.decide(day, [f["flag_id"] for f in world.pool if f["holds"]][:30])
        if k == 5:  # outcomes delivered today, decided three days ago (before some evidence changed)
            world.decide(day, [f["flag_id"] for f in world.pool if f["holds"]][30:60], late_by=3)
        if k == 7:  # decided before the flag was ever seen, and on a resolved flag
            world.decide(day, [f["flag_id"] for f in world.pool if not f["holds"]][:10], late_by=7)
        evaluations[day] = world.evaluation(day)
        stale = (("civil_roster", "371302"),) if k in (4, 5) else ((("rural_monitoring", "371324"),) if k == 8 else ())
        night.run(day, evaluations[day], stale)
    counts = pl.concat(list(night.recorded.values()))
    assert counts["carried"].sum() > 0  # the sequence did carry flags on stale data
    flags = pl.read_parquet(WorkStore(night.warehouse).committed_dir(d[8]) / "mart" / "flags.parquet")
    for status in ("open", "resolved", "dismissed", "confirmed"):
        assert (flags["status"] == status).sum() > 0, status
    assert flags["reopened"].sum() > 0 and flags["overdue"].sum() > 0

    # re-running an older day with the same input: the same record, later states stay valid
    tokens = history.History(WorkStore(night.warehouse)).days()
    night.run(d[3], evaluations[d[3]])
    assert history.History(WorkStore(night.warehouse)).days() == tokens
    # ... and with different input: days after it are summarised again on the next night
    night.run(d[2], world.evaluation(d[2], drop=0.3))
    world.evolve()
    night.run(d[9], world.evaluation(d[9]))
    # a day back-filled before every other day
    night.run(START - timedelta(days=1), world.evaluation(START - timedelta(days=1)))
    world.evolve()
    night.run(d[10], world.evaluation(d[10]))

    # run folders pruned: the history alone carries the next night and a replay of an older day
    store = WorkStore(night.warehouse)
    for day in sorted(night.recorded)[:-1]:  # all but the newest, d[10]
        shutil.rmtree(store.committed_dir(day))
    world.evolve()
    night.run(d[11], world.evaluation(d[11]))
    assert store.completed_days() == [d[10], d[11]]
    del night.recorded[d[6]], night.fresh[d[6]]  # replaying d[6]: the reference is what was recorded before it, plus the replay
    night.run(d[6], evaluations[d[6]])


def test_unchanged_flags_are_stored_once_across_nights(tmp_path):
    """Two nights with the same flags write the same bytes to mart/flag_day.parquet: the commit links them."""
    world = World(flags=200, seed=3)
    night = Nightly(tmp_path / "warehouse", world)
    first, second = days(2)
    one = night.run(first, world.evaluation(first))
    two = night.run(second, world.evaluation(second))  # nothing evolved: the same flags hold
    assert (one / FLAG_DAY).read_bytes() == (two / FLAG_DAY).read_bytes()
    assert os.path.samefile(one / FLAG_DAY, two / FLAG_DAY)
    assert history.read_flag_day(two / FLAG_DAY, second)["as_of"].unique().to_list() == [second]
    assert history.read_flag_day(one / FLAG_DAY, first)["as_of"].unique().to_list() == [first]
    world.evolve(churn=0.5)
    three = night.run(days(3)[2], world.evaluation(days(3)[2]))
    assert not os.path.samefile(two / FLAG_DAY, three / FLAG_DAY)


def test_warehouse_of_the_earlier_layout_is_migrated_once(tmp_path):
    world = World(flags=120, seed=5)
    night = Nightly(tmp_path / "warehouse", world)
    d = days(6)
    for k, day in enumerate(d[:4]):
        world.evolve()
        if k == 1:
            world.decide(day, [f["flag_id"] for f in world.pool if f["holds"]][:12])
        night.run(day, world.evaluation(day), (("civil_roster", "371302"),) if k == 2 else ())
    store = WorkStore(night.warehouse)
    # the earlier layouts: only mart/flag_day.parquet per committed day; the oldest day in history/flag_days
    shutil.rmtree(store.history_dir("lifecycle"))
    for day in d[:4]:
        shutil.rmtree(store.committed_dir(day) / history.RUN_DIR)
    legacy = store.history_dir("flag_days")
    legacy.mkdir(parents=True)
    shutil.move(store.committed_dir(d[0]) / FLAG_DAY, legacy / f"{d[0]}.parquet")
    shutil.rmtree(store.committed_dir(d[0]))
    del night.fresh[d[0]]  # that layout kept no guard table outside the run folder
    world.evolve()
    night.run(d[4], world.evaluation(d[4]))
    assert sorted(history.History(store).days()) == d[:5]
    world.evolve()
    night.run(d[5], world.evaluation(d[5]))


def _tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_an_unchanged_night_adds_little_to_the_history(tmp_path):
    """Measured on ~3,600 generated flags: an unchanged night adds 156 bytes to the history (its base and
    token, no Parquet); the first night about 28 kB. The run folder's materialised state is pruned with it."""
    world = World(flags=6000, seed=3)
    night = Nightly(tmp_path / "warehouse", world)
    d = days(6)
    evaluation = world.evaluation(d[0])
    assert evaluation.flags.height > 3000
    root = WorkStore(night.warehouse).history_dir("lifecycle")
    night.run(d[0], evaluation)
    first = _tree_bytes(root)
    sizes = [first]
    for day in d[1:]:
        same = Evaluation(evaluation.flags.with_columns(pl.lit(day).alias("as_of")), evaluation.subjects, {},
                          evaluation.households, evaluation.roster_sizes)
        night.run(day, same, delivered=d[0])  # nothing delivered since the first night
        sizes.append(_tree_bytes(root))
    added = [b - a for a, b in zip(sizes, sizes[1:])]
    print(f"history after the first night: {first} bytes; added per unchanged night: {added}")
    assert first > 10_000  # the first night records every flag
    assert max(added) < 400


def test_a_commit_that_could_not_record_the_history_is_recorded_by_the_next_night(tmp_path, monkeypatch):
    import errno

    world = World(flags=80, seed=9)
    night = Nightly(tmp_path / "warehouse", world)
    d = days(3)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    night.run(d[0], world.evaluation(d[0]))
    with monkeypatch.context() as m:
        m.setattr(history, "adopt", full)
        world.evolve()
        night.run(d[1], world.evaluation(d[1]))  # committed; commit_history swallowed the full disk
    store = WorkStore(night.warehouse)
    assert list(history.History(store).days()) == [d[0]]
    world.evolve()
    night.run(d[2], world.evaluation(d[2]))  # compared with the full recomputation over d0..d2
    assert list(history.History(store).days()) == d
