"""The nightly job on Dagster's multiprocess executor and on real Celery workers publishes what in-process publishes.

The Celery test starts Debian's redis-server on a free localhost port and two Celery workers
(`celery -A pipelines.celery_app worker`) with the deployment's Dagster instance on a throwaway
PostgreSQL server (deploy/celery/dagster.yaml), runs `lowincome run --celery` on the bundled samples and
compares every published table with an in-process run of the same day; it stops what it started,
whatever happens. A missing redis-server or PostgreSQL fails the test with a clear line (.ci/run
installs them).
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pytest

from lowincome.cli import main

from .conftest import SAMPLE_END
from .warehouse_compare import differences

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data_samples" / "inbox"
AS_OF = SAMPLE_END.isoformat()
STARTUP_SECONDS = 240  # a worker imports Dagster, Polars, DuckDB and GX: slow on a loaded 2-core machine


def _clean_env(mp: pytest.MonkeyPatch, warehouse: Path) -> None:
    for name in [n for n in os.environ if n.startswith("LOWINCOME_")] + ["DAGSTER_HOME"]:
        mp.delenv(name, raising=False)
    mp.setenv("LOWINCOME_INBOX", str(SAMPLES))
    mp.setenv("LOWINCOME_WAREHOUSE", str(warehouse))


@pytest.fixture(scope="module")
def in_process(tmp_path_factory) -> Path:
    """The bundled samples' night, run in-process by the command line: the reference."""
    warehouse = tmp_path_factory.mktemp("in_process") / "warehouse"
    mp = pytest.MonkeyPatch()
    try:
        _clean_env(mp, warehouse)
        assert main(["run", "--as-of", AS_OF, "--quiet"]) == 0
    finally:
        mp.undo()
    con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
    try:  # a reference with nothing in it would make every comparison pass
        assert con.execute("SELECT count(*) FROM mart.flags").fetchone()[0] > 0
        assert con.execute("SELECT count(*) FROM staging.civil_roster").fetchone()[0] > 0
    finally:
        con.close()
    return warehouse


def _assert_same(reference: Path, other: Path) -> None:
    found, compared = differences(reference, other)
    assert compared >= 20, f"only {compared} published relations compared"
    assert not found, "\n".join(found)


