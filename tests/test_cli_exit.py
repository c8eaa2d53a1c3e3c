"""`lowincome` (the console entry point) ends the process directly after `main()`: the exit status and every line
written to stdout, stderr and the log file must survive that (`lowincome.cli.console`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOWINCOME_", "DAGSTER_HOME"))}
    env.update(LOWINCOME_WAREHOUSE=str(tmp_path / "wh"), LOWINCOME_INBOX=str(tmp_path / "inbox"))
    (tmp_path / "inbox").mkdir()
    return env


def test_a_refused_run_keeps_its_status_its_line_and_its_log(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lowincome.cli", "run", "--as-of", "2023-12-31"], env=_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert "--as-of 2023-12-31 is outside the nightly partitions" in proc.stderr.strip().splitlines()[-1]


def test_console_exits_with_main_s_status_after_flushing(tmp_path):
    # main() returns 0 after printing; the buffered line (stdout is a pipe here) must be flushed before the exit
    code = ("import sys, lowincome.cli as cli\n"
            "def fake(argv=None):\n"
            "    print('done', end='')\n"
            "    import logging; logging.getLogger('lowincome.test').addHandler(logging.FileHandler(sys.argv[1]))\n"
            "    logging.getLogger('lowincome.test').warning('logged')\n"
            "    return 3\n"
            "cli.main = fake\n"
            "cli.console()\n"
            "print('never reached')\n")
    log = tmp_path / "x.log"
    proc = subprocess.run([sys.executable, "-c", code, str(log)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 3
    assert proc.stdout == "done"
    assert log.read_text(encoding="utf-8") == "logged\n"


def test_the_command_leaves_no_spill_folder_behind(tmp_path):
    """`lowincome` leaves by `os._exit`, which skips `atexit`: its DuckDB spill folder is released before."""
    code = ("import duckdb, lowincome.cli as cli\n"
            "from lowincome.config import configure_duckdb, load_settings\n"
            "def fake(argv=None):\n"
            "    configure_duckdb(duckdb.connect(), load_settings()).close()\n"
            "    return 0\n"
            "cli.main = fake\n"
            "cli.console()\n")
    env = _env(tmp_path)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
    spill = tmp_path / "wh" / "work" / "tmp"
    assert spill.is_dir() and not any(spill.iterdir())
