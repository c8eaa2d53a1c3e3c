"""Rules asset: evaluates R01–R07 and W01–W05 for the partition day and derives the flag lifecycle.

Runs after every feed's staging for the day; writes the marts to the run's
work folder, where the publishing step picks them up, so the analysts' database
only ever changes in one atomic swap.

A graph of steps, like the ingestion assets (issue 10): `route` runs the
completeness guard (lowincome/freshness.py: a day with no usable delivery at all
fails before anything is recorded), shares the counties out over
LOWINCOME_RULE_STEPS groups and routes to each the rows of other counties its
subjects depend on (lowincome/rules/routing.py); one `county` step per group
evaluates every rule for the subjects it owns; `collect` unites them, derives the
lifecycle and the marts (feeds that are stale in a county carry their flags
instead of resolving them). With one step (the default) nothing is routed and the
one step evaluates the whole night. Steps hand each other paths, never rows.
"""


import resource
from datetime import date

import polars as pl
from dagster import (
    AssetIn,
    AssetKey,
    DynamicOut,
    DynamicOutput,
    Failure,
    In,
    MaterializeResult,
    MetadataValue,
    Nothing,
    OpExecutionContext,
    Out,
    Output,
    graph_asset,
    op,
)

from assets.ingest import staging_key
from lowincome.errors import LowincomeError
from lowincome.feeds import DEPARTMENT_FEEDS, FEEDS
from lowincome.flag_volume import markdown as flag_volume_md, volume_of_frames
from lowincome.freshness import FRESHNESS_FILE, check_not_empty, describe_stale, feed_freshness, usable_files
from lowincome.rules.catalog import RULES
from lowincome.rules.engine import evaluate, quarantined_sql
from lowincome.rules.steps import RulesPlan, StepResult, combine, evaluate_step, plan_rules, save_step
from lowincome.rules.lifecycle import build_marts
from lowincome.rules.reuse import KeptResult
from lowincome.workstore import write_atomic
from lowincome.rules.policy import DEFAULT_COUNTY, load_policy
from pipelines.partitions import daily_partitions
from pipelines.resources import LowincomeResource

RULES_GROUP = "rules"
FLAGS_KEY = AssetKey(["mart", "flags"])


