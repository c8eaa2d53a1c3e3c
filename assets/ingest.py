"""Ingestion assets: one per department feed, made from the feed registry.

A new feed is a new `FeedSpec` in lowincome/feeds.py, not a new copy of this
code. Each asset reads the deliveries dated on or before its partition day,
writes staging, quarantine and per-file accounting to the work store, and
shows the per-file counts in the Dagster UI.

Each asset is a graph of steps with the county as the unit of work (issue 10):
`counties` lists the feed's files and fans out one `county` step per county
with files to read (read, validate, parts, suite; one `county[all]` step for
every county of a feed smaller than LOWINCOME_FANOUT_MIN_MB), and `collect` assembles the
feed (duplicates across deliveries, the staging manifest, the deliveries and
validation tables of the run folder, the asset check). Steps hand each other
only small picklable values (the plan: file paths and names; per county: part
paths and counts), never rows, so the multiprocess and Celery executors can run
the counties of all feeds in parallel on machines sharing the warehouse folder.
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
    DynamicOut,
    DynamicOutput,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    graph_asset,
    op,
)

from checks.record import SuitePass, summarize, validate_files
from checks.names import suite_name

from lowincome.errors import LowincomeError, describe_os_error
from lowincome.feeds import FEEDS, FeedSpec
from lowincome.ingest import CountyResult, FeedPlan, finish_feed, ingest_county, plan_feed
from lowincome.rules.policy import load_policy
from pipelines.partitions import daily_partitions
from pipelines.resources import LowincomeResource

INGEST_GROUP = "ingest"


ALL_COUNTIES = "all"  # the mapping key of the one step that reads a small feed's every county


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


def _policy_and_settings(context: OpExecutionContext, lowincome: LowincomeResource):
    """(as_of, settings, policy) of the step; a bad policy file fails the step at once, in one line, before any file is read."""
    as_of = date.fromisoformat(context.partition_key)
    settings = lowincome.settings()
    try:
        policy = load_policy(settings.policy)
        policy.in_force("*", as_of)
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    return as_of, settings, policy


def _store_failure(spec: FeedSpec, exc: OSError, root) -> Failure:
    return Failure(description=f"{spec.name}: {describe_os_error(exc, root, 'ingestion')}")


def build_ingest_asset(spec: FeedSpec):
    """`staging/<feed>`: a graph of one `counties` step, one `county` step per county with files, one `collect` step."""
    key = staging_key(spec.name)
    check_output = AssetCheckSpec(SUITE_CHECK, asset=key).get_python_identifier()

    @op(name=f"{spec.name}_counties", out={"plan": Out(FeedPlan), "counties": DynamicOut(str)},
        description=f"Lists the {spec.name} deliveries dated on or before the day; one county step per county with files (one for all of them below LOWINCOME_FANOUT_MIN_MB).")
    def list_counties(context: OpExecutionContext, lowincome: LowincomeResource):
        as_of, settings, policy = _policy_and_settings(context, lowincome)
        if not settings.inbox.is_dir():
            raise Failure(description=f"inbox folder not found: {settings.inbox} (set LOWINCOME_INBOX)")
        plan = plan_feed(spec, settings.inbox, as_of, policy)
        yield Output(plan, "plan")
        for county in plan.units(settings.fanout_min_bytes):  # a GB/T 2260 code (six digits), or every county
            unit = county or ALL_COUNTIES
            yield DynamicOutput(unit, output_name="counties", mapping_key=unit)

    @op(name=f"{spec.name}_county", out=Out(CountyResult),
        description=f"Reads, validates and splits into parts one county's {spec.name} files; runs their suite.")
    def read_county(context: OpExecutionContext, lowincome: LowincomeResource, plan: FeedPlan, county: str) -> CountyResult:
        _, settings, policy = _policy_and_settings(context, lowincome)
        store = lowincome.store()
        try:
            result = ingest_county(spec, plan, None if county == ALL_COUNTIES else county, store.root,
                                   blocking_share=settings.blocking_share,
                                   policy=policy,  # suites from the frames in memory
                                   on_file=SuitePass(spec, store.root, volume_min_rows=settings.volume_min_rows))
            # the suite of every file of the county, cached for `collect` (files SuitePass did not cover:
            # parsed on an earlier night with another predecessor, or a changed suite)
            validate_files(spec, [f for _, f in result.files], store.root, volume_min_rows=settings.volume_min_rows)
        except OSError as exc:
            raise _store_failure(spec, exc, store.root) from None
        context.log.debug(f"{spec.name} county {county}: {len(result.rows)} file(s), {result.rows_read} rows read")
        return result

    @op(name=f"{spec.name}_collect", out={"result": Out(Nothing), check_output: Out(Nothing)},
        description=f"Assembles staging/{spec.name} from its counties: duplicates across deliveries, the manifest, "
                    "the deliveries and validation tables of the run, the suite check.")
    def collect_feed(context: OpExecutionContext, lowincome: LowincomeResource, plan: FeedPlan,
                counties: list[CountyResult]) -> MaterializeResult:
        as_of, settings, _ = _policy_and_settings(context, lowincome)
        store = lowincome.store()
        try:
            result = finish_feed(spec, plan, counties, store.root, blocking_share=settings.blocking_share)
            store.write_staging(as_of, result.parts)
            store.write(as_of, "deliveries", spec.name, result.deliveries)
            results = validate_files(spec, result.files, store.root,  # cached by the county steps
                                     volume_min_rows=settings.volume_min_rows)
            store.write(as_of, "validation", spec.name, results)
        except OSError as exc:
            raise _store_failure(spec, exc, store.root) from None
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
                "counties": MetadataValue.int(len(plan.counties)),
                "files_table": MetadataValue.md(_files_table(result.deliveries)),
            },
            check_results=[_suite_check(spec, results, result.deliveries)],
        )

    @graph_asset(
        key=key,
        group_name=INGEST_GROUP,
        partitions_def=daily_partitions,
        kinds={"polars", "parquet", "duckdb"},
        description=(
            f"{spec.title} ({spec.kind}): every delivery dated on or before the partition day, "
            "validated row by row; accepted rows typed and normalised, rejected rows quarantined with reasons. "
            "One step per sending county, then one step that assembles the feed."
        ),
        metadata={"feed": spec.name, "delivery": spec.kind},
        check_specs=[AssetCheckSpec(
            SUITE_CHECK, asset=key,
            description=(f"Great Expectations suite {suite_name(spec)} on every delivery of the day. Fails with "
                         "ERROR when a file is held back or rejected (a structural fault such as a missing required "
                         "column; for a snapshot, more rejected rows than LOWINCOME_BLOCKING_SHARE or a sharp drop in "
                         "rows): the county's previous snapshot stays in use for the flags; WARN for smaller problems "
                         "(rows quarantined, volume change). An increment's valid rows are always used."),
        )],
    )
    def ingest():
        plan, found = list_counties.alias("counties")()
        done = found.map(lambda c: read_county.alias("county")(plan, c))
        return collect_feed.alias("collect")(plan, done.collect())

    return ingest


ingest_assets = [build_ingest_asset(spec) for spec in FEEDS.values()]
