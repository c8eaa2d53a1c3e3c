"""Ingestion assets: one per department feed, made from the feed registry.

A new feed is a new `FeedSpec` in lowincome/feeds.py, not a new copy of this
code. Each asset reads the deliveries dated on or before its partition day,
writes staging, quarantine and per-file accounting to the work store, and
shows the per-file counts in the Dagster UI.
"""


from datetime import date

import polars as pl
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from checks.record import SuitePass, summarize, validate_files
from checks.names import suite_name

from lowincome.errors import LowincomeError, describe_os_error
from lowincome.feeds import FEEDS, FeedSpec
from lowincome.ingest import ingest_feed
from lowincome.rules.policy import load_policy
from pipelines.partitions import daily_partitions
from pipelines.resources import LowincomeResource

INGEST_GROUP = "ingest"


def staging_key(feed: str) -> AssetKey:
    return AssetKey(["staging", feed])


def _files_table(deliveries: pl.DataFrame) -> str:
    lines = ["| file | format | status | read | accepted | quarantined | message |", "|---|---|---|---|---|---|---|"]
    for r in deliveries.iter_rows(named=True):  # one line per delivered file, not per row
        lines.append(
            f"| {r['file_name']} | {r['format']} | {r['status']} | {r['rows_read']} | {r['rows_accepted']} "
            f"| {r['rows_quarantined']} | {r['message'] or ''} |"
        )
    return "\n".join(lines)


SUITE_CHECK = "delivery_suite"


def _suite_check(spec: FeedSpec, results: pl.DataFrame, deliveries: pl.DataFrame) -> AssetCheckResult:
    """The suite's outcome for the day's deliveries: ERROR when a file is blocked or rejected, WARN otherwise."""
    figures = summarize(results)
    stopped = deliveries.filter(pl.col("status").is_in(["blocked", "rejected"]))
    passed = figures["failed"] == 0 and stopped.height == 0
    blocking = stopped.height > 0 or figures["blocking"] > 0
    lines = ["| expectation | unexpected rows | files |", "|---|---|---|"]
    lines += [f"| {e} | {n} | {k} |" for e, n, k in figures["top"]]
    stopped_md = "\n".join(f"- {r['file_name']}: {r['status']}: {r['message']}" for r in stopped.iter_rows(named=True))
    return AssetCheckResult(
        check_name=SUITE_CHECK,
        passed=passed,
        severity=AssetCheckSeverity.ERROR if blocking else AssetCheckSeverity.WARN,
        metadata={
            "suite": MetadataValue.text(suite_name(spec)),
            "files_checked": MetadataValue.int(figures["files"]),
            "rows_checked": MetadataValue.int(figures["rows_checked"]),
            "failed_expectations": MetadataValue.int(figures["failed"]),
            "files_blocked_or_rejected": MetadataValue.int(stopped.height),
            "top_failures": MetadataValue.md("\n".join(lines)),
            "blocked_files": MetadataValue.md(stopped_md or "none"),
        },
    )


def build_ingest_asset(spec: FeedSpec):
    @asset(
        key=staging_key(spec.name),
        group_name=INGEST_GROUP,
        partitions_def=daily_partitions,
        kinds={"polars", "parquet", "duckdb"},
        description=(
            f"{spec.title} ({spec.kind}): every delivery dated on or before the partition day, "
            "validated row by row; accepted rows typed and normalised, rejected rows quarantined with reasons."
        ),
        metadata={"feed": spec.name, "delivery": spec.kind},
        check_specs=[AssetCheckSpec(
            SUITE_CHECK, asset=staging_key(spec.name),
            description=(f"Great Expectations suite {suite_name(spec)} on every delivery of the day. Fails with "
                         "ERROR when a file is held back or rejected (a structural fault such as a missing required "
                         "column; for a snapshot, more rejected rows than LOWINCOME_BLOCKING_SHARE or a sharp drop in "
                         "rows): the county's previous snapshot stays in use for the flags; WARN for smaller problems "
                         "(rows quarantined, volume change). An increment's valid rows are always used."),
        )],
    )
    def ingest(context: AssetExecutionContext, lowincome: LowincomeResource) -> MaterializeResult:
        as_of = date.fromisoformat(context.partition_key)
        settings = lowincome.settings()
        try:  # a bad policy file fails the step at once, in one line, before any file is read
            policy = load_policy(settings.policy)
            policy.in_force("*", as_of)
        except LowincomeError as exc:
            raise Failure(description=str(exc)) from None
        if not settings.inbox.is_dir():
            raise Failure(description=f"inbox folder not found: {settings.inbox} (set LOWINCOME_INBOX)")
        store = lowincome.store()
        try:
            result = ingest_feed(spec, settings.inbox, as_of, store.root, blocking_share=settings.blocking_share,
                                 policy=policy, on_file=SuitePass(spec, store.root, volume_min_rows=settings.volume_min_rows))  # suites from the frames in memory
            store.write_staging(as_of, result.parts)
            store.write(as_of, "deliveries", spec.name, result.deliveries)
            results = validate_files(spec, result.files, store.root, volume_min_rows=settings.volume_min_rows)
            store.write(as_of, "validation", spec.name, results)
        except OSError as exc:
            raise Failure(description=f"{spec.name}: {describe_os_error(exc, store.root, 'ingestion')}") from None
        totals = result.totals
        for warning in result.warnings:
            context.log.warning(f"{spec.name}: {warning}")
        for r in result.deliveries.filter(pl.col("status").is_in(["rejected", "blocked"])).iter_rows(named=True):
            context.log.warning(f"{spec.name}: file {r['file_name']} {r['status']}: {r['message']}")
        for r in result.deliveries.filter((pl.col("status") == "ignored")
                                          | pl.col("message").str.starts_with("accepted by")).iter_rows(named=True):
            context.log.info(f"{spec.name}: file {r['file_name']} {r['status']}: {r['message']}")
        if totals["files_later"]:  # normal in a backfill: one line, not one per file
            context.log.info(f"{spec.name}: {totals['files_later']} file(s) dated after {as_of} left for a later run")
        context.log.info(
            f"{spec.name} as of {as_of}: {totals['files']} file(s), {totals['rows_read']} rows read, "
            f"{totals['rows_accepted']} accepted, {totals['rows_quarantined']} quarantined"
        )
        return MaterializeResult(
            metadata={
                **{k: MetadataValue.int(v) for k, v in totals.items()},
                "staging_rows": MetadataValue.int(result.parts.rows),
                "files_table": MetadataValue.md(_files_table(result.deliveries)),
            },
            check_results=[_suite_check(spec, results, result.deliveries)],
        )

    return ingest


ingest_assets = [build_ingest_asset(spec) for spec in FEEDS.values()]
