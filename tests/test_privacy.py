"""No ID number or name leaks: not in the analysts' database, the reports, the Dagster logs or the CLI output."""

from __future__ import annotations

import re

import duckdb
from dagster import DagsterInstance

from lowincome.cli import main

from .handmade import bad_check
from .test_pipeline_handmade import A, B, C, DAY, _inbox

ID_LIKE = re.compile(r"(?<![0-9a-f.])\d{17}[\dXx](?![0-9a-f])|(?<![0-9a-f.])\d{15}(?![0-9a-f])")
NAMES = ("赵一", "钱二", "孙三")
SECRETS = (A, B, C, bad_check(C), *NAMES)


def _assert_clean(text: str, where: str) -> None:
    assert not ID_LIKE.search(text), f"{where}: something like an ID number: {ID_LIKE.search(text).group(0)[:6]}…"
    for s in SECRETS:
        assert s not in text, f"{where}: a sample ID number or name"


def test_nothing_identifying_in_outputs_logs_or_console(tmp_path, lowincome_env, monkeypatch, capfd):
    warehouse = lowincome_env(_inbox(tmp_path))
    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("LOWINCOME_BLOCKING_SHARE", "0.5")
    assert main(["run", "--as-of", DAY.isoformat()]) == 0
    out, err = capfd.readouterr()
    assert "as of" in out
    _assert_clean(out + err, "console output")

    with DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert runs
        for run in runs:
            for record in instance.all_logs(run.run_id):
                _assert_clean(record.message or "", "dagster event log")
                if record.dagster_event and record.dagster_event.event_specific_data is not None:
                    _assert_clean(repr(record.dagster_event.event_specific_data), "dagster event metadata")

    for path in (warehouse / "reports").rglob("*"):
        if path.is_file() and path.suffix in {".html", ".json", ".js", ".css", ".txt"}:
            _assert_clean(path.read_text(encoding="utf-8", errors="replace"), str(path))

    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    for schema, table, column in con.execute(
        "SELECT table_schema, table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'"
    ).fetchall():
        for (value,) in con.execute(f'SELECT DISTINCT "{column}" FROM {schema}.{table}').fetchall():
            if value is not None:
                _assert_clean(value, f"{schema}.{table}.{column}")
    # ...while the restricted database does hold them, for caseworkers.
    rcon = duckdb.connect(str(warehouse / "restricted.duckdb"), read_only=True)
    assert rcon.execute("SELECT count(*) FROM person_index WHERE id_number = $a", {"a": A}).fetchone()[0] == 1
