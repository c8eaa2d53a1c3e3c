"""Publishing asset: records the run for auditors and swaps in the analysts' and restricted databases."""


from datetime import date, datetime, timezone

import duckdb
import polars as pl
from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, MetadataValue, asset

from assets.ingest import staging_key
from assets.rules import FLAGS_KEY
from checks.record import render_data_docs
from lowincome.audit import record_run
from lowincome.errors import LowincomeError
from lowincome.feeds import FEEDS
from lowincome.lineage import code_version
from lowincome.locking import warehouse_lock
from lowincome.privacy import redact
from lowincome.publish import ANALYSTS_DB, describe_os_error, mart_tables, publish
from lowincome.run_report import write_run_report
from pipelines.partitions import daily_partitions
from pipelines.resources import LowincomeResource

PUBLISH_GROUP = "publish"


def _run_started(context: AssetExecutionContext) -> datetime:
    stats = context.instance.get_run_stats(context.run.run_id)
    start = stats.start_time if stats and stats.start_time else datetime.now(timezone.utc).timestamp()
    return datetime.fromtimestamp(start, tz=timezone.utc).replace(tzinfo=None)


@asset(
    key=AssetKey(["publish", "warehouse"]),
    group_name=PUBLISH_GROUP,
    partitions_def=daily_partitions,
    deps=[*(staging_key(f) for f in FEEDS), FLAGS_KEY],
    kinds={"duckdb"},
    # One publishing step at a time across all runs (see deploy/dagster.yaml); the file lock backs it up.
    pool="lowincome_warehouse",
    description=(
        "Builds lowincome.duckdb (analysts: pseudonymous keys only) and restricted.duckdb (caseworkers: "
        "ID numbers and names) from the day's work files and swaps both in atomically; records the run "
        "and its input files in audit.runs / audit.deliveries."
    ),
)
def published_warehouse(context: AssetExecutionContext, lowincome: LowincomeResource) -> MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = lowincome.settings()
    store = lowincome.store()
    run_id = context.run.run_id
    started = _run_started(context)
    deliveries = pl.concat([store.read(as_of, "deliveries", f) for f in FEEDS], how="diagonal_relaxed")
    store.write_history(
        "deliveries",
        f"{as_of.isoformat()}_{run_id}",
        deliveries.select(pl.lit(run_id).alias("run_id"), pl.lit(as_of).alias("as_of"), pl.all()),
    )
    validation = pl.concat([store.read(as_of, "validation", f) for f in FEEDS], how="diagonal_relaxed")
    if validation.height:
        store.write_history(
            "validation",
            f"{as_of.isoformat()}_{run_id}",
            validation.select(pl.lit(run_id).alias("run_id"), pl.lit(as_of).alias("as_of"), pl.all()),
        )
    version = code_version()
    record_run(store, run_id, as_of, started, "success")
    store.mark_complete(as_of)
    latest = max(store.completed_days())
    try:
        with warehouse_lock(settings.warehouse, f"run {run_id} (as of {as_of})"):
            counts = publish(store, latest, settings.pseudonym_key, **mart_tables(store, latest))
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    except OSError as exc:
        raise Failure(description=describe_os_error(exc, settings.warehouse)) from None
    except duckdb.Error as exc:
        first_line = redact(str(exc).strip().splitlines()[0]) if str(exc).strip() else type(exc).__name__
        raise Failure(
            description=f"publishing failed in DuckDB: {first_line}; the last published databases are unchanged"
        ) from None
    try:
        docs = render_data_docs(store.root, settings.warehouse / "reports")
    except Exception as exc:  # the validation record is kept; only its rendering failed
        docs = None
        context.log.warning(f"Data Docs could not be rendered: {redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)}")
    report = write_run_report(settings.warehouse, as_of, run_id)
    if latest != as_of:
        context.log.info(f"as-of {as_of} recorded; the analysts' database keeps showing the newer day {latest}")
    totals = deliveries.select(pl.col("rows_read", "rows_accepted", "rows_quarantined").sum()).row(0, named=True)
    return MaterializeResult(
        metadata={
            "published_as_of": MetadataValue.text(latest.isoformat()),
            "analysts_database": MetadataValue.path(str(settings.warehouse / ANALYSTS_DB)),
            "code_version": MetadataValue.text(version),
            "run_report": MetadataValue.path(str(report)),
            "validation_docs": MetadataValue.path(str(docs) if docs else "not rendered"),
            "files": MetadataValue.int(deliveries.height),
            **{k: MetadataValue.int(int(v or 0)) for k, v in totals.items()},
            **{f"rows.{k}": MetadataValue.int(v) for k, v in counts.items()},
        }
    )
