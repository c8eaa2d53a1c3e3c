"""Shared fixtures: generated deliveries (once per session) and an isolated environment per test."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

SAMPLE_END = date(2026, 10, 31)


@pytest.fixture(scope="session")
def generated(tmp_path_factory) -> tuple[Path, dict]:
    """Deliveries written by the generator at scale 1 (seed 7), with the manifest of what was planted."""
    from lowincome.generate import generate

    out = tmp_path_factory.mktemp("generated")
    manifest = generate(out, seed=7, scale=1.0, end_date=SAMPLE_END)
    return out, manifest


@pytest.fixture()
def lowincome_env(monkeypatch, tmp_path):
    """Point every LOWINCOME_* variable at a temporary warehouse; returns a setter for the inbox."""
    warehouse = tmp_path / "warehouse"
    monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(warehouse))
    monkeypatch.delenv("LOWINCOME_ENV", raising=False)
    monkeypatch.delenv("LOWINCOME_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)

    def use_inbox(inbox: Path) -> Path:
        monkeypatch.setenv("LOWINCOME_INBOX", str(inbox))
        return warehouse

    return use_inbox


@pytest.fixture(scope="session")
def published(published_run):
    """(warehouse, manifest) of the shared nightly run, for the tests that only read its outputs."""
    warehouse, manifest, _ = published_run
    return warehouse, manifest


@pytest.fixture(scope="session")
def published_run(generated, tmp_path_factory):
    """One nightly run over the generated inbox, shared by the tests that only read its outputs (the expensive part);
    (warehouse, manifest, Dagster's execution result)."""
    from pipelines.definitions import defs

    out, manifest = generated
    warehouse = tmp_path_factory.mktemp("wh")
    mp = pytest.MonkeyPatch()
    mp.setenv("LOWINCOME_INBOX", str(out / "inbox"))
    mp.setenv("LOWINCOME_WAREHOUSE", str(warehouse))
    mp.delenv("LOWINCOME_ENV", raising=False)
    mp.delenv("LOWINCOME_PSEUDONYM_KEY", raising=False)
    mp.delenv("DAGSTER_HOME", raising=False)
    mp.setenv("LOWINCOME_FANOUT_MIN_MB", "0")  # one step per (feed, county) however small (tests/test_fanout.py)
    result = defs.resolve_job_def("nightly").execute_in_process(partition_key=SAMPLE_END.isoformat())
    mp.undo()
    assert result.success
    return warehouse, manifest, result


@pytest.fixture()
def reads(monkeypatch):
    """Counts the files actually parsed (read from the inbox), by name."""
    import lowincome.ingest as ingest_module

    seen: list[str] = []
    real = ingest_module.read_delivery

    def counting(path, spec):
        seen.append(path.name)
        return real(path, spec)

    monkeypatch.setattr(ingest_module, "read_delivery", counting)
    return seen
