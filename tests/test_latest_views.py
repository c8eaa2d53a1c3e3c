"""audit.latest_* views: the latest run's audit rows, so that summing them never double counts (issue 12)."""

from __future__ import annotations

import duckdb

from lowincome.cli import main

from .conftest import SAMPLE_END
from .delivered import count_rows


def test_latest_views_hold_the_publishing_run_only(generated, lowincome_env):
    out, _ = generated
    inbox = out / "inbox"
    warehouse = lowincome_env(inbox)
    delivered = {p.name: count_rows(p) for p in inbox.rglob("*") if p.is_file()}  # counted without the pipeline
    for _ in range(2):  # the same day twice: audit.deliveries keeps both runs
        assert main(["run", "--as-of", SAMPLE_END.isoformat(), "--quiet"]) == 0
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:
        runs = con.execute("SELECT count(DISTINCT run_id) FROM audit.deliveries").fetchone()[0]
        published_run = con.execute("SELECT run_id FROM audit.publication").fetchone()[0]
        latest_run = con.execute("SELECT run_id FROM audit.latest_run").fetchall()
        latest = con.execute(
            "SELECT DISTINCT run_id FROM audit.latest_deliveries UNION SELECT DISTINCT run_id FROM audit.latest_validation"
        ).fetchall()
        read = dict(con.execute(
            "SELECT file_name, rows_read FROM audit.latest_deliveries ").fetchall())
        total_all = con.execute("SELECT sum(rows_read) FROM audit.deliveries ").fetchone()[0]
        checks = con.execute("SELECT count(*) FROM audit.latest_validation").fetchone()[0]
        checks_all = con.execute("SELECT count(*) FROM audit.validation_results").fetchone()[0]
    finally:
        con.close()
    assert runs == 2 and published_run is not None
    assert latest_run == [(published_run,)] and latest == [(published_run,)]
    assert read == {name: n for name, n in delivered.items() if name in read} and sum(read.values()) == sum(delivered.values())
    assert total_all == 2 * sum(delivered.values())  # what the README's old example summed
    assert checks * 2 == checks_all and checks > 0
