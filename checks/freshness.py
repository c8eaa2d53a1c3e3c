"""Dagster asset checks `delivery_freshness`, one per feed: which county's data is stale, and since when.

The same computation as the rules step's completeness guard (lowincome/freshness.py),
restricted to one feed, so the Dagster UI shows a stale feed on the feed itself,
next to its validation suite. WARN, never blocking: a stale county must not stop
the other counties' flags; the rules carry that county's dependent flags instead.
"""

from datetime import date

import polars as pl
from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, MetadataValue, asset_check

from assets.ingest import staging_key
from lowincome.feeds import DEPARTMENT_FEEDS, FeedSpec
from lowincome.freshness import describe_stale, feed_freshness
from lowincome.rules.policy import load_policy
from pipelines.partitions import daily_partitions
from pipelines.resources import LowincomeResource

FRESHNESS_CHECK = "delivery_freshness"


def freshness_result(freshness: pl.DataFrame) -> AssetCheckResult:
    stale = freshness.filter(pl.col("stale"))
    table = ["| county | newest delivery in use | stale | since | why |", "|---|---|---|---|---|"]
    table += [
        f"| {r['county']} | {r['latest_delivery'] or 'none'} | {'yes' if r['stale'] else 'no'} | "
        f"{r['stale_since'] or ''} | {r['reason'] or ''} |"
        for r in freshness.iter_rows(named=True)  # one line per county, not per row
    ]
    return AssetCheckResult(
        check_name=FRESHNESS_CHECK,
        passed=stale.is_empty(),
        severity=AssetCheckSeverity.WARN,
        description=("; ".join(describe_stale(freshness)) if stale.height else "every county's data is fresh"),
        metadata={
            "stale_counties": MetadataValue.text(", ".join(stale["county"].to_list()) or "none"),
            "stale_since": MetadataValue.text(
                ", ".join(f"{r['county']} since {r['stale_since']}" for r in stale.iter_rows(named=True)) or "none"),
            "counties": MetadataValue.md("\n".join(table)),
        },
    )


def build_freshness_check(spec: FeedSpec):
    @asset_check(
        asset=staging_key(spec.name),
        name=FRESHNESS_CHECK,
        partitions_def=daily_partitions,
        description=(
            f"Is every county's {spec.title} fresh? Stale when "
            + ("the newest snapshot in use is older than the policy's snapshot_stale_days" if spec.kind == "snapshot"
               else "no file has arrived for more than the policy's increment_stale_days")
            + ", when no usable delivery is left although one was used before, or when an earlier day used newer "
            "data. Flags that depend on a stale feed in a county are carried, not resolved (rules.md)."
        ),
    )
    def check(context: AssetCheckExecutionContext, lowincome: LowincomeResource) -> AssetCheckResult:
        as_of = date.fromisoformat(context.partition_key)
        store = lowincome.store()
        policy = load_policy(lowincome.settings().policy)
        deliveries = store.read(as_of, "deliveries", spec.name)
        freshness = feed_freshness(store, as_of, policy, deliveries, feeds=[spec.name])
        for line in describe_stale(freshness):
            context.log.warning(f"数据过期 stale data: {line}")
        return freshness_result(freshness)

    return check


freshness_checks = [build_freshness_check(spec) for spec in DEPARTMENT_FEEDS.values()]
