"""The inbox sensor asks for a run only once the inbox has stopped changing for the settle period."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dagster import RunRequest, SkipReason, build_sensor_context

from pipelines import sensors
from pipelines.resources import LowincomeResource

SETTLE = sensors.DEFAULT_SETTLE_SECONDS


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture()
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(sensors, "_clock", c)
    return c


@pytest.fixture()
def inbox(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "inbox"
    (folder / "civil_roster").mkdir(parents=True)
    monkeypatch.delenv("LOWINCOME_ENV", raising=False)
    monkeypatch.delenv("LOWINCOME_SETTLE_SECONDS", raising=False)
    monkeypatch.setenv("LOWINCOME_WAREHOUSE", str(tmp_path / "warehouse"))
    return folder


class Sensor:
    """Evaluates the sensor the way the daemon does: each evaluation starts from the cursor the last one left."""

    def __init__(self, inbox: Path):
        self.resource = LowincomeResource(inbox=str(inbox))
        self.cursor: str | None = None

    def tick(self):
        with build_sensor_context(cursor=self.cursor, resources={"lowincome": self.resource}) as context:
            result = sensors.inbox_sensor(context)
            self.cursor = context.cursor
        return result


def _write(path: Path, data: bytes, mtime: float) -> None:
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def test_a_file_still_growing_asks_for_no_run_until_it_has_settled(inbox, clock):
    sensor = Sensor(inbox)
    roster = inbox / "civil_roster" / "civil_roster_371302_20261031.csv"
    _write(roster, b"a" * 10, clock.now)
    first = sensor.tick()
    assert isinstance(first, SkipReason) and "waiting" in first.skip_message and f"{SETTLE:.0f} s" in first.skip_message
    for _ in range(5):  # the copy goes on: every look finds it changed, so the clock starts again each time
        clock.advance(SETTLE - 1)
        _write(roster, roster.read_bytes() + b"b" * 10, clock.now)
        result = sensor.tick()
        assert isinstance(result, SkipReason), "asked for a run on a file still being copied"
    clock.advance(SETTLE - 1)  # unchanged, but not yet for the whole settle period
    assert isinstance(sensor.tick(), SkipReason)
    clock.advance(1)
    request = sensor.tick()
    assert isinstance(request, RunRequest)
    state = json.loads(sensor.cursor)
    assert state["requested_digest"] == state["digest"] and state["first_seen_at"] == clock.now - SETTLE


def test_the_same_state_asks_for_one_run_only(inbox, clock):
    sensor = Sensor(inbox)
    _write(inbox / "civil_roster" / "civil_roster_371302_20261031.csv", b"x", clock.now - 3600)
    assert isinstance(sensor.tick(), SkipReason)
    clock.advance(SETTLE)
    assert isinstance(sensor.tick(), RunRequest)
    for _ in range(3):
        clock.advance(3600)
        again = sensor.tick()
        assert isinstance(again, SkipReason) and "no new deliveries" in again.skip_message


def test_a_replaced_file_of_the_same_size_is_a_new_state(inbox, clock):
    sensor = Sensor(inbox)
    roster = inbox / "civil_roster" / "civil_roster_371302_20261031.csv"
    _write(roster, b"one", clock.now)
    sensor.tick()
    clock.advance(SETTLE)
    assert isinstance(sensor.tick(), RunRequest)
    clock.advance(10)
    _write(roster, b"two", clock.now)  # same size, new modification time
    assert isinstance(sensor.tick(), SkipReason)
    clock.advance(SETTLE)
    second = sensor.tick()
    assert isinstance(second, RunRequest)


def test_any_entry_counts_as_change_including_a_copy_tools_temporary_file(inbox, clock):
    sensor = Sensor(inbox)
    _write(inbox / "civil_roster" / "civil_roster_371302_20261031.csv", b"x", clock.now)
    sensor.tick()
    clock.advance(SETTLE - 10)
    _write(inbox / "civil_roster" / ".civil_roster_371324_20261031.csv.Xa81", b"partial", clock.now)
    assert isinstance(sensor.tick(), SkipReason)
    clock.advance(SETTLE - 1)
    assert isinstance(sensor.tick(), SkipReason)


def test_an_empty_inbox_asks_for_nothing(inbox, clock):
    sensor = Sensor(inbox)
    for _ in range(3):
        result = sensor.tick()
        assert isinstance(result, SkipReason) and "holds no files" in result.skip_message
        clock.advance(SETTLE * 2)


def test_the_settle_period_comes_from_the_settings(inbox, clock, monkeypatch):
    real = LowincomeResource.settings

    def with_settle(self):
        s = real(self)
        return type("S", (), {"inbox": s.inbox, "settle_seconds": 5})()

    monkeypatch.setattr(LowincomeResource, "settings", with_settle)
    sensor = Sensor(inbox)
    _write(inbox / "civil_roster" / "civil_roster_371302_20261031.csv", b"x", clock.now)
    assert isinstance(sensor.tick(), SkipReason)
    clock.advance(5)
    assert isinstance(sensor.tick(), RunRequest)


def test_a_cursor_of_the_previous_version_is_read_as_the_last_request(inbox, clock):
    _write(inbox / "civil_roster" / "civil_roster_371302_20261031.csv", b"x", clock.now)
    digest, _ = sensors.inbox_fingerprint(inbox)
    sensor = Sensor(inbox)
    sensor.cursor = digest  # what the sensor stored before it kept JSON
    result = sensor.tick()
    assert isinstance(result, SkipReason) and "no new deliveries" in result.skip_message
    assert json.loads(sensor.cursor)["requested_digest"] == digest


def test_a_missing_inbox_is_named(tmp_path, clock, monkeypatch):
    monkeypatch.delenv("LOWINCOME_ENV", raising=False)
    result = Sensor(tmp_path / "nowhere").tick()
    assert isinstance(result, SkipReason) and str(tmp_path / "nowhere") in result.skip_message
