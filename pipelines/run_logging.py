"""Dagster's console logger, replaced: one line per message on the terminal, the full record in the log file.

Dagster's default `console` logger appends the whole error (with stack traces
and their causes) to the message of every failure event: a failing night
used to fill the terminal with hundreds of lines. This logger is given to
`Definitions(loggers={"console": ...})`, which makes it the `console` logger of
every job of the code location. Dagster 1.13 instantiates a job's loggers only
when the run config names them (otherwise it falls back to its own colored
console logger; see `create_log_manager` and `config_map_loggers` in
dagster/_core): so the nightly job names `loggers.console` in its default run
config (pipelines/jobs.py), which covers runs started by the schedule, the
inbox sensor, backfills, the launchpad and `lowincome run` alike. It keeps the
name `console` so that run config `loggers.console.config.log_level` still
works. The implicit asset job behind the UI's "Materialize" button has no
default run config: it uses this logger when its run config names
`loggers.console`, and Dagster's own console logger otherwise.

The UI's event log is not affected: Dagster stores events through the
instance's own handlers, not through the run's loggers.
"""

from __future__ import annotations

import logging
import os
import socket
import sys

from dagster import Field, InitLoggerContext, logger

from lowincome.logfile import default_warehouse, file_handler
from lowincome.privacy import redact

FAILURE_EVENTS = {"STEP_FAILURE", "RUN_FAILURE", "PIPELINE_FAILURE"}
STAGES = (("staging__", "ingest"), ("mart__", "rules"), ("publish__", "publish"))


def stage_of(step_key: str | None) -> str:
    """The user's name for the step: ingest (staging/…), rules (mart/flags) or publish (publish/warehouse)."""
    for prefix, stage in STAGES:
        if step_key and step_key.startswith(prefix):
            return stage
    return step_key or "run"


def feed_of(step_key: str | None) -> str | None:
    if step_key and step_key.startswith("staging__"):  # staging__<feed>, or a step of its graph: staging__<feed>.county[...]
        return step_key.removeprefix("staging__").split(".", 1)[0]
    return None


def short_error(event) -> str | None:
    """The first line of what went wrong in a failure event, without Dagster's wrappers or any stack trace.

    A `Failure` raised by our assets carries the sentence written for the data team; any other error
    is reduced to the innermost non-Dagster cause: `ErrorClass: first line of its message`.
    """
    data = getattr(event, "event_specific_data", None) if event is not None else None
    if data is None:
        return None
    user = getattr(data, "user_failure_data", None)
    if user is not None and getattr(user, "description", None):
        return user.description.strip().splitlines()[0]
    err = getattr(data, "error", None)
    while err is not None and err.cause is not None and "dagster" in (err.cls_name or "").lower():
        err = err.cause
    if err is None:
        return None
    lines = (err.message or "").strip().splitlines()
    first = lines[0] if lines else (err.cls_name or "error")
    if err.cls_name and err.cls_name not in first.split(":", 1)[0]:
        first = f"{err.cls_name}: {first}"
    return first


class ConciseFormatter(logging.Formatter):
    """`HH:MM:SS LEVEL step - message` on one line; a failure adds only the first line of its cause."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None)
        if isinstance(meta, dict):
            event = meta.get("dagster_event")
            text = (meta.get("orig_message") or "").strip().splitlines()
            text = text[0] if text else ""
            cause = short_error(event)
            if "Steps failed:" in text:
                cause = None  # the run's failure repeats its steps' failures, already shown once each
            if cause and cause not in text:
                text = f"{text} {cause}" if text else cause
            where = meta.get("step_key") or meta.get("job_name") or "dagster"
        else:
            lines = record.getMessage().strip().splitlines()
            text, where = (lines[0] if lines else ""), record.name
        stamp = self.formatTime(record, "%H:%M:%S")
        return redact(f"{stamp} {record.levelname} {where} - {text}")


class _NoFailureEvents(logging.Filter):
    """Drops step and run failures and their echoes (steps not executed because a dependency failed):
    the caller prints its own one-line summary of them."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None)
        if not isinstance(meta, dict):
            return True
        if getattr(meta.get("dagster_event"), "event_type_value", None) in FAILURE_EVENTS:
            return False
        text = meta.get("orig_message") or ""
        return not (text.startswith("Dependencies for step ") and text.rstrip().endswith("Not executing."))


