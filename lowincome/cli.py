"""The `lowincome` command line: drive the nightly job without the web UI (cron, CI, tests).

Exit status 0 on success; otherwise non-zero with a one-line reason on stderr.
Every failure, expected or not, ends in one line that says what failed,
where, and that the last publication stays in place; the traceback, when
there is one, goes to the log file the line names (lowincome/logfile.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from .errors import KEPT, LowincomeError, os_reason

log = logging.getLogger("lowincome.cli")
NOT_RUN = "nothing was run; the last publication stays in place"


class PreflightError(LowincomeError):
    """Something that stops the run before any work: the message already says that nothing was run."""


class _VersionAction(argparse.Action):
    """`lowincome --version`: the same code version a run records in audit.runs, so an auditor can match them.

    Computed only when asked (it hashes the code), not on every invocation as argparse's own action would.
    """

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        from .lineage import code_version

        print(f"lowincome {code_version()}")
        parser.exit()


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--as-of must be a date YYYY-MM-DD, got '{text}'") from None


@contextmanager
def _log_to_file(warehouse: Path | None):
    """For the command's duration, send Python logs and warnings to the log file only; yields the file, if any.

    The loggers' previous state is restored afterwards, so that calling `main()` in a test leaves the
    test process's logging as it was.
    """
    from .logfile import file_handler

    try:
        handler, path = file_handler(warehouse)
    except OSError:
        handler, path = logging.NullHandler(), None
    names = ("lowincome", "py.warnings", "dagster")
    saved = [(logging.getLogger(n), logging.getLogger(n).propagate, logging.getLogger(n).level) for n in names]
    raise_exceptions = logging.raiseExceptions
    logging.raiseExceptions = False  # a log write failing (full disk) must not print a traceback
    logging.captureWarnings(True)  # library warnings: to the file, never on the terminal
    for target, _, level in saved:
        target.addHandler(handler)
        target.propagate = False
        if level == logging.NOTSET or level > logging.INFO:
            target.setLevel(logging.INFO)
    try:
        yield path
    finally:
        for target, propagate, level in saved:
            target.removeHandler(handler)
            target.propagate = propagate
            target.setLevel(level)
        logging.raiseExceptions = raise_exceptions


def _failure_reason(result) -> tuple[str, str]:
    """(stage, one-line reason) of a failed run: the failing step(s), named as the user knows them."""
    from pipelines.run_logging import feed_of, short_error, stage_of

    failed = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    if not failed:
        run_failure = [e for e in result.all_events if e.event_type_value in ("RUN_FAILURE", "PIPELINE_FAILURE")]
        reason = (short_error(run_failure[-1]) if run_failure else None) or "the run did not succeed"
        return "run", reason
    stages = list(dict.fromkeys(stage_of(e.step_key) for e in failed))
    feeds = list(dict.fromkeys(f for f in (feed_of(e.step_key) for e in failed) if f))  # two counties of one feed: once
    where = stages[0] if len(stages) == 1 else " and ".join(stages)
    if feeds:
        where += f" of {', '.join(feeds)}" if len(feeds) <= 3 else f" of {len(feeds)} feeds ({', '.join(feeds[:3])}, ...)"
    first = failed[0]
    reason = short_error(first) or f'step "{first.step_key}" failed'
    return where, reason


def preflight(as_of: date, settings) -> None:
    """Everything that can be checked before any work starts, each failing in one line (issue 8).

    Settings are loaded by the caller. Here: the as-of day is a partition of the nightly job, the policy
    file loads (every parameter checked, every county period resolved), the inbox is a folder, the
    warehouse can be written.
    """
    from pipelines.partitions import TIMEZONE, daily_partitions

    first = date.fromisoformat(daily_partitions.get_first_partition_key())
    last = date.fromisoformat(daily_partitions.get_last_partition_key())
    if not first <= as_of <= last:
        raise PreflightError(
            f"--as-of {as_of} is outside the nightly partitions ({first} to {last}, today in {TIMEZONE}); {NOT_RUN}"
        )
    from .rules.policy import load_policy

    try:
        load_policy(settings.policy)
    except LowincomeError as exc:
        raise PreflightError(f"{exc}; {NOT_RUN}") from None
    except OSError as exc:
        raise PreflightError(f"policy file {settings.policy} cannot be read: {os_reason(exc)}; {NOT_RUN}") from None
    if not settings.inbox.is_dir():
        raise PreflightError(f"inbox folder not found: {settings.inbox} (set LOWINCOME_INBOX); {NOT_RUN}")
    probe = settings.warehouse / f".write-probe-{os.getpid()}"
    try:
        settings.warehouse.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"probe\n")
        probe.unlink()
    except OSError as exc:
        raise PreflightError(
            f"warehouse folder {settings.warehouse} cannot be written: {os_reason(exc)} (set LOWINCOME_WAREHOUSE); "
            f"{NOT_RUN}"
        ) from None


def _workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1 or str(value) != text.strip():
        raise argparse.ArgumentTypeError(f"--workers must be a whole number of steps at a time, 1 or more, got '{text}'")
    return value


def _run_config(quiet: bool, allow_empty: bool, spread: bool = False) -> dict:
    # failures=False: the console logger leaves failures to the single summary line printed below.
    # --quiet: nothing on the terminal but the summary line (or the one failure line); the log file keeps everything.
    console: dict = {"log_level": "CRITICAL" if quiet else "INFO", "failures": False}
    if spread:  # steps in other processes: they route lowincome's own logs (progress, log file) as this process does
        from pipelines.run_logging import this_process

        console["library_logs_except"] = this_process()
    config: dict = {"loggers": {"console": {"config": console}}}
    if allow_empty:
        from pipelines.resources import LowincomeResource

        if "allow_empty" not in LowincomeResource.model_fields:
            raise PreflightError(f"--allow-empty is not supported by this version of the pipeline; {NOT_RUN}")
        config["resources"] = {"lowincome": {"config": {"allow_empty": True}}}
    return config


def run(as_of: date, quiet: bool = False, allow_empty: bool = False, workers: int = 1, celery: bool = False) -> int:
    """Run the nightly job for `as_of`: in this process (workers=1), with `workers` step processes at a time
    (Dagster's multiprocess executor), or on Celery workers (`celery`); the same messages and exit codes."""
    from .logfile import default_warehouse

    with _log_to_file(default_warehouse()) as log_path:
        details = f"; details in {log_path}" if log_path else ""
        from .progress import on_terminal

        try:
            with on_terminal(not quiet):
                return _run(as_of, quiet, allow_empty, details, workers, celery)
        except (LowincomeError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - never a traceback on the terminal: it goes to the log file
            log.exception("run for %s failed", as_of)
            raise LowincomeError(f"run for {as_of} failed: {_one_line(exc)}; {KEPT}{details}") from None


def _executor(settings, workers: int, celery: bool) -> str:
    """The executor asked for; refused in one line when it cannot be used (nothing is run then)."""
    from pipelines.executors import CELERY, IN_PROCESS, MULTIPROCESS

    if not celery:
        return MULTIPROCESS if workers > 1 else IN_PROCESS
    if workers > 1:
        raise PreflightError(f"--workers and --celery exclude each other (with --celery the Celery workers decide "
                             f"how many steps run at a time); {NOT_RUN}")
    if not settings.celery_broker:
        raise PreflightError(f"--celery needs LOWINCOME_CELERY_BROKER, the broker URL the Celery workers listen to "
                             f"(e.g. redis://broker-host:6379/0); {NOT_RUN}")
    try:
        import dagster_celery  # noqa: F401
    except ImportError:
        raise PreflightError(f"--celery needs dagster-celery: install the package with its celery extra "
                             f"(pip install 'lowincome-monitor[celery]'); {NOT_RUN}") from None
    return CELERY


@contextmanager
def _step_environment(executor: str, workers: int, settings):
    """LOWINCOME_MEMORY_LIMIT is the whole run's budget: with N step processes at once, each gets 1/N of it;
    and the rules run as N steps over groups of counties when LOWINCOME_RULE_STEPS is unset.

    The whole budget goes along as LOWINCOME_RUN_MEMORY_LIMIT, for the publishing step, which runs alone
    (`lowincome.config.running_alone`).

    Set in the environment the step processes inherit, for the run's duration only. Celery workers have
    their own environment (deploy/: budget of the machine divided by the worker's concurrency).
    """
    from pipelines.executors import MULTIPROCESS

    if executor != MULTIPROCESS:
        yield
        return
    from .config import MIN_MEMORY_BYTES

    share = max(MIN_MEMORY_BYTES, settings.memory_limit_bytes // workers)
    values = {"LOWINCOME_MEMORY_LIMIT": f"{share // 10**6}MB",
              "LOWINCOME_RUN_MEMORY_LIMIT": f"{settings.memory_limit_bytes // 10**6}MB"}  # the step that runs alone
    if not os.environ.get("LOWINCOME_RULE_STEPS", "").strip():  # the rules as N steps too, unless set otherwise
        values["LOWINCOME_RULE_STEPS"] = str(workers)
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def _instance(executor: str, warehouse: Path):
    """In-process: $DAGSTER_HOME's instance or an ephemeral one. Spread over processes: a persistent one that
    every step process can open (pipelines/executors.py `run_instance`)."""
    from dagster import DagsterInstance

    from pipelines.executors import IN_PROCESS, run_instance

    if executor != IN_PROCESS:
        with run_instance(warehouse) as (instance, _):
            yield instance
        return
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    try:
        yield instance
    finally:
        instance.dispose()  # an ephemeral instance's temporary folder goes now, not at interpreter exit


def _run(as_of: date, quiet: bool, allow_empty: bool, details: str, workers: int = 1, celery: bool = False) -> int:
    from .config import load_settings

    try:
        settings = load_settings()  # refuses unknown values, and a production start without a real key
    except LowincomeError as exc:
        raise PreflightError(f"{str(exc).rstrip('.')}; {NOT_RUN}") from None
    preflight(as_of, settings)
    executor = _executor(settings, workers, celery)
    from pipelines.executors import IN_PROCESS, execute_nightly

    config = _run_config(quiet, allow_empty, spread=executor != IN_PROCESS)

    from .progress import log as progress

    how = {"multiprocess": f", {workers} steps at a time", "celery": ", steps on the Celery workers"}.get(executor, "")
    progress.info("lowincome run --as-of %s: starting (warehouse %s%s)", as_of, settings.warehouse, how)
    try:
        with _instance(executor, settings.warehouse) as instance, _step_environment(executor, workers, settings):
            result = execute_nightly(executor, as_of.isoformat(), config, instance, workers)
    except Exception as exc:  # noqa: BLE001 - Dagster, DuckDB or OS errors outside any step: one line, traceback to the log
        log.exception("run for %s could not be started or finished", as_of)
        raise LowincomeError(f"run for {as_of} failed: {_one_line(exc)}; {KEPT}{details}") from None
    if not result.success:
        where, reason = _failure_reason(result)
        from .audit import record_run
        from .workstore import WorkStore

        try:
            store = WorkStore(settings.warehouse)
        except OSError:  # e.g. a full disk: the one line below still says what failed
            store = None
        recorded = store is not None and record_run(store, result.run_id, as_of, None, "failure", f"{where}: {reason}")
        kept = "" if KEPT in reason else f"; {KEPT}"
        unrecorded = "" if recorded else "; this failure could not be recorded in the run history"
        message = f"run for {as_of} failed at {where}: {reason}{kept}{unrecorded}{details}"
        log.error(message)
        raise LowincomeError(message)
    from .report import summary_line

    line = summary_line(settings.warehouse, as_of)
    log.info(line)
    print(line)
    return 0


def _one_line(exc: BaseException) -> str:
    from .privacy import redact

    if isinstance(exc, OSError):
        place = f" at {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"{os_reason(exc)}{place}"
    lines = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lowincome", description="Low-income population monitoring pipeline.")
    parser.add_argument("--version", action=_VersionAction,
                        help="print the code version, as recorded in audit.runs.code_version, and exit")
    sub = parser.add_subparsers(dest="command", required=True)
    from .config import settings_help

    p_run = sub.add_parser(
        "run", help="run the nightly job for one as-of day (through Dagster: in-process, --workers N or --celery)",
        description="运行夜间作业 Run the nightly job for one as-of day: ingest and validate every delivery dated on or "
                    "before it, raise and resolve flags, and publish lowincome.duckdb, restricted.duckdb and the "
                    "reports. Prints one summary line on success; on failure one line saying what failed and that "
                    "the last publication stays in place (details in <warehouse>/logs/lowincome.log).",
        epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p_run.add_argument("--as-of", required=True, type=_as_of, help="the partition day, YYYY-MM-DD")
    p_run.add_argument("--quiet", action="store_true", help="print only the summary line (or the one failure line); everything else goes to "
                            "<warehouse>/logs/lowincome.log")
    p_run.add_argument("--workers", type=_workers, default=1, metavar="N",
                       help="run up to N steps at a time, each in its own process on this machine (Dagster's "
                            "multiprocess executor); default 1: everything in this process. The run's memory "
                            "budget (settings below) is shared among the N processes")
    p_run.add_argument("--celery", action="store_true",
                       help="run every step on the Celery workers listening to the Celery broker (settings below), "
                            "on machines sharing the warehouse folder; see deploy/README.md")
    p_run.add_argument("--allow-empty", action="store_true",
                       help="accept a day without any usable delivery (a deliberately empty day); without it such "
                            "a run fails and the last publication stays in place")
    p_gen = sub.add_parser("generate", help="write synthetic deliveries (DIR/inbox/<feed>/...)")
    from .generate.cli import add_arguments as add_generate_arguments

    add_generate_arguments(p_gen)
    p_accept = sub.add_parser("accept-snapshot", help="accept a snapshot held back because it shrank sharply")
    from .acceptance import add_arguments as add_accept_arguments

    add_accept_arguments(p_accept)
    # 核查清单: list or re-send a county's township worklists (lowincome/worklist_cli.py)
    from .worklist_cli import add_arguments as add_worklist_arguments

    add_worklist_arguments(sub.add_parser("worklist", help="list a county's township worklists (核查清单), or --resend them"))
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run(args.as_of, quiet=args.quiet, allow_empty=args.allow_empty, workers=args.workers,
                       celery=args.celery)
        if args.command == "worklist":
            from .worklist_cli import run as worklist_run

            return worklist_run(args)
        if args.command == "accept-snapshot":
            from .acceptance import run as accept_run

            return accept_run(args)
        from .generate.cli import run as generate_run

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # libraries' deprecation notes are not for this terminal
            return generate_run(args)
    except LowincomeError as exc:
        from .privacy import redact

        print(redact(f"lowincome {args.command}: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lowincome {args.command}: interrupted; {KEPT}", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - never a traceback on the terminal
        from .logfile import default_warehouse

        with _log_to_file(default_warehouse()) as path:
            log.exception("lowincome %s failed", args.command)
        where = f"; details in {path}" if path else ""
        print(f"lowincome {args.command}: failed: {_one_line(exc)}; {KEPT}{where}", file=sys.stderr)
        return 1


def console() -> None:
    """The `lowincome` command: `main()`, then leave without tearing the interpreter down.

    Once the command has finished, its output is flushed and every file it wrote is closed (the
    databases are closed and swapped, the log handlers flushed below); the interpreter's own
    teardown (freeing every object of Dagster, Great Expectations, Polars, ...) then cost about
    2 s of CPU a night and changed nothing on disk. `main()` itself returns normally, for tests
    and callers that import it.
    """
    code = main()
    from .spill import release

    release()  # this process's spill folder: `os._exit` below runs no atexit function
    logging.shutdown()  # flush and close every log handler (the log file)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


if __name__ == "__main__":
    console()
