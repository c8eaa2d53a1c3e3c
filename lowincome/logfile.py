"""The log file: where full records (with tracebacks) go, so that the terminal can stay at one line.

A failure shows one line on the terminal and names this file; the traceback
behind it is kept here for whoever investigates. The file lives in the
warehouse (`<warehouse>/logs/lowincome.log`, rotated at 10 MB, five kept);
when the warehouse cannot be written, in a per-user folder of the system's
temporary directory, so that a failure is never lost because of where it
happened. Everything written passes `privacy.redact`: library messages can
quote data.
"""

from __future__ import annotations

import logging
import logging.handlers
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


class _LogFile(logging.handlers.RotatingFileHandler):
    """A rotating file that never prints logging's own traceback to the terminal when a write fails.

    On a full disk the log file cannot be written either; the standard handler would then print
    "--- Logging error ---" and a traceback on stderr, defeating the one-line promise.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's API
        pass


def _open(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = _LogFile(path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8")
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
