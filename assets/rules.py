"""Rules asset: evaluates R01–R07 and W01–W05 for the partition day and derives the flag lifecycle.

Runs after every feed's staging for the day; writes the marts to the work
store, where the publishing step picks them up, so the analysts' database
only ever changes in one atomic swap.
"""


from datetime import date

import polars as pl
from dagster import AssetExecutionContext, AssetKey, Failure, MaterializeResult, MetadataValue, asset

from assets.ingest import staging_key
from lowincome.errors import LowincomeError
from lowincome.feeds import DEPARTMENT_FEEDS, FEEDS
from lowincome.rules.catalog import RULES
from lowincome.rules.engine import evaluate
from lowincome.rules.lifecycle import build_marts
from lowincome.rules.policy import DEFAULT_COUNTY, load_policy
from pipelines.partitions import daily_partitions
from pipelines.resources import LowincomeResource

RULES_GROUP = "rules"
FLAGS_KEY = AssetKey(["mart", "flags"])


def _by_rule_table(flags: pl.DataFrame) -> str:
    lines = ["| rule | name | open | new | resolved today | overdue |", "|---|---|---|---|---|---|"]
    for r in RULES:  # one line per rule
        f = flags.filter(pl.col("rule_id") == r.rule_id)
        lines.append(
            f"| {r.rule_id} | {r.name} | {int((f['status'] == 'open').sum())} | {int(f['is_new'].sum())} "
            f"| {int(f['resolved_today'].sum())} | {int(f['overdue'].sum())} |"
        )
    return "\n".join(lines)


@asset(
    key=FLAGS_KEY,
    group_name=RULES_GROUP,
    partitions_def=daily_partitions,
    deps=[staging_key(f) for f in FEEDS],
    kinds={"duckdb", "sql"},
    description=(
        "Monitoring rules R01–R07 (review, 应退尽退) and W01–W05 (early warning, 应保尽保) as of the partition "
        "day, one SQL file per rule under sql/rules/, with the policy in force on that day; then the flag "
        "lifecycle (new / open / resolved / confirmed / dismissed / overdue) and the marts "
        "mart.flags, mart.household_risk, mart.county_summary."
    ),
    metadata={"sql": "sql/rules/*.sql, sql/models/*.sql", "policy": "LOWINCOME_POLICY (lowincome/policy/default.yaml)"},
)
def flags(context: AssetExecutionContext, lowincome: LowincomeResource) -> MaterializeResult:
    as_of = date.fromisoformat(context.partition_key)
    settings = lowincome.settings()
    store = lowincome.store()
    try:
        policy = load_policy(settings.policy)
        staging = {f: store.path(as_of, "staging", f) for f in DEPARTMENT_FEEDS}
        evaluation = evaluate(staging, policy, as_of, settings.pseudonym_key)
        overdue = int(policy.in_force(DEFAULT_COUNTY, as_of)["outcome_overdue_days"])
        marts = build_marts(store, as_of, evaluation, overdue, evaluation.households, evaluation.roster_sizes)
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    published = pl.read_parquet(marts.paths["mart.flags"])
    total = sum(evaluation.timings.values())
    context.log.info(
        f"rules as of {as_of}: {marts.counts['open']} open flag(s), {marts.counts['new']} new, "
        f"{marts.counts['resolved_today']} resolved, {marts.counts['overdue']} overdue ({total:.2f}s)"
    )
    return MaterializeResult(
        metadata={
            **{k: MetadataValue.int(v) for k, v in marts.counts.items()},
            "by_rule": MetadataValue.md(_by_rule_table(published)),
            "rules_seconds": MetadataValue.float(round(total, 3)),
            "slowest": MetadataValue.text(", ".join(f"{k} {v:.2f}s" for k, v in sorted(evaluation.timings.items(), key=lambda kv: -kv[1])[:3])),
        }
    )
