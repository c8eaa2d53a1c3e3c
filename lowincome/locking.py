"""One writer at a time for the warehouse, whoever starts the run (daemon, UI, cron, a test).

Dagster's run queue limits runs it knows about; this advisory file lock also
covers a `lowincome run` from cron racing a scheduled run. The lock file says
who holds it, so the error names the culprit instead of "database is locked".
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from .errors import LowincomeError


class WarehouseLocked(LowincomeError):
    pass


@contextmanager
def warehouse_lock(warehouse: Path, holder: str, wait_seconds: float = 600.0, poll: float = 0.5):
    warehouse.mkdir(parents=True, exist_ok=True)
    path = warehouse / ".publish.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait_seconds
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    who = path.read_text(encoding="utf-8", errors="replace").strip() or "another process"
                    raise WarehouseLocked(
                        f"warehouse {warehouse} is locked by {who}; waited {wait_seconds:.0f}s "
                        "(the last publication is unchanged)"
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.write(fd, f"{holder} (pid {os.getpid()}, since {datetime.now():%Y-%m-%d %H:%M:%S})".encode())
        yield
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
