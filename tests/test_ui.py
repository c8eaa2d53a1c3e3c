"""The Dagster UI loads our code location and shows the asset graph (webserver + headless Chromium)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"webserver did not answer at {url} within {seconds}s")


def _dump_dom(url: str, profile: Path) -> str:
    cmd = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=20000", "--dump-dom", url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def test_webserver_shows_the_asset_graph(tmp_path):
    port = _free_port()
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "LOWINCOME_WAREHOUSE": str(tmp_path / "wh")}
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for(f"{base}/server_info", 90)
        dom = ""
        for _ in range(3):  # the code location may still be loading on the first visit
            dom = _dump_dom(f"{base}/assets", tmp_path / "profile")
            if "medical_claims" in dom:
                break
            time.sleep(3)
        for name in ("civil_roster", "medical_claims", "death_records", "warehouse"):
            assert name in dom, f"asset {name} not shown in the UI"
        jobs = _dump_dom(f"{base}/locations/lowincome_monitor/jobs/nightly", tmp_path / "profile2")
        assert "nightly" in jobs
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
