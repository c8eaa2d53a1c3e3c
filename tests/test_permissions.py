"""Restricted means restricted: modes of the published files and of working storage, every run.

Tests run as root, for whom `chmod` stops nothing, so modes are asserted with `os.stat` rather than
by trying to read. A stray read-write connection that leaves a WAL beside the analysts' database
must not make the next publication unopenable.
"""

from __future__ import annotations

import grp
import os
import stat
import subprocess
import sys
import textwrap

import duckdb
import pytest

from lowincome import publish as publish_module
from lowincome.errors import ConfigError
from lowincome.publish import ANALYSTS_DB, RESTRICTED_DB, mart_tables, publish
from lowincome.workstore import WorkStore
from pipelines.definitions import defs

from .test_pipeline_handmade import DAY, _inbox


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """One nightly run on the hand-made inbox; each test then publishes again from its work files."""
    root = tmp_path_factory.mktemp("permissions")
    mp = pytest.MonkeyPatch()
    mp.setenv("LOWINCOME_INBOX", str(_inbox(root)))
    mp.setenv("LOWINCOME_WAREHOUSE", str(root / "warehouse"))
    mp.setenv("LOWINCOME_BLOCKING_SHARE", "0.5")
    for var in ("LOWINCOME_ENV", "LOWINCOME_PSEUDONYM_KEY", "DAGSTER_HOME"):
        mp.delenv(var, raising=False)
    try:
        assert defs.resolve_job_def("nightly").execute_in_process(partition_key=DAY.isoformat()).success
        yield root / "warehouse"
    finally:
        mp.undo()


def _publish_again(wh) -> None:
    store = WorkStore(wh)
    publish(store, DAY, "DEVELOPMENT-ONLY-pseudonym-key-do-not-use-in-production", **mart_tables(store, DAY))


_STRAY_WRITER = textwrap.dedent(
    """
    import os, sys, duckdb
    con = duckdb.connect(sys.argv[1])            # read-write: root ignores the file's 0444
    con.execute("PRAGMA disable_checkpoint_on_shutdown")
    con.execute("SET checkpoint_threshold = '10GB'")
    con.execute("CREATE TABLE stray AS SELECT range AS x FROM range(1000)")
    os._exit(0)                                   # killed: no checkpoint, the WAL stays
    """
)


def test_published_files_and_work_have_their_modes_every_run(warehouse):
    assert _mode(warehouse / RESTRICTED_DB) == 0o600, oct(_mode(warehouse / RESTRICTED_DB))
    assert _mode(warehouse / ANALYSTS_DB) == 0o444, oct(_mode(warehouse / ANALYSTS_DB))
    assert _mode(warehouse / "work") == 0o700, oct(_mode(warehouse / "work"))
    assert not any((warehouse / ".building").glob("*.duckdb"))

    # an administrator (or an accident) loosens them; the next run puts them back
    os.chmod(warehouse / RESTRICTED_DB, 0o644)
    os.chmod(warehouse / "work", 0o755)
    _publish_again(warehouse)
    assert _mode(warehouse / RESTRICTED_DB) == 0o600
    assert _mode(warehouse / ANALYSTS_DB) == 0o444
    assert _mode(warehouse / "work") == 0o700


def test_a_leftover_wal_never_makes_the_publication_unopenable(warehouse):
    target = warehouse / ANALYSTS_DB
    subprocess.run([sys.executable, "-c", _STRAY_WRITER, str(target)], check=True)
    wal = target.with_name(target.name + ".wal")
    assert wal.exists() and wal.stat().st_size > 0, "the stray writer should have left a WAL"

    _publish_again(warehouse)

    assert not wal.exists()
    con = duckdb.connect(str(target), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM staging.civil_roster").fetchone()[0] == 2
        assert con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'stray'").fetchone()[0] == 0
    finally:
        con.close()


def test_restricted_group_gives_0640_and_the_group(warehouse, monkeypatch):
    group = grp.getgrgid(os.getgid()).gr_name
    monkeypatch.setattr(publish_module, "_restricted_group", lambda: group)
    _publish_again(warehouse)
    st = os.stat(warehouse / RESTRICTED_DB)
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_gid == os.getgid()
    assert _mode(warehouse / ANALYSTS_DB) == 0o444


def test_unknown_restricted_group_fails_before_anything_is_swapped(warehouse, monkeypatch):
    before = {n: (warehouse / n).stat().st_ino for n in (ANALYSTS_DB, RESTRICTED_DB)}
    mode = _mode(warehouse / RESTRICTED_DB)
    monkeypatch.setattr(publish_module, "_restricted_group", lambda: "no-such-group-lowincome")
    with pytest.raises(ConfigError, match="no-such-group-lowincome"):
        _publish_again(warehouse)
    assert {n: (warehouse / n).stat().st_ino for n in (ANALYSTS_DB, RESTRICTED_DB)} == before
    assert _mode(warehouse / RESTRICTED_DB) == mode
    assert not any((warehouse / ".building").glob("*.duckdb"))
