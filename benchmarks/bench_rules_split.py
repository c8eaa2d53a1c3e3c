"""Rules in one step against the rules as county steps (LOWINCOME_RULE_STEPS), on a warehouse's staged parts.

    .venv/bin/python benchmarks/bench_rules_split.py /tmp/wh --as-of 2026-11-01 --steps 2

Times, on the committed run of the day (the parts a night's rules read):
- the whole evaluation (one step, what `LOWINCOME_RULE_STEPS=1` runs);
- the routing step, then every county step one after the other (what in-process runs);
- the county steps at once, one process each (what `--workers N` or N Celery workers run), each with
  1/N of LOWINCOME_MEMORY_LIMIT as `--workers N` gives it;
and checks that the union of the steps equals the whole evaluation, frame by frame. Wall and CPU
seconds (CPU of this process and its children: DuckDB's threads included), with the load average,
because the machine may be shared.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import resource
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

from lowincome.config import load_settings
from lowincome.feeds import DEPARTMENT_FEEDS
from lowincome.rules import engine, steps
from lowincome.rules.policy import load_policy
from lowincome.workstore import WorkStore


def _cpu() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _inputs(warehouse: Path, as_of: date):
    store = WorkStore(warehouse)
    manifests = {f: store.staging(as_of, f) for f in DEPARTMENT_FEEDS}
    staging = {f: m.relation_sql(store.root) for f, m in manifests.items()}
    return staging, engine.quarantined_sql(manifests, store.root)


def _step(args) -> tuple[float, float, str]:
    warehouse, as_of, plan, g, settings, folder = args
    t, c = time.perf_counter(), _cpu()
    staging, quarantined = _inputs(warehouse, as_of)
    evaluation = steps.evaluate_step(plan, g, staging, load_policy(settings.policy), as_of, settings.pseudonym_key,
                                     settings, quarantined)
    result = steps.save_step(evaluation, Path(folder) / f"step-{g}")
    return time.perf_counter() - t, _cpu() - c, result.folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("warehouse", type=Path)
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    settings = dataclasses.replace(load_settings(), warehouse=args.warehouse, rule_steps=args.steps)
    policy = load_policy(settings.policy)
    staging, quarantined = _inputs(args.warehouse, args.as_of)
    folder = Path(tempfile.mkdtemp(prefix="rules-split-", dir=args.warehouse / "work"))
    try:
        print(f"load average {os.getloadavg()[0]:.2f}")
        t, c = time.perf_counter(), _cpu()
        whole = engine._evaluate(staging, policy, args.as_of, settings.pseudonym_key, settings, quarantined)
        print(f"whole evaluation: {time.perf_counter() - t:.1f} s (CPU {_cpu() - c:.1f} s), {whole.flags.height} flags")
        weights = {}  # rows delivered per county: the parts' row counts, as the asset takes them from deliveries
        store = WorkStore(args.warehouse)
        for f in DEPARTMENT_FEEDS:
            for row in store.read(args.as_of, "deliveries", f).iter_rows(named=True):
                if row.get("county") and row.get("rows_accepted"):
                    weights[row["county"]] = weights.get(row["county"], 0) + int(row["rows_accepted"])
        t, c = time.perf_counter(), _cpu()
        plan = steps.plan_rules(staging, policy, args.as_of, settings, weights, folder / "route")
        routing = time.perf_counter() - t, _cpu() - c
        routed = sum((folder / "route" / f"{f}.parquet").stat().st_size for f in DEPARTMENT_FEEDS)
        print(f"routing: {routing[0]:.1f} s (CPU {routing[1]:.1f} s), {plan.steps} groups "
              f"{[len(g) for g in plan.routing.groups]} counties, {routed / 1e6:.1f} MB routed")
        serial = []
        for g in range(plan.steps):
            wall, cpu, _ = _step((args.warehouse, args.as_of, plan, g, settings, str(folder / "serial")))
            serial.append((wall, cpu))
            print(f"  step {plan.step_name(g)}: {wall:.1f} s (CPU {cpu:.1f} s)")
        print(f"steps one after the other: {sum(w for w, _ in serial):.1f} s (CPU {sum(c for _, c in serial):.1f} s)")
        share = dataclasses.replace(settings, memory_limit_bytes=settings.memory_limit_bytes // plan.steps,
                                    memory_limit=f"{settings.memory_limit_bytes // plan.steps // 10**6}MB")
        t = time.perf_counter()
        # spawned, not forked: a fork of a process whose DuckDB and Polars threads hold locks can hang
        with ProcessPoolExecutor(plan.steps, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_step, [(args.warehouse, args.as_of, plan, g, share, str(folder / "parallel"))
                                            for g in range(plan.steps)]))
        parallel = time.perf_counter() - t
        print(f"steps at once ({plan.steps} processes): {parallel:.1f} s; routing + steps at once "
              f"{routing[0] + parallel:.1f} s against {whole.timings and sum(whole.timings.values()):.1f} s whole")
        union = steps.combine([steps.StepResult(r[2]).evaluation() for r in results])
        differ = [n for n in steps.FRAMES if not whole.frames()[n].equals(union.frames()[n])]
        print("union of the steps equals the whole evaluation" if not differ else f"DIFFERENT: {differ}")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
