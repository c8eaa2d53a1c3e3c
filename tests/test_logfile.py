"""The log file is written by every process of a run at once (`--workers N`, Celery workers on other machines):
no record may be lost or torn, rotation included (lowincome/logfile.py).

With Python's rotating handler, each process kept its file open: after one rotated, the others wrote
into the renamed file, found it full and rotated again, leaving backups of a few records and pushing
older files out long before five were full: this test failed five times out of five."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from lowincome.logfile import BACKUPS, LOG_NAME

REPO = Path(__file__).resolve().parents[1]
PROCESSES, RECORDS, MAX_BYTES = 6, 600, 60_000  # 317 KB in all: five rotations, all within 1 + BACKUPS files
CHILD = """
import logging, sys
from pathlib import Path
import lowincome.logfile as lf
lf.MAX_BYTES = int(sys.argv[3])
handler, path = lf.file_handler(Path(sys.argv[1]))
log = logging.getLogger("lowincome.test")
log.addHandler(handler)
log.setLevel(logging.INFO)
log.propagate = False
me = sys.argv[2]
for i in range(int(sys.argv[4])):
    log.info("writer %s record %04d %s", me, i, "x" * 20)
"""
LINE = re.compile(r"^\S+ \S+ INFO lowincome\.test: writer (\d) record (\d{4}) x{20}$")


def test_processes_writing_at_once_lose_no_record_and_rotate_once_per_fill(tmp_path):
    warehouse = tmp_path / "wh"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    children = [subprocess.Popen([sys.executable, "-c", CHILD, str(warehouse), str(n), str(MAX_BYTES), str(RECORDS)],
                                 env=env, stderr=subprocess.PIPE, text=True) for n in range(PROCESSES)]
    for child in children:
        assert child.wait(timeout=300) == 0, child.stderr.read()[-1500:]

    logs = warehouse / "logs"
    files = [logs / f"{LOG_NAME}.{i}" for i in range(BACKUPS, 0, -1)] + [logs / LOG_NAME]
    present = [f for f in files if f.exists()]
    assert len(present) >= 3, "the records filled several files: rotation happened"
    assert all(f.stat().st_size <= MAX_BYTES for f in present)
    # each backup was full when it was rotated: a process that rotates a file another just rotated leaves
    # a backup of a few records, and the five backups then keep far less than five files' worth
    longest = max(len(line.encode()) + 1 for f in present for line in f.read_text(encoding="utf-8").splitlines())
    assert all(f.stat().st_size > MAX_BYTES - longest for f in present[:-1]), [f.stat().st_size for f in present]
    lines = [line for f in present for line in f.read_text(encoding="utf-8").splitlines()]  # oldest first
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), [line for line, m in zip(lines, parsed) if not m][:3]  # no torn or mixed line
    seen: dict[str, list[int]] = {}
    for m in parsed:
        seen.setdefault(m.group(1), []).append(int(m.group(2)))
    # every record of every writer, once, in its writer's order
    assert seen == {str(n): list(range(RECORDS)) for n in range(PROCESSES)}
