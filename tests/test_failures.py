"""Every failure of `lowincome run` ends in at most three lines on the terminal, none of them a traceback.

Each case runs the real command line in a subprocess, with its own environment, and reads what a
person would see on stderr. The full record goes to the log file the line names.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from lowincome.config import DEFAULT_POLICY

from .handmade import delivery_path, person_id, write_csv

ROOT = Path(__file__).resolve().parent.parent
LAST_KEPT = ("the last publication stays in place", "the last published databases are unchanged")
CLAIM_HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用", "基本医保统筹支付",
                "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]
PATIENT = person_id("371302", "19800606", 23)


def _env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOWINCOME_", "DAGSTER_"))}
    env.update({"LOWINCOME_WAREHOUSE": str(tmp_path / "warehouse"), "LOWINCOME_INBOX": str(_inbox(tmp_path)),
                "TMPDIR": str(tmp_path / "tmp")})
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def _inbox(tmp_path: Path) -> Path:
    """One small, valid delivery: enough for a run to have work to do."""
    inbox = tmp_path / "inbox"
    if not inbox.exists():
        write_csv(delivery_path(inbox, "medical_claims", "371302", date(2026, 9, 30), "csv"), CLAIM_HEADER, [
            ["S1", PATIENT, "庚", "371302", "2026-09-01", "住院", "9000.00", "3000.00", "0.00", "0.00", "6000.00", "C34.9"],
        ])
    return inbox


def run_cli(env: dict[str, str], *args: str, prelude: str = "") -> subprocess.CompletedProcess:
    """`lowincome run ...` in a fresh interpreter; `prelude` may inject a fault before the command starts."""
    code = textwrap.dedent(prelude) + "\nimport sys\nfrom lowincome.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, cwd=env.get("TMPDIR", ROOT),
                          capture_output=True, text=True, timeout=600)


def one_line_failure(proc: subprocess.CompletedProcess) -> str:
    """The run failed, said so in at most three lines, without a traceback; returns the last line."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, proc.stderr
    assert 1 <= len(lines) <= 3, proc.stderr
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout, proc.stderr
    assert PATIENT not in proc.stderr and "庚" not in proc.stderr
    return lines[-1]


def test_as_of_outside_the_partitions(tmp_path):
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    for day in ("2023-12-31", (today + timedelta(days=2)).isoformat()):
        line = one_line_failure(run_cli(_env(tmp_path), "run", "--as-of", day, "--quiet"))
        assert f"--as-of {day} is outside the nightly partitions (2024-01-01 to" in line
        assert any(k in line for k in LAST_KEPT)
    assert not (tmp_path / "warehouse" / "lowincome.duckdb").exists()


def test_unwritable_warehouse(tmp_path):
    # Tests run as root, for whom chmod stops nothing: a warehouse below a regular file cannot be created by anyone.
    (tmp_path / "afile").write_text("not a folder\n")
    warehouse = tmp_path / "afile" / "wh"
    proc = run_cli(_env(tmp_path, LOWINCOME_WAREHOUSE=str(warehouse)), "run", "--as-of", "2026-10-31", "--quiet")
    line = one_line_failure(proc)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert f"warehouse folder {warehouse} cannot be written" in line and "not a folder" in line
    assert any(k in line for k in LAST_KEPT)


