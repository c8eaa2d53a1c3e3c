"""Publishing asset: commits the run's work, swaps in the analysts' and restricted databases, records the run.

The order (commit, publish, only then "success") lives in lowincome/nightly.py
`publish_run`; this asset supplies the Dagster context and shows the outcome.
"""


from datetime import date, datetime, timezone

import duckdb
import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from assets.ingest import staging_key
from assets.rules import FLAGS_KEY
from checks.record import render_data_docs
from lowincome.config import running_alone
from lowincome.errors import LowincomeError, describe_os_error
from lowincome.feeds import FEEDS
from lowincome.nightly import analysts_database, publish_run
from lowincome.publish import prepare_analysts_parts
from lowincome.privacy import redact
from lowincome.run_report import write_run_report
from pipelines.partitions import daily_partitions
from pipelines.resources import LowincomeResource, drop_handovers

PUBLISH_GROUP = "publish"


def _run_started(context: AssetExecutionContext) -> datetime:
    stats = context.instance.get_run_stats(context.run.run_id)
    start = stats.start_time if stats and stats.start_time else datetime.now(timezone.utc).timestamp()
    return datetime.fromtimestamp(start, tz=timezone.utc).replace(tzinfo=None)


ANALYSTS_PARTS_KEY = AssetKey(["publish", "analysts_parts"])


@asset(
    key=ANALYSTS_PARTS_KEY,
    group_name=PUBLISH_GROUP,
    partitions_def=daily_partitions,
    deps=[staging_key(f) for f in FEEDS],
    kinds={"duckdb", "parquet"},
    description=(
        "The analysts' pseudonymous copies of the day's staging and quarantine parts and the household timeline's "
        "per-file parts under <warehouse>/published/, each written once and named by its content. They depend on "
        "staging alone, so this step runs beside the rules (another core, another machine) instead of inside the "
        "one publishing step; no database refers to them until publish/warehouse swaps one in."
    ),
)
def analysts_parts(context: AssetExecutionContext, lowincome: LowincomeResource) -> MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = lowincome.settings()
    try:
        counts = prepare_analysts_parts(lowincome.store(), as_of, settings.pseudonym_key, settings)
    except OSError as exc:
        raise Failure(description=describe_os_error(exc, settings.warehouse, "writing the analysts' parts")) from None
    except (duckdb.Error, pl.exceptions.PolarsError) as exc:
        engine = "DuckDB" if isinstance(exc, duckdb.Error) else "Polars"
        raise Failure(description=redact(f"writing the analysts' parts failed in {engine}: {str(exc).splitlines()[0]}; "
                                         "nothing published, the last publication stays in place")) from None
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    return MaterializeResult(metadata={k: MetadataValue.int(v) for k, v in counts.items()})


@asset(
    key=AssetKey(["publish", "warehouse"]),
    group_name=PUBLISH_GROUP,
    partitions_def=daily_partitions,
    deps=[*(staging_key(f) for f in FEEDS), FLAGS_KEY, ANALYSTS_PARTS_KEY],
    kinds={"duckdb"},
    # One publishing step at a time across all runs (see deploy/dagster.yaml); the file lock backs it up.
    pool="lowincome_warehouse",
    description=(
        "Commits the run's work folder as the data of its day, builds lowincome.duckdb (analysts: pseudonymous "
        "keys only) and restricted.duckdb (caseworkers: ID numbers and names) from the newest committed day and "
        "swaps both in atomically; records the run and its input files in audit.runs / audit.deliveries, the "
        "run as a success only once the publication is in place."
    ),
)
def published_warehouse(context: AssetExecutionContext, lowincome: LowincomeResource) -> MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = running_alone(lowincome.settings())  # it depends on every other step: the run's whole budget
    store = lowincome.store()
    try:
        done = publish_run(store, settings, as_of, context.run.run_id, _run_started(context),
                           render_docs=render_data_docs, write_report=write_run_report)
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    for line in done.warnings:
        context.log.warning(line) if "could not" in line else context.log.info(line)
    drop_handovers(settings.warehouse, {context.run.run_id, context.run.root_run_id})  # published: not needed again
    _log_strays(context, done.deliveries)
    totals = done.deliveries.select(pl.col("rows_read", "rows_accepted", "rows_quarantined").sum()).row(0, named=True)
    return MaterializeResult(
        metadata={
            "published_as_of": MetadataValue.text(done.published_as_of.isoformat()),
            "analysts_database": MetadataValue.path(str(analysts_database(settings))),
            "code_version": MetadataValue.text(done.code_version),
            "run_report": MetadataValue.path(str(done.report) if done.report else "not written"),
            "validation_docs": MetadataValue.path(str(done.docs) if done.docs else "not rendered"),
            "files": MetadataValue.int(done.deliveries.height),
            **{k: MetadataValue.int(int(v or 0)) for k, v in totals.items()},
            **{f"rows.{k}": MetadataValue.int(v) for k, v in done.counts.items()},
            **_column_schemas(analysts_database(settings)),
        }
    )


def _column_schemas(database) -> dict:
    """One `schema <table>` entry per published table: its columns, types and dictionary descriptions (issue 12).

    The asset stands for the whole analysts' database, so Dagster's single `dagster/column_schema` key does
    not fit; the UI shows each entry as a table schema. Read back from the published file's own comments.
    """
    from lowincome.dictionary import described_schema

    try:
        described = described_schema(database)
    except Exception as exc:  # noqa: BLE001 - metadata only: the publication is already in place
        return {"schema_error": MetadataValue.text(redact(f"column schemas not read: {type(exc).__name__}"))}
    return {
        f"schema {table}": MetadataValue.table_schema(TableSchema(
            columns=[TableColumn(name=c, type=t, description=d or None) for c, t, d in columns]))
        for table, (_, columns) in sorted(described.items())
    }


STRAYS_LOGGED = 20  # one line each; past that a count, so a flooded inbox does not flood the log


def _log_strays(context: AssetExecutionContext, deliveries: pl.DataFrame) -> None:
    """Files of the inbox outside the feed folders: none is skipped without a word (their rows are in audit.deliveries)."""
    strays = deliveries.filter(~pl.col("feed").is_in(list(FEEDS)) | pl.col("feed").is_null())
    for r in strays.head(STRAYS_LOGGED).iter_rows(named=True):
        context.log.warning(redact(f"inbox file {r['file_name']} not used ({r['status']}): {r['message']}"))
    if strays.height > STRAYS_LOGGED:
        context.log.warning(f"{strays.height - STRAYS_LOGGED} more inbox file(s) not used: see audit.deliveries")

