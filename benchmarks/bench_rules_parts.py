"""Time the rules engine alone, model by model and rule by rule, on a warehouse's staged parts.

    LOWINCOME_INBOX=... LOWINCOME_WAREHOUSE=/tmp/wh .venv/bin/lowincome run --as-of 2026-10-31   # once
    .venv/bin/python benchmarks/bench_rules_parts.py /tmp/wh --as-of 2026-10-31 --repeat 3
    .venv/bin/python benchmarks/bench_rules_parts.py /tmp/wh --explain R05      # DuckDB EXPLAIN ANALYZE of one step
    .venv/bin/python benchmarks/bench_rules_parts.py /tmp/wh --repeat 2 --reuse # run 1 keeps its result, run 2 reuses it

The rules read the day's staging exactly as the nightly `mart__flags` asset does (DuckDB views over the
Parquet parts named by the committed run's manifests), so the figures are those of the real path without
the ingestion before it. Each repetition is a fresh in-memory DuckDB, as in a night; the machine's load
average is printed with every repetition because the machine may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY, load_settings
from lowincome.feeds import DEPARTMENT_FEEDS
from lowincome.rules import engine
from lowincome.rules.catalog import BY_ID, MODELS, SQL_DIR
from lowincome.rules.policy import load_policy
from lowincome.rules.reuse import KeptResult, inputs_digest, results_dir
from lowincome.workstore import WorkStore


def staged(warehouse: Path, as_of: date) -> dict[str, str]:
    store = WorkStore(warehouse)
    return {f: store.staging(as_of, f).relation_sql(store.root) for f in DEPARTMENT_FEEDS}


class CpuTimed:
    """A connection that records the CPU seconds (all DuckDB threads of this process) of each CREATE TABLE.

    On a shared machine wall-clock time follows the other users' load; the process's CPU time
    follows the work done, so before/after comparisons use both.
    """

    def __init__(self, con, cpu: dict[str, float]):
        self._con, self._cpu = con, cpu

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, query, *args, **kwargs):
        before = resource.getrusage(resource.RUSAGE_SELF)
        try:
            return self._con.execute(query, *args, **kwargs)
        finally:
            after = resource.getrusage(resource.RUSAGE_SELF)
            words = query.split()
            if words[:2] == ["CREATE", "TABLE"]:
                name = words[2]
                label = ("rule." + name[6:] if name.startswith("flags_") and name not in ("flags_raw",)
                         else "outputs" if name in ("flags", "flags_raw") else "policy" if name == "policy"
                         else f"model.{name}")
                self._cpu[label] = self._cpu.get(label, 0.0) + (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def cpu_timed_evaluate(staging, policy, as_of: date, settings, kept=None):
    """engine.evaluate, with the CPU seconds of each model and rule (the outputs' SELECTs are not counted)."""
    cpu: dict[str, float] = {}
    real = engine.connect
    engine.connect = lambda *a, **k: CpuTimed(real(*a, **k), cpu)
    try:
        ev = engine.evaluate(staging, policy, as_of, DEV_PSEUDONYM_KEY, settings, kept=kept)
    finally:
        engine.connect = real
    return ev, cpu


def explain(staging: dict[str, str], as_of: date, step: str) -> None:
    """EXPLAIN ANALYZE one model or rule, after the models it reads have been built."""
    policy = load_policy(DEFAULT_POLICY)
    con = engine.connect(staging, None, DEV_PSEUDONYM_KEY)
    table = policy.table(list(policy.counties), as_of)
    con.register("_policy", table.to_arrow())
    con.execute("CREATE TABLE policy AS SELECT * FROM _policy")
    values = engine.parameters(table, as_of)
    target = SQL_DIR / "models" / f"{step}.sql" if step in MODELS else BY_ID[step].sql_path
    for model in MODELS:
        if model == step:
            break
        sql = engine.read_sql(SQL_DIR / "models" / f"{model}.sql")
        con.execute(f"CREATE TABLE {model} AS {sql}", engine.bound(sql, values))
    sql = engine.read_sql(target)
    out = Path(tempfile.mkdtemp()) / "profile.json"
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{out}'")
    t = time.perf_counter()
    con.execute(f"CREATE TABLE _profiled AS {sql}", engine.bound(sql, values))
    print(f"{step}: {time.perf_counter() - t:.2f}s; operators by own time (flattened plan):")
    con.close()
    rows = []

    def walk(node: dict, depth: int) -> None:
        name = node.get("name", "")
        extra = node.get("extra_info") or {}
        what = "; ".join(f"{k}={v}" for k, v in extra.items() if k in ("Table", "Function", "Join Type", "Conditions",
                                                                         "Groups", "Aggregates", "Filters", "CTE Name"))
        rows.append((node.get("timing", 0.0), node.get("intermediate_rows", 0), depth, name, what[:140]))
        for child in node.get("children", []):
            walk(child, depth + 1)

    for root in json.loads(out.read_text())["operator"]:
        walk(root, 0)
    for timing, card, depth, name, what in rows:
        if timing >= 0.01:
            print(f"{timing:8.3f}s {card:>10,} {'  ' * depth}{name} {what}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 10, 31))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--explain", metavar="STEP", help="a rule id (R05) or a model name (persons)")
    ap.add_argument("--reuse", action="store_true",
                    help="keep the result as the nightly asset does (in a temporary folder, not the warehouse's): "
                         "the first run evaluates and keeps it, the next ones reuse it")
    args = ap.parse_args()
    staging = staged(args.warehouse, args.as_of)
    if args.explain:
        explain(staging, args.as_of, args.explain)
        return
    settings = load_settings()
    policy = load_policy(DEFAULT_POLICY)
    kept = None
    if args.reuse:
        store = WorkStore(args.warehouse)
        manifests = {f: store.staging(args.as_of, f) for f in DEPARTMENT_FEEDS}
        digest = inputs_digest(store.root, manifests, policy, args.as_of, DEV_PSEUDONYM_KEY)
        kept = KeptResult(results_dir(Path(tempfile.mkdtemp(prefix="bench-rules-"))) / digest, settings.retention_days)
    for i in range(args.repeat):
        load = os.getloadavg()
        t = time.perf_counter()
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        ev, cpu = cpu_timed_evaluate(staging, policy, args.as_of, settings, kept)
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        total = time.perf_counter() - t
        print(f"run {i + 1}: evaluate {total:.2f}s, {ev.flags.height:,} flags, load average "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (before) / {os.getloadavg()[0]:.2f} (after)")
        print(f"   CPU {cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime:.2f}s")
        print("   wall: " + ", ".join(f"{k} {v:.2f}" for k, v in ev.timings.items()))
        print("   CPU:  " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
        print(f"   rules (R*, W*) {sum(v for k, v in ev.timings.items() if k.startswith('rule.')):.2f}s, "
              f"models {sum(v for k, v in ev.timings.items() if k.startswith('model.')):.2f}s, "
              f"not timed by the engine {total - sum(ev.timings.values()):.2f}s")


if __name__ == "__main__":
    main()