def test_invalid_policy_before_any_work(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text(DEFAULT_POLICY.read_text(encoding="utf-8").replace(
        "medical_red_amount: 50000", "medical_red_amount: .nan"), encoding="utf-8")
    proc = run_cli(_env(tmp_path, LOWINCOME_POLICY=str(policy)), "run", "--as-of", "2026-10-31", "--quiet")
    line = one_line_failure(proc)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert str(policy) in line and "medical_red_amount" in line and "nothing was run" in line
    # before any work: no feed was ingested
    assert not (tmp_path / "warehouse" / "work").exists()


@pytest.mark.parametrize("value", ["prod", "Production2", "dev"])
def test_unknown_environment_is_refused(tmp_path, value):
    line = one_line_failure(run_cli(_env(tmp_path, LOWINCOME_ENV=value), "run", "--as-of", "2026-10-31"))
    assert f"LOWINCOME_ENV must be one of development, production, got '{value}'" in line
    assert "nothing was run" in line


def test_production_without_inbox_does_not_use_the_samples(tmp_path):
    env = _env(tmp_path, LOWINCOME_ENV="production", LOWINCOME_PSEUDONYM_KEY="k" * 40)
    del env["LOWINCOME_INBOX"]
    line = one_line_failure(run_cli(env, "run", "--as-of", "2026-10-31"))
    assert "LOWINCOME_INBOX is not set" in line and "nothing was run" in line
    assert not (tmp_path / "warehouse").exists()


def test_bad_memory_limit_is_refused(tmp_path):
    line = one_line_failure(run_cli(_env(tmp_path, LOWINCOME_MEMORY_LIMIT="3 gigs"), "run", "--as-of", "2026-10-31"))
    assert "LOWINCOME_MEMORY_LIMIT" in line and "'3 gigs'" in line


DISK_FULL = """
import errno
from lowincome.workstore import WorkStore
def _full(self, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(self.root))
WorkStore.write = _full
WorkStore.write_history = _full
"""


def test_disk_full_during_ingestion_and_when_recording_the_failure(tmp_path):
    env = _env(tmp_path)
    proc = run_cli(env, "run", "--as-of", "2026-10-31", "--quiet", prelude=DISK_FULL)
    line = one_line_failure(proc)
    assert "run for 2026-10-31 failed at ingest" in line and "publishing" not in line
    assert "the disk is full" in line and any(k in line for k in LAST_KEPT)
    assert "could not be recorded" in line
    log = tmp_path / "warehouse" / "logs" / "lowincome.log"
    assert f"details in {log}" in line
    text = log.read_text(encoding="utf-8")
    assert "Stack Trace" in text and "No space left on device" in text  # the full record is kept
    assert PATIENT not in text and "庚" not in text


RULES_FAIL = """
import duckdb
import lowincome.rules.engine as engine
def _broken(*args, **kwargs):
    raise duckdb.IOException("IO Error: could not write to temporary file")
engine.connect = _broken
"""


def test_a_rules_failure_names_the_rules_step(tmp_path):
    proc = run_cli(_env(tmp_path), "run", "--as-of", "2026-10-31", "--quiet", prelude=RULES_FAIL)
    line = one_line_failure(proc)
    assert len(proc.stderr.strip().splitlines()) == 1  # failures and their echoes are left to the summary line
    assert "failed at rules" in line and "IOException" in line and "could not write to temporary file" in line
    assert "recorded" not in line  # the failure was recorded
    assert "Stack Trace" in (tmp_path / "warehouse" / "logs" / "lowincome.log").read_text(encoding="utf-8")


def test_version():
    proc = subprocess.run([sys.executable, "-m", "lowincome.cli", "--version"], capture_output=True, text=True)
    from lowincome import __version__
    from lowincome.lineage import code_version

    # the code version a run records in audit.runs: the package version, then the commit (and content if dirty)
    assert proc.returncode == 0 and proc.stdout.strip() == f"lowincome {code_version()}"
    assert code_version().startswith(f"{__version__}+")


def test_every_job_logs_through_the_concise_console_logger():
    """Runs started by the daemon or the UI (nightly job, implicit asset job) use it too, as `console`."""
    from pipelines.definitions import defs
    from pipelines.run_logging import concise_console_logger

    for job in defs.get_repository_def().get_all_jobs():
        assert job.loggers == {"console": concise_console_logger}, job.name
    # Dagster instantiates a job's loggers only when the run config names them: the nightly job's default
    # run config does (the next test runs it with no run config at all, as the schedule and the sensor do).


def test_the_console_shows_one_line_per_failure_and_the_log_file_keeps_the_trace(tmp_path, monkeypatch, capfd):
    """As the daemon runs it (no run config, failures shown): a failing step is one line, no stack trace."""
    import duckdb

    import lowincome.rules.engine as engine
    from pipelines.definitions import defs

    def broken(*args, **kwargs):
        raise duckdb.IOException("IO Error: could not write to temporary file")

    monkeypatch.setattr(engine, "connect", broken)
    for k, v in _env(tmp_path).items():
        if k.startswith("LOWINCOME_"):
            monkeypatch.setenv(k, v)
    result = defs.resolve_job_def("nightly").execute_in_process(partition_key="2026-10-31", raise_on_error=False)
    assert not result.success
    err = capfd.readouterr().err
    assert "Stack Trace" not in err and "Traceback" not in err
    failures = [line for line in err.splitlines() if "STEP_FAILURE" in line or "could not write" in line]
    assert len(failures) == 1 and "mart__flags" in failures[0] and "IOException" in failures[0]
    assert all(line.count("\n") == 0 for line in err.splitlines())
    log = (tmp_path / "warehouse" / "logs" / "lowincome.log").read_text(encoding="utf-8")
    assert "Stack Trace" in log and "could not write to temporary file" in log


def test_recording_a_failure_never_raises_but_a_success_does(tmp_path, monkeypatch):
    import errno

    from lowincome.audit import record_run
    from lowincome.workstore import WorkStore

    store = WorkStore(tmp_path / "wh")
    assert record_run(store, "r1", date(2026, 10, 31), None, "failure", "ingest: boom") is True

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(WorkStore, "write_history", full)
    assert record_run(store, "r2", date(2026, 10, 31), None, "failure", "ingest: boom") is False
    with pytest.raises(OSError):
        record_run(store, "r3", date(2026, 10, 31), None, "success")
