"""The `lowincome` command line: drive the nightly job without the web UI (cron, CI, tests).

Exit status 0 on success; otherwise non-zero with a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

from .errors import LowincomeError


def _as_of(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--as-of must be a date YYYY-MM-DD, got '{text}'") from None


def _failure_reason(result) -> str:
    """The first step failure, as its one-line user message (no stack trace)."""
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        data = event.step_failure_data
        if data.user_failure_data is not None and data.user_failure_data.description:
            return f"{event.step_key}: {data.user_failure_data.description}"
        err = data.error
        while err is not None and err.cause is not None and "dagster" in (err.cls_name or "").lower():
            err = err.cause
        message = (err.message if err else "unknown error").strip().splitlines()[0]
        return f"{event.step_key}: {message}"
    return "the run did not succeed (see the Dagster logs)"


def run(as_of: date, quiet: bool = False) -> int:
    from .config import load_settings

    settings = load_settings()  # refuses a production start without a real key
    if not settings.inbox.is_dir():
        raise LowincomeError(f"inbox folder not found: {settings.inbox} (set LOWINCOME_INBOX)")
    from dagster import DagsterInstance

    from pipelines.definitions import defs
    from pipelines.jobs import NIGHTLY_JOB_NAME

    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    job = defs.resolve_job_def(NIGHTLY_JOB_NAME)
    result = job.execute_in_process(
        partition_key=as_of.isoformat(),
        instance=instance,
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING" if quiet else "INFO"}}}},
    )
    if not result.success:
        reason = _failure_reason(result)
        from .audit import record_run
        from .workstore import WorkStore

        record_run(WorkStore(settings.warehouse), result.run_id, as_of, None, "failure", reason)
        raise LowincomeError(f"run for {as_of} failed: {reason}")
    from .report import summary_line

    print(summary_line(settings.warehouse, as_of))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lowincome", description="Low-income population monitoring pipeline.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the nightly job for one as-of day (in-process, through Dagster)")
    p_run.add_argument("--as-of", required=True, type=_as_of, help="the partition day, YYYY-MM-DD")
    p_run.add_argument("--quiet", action="store_true", help="show only warnings from the Dagster log")
    p_gen = sub.add_parser("generate", help="write synthetic deliveries (DIR/inbox/<feed>/...)")
    from .generate.cli import add_arguments as add_generate_arguments

    add_generate_arguments(p_gen)
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return run(args.as_of, quiet=args.quiet)
        from .generate.cli import run as generate_run

        return generate_run(args)
    except LowincomeError as exc:
        print(f"lowincome {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"lowincome {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