def this_process() -> str:
    """`host:pid` of this process: names the process that started a run (see `route_library_logs`)."""
    return f"{socket.gethostname()}:{os.getpid()}"


PROGRESS_FORMAT = "%(asctime)s progress - %(message)s"  # as lowincome.progress.on_terminal


def route_library_logs(terminal_level: int) -> None:
    """In a step process of its own, do what `lowincome run` does in its process for the library's loggers.

    Under the multiprocess and Celery executors a step runs in another process (on another machine, for
    Celery) than the command that started the run; there the `lowincome` loggers (progress lines, library
    warnings) had no handler: progress went nowhere and warnings reached the terminal through logging's
    last resort. Here they get the log file, and progress lines the terminal unless the terminal threshold
    is above INFO (`--quiet`), in the same format as in-process. Idempotent: a Celery worker runs many steps.
    """
    try:
        handler, _ = file_handler(default_warehouse())
    except OSError:
        handler = None
    for name in ("lowincome", "py.warnings"):
        target = logging.getLogger(name)
        if handler is not None and handler not in target.handlers:
            target.addHandler(handler)
        target.propagate = False
        if target.level == logging.NOTSET or target.level > logging.INFO:
            target.setLevel(logging.INFO)
    logging.captureWarnings(True)
    progress = logging.getLogger("lowincome.progress")
    if terminal_level <= logging.INFO and not any(getattr(h, "lowincome_progress", False) for h in progress.handlers):
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(PROGRESS_FORMAT, "%H:%M:%S"))
        stream.setLevel(logging.INFO)
        stream.lowincome_progress = True
        progress.addHandler(stream)


def _level(text: str) -> int:
    level = logging.getLevelName(text.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"loggers.console.config.log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got '{text}'")
    return level


@logger(
    Field(
        {
            "log_level": Field(str, is_required=False, default_value="INFO",
                               description="The terminal's threshold (the log file always records INFO and above)."),
            "name": Field(str, is_required=False, default_value="dagster", description="The logger's name."),
            "failures": Field(bool, is_required=False, default_value=True,
                              description="Show step and run failures on the terminal (the CLI turns this off "
                                          "and prints its own one-line summary)."),
            "library_logs_except": Field(str, is_required=False, default_value="",
                                         description="`host:pid` of the process that started the run (`lowincome "
                                                     "run --workers/--celery`): every other process running a step "
                                                     "routes the lowincome loggers to the log file and progress "
                                                     "lines to its terminal, as that process does."),
        },
    ),
    description="One line per message on stderr, no tracebacks; the full record, tracebacks included, "
                "in <warehouse>/logs/lowincome.log.",
)
def concise_console_logger(init_context: InitLoggerContext) -> logging.Logger:
    config = init_context.logger_config
    level = _level(config["log_level"])
    # A fresh logger object per run (not registered by name), so handlers never pile up across runs.
    log = logging.Logger(config["name"])
    log.propagate = False
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(level)
    console.setFormatter(ConciseFormatter())
    if not config["failures"]:
        console.addFilter(_NoFailureEvents())
    log.addHandler(console)
    try:
        handler, _ = file_handler(default_warehouse())
        handler.setLevel(min(level, logging.INFO))
        log.addHandler(handler)
    except OSError:
        pass  # no writable place for a log file at all: the terminal (and the UI's event log) still have it
    log.setLevel(min(level, logging.INFO))
    if config["library_logs_except"] and config["library_logs_except"] != this_process():
        route_library_logs(level)
    return log
