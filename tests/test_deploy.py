"""deploy/: the Celery code location and the Kubernetes example load and pass `dagster definitions validate`;
the systemd units start commands that exist, with the modules they name."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


def test_celery_and_kubernetes_code_locations_validate(tmp_path):
    """One `dagster definitions validate` over both: the Celery location (deploy/celery/workspace.yaml's module)
    and the k8s_job_executor example; an invalid executor config or a missing module fails it."""
    import yaml

    celery = yaml.safe_load((DEPLOY / "celery" / "workspace.yaml").read_text(encoding="utf-8"))["load_from"]
    workspace = tmp_path / "workspace.yaml"
    workspace.write_text(yaml.safe_dump({"load_from": [
        *celery,
        {"python_file": {"relative_path": str(DEPLOY / "k8s" / "definitions.py"), "location_name": "k8s_example",
                         "working_directory": str(ROOT)}},
    ]}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOWINCOME_") and k != "DAGSTER_HOME"}
    env["LOWINCOME_CELERY_BROKER"] = "redis://127.0.0.1:6379/0"  # validation loads; nothing connects
    done = subprocess.run([str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(workspace)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-3000:]
    assert "Validation successful for code location lowincome_monitor" in out
    assert "Validation successful for code location k8s_example" in out


def test_the_celery_location_refuses_to_load_without_a_broker(monkeypatch):
    from lowincome.errors import ConfigError

    monkeypatch.setenv("LOWINCOME_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    from pipelines.celery_definitions import _broker  # loads with a broker

    monkeypatch.delenv("LOWINCOME_CELERY_BROKER", raising=False)
    with pytest.raises(ConfigError, match="LOWINCOME_CELERY_BROKER is not set"):
        _broker()
    monkeypatch.setenv("LOWINCOME_CELERY_BROKER", "redis://head:6379/0")
    assert _broker() == "redis://head:6379/0"


def test_systemd_units_start_commands_that_exist():
    """Every ExecStart names a console script the package installs and a workspace or app module that exists."""
    units = sorted((DEPLOY / "systemd").glob("*.service"))
    assert {u.name for u in units} == {"lowincome-celery-worker@.service", "lowincome-dagster-webserver.service",
                                       "lowincome-dagster-daemon.service"}
    bin_dir = Path(sys.executable).parent
    for unit in units:
        text = unit.read_text(encoding="utf-8")
        assert "EnvironmentFile=/etc/lowincome/lowincome.env" in text
        command = re.search(r"^ExecStart=(\S+)(.*)$", text, re.M)
        assert command, unit.name
        script = Path(command.group(1)).name
        assert (bin_dir / script).exists(), f"{unit.name}: {script} is not installed by the package"
        args = command.group(2)
        if "-w " in args:
            assert (ROOT / re.search(r"-w (\S+)", args).group(1)).is_file()
        if "-A " in args:
            module = re.search(r"-A (\S+)", args).group(1)
            assert (ROOT / (module.replace(".", "/") + ".py")).is_file()
    env_file = (DEPLOY / "celery" / "lowincome.env").read_text(encoding="utf-8")
    from lowincome.config import SETTINGS_HELP

    known = {name for name, _, _ in SETTINGS_HELP}
    named = set(re.findall(r"^(LOWINCOME_[A-Z_]+)=", env_file, re.M))
    assert "LOWINCOME_CELERY_BROKER" in named and named <= known
    # every variable the deployment's instance file reads is in the environment file the units read
    wanted = set(re.findall(r"\{\s*env:\s*([A-Z_]+)\s*\}", (DEPLOY / "celery" / "dagster.yaml").read_text(encoding="utf-8")))
    assert wanted and wanted <= set(re.findall(r"^([A-Z_]+)=", env_file, re.M)), wanted


def test_a_run_that_dies_is_failed_and_run_again_whole(tmp_path):
    """Both instance files fail a run stuck after its process or a worker machine died, and retry it with every step.

    Tried on two machines (docs/decisions.md, "Two machines, tried"): a worker killed mid-step left the run
    STARTED for good, and the run queue (one warehouse-writing run at a time) held every later night back;
    retried "from failure", the retries failed at once, because the steps the dead run had handed out were
    neither done nor failed. The run monitor's max runtime ends such a run; the retry runs every step again
    (cheap: a night that re-reads nothing new reuses the parsed files and the rules' result).
    """
    import yaml
    from dagster import DagsterInstance

    from pipelines.jobs import nightly_job

    assert nightly_job.tags["dagster/retry_strategy"] == "ALL_STEPS"
    assert int(nightly_job.tags["dagster/max_retries"]) >= 1
    for name, config in (("single machine", DEPLOY / "dagster.yaml"), ("Celery", DEPLOY / "celery" / "dagster.yaml")):
        home = tmp_path / name.replace(" ", "_")
        home.mkdir()
        settings = yaml.safe_load(config.read_text(encoding="utf-8"))
        settings.pop("storage", None)  # the Celery file's is PostgreSQL's: the rest is checked on the default storage
        (home / "dagster.yaml").write_text(yaml.safe_dump(settings), encoding="utf-8")
        instance = DagsterInstance.from_config(str(home))  # validates the file against Dagster's schema
        try:
            assert instance.run_monitoring_enabled, name
            assert 3600 <= instance.run_monitoring_max_runtime_seconds <= 86400, name
            assert instance.run_retries_enabled and instance.run_retries_max_retries >= 1, name
        finally:
            instance.dispose()
