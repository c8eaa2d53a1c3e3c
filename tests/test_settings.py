"""Settings: every LOWINCOME_* value is checked, and a value that is unknown or malformed is refused in one line."""

from __future__ import annotations

import grp
import os
from pathlib import Path

import duckdb
import pytest

from lowincome.config import DEFAULT_INBOX, load_settings, parse_size, configure_duckdb
from lowincome.errors import ConfigError

KEY = "k" * 40


def test_defaults_work_from_a_fresh_clone():
    s = load_settings({})
    assert not s.production and s.inbox == DEFAULT_INBOX and s.blocking_share == 0.05
    assert s.memory_limit == "3GB" and s.memory_limit_bytes == 3_000_000_000
    assert s.restricted_group is None and s.settle_seconds == 120


@pytest.mark.parametrize("name, value, expected", [
    ("LOWINCOME_ENV", "prod", "LOWINCOME_ENV must be one of development, production, got 'prod'"),
    ("LOWINCOME_ENV", "staging", "got 'staging'"),
    ("LOWINCOME_BLOCKING_SHARE", "nan", "LOWINCOME_BLOCKING_SHARE must be a share between 0 and 1"),
    ("LOWINCOME_BLOCKING_SHARE", "inf", "got 'inf'"),
    ("LOWINCOME_BLOCKING_SHARE", "1.5", "got '1.5'"),
    ("LOWINCOME_BLOCKING_SHARE", "5%", "got '5%'"),
    ("LOWINCOME_MEMORY_LIMIT", "4 gigs", "LOWINCOME_MEMORY_LIMIT must be a size such as 4GB"),
    ("LOWINCOME_MEMORY_LIMIT", "4", "got '4'"),
    ("LOWINCOME_MEMORY_LIMIT", "-1GB", "got '-1GB'"),
    ("LOWINCOME_MEMORY_LIMIT", "1MB", "at least 128MB"),
    ("LOWINCOME_SETTLE_SECONDS", "-5", "LOWINCOME_SETTLE_SECONDS must be a whole number of seconds"),
    ("LOWINCOME_SETTLE_SECONDS", "2m", "got '2m'"),
    ("LOWINCOME_VOLUME_MIN_ROWS", "lots", "LOWINCOME_VOLUME_MIN_ROWS must be a whole number of rows"),
    ("LOWINCOME_VOLUME_MIN_ROWS", "-1", "got '-1'"),
    ("LOWINCOME_RUN_MEMORY_LIMIT", "lots", "LOWINCOME_RUN_MEMORY_LIMIT must be a size such as 4GB"),
    ("LOWINCOME_FANOUT_MIN_MB", "64MB", "LOWINCOME_FANOUT_MIN_MB must be a whole number of megabytes"),
    ("LOWINCOME_FANOUT_MIN_MB", "-1", "got '-1'"),
    ("LOWINCOME_RESTRICTED_GROUP", "no-such-group-lowincome", "names a group that does not exist"),
    ("LOWINCOME_RULE_STEPS", "0", "LOWINCOME_RULE_STEPS must be a whole number of steps, 1 or more"),
    ("LOWINCOME_RULE_STEPS", "two", "got 'two'"),
])
def test_unknown_or_malformed_values_are_refused(name, value, expected):
    with pytest.raises(ConfigError) as exc:
        load_settings({name: value})
    message = str(exc.value)
    assert expected in message and "\n" not in message


@pytest.mark.parametrize("value, size", [("4GB", 4 * 10**9), ("1.5GB", 1_500_000_000), ("512MB", 512 * 10**6),
                                         ("2GiB", 2 * 2**30), ("768 mb", 768 * 10**6)])
def test_memory_limit_in_duckdb_syntax(value, size):
    assert parse_size(value) == size
    assert load_settings({"LOWINCOME_MEMORY_LIMIT": value}).memory_limit_bytes == size


