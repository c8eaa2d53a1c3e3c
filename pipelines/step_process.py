"""Preloaded once by the multiprocess executor's forkserver (`lowincome run --workers N`): what every step process needs.

Spawned afresh, every step of a multiprocess run paid the imports (Dagster, Great Expectations, Polars,
DuckDB, the code location: 20 to 50 s each on a loaded 2-core machine) before reading a row, which made
`--workers 2` slower than one process on small inboxes. Forked from a server that imported them once, a
step starts at once. Only this server and the step processes it forks import this module.

Three things a step process must do as `lowincome run` does in its own process:

- library warnings go to the log file, never to the terminal (they are raised at import, here);
- Polars' warning that a fork may deadlock is not for the terminal either: this server has imported
  Polars but never run a query, so its thread pool does not exist yet when a step is forked;
- each step process opens the run's Dagster instance (`DagsterInstance.from_ref`), which imports Dagster's
  storage layer (SQLite run, event-log and schedule storage, backfills, daemons, alembic, fsspec): about
  1 CPU s a step, 40 of a 100-CPU-s night at scale 40 with 39 steps, measured with py-spy. The server
  opens and drops a throwaway instance once, so those modules are loaded before any step is forked;
- Dagster's fallback console logger, used by a step process before the run's own loggers exist
  ("Step worker started", at DEBUG, in Dagster's multi-line format), is replaced by the code location's
  concise logger at CRITICAL on the terminal: its records still reach the log file and the run's event
  log; `--quiet` stays quiet.
"""

from __future__ import annotations

import logging
import warnings

from lowincome.logfile import default_warehouse, file_handler


def _warnings_to_log_file() -> None:
    logging.captureWarnings(True)
    target = logging.getLogger("py.warnings")
    try:
        handler, _ = file_handler(default_warehouse())
    except OSError:
        handler = logging.NullHandler()
    if handler not in target.handlers:
        target.addHandler(handler)
    target.propagate = False
    warnings.filterwarnings("ignore", message=r"Using fork\(\) can cause Polars")


def _quiet_fallback_logger() -> None:
    from dagster._core.execution import context_creation_job

    from pipelines.run_logging import concise_console_logger

    def default_system_loggers(instance):  # noqa: ARG001 - Dagster's signature
        return [(concise_console_logger, {"log_level": "CRITICAL", "name": "dagster", "failures": False,
                                          "library_logs_except": ""})]

    if hasattr(context_creation_job, "default_system_loggers"):
        context_creation_job.default_system_loggers = default_system_loggers


_warnings_to_log_file()

import duckdb  # noqa: E402,F401 - preloaded: the point of this module
import great_expectations  # noqa: E402,F401
import polars  # noqa: E402,F401

import checks.expectations  # noqa: E402,F401 - registers the custom expectations
import checks.suites  # noqa: E402,F401
import pipelines.definitions  # noqa: E402,F401


def _storage_preloaded() -> None:
    """Only a warm-up: if the temporary folder cannot be made, each step imports the storage itself."""
    import shutil
    import tempfile

    from dagster import DagsterInstance

    try:
        folder = tempfile.mkdtemp(prefix="lowincome-preload-")
    except OSError:
        return
    try:
        DagsterInstance.local_temp(folder, overrides={"telemetry": {"enabled": False}}).dispose()
    except Exception:  # noqa: BLE001 - a warm-up failing must not stop the steps, which open their own instance
        pass
    finally:
        shutil.rmtree(folder, ignore_errors=True)


_quiet_fallback_logger()
_storage_preloaded()