def _cpu_seconds() -> float:
    """User + system CPU of this process (DuckDB's threads included): steadier than wall time on a shared machine."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _by_rule_table(flags: pl.DataFrame) -> str:
    lines = ["| rule | name | open | new | resolved today | carried (stale data) | overdue |",
             "|---|---|---|---|---|---|---|"]
    for r in RULES:  # one line per rule
        f = flags.filter(pl.col("rule_id") == r.rule_id)
        lines.append(
            f"| {r.rule_id} | {r.name} | {int((f['status'] == 'open').sum())} | {int(f['is_new'].sum())} "
            f"| {int(f['resolved_today'].sum())} | {int(f['data_stale'].sum())} | {int(f['overdue'].sum())} |"
        )
    return "\n".join(lines)


def _inputs(context: OpExecutionContext, lowincome: LowincomeResource):
    """What every rules step reads: (as_of, settings, store, policy, manifests, staging SELECTs)."""
    as_of = date.fromisoformat(context.partition_key)
    settings = lowincome.settings()
    store = lowincome.store()
    policy = load_policy(settings.policy)
    manifests = {f: store.staging(as_of, f) for f in DEPARTMENT_FEEDS}
    staging = {f: m.relation_sql(store.root) for f, m in manifests.items()}
    return as_of, settings, store, policy, manifests, staging


def _deliveries(store, as_of: date) -> pl.DataFrame:
    """The run's per-file accounting of every feed: the guard, the groups' weights and freshness read it."""
    return pl.concat([store.read(as_of, "deliveries", f) for f in FEEDS], how="diagonal_relaxed")


STAGING_INS = {f"staging_{f}": In(Nothing) for f in FEEDS}


@op(name="rules_route", ins=STAGING_INS, out={"plan": Out(RulesPlan), "steps": DynamicOut(int)},
    description="Completeness guard; shares the counties out over LOWINCOME_RULE_STEPS steps and routes to each "
                "the rows of other counties its people and households have (nothing to route with one step, "
                "no step when identical inputs were evaluated before).")
def route_rules(context: OpExecutionContext, lowincome: LowincomeResource):
    cpu = _cpu_seconds()
    try:
        as_of, settings, store, policy, manifests, staging = _inputs(context, lowincome)
        deliveries = _deliveries(store, as_of)
        if not lowincome.allow_empty:
            done = store.committed().completed_days()
            check_not_empty(deliveries, settings.inbox, as_of, max(done) if done else None)
        # identical inputs (a re-run) reuse the result an earlier run kept (lowincome/rules/reuse.py)
        kept = KeptResult.for_inputs(store.root, manifests, policy, as_of, settings.pseudonym_key,
                                     settings.retention_days)
        if kept is not None and kept.folder.is_dir():  # a re-run: `collect` reads the kept result
            plan = RulesPlan((), None, kept)
        else:
            weights = dict(usable_files(deliveries).group_by("county").agg(pl.col("rows_accepted").sum()).iter_rows())
            plan = plan_rules(staging, policy, as_of, settings, weights, store.day_dir(as_of) / "rules" / "route",
                              kept)
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    if plan.steps > 1:
        context.log.info(f"rules as of {as_of}: {plan.steps} county steps ("
                         + "; ".join(", ".join(g) for g in plan.routing.groups)
                         + f"), routing CPU {_cpu_seconds() - cpu:.2f}s")
    yield Output(plan, "plan")
    for g in range(plan.steps):
        yield DynamicOutput(g, output_name="steps", mapping_key=plan.step_name(g))


@op(name="rules_county", out=Out(StepResult),
    description="Every rule over one group of counties' rows and the rows routed to it; keeps the flags of the "
                "subjects it owns.")
def county_rules(context: OpExecutionContext, lowincome: LowincomeResource, plan: RulesPlan, step: int) -> StepResult:
    cpu = _cpu_seconds()
    try:
        as_of, settings, store, policy, manifests, staging = _inputs(context, lowincome)
        evaluation = evaluate_step(plan, step, staging, policy, as_of, settings.pseudonym_key, settings,
                                   quarantined_sql(manifests, store.root))
        result = save_step(evaluation, store.day_dir(as_of) / "rules" / f"step-{step}", _cpu_seconds() - cpu)
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    context.log.debug(f"rules step {plan.step_name(step)}: {evaluation.flags.height} flag(s)")
    return result


@op(name="rules_collect", out={"result": Out(Nothing)},
    description="Unites the county steps' flags; the flag lifecycle and the marts mart.flags, mart.household_risk, "
                "mart.county_summary.")
def collect_rules(context: OpExecutionContext, lowincome: LowincomeResource, plan: RulesPlan,
                  steps: list[StepResult]) -> MaterializeResult:
    step_cpu = _cpu_seconds()
    try:
        as_of, settings, store, policy, manifests, staging = _inputs(context, lowincome)
        freshness = feed_freshness(store, as_of, policy, _deliveries(store, as_of))
        write_atomic(store.day_dir(as_of) / FRESHNESS_FILE, freshness)
        kept = plan.kept
        if steps:
            parts = sorted(steps, key=lambda r: r.folder)
            evaluation = combine([r.evaluation() for r in parts])
            cpu = sum(r.cpu_seconds for r in parts)
            if kept is not None:
                kept.save(evaluation.frames())
        else:  # identical inputs: the kept result (evaluated here after all if it cannot be read)
            cpu = _cpu_seconds()
            evaluation = evaluate(staging, policy, as_of, settings.pseudonym_key, settings, kept=kept,
                                  quarantined=quarantined_sql(manifests, store.root))
            cpu = _cpu_seconds() - cpu
        counties = set(evaluation.flags["county_code"].drop_nulls().to_list()) | set(policy.counties)
        overdue = {c: int(policy.in_force(c, as_of)["outcome_overdue_days"]) for c in counties | {DEFAULT_COUNTY}}
        marts = build_marts(store, as_of, evaluation, overdue, evaluation.households, evaluation.roster_sizes, freshness)
    except LowincomeError as exc:
        raise Failure(description=str(exc)) from None
    for line in describe_stale(freshness):
        context.log.warning(f"数据过期 stale data: {line}")
    published = pl.read_parquet(marts.paths["mart.flags"])
    volume = volume_of_frames(published, evaluation.roster_sizes)
    total = sum(evaluation.timings.values())
    step_cpu = _cpu_seconds() - step_cpu
    context.log.info(
        f"rules as of {as_of}{' (result of identical inputs reused)' if 'reused' in evaluation.timings else ''}: "
        f"{marts.counts['open']} open flag(s), {marts.counts['new']} new, "
        f"{marts.counts['resolved_today']} resolved, {marts.counts['carried_stale']} carried on stale data, "
        f"{marts.counts['overdue']} overdue, {marts.counts['not_assessable']} not assessable "
        f"(rules {total:.2f}s, CPU {cpu:.2f}s in {max(1, len(steps))} step(s); collecting step CPU {step_cpu:.2f}s)"
    )
    return MaterializeResult(
        metadata={
            **{k: MetadataValue.int(v) for k, v in marts.counts.items()},
            "by_rule": MetadataValue.md(_by_rule_table(published)),
            # flag volume per 1,000 roster persons per rule and county, 异常 first (lowincome/flag_volume.py)
            "flag_volume": MetadataValue.md(flag_volume_md(volume)),
            "flood_rows": MetadataValue.int(sum(1 for v in volume if v["flood"])),
            "rules_seconds": MetadataValue.float(round(total, 3)),
            "rules_cpu_seconds": MetadataValue.float(round(cpu, 3)),
            "step_cpu_seconds": MetadataValue.float(round(step_cpu, 3)),
            "rule_steps": MetadataValue.int(len(steps)),
            "stale_feeds": MetadataValue.md("\n".join(f"- {line}" for line in describe_stale(freshness)) or "none"),
            "slowest": MetadataValue.text(", ".join(f"{k} {v:.2f}s" for k, v in sorted(evaluation.timings.items(), key=lambda kv: -kv[1])[:3])),
        }
    )


@graph_asset(
    key=FLAGS_KEY,
    group_name=RULES_GROUP,
    partitions_def=daily_partitions,
    ins={f"staging_{f}": AssetIn(staging_key(f), dagster_type=Nothing) for f in FEEDS},
    kinds={"duckdb", "sql"},
    description=(
        "Monitoring rules R01–R07 (review, 应退尽退) and W01–W05 (early warning, 应保尽保) as of the partition "
        "day, one SQL file per rule under sql/rules/, with the policy in force on that day; then the flag "
        "lifecycle (new / open / resolved / confirmed / dismissed / overdue) and the marts "
        "mart.flags, mart.household_risk, mart.county_summary. One step per group of counties "
        "(LOWINCOME_RULE_STEPS), each with the rows its people and households have in any county."
    ),
    metadata={"sql": "sql/rules/*.sql, sql/models/*.sql", "policy": "LOWINCOME_POLICY (lowincome/policy/default.yaml)"},
)
def flags(**staged):
    plan, found = route_rules.alias("route")(**staged)
    done = found.map(lambda g: county_rules.alias("county")(plan, g))
    return collect_rules.alias("collect")(plan, done.collect())
