"""DuckDB's spill files: every process and connection spills into a folder of its own, and a killed process's
folder is removed at the next run's start, while a live one's never is (lowincome/spill.py).

Steps of one run share `<warehouse>/work/tmp` from several machines or containers. DuckDB names spill
files after the process id, so two processes with the same pid (pid namespaces: containers, or two
machines) wrote each other's files: the first test runs exactly that, with `unshare`, and fails on the
shared folder the code used before (both queries died with "Could not read enough bytes from file").
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from lowincome.config import configure_duckdb, load_settings
from lowincome.spill import LOOSE_STALE_SECONDS, OWNER, process_folder, sweep
from lowincome.workstore import WorkStore

REPO = Path(__file__).resolve().parents[1]
# Sorting 6M rows on a 128MB budget (DuckDB gets 60% of it) spills; ordered by a hash, the result is fixed.
QUERY = ("SELECT sum(i * (rn % 7)) FROM (SELECT i, row_number() OVER (ORDER BY hash(i)) AS rn "
         "FROM range(6000000) AS t(i))")
CHILD = """
import os, sys
from lowincome.config import configure_duckdb, load_settings
import duckdb
con = configure_duckdb(duckdb.connect(), load_settings())
con.execute("SET enable_progress_bar = false")
folder = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
mode = sys.argv[1]
if mode == "spill":
    print(con.execute(sys.argv[2]).fetchone()[0], folder, flush=True)
elif mode == "hold":  # a table larger than the budget: its blocks live in the spill folder
    con.execute("CREATE TEMP TABLE t AS SELECT i, hash(i) AS h, md5(i::VARCHAR) AS m FROM range(3000000) AS t(i)")
    print(folder, flush=True)
    if sys.argv[2] == "kill":
        os._exit(137)  # as a kill would: no cleanup of any kind
    sys.stdin.read()  # alive until the test closes our stdin
"""


def _env(warehouse: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOWINCOME_")}
    return {**env, "LOWINCOME_WAREHOUSE": str(warehouse), "LOWINCOME_MEMORY_LIMIT": "128MB",
            "PYTHONPATH": str(REPO)}


def _expected() -> int:
    con = duckdb.connect()
    try:
        return int(con.execute(QUERY).fetchone()[0])
    finally:
        con.close()


def _unshare() -> list[str]:
    """The prefix that runs a command in a pid namespace of its own (as a container, or another machine, would)."""
    prefix = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    probe = subprocess.run([*prefix, "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"pid namespaces are not available here: {probe.stderr.strip()[:200]}")
    return prefix


def test_processes_with_the_same_pid_spill_into_one_warehouse_without_harm(tmp_path):
    prefix = _unshare()
    warehouse = tmp_path / "wh"
    expected = _expected()
    children = [subprocess.Popen([*prefix, sys.executable, "-c", CHILD, "spill", QUERY], env=_env(warehouse),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [c.communicate(timeout=300) for c in children]
    for child, (out, err) in zip(children, outputs):
        assert child.returncode == 0, err[-1500:]
        assert int(out.split()[0]) == expected
    folders = [Path(out.split()[1]) for out, _ in outputs]
    # each in its own pid namespace, both processes had the same pid: the folders still differ
    assert folders[0].parent != folders[1].parent
    assert folders[0].parent.name.split("-")[-2] == folders[1].parent.name.split("-")[-2]
    # ended normally: nothing of theirs is left
    assert not any((warehouse / "work" / "tmp").iterdir())


def test_the_spill_folder_of_a_killed_process_goes_at_the_next_start_and_a_live_one_stays(tmp_path):
    warehouse = tmp_path / "wh"
    spill = warehouse / "work" / "tmp"
    killed = subprocess.run([sys.executable, "-c", CHILD, "hold", "kill"], env=_env(warehouse), capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == 137, killed.stderr[-1500:]
    dead = Path(killed.stdout.split()[0])
    assert any(p.name.startswith("duckdb_temp_") for p in dead.iterdir()), "the killed process had spilled"
    live = subprocess.Popen([sys.executable, "-c", CHILD, "hold", "wait"], env=_env(warehouse), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        alive = Path(live.stdout.readline().split()[0])
        own = process_folder(spill)  # this process's own folder: locked by this very process
        loose_old, loose_new = spill / "duckdb_temp_4242_0_storage_DEFAULT-0.tmp", spill / "duckdb_temp_4243_0_owner"
        loose_old.write_bytes(b"x")
        loose_new.write_bytes(b"x")
        day_old = time.time() - LOOSE_STALE_SECONDS - 60
        os.utime(loose_old, (day_old, day_old))

        removed = WorkStore(warehouse).remove_leftovers()

        assert dead.parent in removed and not dead.parent.exists()
        assert loose_old in removed and not loose_old.exists()
        assert alive.parent.is_dir() and any(alive.iterdir()), "a live process's spill files are never removed"
        assert own.is_dir() and (own / OWNER).exists() and loose_new.exists()
    finally:
        live.stdin.close()
        live.wait(timeout=60)
    assert live.returncode == 0, live.stderr.read()[-1500:]
    assert not alive.parent.exists(), "a process that ends normally removes its own folder"
    assert set(sweep(spill)) == set(), "nothing left to sweep but this process's folder and a fresh loose file"


def test_every_connection_spills_into_a_folder_of_its_own(tmp_path):
    settings = load_settings({"LOWINCOME_WAREHOUSE": str(tmp_path / "wh"), "LOWINCOME_MEMORY_LIMIT": "128MB"})
    cons = [configure_duckdb(duckdb.connect(), settings) for _ in range(2)]
    try:
        folders = [Path(c.execute("SELECT current_setting('temp_directory')").fetchone()[0]) for c in cons]
        assert folders[0] != folders[1] and folders[0].parent == folders[1].parent == process_folder(settings.temp_directory)
        assert not folders[0].exists(), "created by DuckDB when it first spills, not before"
        results = [c.execute(QUERY).fetchone()[0] for c in cons]
        assert results == [_expected()] * 2
    finally:
        for c in cons:
            c.close()
    assert not any(f.exists() for f in folders), "DuckDB removes a connection's folder when it closes"


def test_a_process_whose_folder_was_deleted_gets_a_new_one(tmp_path):
    """Working storage can always be deleted: the next connection still has somewhere to spill."""
    settings = load_settings({"LOWINCOME_WAREHOUSE": str(tmp_path / "wh"), "LOWINCOME_MEMORY_LIMIT": "128MB"})
    first = process_folder(settings.temp_directory)
    shutil.rmtree(settings.temp_directory)
    con = configure_duckdb(duckdb.connect(), settings)
    try:
        second = Path(con.execute("SELECT current_setting('temp_directory')").fetchone()[0]).parent
        assert second != first and second.is_dir() and (second / OWNER).exists()
        assert con.execute(QUERY).fetchone()[0] == _expected()
    finally:
        con.close()
