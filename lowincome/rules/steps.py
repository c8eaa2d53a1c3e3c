"""The rules of one night as steps: a plan (with the routing), one evaluation per group of counties, the union.

The Dagster asset `mart/flags` runs these as separate steps (assets/rules.py), so the multiprocess and
Celery executors can spread the county groups over processes and machines; `evaluate_split` runs
them one after the other in one call, for tests and tools, so both paths share every line. Steps
hand each other paths, never rows: each group's frames are Parquet files in the run's folder.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import polars as pl

from ..config import Settings
from ..workstore import write_atomic
from .engine import Evaluation, _evaluate, as_selects, data_counties, parameters
from .policy import Policy
from .reuse import FRAMES, KeptResult
from .routing import Routing, route, share_counties

# how the whole evaluation orders each frame (engine.py), so the union of the steps is the same frame
ORDER = {
    "flags": ["rule_id", "county_code", "subject_key", "period", "flag_id"],
    "subjects": ["flag_id"],
    "households": ["person_key"],
    "roster_sizes": ["county_code"],
    "aliases": ["flag_id", "legacy_flag_id"],
    "not_assessable": ["rule_id", "county_code", "level", "subject_key"],
}


@dataclass(frozen=True)
class RulesPlan:
    """What every rules step of one night works from."""

    counties: tuple[str, ...]  # the policy table's counties: the same in every step
    routing: Routing | None  # None: identical inputs were evaluated before, no step runs
    kept: KeptResult | None = None  # where the result of these inputs is kept (None: they cannot be named)

    @property
    def steps(self) -> int:
        return 0 if self.routing is None else len(self.routing.groups)

    def step_name(self, g: int) -> str:
        """The step's mapping key: its county, or its group's number and first county."""
        counties = self.routing.groups[g]
        if self.routing.folder is None:
            return "all"
        return counties[0] if len(counties) == 1 else f"group{g}_{counties[0]}_{len(counties)}"


@dataclass(frozen=True)
class StepResult:
    """One step's frames, as Parquet files in the run's folder, and its timings."""

    folder: str
    timings: dict[str, float] = field(default_factory=dict)
    cpu_seconds: float = 0.0

    def evaluation(self) -> Evaluation:
        frames = {name: pl.read_parquet(Path(self.folder) / f"{name}.parquet") for name in FRAMES}
        return Evaluation.from_frames(frames, dict(self.timings))


def plan_rules(staging: dict[str, Path | str], policy: Policy, as_of: date, settings: Settings, weights: dict[str, int],
               folder: Path, kept: KeptResult | None = None) -> RulesPlan:
    """Share the counties out over LOWINCOME_RULE_STEPS groups and route their rows (into `folder`).

    `weights`: rows delivered per county, to balance the groups. One step: no routing at all, the
    evaluation is the whole one. `kept`: where `collect` keeps the result of these inputs.
    """
    counties = data_counties(staging, settings)
    if settings.rule_steps < 2 or len(counties) < 2:
        return RulesPlan(tuple(counties), Routing((tuple(counties),)), kept)
    groups = share_counties({c: int(weights.get(c, 0)) for c in counties}, settings.rule_steps)
    values = parameters(policy.table(counties, as_of), as_of)
    return RulesPlan(tuple(counties), route(as_selects(staging), groups, values, settings, folder), kept)


def evaluate_step(plan: RulesPlan, g: int, staging: dict[str, Path | str], policy: Policy, as_of: date, pseudonym_key: str,
                  settings: Settings, quarantined: dict[str, str]) -> Evaluation:
    """Every rule for the subjects step `g` owns (the whole night when the plan has one step)."""
    step = None if plan.routing.folder is None else (plan.routing, g)
    return _evaluate(staging, policy, as_of, pseudonym_key, settings, quarantined, list(plan.counties), step)


def save_step(evaluation: Evaluation, folder: Path, cpu_seconds: float = 0.0) -> StepResult:
    for name, frame in evaluation.frames().items():
        write_atomic(folder / f"{name}.parquet", frame)
    return StepResult(str(folder), dict(evaluation.timings), cpu_seconds)


def combine(parts: list[Evaluation]) -> Evaluation:
    """The union of the steps' frames, in the whole evaluation's order (each subject is in one step only)."""
    if len(parts) == 1:
        return parts[0]
    frames = {name: pl.concat([getattr(p, name) for p in parts], how="vertical").sort(ORDER[name], nulls_last=True)
              for name in FRAMES}
    timings: dict[str, float] = {}
    for p in parts:
        for key, seconds in p.timings.items():
            timings[key] = timings.get(key, 0.0) + seconds
    return Evaluation.from_frames(frames, timings)


def evaluate_split(staging: dict[str, Path | str], policy: Policy, as_of: date, pseudonym_key: str, settings: Settings,
                   quarantined: dict[str, str], weights: dict[str, int], folder: Path) -> Evaluation:
    """The steps of the asset in one call: plan, every group in turn, the union."""
    t = time.perf_counter()
    plan = plan_rules(staging, policy, as_of, settings, weights, folder / "route")
    routed = time.perf_counter() - t
    parts = [evaluate_step(plan, g, staging, policy, as_of, pseudonym_key, settings, quarantined)
             for g in range(plan.steps)]
    result = combine(parts)
    if plan.routing.folder is not None:
        result.timings["routing"] = routed
    return result
