"""Evaluate the rules twice on one warehouse's staged parts, with this checkout's SQL and with another's, and compare.

    .venv/bin/python benchmarks/compare_rules_sql.py /tmp/wh --reference /work/main --as-of 2026-10-31

A speed change to `sql/` must not change one value: every output of `engine.evaluate` (flags with their
evidence, the caseworkers' subjects, households, roster sizes) is compared row for row, and the time
of each step is printed side by side. The reference checkout's `sql/` and its list of models
(`lowincome/rules/catalog.py`, MODELS) are used as they are; this checkout's engine runs both.
"""

from __future__ import annotations

import argparse
import ast
import os
import time
from datetime import date
from pathlib import Path

from bench_rules_parts import cpu_timed_evaluate, staged

from lowincome.config import DEFAULT_POLICY, load_settings
from lowincome.rules import catalog, engine
from lowincome.rules.policy import load_policy


def reference_models(checkout: Path) -> tuple[str, ...]:
    tree = ast.parse((checkout / "lowincome" / "rules" / "catalog.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "MODELS":
            return tuple(ast.literal_eval(node.value))
    raise SystemExit(f"no MODELS in {checkout}/lowincome/rules/catalog.py")


def run(staging, as_of: date, sql_dir: Path, models: tuple[str, ...]):
    saved = catalog.SQL_DIR, engine.SQL_DIR, engine.MODELS
    catalog.SQL_DIR, engine.SQL_DIR, engine.MODELS = sql_dir, sql_dir, models
    try:
        t = time.perf_counter()
        ev, cpu = cpu_timed_evaluate(staging, load_policy(DEFAULT_POLICY), as_of, load_settings())
        return ev, cpu, time.perf_counter() - t
    finally:
        catalog.SQL_DIR, engine.SQL_DIR, engine.MODELS = saved


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("warehouse", type=Path)
    ap.add_argument("--reference", type=Path, required=True, help="a checkout whose sql/ is the reference")
    ap.add_argument("--as-of", type=date.fromisoformat, default=date(2026, 10, 31))
    args = ap.parse_args()
    staging = staged(args.warehouse, args.as_of)
    load = os.getloadavg()[0]
    ref, cpu_ref, t_ref = run(staging, args.as_of, args.reference / "sql", reference_models(args.reference))
    new, cpu_new, t_new = run(staging, args.as_of, catalog.SQL_DIR, catalog.MODELS)
    print(f"evaluate: reference {t_ref:.2f}s, this checkout {t_new:.2f}s (load average {load:.2f} → {os.getloadavg()[0]:.2f})")
    print(f"  {'step':<28} {'wall s':>15} {'CPU s':>15}   (reference / this checkout)")

    def cell(x):
        return "-" if x is None else f"{x:.2f}"

    for step in sorted(set(ref.timings) | set(new.timings)):
        print(f"  {step:<28} {cell(ref.timings.get(step)):>7} {cell(new.timings.get(step)):>7} "
              f"{cell(cpu_ref.get(step)):>7} {cell(cpu_new.get(step)):>7}")
    print(f"  {'total of the steps':<28} {sum(ref.timings.values()):>7.2f} {sum(new.timings.values()):>7.2f} "
          f"{sum(cpu_ref.values()):>7.2f} {sum(cpu_new.values()):>7.2f}")
    bad = 0
    for name in ("flags", "subjects", "households", "roster_sizes"):
        a, b = getattr(ref, name), getattr(new, name)
        if a.schema == b.schema:  # the same rows in any order (ties of the engine's ORDER BY may fall either way)
            a, b = a.sort(a.columns, nulls_last=True), b.sort(b.columns, nulls_last=True)
        same = a.schema == b.schema and a.height == b.height and a.equals(b)
        bad += not same
        print(f"{name}: {a.height:,} rows {'same' if same else 'DIFFERENT'}")
        if not same and a.schema == b.schema:
            print(f"  only in reference: {a.join(b, on=a.columns, how='anti', nulls_equal=True).height}, "
                  f"only here: {b.join(a, on=b.columns, how='anti', nulls_equal=True).height}")
        elif not same:
            print(f"  schema {a.schema} != {b.schema}")
    raise SystemExit(1 if bad else 0)


if __name__ == "__main__":
    main()
