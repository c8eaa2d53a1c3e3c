"""Fault injection: kill the real command line mid-run, fill the disk, mix days; the publication must survive.

Each fault runs `lowincome run` (lowincome.cli.main) in a child process through a
small driver that patches ONE function to die (`os._exit(137)`, as a kill would:
no cleanup, no finally) or to raise ENOSPC at the chosen point. Production code
has no test hooks. After each fault the last publication must open with the
same content, a re-run must give identical flags, and no killed run may count as
a success.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from lowincome.workstore import WorkStore

from .conftest import SAMPLE_END

D = SAMPLE_END
REPO = Path(__file__).resolve().parents[1]

DRIVER = textwrap.dedent(
    """
    import errno, os, sys
    fault, as_of = sys.argv[1], sys.argv[2]

    def die(*_a, **_k):
        os._exit(137)

    if fault == "kill-ingest":  # dies right after the death records' staging manifest is written
        import lowincome.workstore as ws
        real = ws.WorkStore.write_staging
        def write_then_die(self, as_of, staging):
            out = real(self, as_of, staging)
            if staging.feed == "death_records":
                os._exit(137)
            return out
        ws.WorkStore.write_staging = write_then_die
    elif fault == "kill-build":  # dies while the restricted database is being built
        import lowincome.publish as pub
        pub._build_restricted = die
    elif fault == "kill-swap":  # dies with both databases built, before the first swap
        import lowincome.publish as pub
        pub._swap = die
    elif fault == "full-disk-publish":
        import lowincome.publish as pub
        def full(path, *_a, **_k):
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        pub._build = full
    elif fault == "full-disk-ingest":  # every write into the run's folder fails as on a full disk
        import polars as pl
        real = pl.DataFrame.write_parquet
        def write(self, file, *a, **k):
            if "/work/days/" in str(file):
                raise OSError(errno.ENOSPC, "No space left on device", str(file))
            return real(self, file, *a, **k)
        pl.DataFrame.write_parquet = write
    elif fault == "kill-cache-write":  # dies with a parsed cache half-written (its temporary is on disk)
        import polars as pl
        real = pl.DataFrame.write_parquet
        def write_then_die(self, file, *a, **k):
            out = real(self, file, *a, **k)
            if "/work/parsed/" in str(file):
                os._exit(137)
            return out
        pl.DataFrame.write_parquet = write_then_die
    elif fault != "none":
        raise SystemExit("unknown fault " + fault)

    from lowincome.cli import main
    sys.exit(main(["run", "--as-of", as_of, "--quiet"]))
    """
)


def cli(warehouse: Path, inbox: Path, fault: str = "none", as_of=D) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOWINCOME_", "DAGSTER_HOME"))}
    env.update(LOWINCOME_WAREHOUSE=str(warehouse), LOWINCOME_INBOX=str(inbox), PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, "-c", DRIVER, fault, as_of.isoformat()], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=600)


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(warehouse: Path) -> dict:
    """What analysts see: every table's content (flags, staging counts), read through a fresh connection."""
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        flags = pl.from_arrow(con.sql("SELECT * EXCLUDE (as_of) FROM mart.flags ORDER BY flag_id").to_arrow_table())
        tables = [r[0] for r in con.execute(  # staging.<feed> are views over the published parts
            "SELECT view_name FROM duckdb_views() WHERE schema_name = 'staging' ORDER BY 1").fetchall()]
        assert tables, "no staging views published"
        staged = {t: con.execute(f"SELECT count(*) FROM staging.{t}").fetchone()[0] for t in tables}
        published = con.execute("SELECT as_of FROM audit.publication").fetchone()[0]
    return {"flags": flags, "staged": staged, "as_of": published}


def run_folders(warehouse: Path, day=D) -> list[str]:
    return sorted(p.name for p in (warehouse / "work" / "days" / day.isoformat()).glob("run-*"))


def successes(warehouse: Path) -> set[str]:
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        return {r[0] for r in con.execute("SELECT run_id FROM audit.runs WHERE status = 'success'").fetchall()}


@pytest.fixture(scope="module")
def samples(tmp_path_factory) -> Path:
    """A small generated inbox (the planted cases are not needed here)."""
    from lowincome.generate import generate

    out = tmp_path_factory.mktemp("fault_samples")
    generate(out, seed=11, scale=0.3, end_date=SAMPLE_END)
    return out / "inbox"