def test_workers_must_be_a_positive_whole_number(capsys):
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(SystemExit) as exc:
            main(["run", "--as-of", AS_OF, "--workers", bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert f"--workers must be a whole number of steps at a time, 1 or more, got '{bad}'" in err[-1]


def test_celery_needs_a_broker_and_excludes_workers(lowincome_env, capsys, monkeypatch):
    lowincome_env(SAMPLES)
    monkeypatch.delenv("LOWINCOME_CELERY_BROKER", raising=False)
    assert main(["run", "--as-of", AS_OF, "--celery", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs LOWINCOME_CELERY_BROKER" in err[0] and "nothing was run" in err[0]
    monkeypatch.setenv("LOWINCOME_CELERY_BROKER", "redis://127.0.0.1:1/0")
    assert main(["run", "--as-of", AS_OF, "--celery", "--workers", "2", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exclude each other" in err[0]
    monkeypatch.setenv("LOWINCOME_CELERY_BROKER", "localhost:6379")
    assert main(["run", "--as-of", AS_OF, "--celery", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "LOWINCOME_CELERY_BROKER must be a broker URL" in err[0]


def test_two_workers_publish_what_in_process_publishes(in_process, lowincome_env, capfd):
    """`--workers 2 --quiet`: the same tables, the summary line only (step processes included: captured at the
    file descriptors), and every file's progress line in the log file although it was read in another process."""
    warehouse = lowincome_env(SAMPLES)
    assert main(["run", "--as-of", AS_OF, "--workers", "2", "--quiet"]) == 0
    printed = capfd.readouterr()
    assert len(printed.out.strip().splitlines()) == 1 and f"as of {SAMPLE_END}" in printed.out
    assert printed.err.strip() == ""
    _assert_same(in_process, warehouse)
    delivered = sorted(p.name for p in SAMPLES.rglob("*") if p.is_file())  # counted without the pipeline
    log = (warehouse / "logs" / "lowincome.log").read_text(encoding="utf-8")
    logged = sorted(set(re.findall(r"\w+ \[\d+/\d+\] (\S+): [\d,]+ rows read and validated", log)))
    assert logged == delivered
    assert re.search(r"rules as of \S+: 2 county steps \(371302; 371324\)", log)  # --workers 2: two rule steps
    assert not list((warehouse / "work" / "dagster").iterdir())  # the run-local Dagster instance is gone


def test_a_failing_step_under_workers_is_one_line_and_recorded(lowincome_env, tmp_path, monkeypatch, capfd):
    """An empty inbox fails the rules step (no usable delivery): under --workers 2 exactly the line an
    in-process run prints (the warehouse's path aside), exit status 1, and the failure in the run history.
    Run after the --workers 2 test in the same process, it also shows that a second multiprocess run uses its
    own settings (step processes forked from the first run's server read the samples and succeeded)."""
    from lowincome.workstore import WorkStore

    empty = tmp_path / "empty_inbox"
    empty.mkdir()
    lines = {}
    for workers in ("1", "2"):
        lowincome_env(empty)
        monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(tmp_path / f"warehouse{workers}"))
        assert main(["run", "--as-of", AS_OF, "--workers", workers, "--quiet"]) == 1
        err = capfd.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        lines[workers] = err[0].replace(str(tmp_path / f"warehouse{workers}"), "<warehouse>")
    assert f"run for {AS_OF} failed at rules" in lines["2"] and "收件箱无可用数据" in lines["2"]
    assert lines["2"] == lines["1"]
    history = WorkStore(tmp_path / "warehouse2").history_dir("runs")
    runs = duckdb.sql(f"SELECT status, message FROM read_parquet('{history}/*.parquet')").fetchall()
    assert [r[0] for r in runs] == ["failure"] and "rules" in runs[0][1]


# ---- Celery ------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """Stop a process started in its own session, and everything it started (its process group)."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=grace)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _wait_for(predicate, seconds: float, what: str, logs: list[Path]) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}:\n" + p.read_text(errors="replace")[-2000:] for p in logs if p.exists())
    pytest.fail(f"{what} within {seconds:.0f} s\n{tails}")


def _postgres_program(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if found is None:
        pytest.fail(f"PostgreSQL's {name} is not installed: the Celery test keeps its Dagster instance in PostgreSQL, as "
                    "deploy/celery/dagster.yaml does (apt-get install postgresql; .ci/run installs it when missing)")
    return found


@pytest.fixture()
def deployment_instance(tmp_path, request) -> tuple[Path, dict]:
    """A throwaway PostgreSQL server and a DAGSTER_HOME with deploy/celery/dagster.yaml pointed at it.

    The deployment's own instance file, not a test's: it once named a driver SQLAlchemy no longer picks by
    default, and every process that opened it failed (docs/decisions.md, "Two machines, tried").
    Returns (DAGSTER_HOME, the DAGSTER_PG_* variables every process needs); the server is stopped and removed
    when the test ends.
    """
    initdb, pg_ctl = _postgres_program("initdb"), _postgres_program("pg_ctl")
    root = Path(tempfile.mkdtemp(prefix="lowincome-pg-"))  # not under pytest's folder: the server's user must reach it
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root: as Debian's postgres user
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port, log = root / "data", _free_port(), root / "server.log"

    def stop() -> None:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)

    request.addfinalizer(stop)
    for args in ([initdb, "-D", str(data), "-U", "dagster", "-A", "trust", "--no-sync"],
                 [pg_ctl, "-D", str(data), "-w", "-t", "60", "-l", str(log), "-o",
                  f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off", "start"]):
        done = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (done.stdout + done.stderr)[-2000:] + (log.read_text()[-2000:] if log.exists() else "")
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = (ROOT / "deploy" / "celery" / "dagster.yaml").read_text(encoding="utf-8")
    assert "port: 5432" in config
    (home / "dagster.yaml").write_text(config.replace("port: 5432", f"port: {port}"), encoding="utf-8")
    return home, {"DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_USER": "dagster", "DAGSTER_PG_PASSWORD": "unused",
                  "DAGSTER_PG_DB": "postgres"}


@pytest.fixture()
def celery_cluster(tmp_path, request, deployment_instance):
    """redis-server on a free localhost port and two Celery workers for a fresh warehouse, with the deployment's
    Dagster instance on PostgreSQL; yields (broker, warehouse, logs, DAGSTER_HOME, DAGSTER_PG_* variables)."""
    home, pg_env = deployment_instance
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is not installed: the Celery test needs Debian's redis-server "
                    "(apt-get install redis-server; .ci/run installs it when missing)")
    warehouse = tmp_path / "warehouse"
    port = _free_port()
    broker = f"redis://127.0.0.1:{port}/0"
    started: list[subprocess.Popen] = []
    request.addfinalizer(lambda: [_stop(p) for p in reversed(started)])
    redis_log = tmp_path / "redis.log"
    started.append(subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)], stdout=redis_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True))

    import redis

    def answers() -> bool:
        try:
            return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping()
        except redis.exceptions.ConnectionError:
            return False

    _wait_for(answers, 30, f"redis-server did not answer on port {port}", [redis_log])
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOWINCOME_") and k != "DAGSTER_HOME"}
    env.update(LOWINCOME_CELERY_BROKER=broker, LOWINCOME_INBOX=str(SAMPLES), LOWINCOME_WAREHOUSE=str(warehouse),
               DAGSTER_HOME=str(home), LOWINCOME_RULE_STEPS="2", **pg_env)  # the rules as two county steps
    logs = [tmp_path / f"worker{i}.log" for i in (1, 2)]
    celery = Path(sys.executable).parent / "celery"
    for i, log in enumerate(logs, start=1):
        started.append(subprocess.Popen(
            [str(celery), "-A", "pipelines.celery_app", "worker", "--concurrency", "1", "-n", f"w{i}@%h",
             "-Q", "dagster", "--loglevel", "INFO"],
            cwd=tmp_path, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True))
    _wait_for(lambda: all(p.exists() and " ready." in p.read_text(errors="replace") for p in logs),
              STARTUP_SECONDS, "the two Celery workers were not ready", logs)
    yield broker, warehouse, logs, home, pg_env


def test_celery_workers_publish_what_in_process_publishes(in_process, celery_cluster, monkeypatch, capsys):
    broker, warehouse, logs, home, pg_env = celery_cluster
    _clean_env(monkeypatch, warehouse)
    monkeypatch.setenv("LOWINCOME_CELERY_BROKER", broker)
    monkeypatch.setenv("DAGSTER_HOME", str(home))  # the run is recorded where a deployment records it
    for name, value in pg_env.items():
        monkeypatch.setenv(name, value)
    assert main(["run", "--as-of", AS_OF, "--celery", "--quiet"]) == 0, capsys.readouterr().err
    printed = capsys.readouterr()
    assert len(printed.out.strip().splitlines()) == 1 and f"as of {SAMPLE_END}" in printed.out
    _assert_same(in_process, warehouse)
    ran = [len(re.findall(r"Task execute_plan\[[^\]]+\] succeeded", log.read_text(errors="replace"))) for log in logs]
    assert all(n > 0 for n in ran), f"steps per worker: {ran}"  # both workers took steps
    log = (warehouse / "logs" / "lowincome.log").read_text(encoding="utf-8")
    assert re.search(r"rules as of \S+: 2 county steps \(371302; 371324\)", log)  # the workers' setting
    failed = [log.name for log in logs if "Task execute_plan" in log.read_text(errors="replace")
              and re.search(r"Task execute_plan\[[^\]]+\] raised", log.read_text(errors="replace"))]
    assert not failed
    from dagster import DagsterInstance, DagsterRunStatus

    instance = DagsterInstance.from_config(str(home))
    try:  # the run and its steps' events are in PostgreSQL, where the UI and the daemon of a deployment read them
        runs = instance.get_runs()
        assert [r.status for r in runs] == [DagsterRunStatus.SUCCESS]
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    finally:
        instance.dispose()
