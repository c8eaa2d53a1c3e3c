"""The log file: where full records (with tracebacks) go, so that the terminal can stay at one line.

A failure shows one line on the terminal and names this file; the traceback
behind it is kept here for whoever investigates. The file lives in the
warehouse (`<warehouse>/logs/lowincome.log`, rotated at 10 MB, five kept);
when the warehouse cannot be written, in a per-user folder of the system's
temporary directory, so that a failure is never lost because of where it
happened. Everything written passes `privacy.redact`: library messages can
quote data.

Every process of a run writes to it: the step processes of `--workers N`, and Celery workers on
other machines through the shared warehouse. Python's rotating handler is for one process: each
keeps its file open, so after one process rotated the others went on writing into the renamed
file, found it full and rotated again, each pushing the newest backups out (a traceback named by
a failure's one line could be gone), and appends from two machines over NFS could overwrite each
other. So each record is written under a lock (`flock` on `lowincome.log.lock`, which NFSv4
carries between machines), by opening the current file, appending, closing; rotation happens
under the same lock, by whichever process finds the file full.
"""

from __future__ import annotations

import fcntl
import logging
import os
import tempfile
import threading
from pathlib import Path

from .privacy import redact

LOG_NAME = "lowincome.log"
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5
FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

_handlers: dict[Path, logging.Handler] = {}
_lock = threading.Lock()


def warehouse_log_path(warehouse: Path) -> Path:
    return Path(warehouse) / "logs" / LOG_NAME


def fallback_log_path() -> Path:
    """A per-user file in the temporary directory, for when the warehouse is not writable or not known."""
    uid = os.getuid() if hasattr(os, "getuid") else os.getpid()
    return Path(tempfile.gettempdir()) / f"lowincome-{uid}" / LOG_NAME


class RedactingFormatter(logging.Formatter):
    """The standard format, with anything shaped like an ID number masked (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _LogFile(logging.Handler):
    """The log file, shared by every process that writes it (see the module docstring); rotated at `MAX_BYTES`.

    A write that fails (a full disk) is dropped silently: the standard handler would print
    "--- Logging error ---" and a traceback on stderr, defeating the one-line promise.
    """

    def __init__(self, path: Path):
        super().__init__()
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode("utf-8")
            # a lock file opened afresh each time: a descriptor inherited through fork would share its lock
            lock = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(lock, fcntl.LOCK_EX)
                self._append(data)
            finally:
                os.close(lock)  # releases the lock
        except Exception:  # noqa: BLE001 - see the class docstring
            pass

    def _append(self, data: bytes) -> None:
        try:
            size = os.stat(self.path).st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(data) > MAX_BYTES:
            self._rotate()
        out = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(out, view):]
        finally:
            os.close(out)

    def _rotate(self) -> None:
        """lowincome.log → .1 → .2 … → .BACKUPS (the oldest dropped), as logging's rotating handler names them."""
        for i in range(BACKUPS - 1, 0, -1):
            older = self.path.with_name(f"{self.path.name}.{i}")
            if older.exists():
                os.replace(older, self.path.with_name(f"{self.path.name}.{i + 1}"))
        os.replace(self.path, self.path.with_name(f"{self.path.name}.1"))


def _open(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    probe = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)  # fails here, not silently later
    os.close(probe)
    handler = _LogFile(path)
    handler.setFormatter(RedactingFormatter(FILE_FORMAT))
    handler.setLevel(logging.DEBUG)
    return handler


def file_handler(warehouse: Path | None) -> tuple[logging.Handler, Path]:
    """A handler appending to the warehouse's log file, else to the per-user fallback; one per file per process."""
    candidates = ([warehouse_log_path(warehouse)] if warehouse is not None else []) + [fallback_log_path()]
    error: OSError | None = None
    with _lock:
        for path in candidates:
            path = path.absolute()
            if path in _handlers:
                return _handlers[path], path
            try:
                handler = _open(path)
            except OSError as exc:
                error = exc
                continue
            _handlers[path] = handler
            return handler, path
    raise error or OSError("no writable log file")


def default_warehouse() -> Path | None:
    """The warehouse from the environment, or None when the settings themselves are invalid."""
    from .config import load_settings
    from .errors import LowincomeError

    try:
        return load_settings().warehouse
    except LowincomeError:
        return None