def test_valid_values_are_taken():
    group = grp.getgrgid(0).gr_name
    s = load_settings({"LOWINCOME_ENV": " Production ", "LOWINCOME_PSEUDONYM_KEY": KEY, "LOWINCOME_INBOX": "/srv/inbox",
                       "LOWINCOME_WAREHOUSE": "/srv/wh", "LOWINCOME_SETTLE_SECONDS": "0",
                       "LOWINCOME_RESTRICTED_GROUP": group, "LOWINCOME_BLOCKING_SHARE": "0"})
    assert s.production and s.inbox == Path("/srv/inbox") and s.settle_seconds == 0 and s.restricted_group == group
    assert load_settings({}).rule_steps == 1 and load_settings({"LOWINCOME_RULE_STEPS": " 12 "}).rule_steps == 12


@pytest.mark.parametrize("missing", ["LOWINCOME_INBOX", "LOWINCOME_WAREHOUSE"])
def test_production_needs_explicit_paths(missing):
    env = {"LOWINCOME_ENV": "production", "LOWINCOME_PSEUDONYM_KEY": KEY, "LOWINCOME_INBOX": "/srv/inbox",
           "LOWINCOME_WAREHOUSE": "/srv/wh"}
    env[missing] = " "
    with pytest.raises(ConfigError, match=f"{missing} is not set"):
        load_settings(env)


def test_production_still_needs_a_real_key():
    with pytest.raises(ConfigError, match="LOWINCOME_PSEUDONYM_KEY"):
        load_settings({"LOWINCOME_ENV": "production", "LOWINCOME_INBOX": "/srv/inbox", "LOWINCOME_WAREHOUSE": "/srv/wh"})


def test_duckdb_is_bounded_and_spills_into_working_storage(tmp_path):
    s = load_settings({"LOWINCOME_WAREHOUSE": str(tmp_path / "wh"), "LOWINCOME_MEMORY_LIMIT": "2GB"})
    con = configure_duckdb(duckdb.connect(), s)
    limit = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    temp = con.execute("SELECT current_setting('temp_directory')").fetchone()[0]
    con.close()
    # 60% of the 2 GB budget, in DuckDB's binary display (1.2e9 bytes = 1.1 GiB)
    assert limit == "1.1 GiB"
    # a folder of the connection's own, in a folder of the process's own (lowincome/spill.py, tests/test_spill.py)
    spill = tmp_path / "wh" / "work" / "tmp"
    assert Path(temp).parent.parent == spill and Path(temp).parent.is_dir()
    for owner_only in (spill, Path(temp).parent):
        assert (owner_only.stat().st_mode & 0o777) == 0o700


def test_the_step_that_runs_alone_gets_the_whole_run_budget_back(monkeypatch):
    """`--workers 2` gives each step half of a 3GB budget and passes the whole; only `running_alone` uses the whole."""
    from lowincome.cli import _step_environment
    from lowincome.config import running_alone
    from pipelines.executors import IN_PROCESS, MULTIPROCESS

    monkeypatch.setenv("LOWINCOME_MEMORY_LIMIT", "3GB")
    monkeypatch.delenv("LOWINCOME_RUN_MEMORY_LIMIT", raising=False)
    settings = load_settings()
    with _step_environment(MULTIPROCESS, 2, settings):
        step = load_settings()  # what a step process reads from the environment it inherits
        assert step.memory_limit_bytes == 1_500 * 10**6 and step.run_memory_limit_bytes == 3_000 * 10**6
        alone = running_alone(step)
        assert alone.memory_limit_bytes == 3_000 * 10**6 and alone.inbox == step.inbox
    assert os.environ["LOWINCOME_MEMORY_LIMIT"] == "3GB" and "LOWINCOME_RUN_MEMORY_LIMIT" not in os.environ
    with _step_environment(IN_PROCESS, 1, settings):
        assert running_alone(load_settings()) == settings  # in one process the budget is already the whole
