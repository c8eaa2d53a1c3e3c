"""Analysts read while nightly runs publish: never blocked, never a half-written database."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import duckdb

from pipelines.definitions import defs

from .test_pipeline_handmade import DAY, _inbox

# Polls with a fresh connection each time (DuckDB shares one instance per path within a
# process, so the long-held connection lives in a second process: HOLDER).
POLLER = textwrap.dedent(
    """
    import json, sys, time, duckdb
    path, stop_after = sys.argv[1], float(sys.argv[2])
    seen, errors = [], []
    end = time.time() + stop_after
    while time.time() < end:
        try:
            con = duckdb.connect(path, read_only=True)
            row = con.execute(
                "SELECT (SELECT published_at FROM audit.publication),"
                " (SELECT count(*) FROM staging.civil_roster), (SELECT count(*) FROM audit.deliveries)"
            ).fetchone()
            con.close()
            seen.append([str(row[0]), row[1], row[2]])
        except Exception as exc:  # any failure to open or read counts against publishing
            errors.append(type(exc).__name__ + ": " + str(exc)[:200])
        time.sleep(0.02)
    print(json.dumps({"seen": seen, "errors": errors}))
    """
)
HOLDER = textwrap.dedent(
    """
    import json, sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    first = con.execute("SELECT published_at FROM audit.publication").fetchone()[0]
    time.sleep(float(sys.argv[2]))
    later = con.execute("SELECT published_at, (SELECT count(*) FROM staging.civil_roster) FROM audit.publication").fetchone()
    print(json.dumps({"same": str(first) == str(later[0]), "rows": later[1]}))
    """
)


def test_readers_are_never_blocked_and_see_whole_publications(tmp_path, lowincome_env, monkeypatch):
    warehouse = lowincome_env(_inbox(tmp_path))
    monkeypatch.setenv("LOWINCOME_BLOCKING_SHARE", "0.5")  # the hand-made roster has one bad row in three
    job = defs.resolve_job_def("nightly")
    assert job.execute_in_process(partition_key=DAY.isoformat()).success
    db = str(warehouse / "lowincome.duckdb")
    poller = subprocess.Popen([sys.executable, "-c", POLLER, db, "10"], stdout=subprocess.PIPE, text=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, db, "8"], stdout=subprocess.PIPE, text=True)
    time.sleep(1.5)
    for _ in range(3):
        assert job.execute_in_process(partition_key=DAY.isoformat()).success
    report = json.loads(poller.communicate(timeout=120)[0].strip().splitlines()[-1])
    held = json.loads(holder.communicate(timeout=120)[0].strip().splitlines()[-1])
    assert report["errors"] == [], report["errors"][:3]
    assert len(report["seen"]) > 20
    publications = {s[0] for s in report["seen"]}
    assert len(publications) >= 2, "the reader saw the new publications"
    # Every observation is a whole publication: the roster is complete and the run history consistent.
    assert all(s[1] == 2 for s in report["seen"]), [s for s in report["seen"] if s[1] != 2][:3]
    assert held == {"same": True, "rows": 2}, "a connection opened before a publish keeps its version"


def test_failed_run_leaves_the_last_publication_in_place(tmp_path, lowincome_env, monkeypatch):
    inbox = _inbox(tmp_path)
    warehouse = lowincome_env(inbox)
    monkeypatch.setenv("LOWINCOME_BLOCKING_SHARE", "0.5")
    job = defs.resolve_job_def("nightly")
    assert job.execute_in_process(partition_key=DAY.isoformat()).success
    before = (warehouse / "lowincome.duckdb").read_bytes()
    monkeypatch.setenv("LOWINCOME_INBOX", str(tmp_path / "gone"))
    result = job.execute_in_process(partition_key=DAY.isoformat(), raise_on_error=False)
    assert not result.success
    assert (warehouse / "lowincome.duckdb").read_bytes() == before
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM staging.civil_roster").fetchone()[0] == 2