@pytest.fixture(scope="module")
def baseline(samples, tmp_path_factory) -> Path:
    """One clean publication of day D, copied by each test."""
    warehouse = tmp_path_factory.mktemp("baseline") / "warehouse"
    done = cli(warehouse, samples)
    assert done.returncode == 0, done.stderr[-2000:]
    return warehouse


@pytest.fixture()
def warehouse(baseline, tmp_path) -> Path:
    copy = tmp_path / "warehouse"
    shutil.copytree(baseline, copy)
    return copy


@pytest.mark.parametrize("fault", ["kill-ingest", "kill-build", "kill-swap"])
def test_kill_leaves_the_publication_and_a_rerun_gives_identical_flags(samples, warehouse, fault):
    before_sha, before = sha(warehouse / "lowincome.duckdb"), snapshot(warehouse)
    before_restricted = sha(warehouse / "restricted.duckdb")
    committed = run_folders(warehouse)

    killed = cli(warehouse, samples, fault)
    assert killed.returncode == 137, killed.stderr[-2000:]
    assert sha(warehouse / "lowincome.duckdb") == before_sha
    assert sha(warehouse / "restricted.duckdb") == before_restricted
    after = snapshot(warehouse)  # opens, same content
    assert after["flags"].equals(before["flags"]) and after["staged"] == before["staged"]
    new = [r for r in run_folders(warehouse) if r not in committed]
    assert len(new) == 1, "the killed run wrote only into its own folder"
    killed_run = new[0].split("-", 1)[1]
    if fault == "kill-ingest":  # incomplete: never committed, so nothing can read it as day D
        assert WorkStore(warehouse).committed_dir(D).name == committed[0]
    else:  # killed after its complete work was committed, before the swap: complete, yet not a success
        assert WorkStore(warehouse).committed_dir(D).name == new[0]
    if fault == "kill-build":
        assert any((warehouse / ".building").iterdir()), "half-built databases are left by the kill"

    rerun = cli(warehouse, samples)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    again = snapshot(warehouse)
    assert again["flags"].equals(before["flags"]), "a re-run gives identical flags"
    assert again["staged"] == before["staged"]
    assert killed_run not in successes(warehouse), "a killed run is never recorded as a success"
    # leftovers of the killed run were removed at the next start
    assert not (warehouse / ".building").exists() or not any((warehouse / ".building").iterdir())
    if fault == "kill-ingest":
        assert f"run-{killed_run}" not in run_folders(warehouse)
    assert WorkStore(warehouse).committed_dir(D).name not in committed + [f"run-{killed_run}"], "the re-run committed"


def test_killed_day_then_an_earlier_day_publishes_no_mix(samples, warehouse, tmp_path):
    """Day D re-run with other deliveries and killed half-way; then D−1 runs: D's publication stays whole."""
    before = snapshot(warehouse)
    changed = tmp_path / "inbox"
    shutil.copytree(samples, changed)
    for f in (changed / "death_records").glob(f"death_records_*_{D:%Y%m%d}.*"):
        f.unlink()  # the re-run of D sees fewer deaths: a mix would show it
    killed = cli(warehouse, changed, "kill-ingest")
    assert killed.returncode == 137, killed.stderr[-2000:]

    earlier = cli(warehouse, samples, as_of=D - timedelta(days=1))
    assert earlier.returncode == 0, earlier.stderr[-2000:]
    after = snapshot(warehouse)
    assert after["as_of"] == D, "the newest complete day is still published"
    assert after["staged"] == before["staged"]
    assert after["flags"].equals(before["flags"])
    # staging and the run's accounting agree, feed by feed: the publication comes from one run
    run_id = WorkStore(warehouse).committed_dir(D).name.split("-", 1)[1]
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        accepted = dict(con.execute("SELECT feed, sum(rows_accepted) FROM audit.deliveries WHERE run_id = $r GROUP BY feed",
                                    {"r": run_id}).fetchall())
    assert {f: int(n) for f, n in accepted.items()} == {f: n for f, n in after["staged"].items() if f in accepted}
    assert all(n == 0 for f, n in after["staged"].items() if f not in accepted)


def test_a_file_killed_half_written_is_removed_by_the_first_run_a_day_later(samples, warehouse, tmp_path):
    """A killed writer's temporary (here a parsed cache) is left on disk; no later run keeps it for long.

    Fresh, it is left alone: from the next run's point of view its writer, on any machine sharing the
    warehouse, could still be at work on it. A day later it is abandoned, and removed (lowincome/temporaries.py).
    """
    changed = tmp_path / "inbox"
    shutil.copytree(samples, changed)
    target = sorted((changed / "death_records").glob("*.csv"))[-1]
    target.write_bytes(target.read_bytes() + b"\n")  # new content: read again, its parsed cache written again
    killed = cli(warehouse, changed, "kill-cache-write")
    assert killed.returncode == 137, killed.stderr[-2000:]
    left = [p for p in (warehouse / "work" / "parsed").rglob(".*.tmp")]
    assert left, "the kill left the half-written cache behind"

    again = cli(warehouse, changed)
    assert again.returncode == 0, again.stderr[-2000:]
    assert all(p.exists() for p in left), "a fresh temporary may still be written by someone: kept"
    day_old = left[0].stat().st_mtime - 25 * 3600
    for p in left:
        os.utime(p, (day_old, day_old))

    next_day = cli(warehouse, changed)
    assert next_day.returncode == 0, next_day.stderr[-2000:]
    assert not any(p.exists() for p in left), "abandoned for a day: removed at the next run's start"
    spill = warehouse / "work" / "tmp"
    assert not spill.exists() or not any(spill.iterdir()), "runs that end leave no spill folder behind"


@pytest.mark.parametrize("fault, where", [("full-disk-publish", "publish"), ("full-disk-ingest", "ingest")])
def test_full_disk_fails_in_one_line_and_keeps_the_publication(samples, warehouse, fault, where):
    before_sha, before = sha(warehouse / "lowincome.duckdb"), snapshot(warehouse)
    committed = WorkStore(warehouse).committed_dir(D)
    done = cli(warehouse, samples, fault)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"lowincome run: run for {D} failed at {where}") and "the disk is full" in last, last
    assert sha(warehouse / "lowincome.duckdb") == before_sha
    assert snapshot(warehouse)["flags"].equals(before["flags"])
    if fault == "full-disk-ingest":  # the failed run's partial work is never committed
        assert WorkStore(warehouse).committed_dir(D) == committed
    runs = pl.read_parquet(str(warehouse / "work" / "history" / "runs" / "*.parquet"))
    assert runs.filter(pl.col("status") == "success").height == 1, "only the baseline run succeeded"
    assert runs.filter(pl.col("status") == "failure").height == 1


def test_a_county_without_its_newest_roster_resolves_none_of_its_roster_flags(samples, warehouse, tmp_path):
    """The issue's done-when: one county's roster snapshot missing for a night."""
    county = "371324"
    inbox = tmp_path / "inbox"
    shutil.copytree(samples, inbox)
    removed = list((inbox / "civil_roster").glob(f"civil_roster_{county}_{D:%Y%m%d}.*"))
    assert len(removed) == 1
    removed[0].unlink()
    before = snapshot(warehouse)["flags"]
    next_day = D + timedelta(days=1)
    done = cli(warehouse, inbox, as_of=next_day)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"civil_roster/{county} since {next_day}" in done.stdout
    with duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True) as con:
        flags = pl.from_arrow(con.sql("SELECT * FROM mart.flags").to_arrow_table())
    roster_rules = ["R01", "R03", "R05", "R06", "R07", "W01", "W02", "W03", "W04"]
    mine = flags.filter((pl.col("county_code") == county) & pl.col("rule_id").is_in(roster_rules))
    held = before.filter((pl.col("county_code") == county) & pl.col("rule_id").is_in(roster_rules)
                         & (pl.col("status") == "open"))
    assert held.height > 0
    assert not mine["resolved_today"].any(), "no roster-dependent flag of the county is resolved"
    still = mine.join(held.select("flag_id"), on="flag_id", how="semi")
    assert still.height == held.height and (still["status"] != "resolved").all()
    carried = mine.filter(pl.col("data_stale"))
    assert carried["stale_feeds"].str.contains("civil_roster").all()
    assert carried.height == still.filter(pl.col("last_held_on") < next_day).height


def test_empty_inbox_through_the_command_line(warehouse, tmp_path):
    before_sha, before = sha(warehouse / "lowincome.duckdb"), snapshot(warehouse)
    empty = tmp_path / "empty_inbox"
    empty.mkdir()
    done = cli(warehouse, empty, as_of=D + timedelta(days=1))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert f"has no deliveries dated on or before {D + timedelta(days=1)}; nothing published" in last, last
    assert f"the last publication, as of {D}, stays in place" in last
    assert sha(warehouse / "lowincome.duckdb") == before_sha
    assert snapshot(warehouse)["flags"].equals(before["flags"])
