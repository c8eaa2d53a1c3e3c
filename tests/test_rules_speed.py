"""The set-based rewrite of the rules (issue 9, "rules speed") flags exactly what the first formulation flagged.

`tests/rules_reference_sql/` keeps the first formulation of every SQL file the rewrite touched: the
`persons` model (a pass over every row of every feed), `household_of_person` over it, W01 joining
every claim to its household before totalling, R02/R03 gathering evidence for every holder, R05
reading the 人社 feed four times and W04 reading `persons`. Both formulations run on the same staged samples, under the bundled policy and
under one where a county has its own look-back window, thresholds and 低保边缘 rule (so W01 totals
claims in two windows at once), and every output of `evaluate` must be equal, evidence included.

When a rule's meaning changes on purpose (rules.md), its reference file here is stale: update it
with the new meaning or delete it and its name from REWRITTEN. Issue 11 (one flag per continuing
condition, complete evidence) did so for R02, R03, R05, W01 and W04; what remains compares the
models' first formulation (`persons`, `household_of_person` over it) under today's rules.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY
from lowincome.feeds import DEPARTMENT_FEEDS
from lowincome.ingest import ingest_feed
from lowincome.rules import catalog, engine
from lowincome.rules.policy import load_policy
from lowincome.workstore import WorkStore

from .conftest import SAMPLE_END

REFERENCE = Path(__file__).parent / "rules_reference_sql"
# The rules' own first formulations (R02, R03, R05, W01, W04) were dropped when their meaning changed on purpose
# (one flag per continuing condition, complete evidence: issue 11); the models' first formulation stays: every
# rule of today must flag the same over it.
REWRITTEN = {"persons.sql": "models", "household_of_person.sql": "models"}
COUNTY = "371302"


@pytest.fixture(scope="module")
def staged(generated, tmp_path_factory) -> dict[str, Path]:
    out, _ = generated
    store = WorkStore(tmp_path_factory.mktemp("speed-wh"), run_id="speed")
    return {feed: store.write(SAMPLE_END, "staging", feed, ingest_feed(spec, out / "inbox", SAMPLE_END, store.root).staging)
            for feed, spec in DEPARTMENT_FEEDS.items()}


@pytest.fixture(scope="module")
def reference_sql(tmp_path_factory) -> Path:
    """This checkout's sql/ with the rewritten files replaced by their first formulation."""
    root = tmp_path_factory.mktemp("reference") / "sql"
    shutil.copytree(catalog.SQL_DIR, root)
    for name, folder in REWRITTEN.items():
        shutil.copyfile(REFERENCE / name, root / folder / name)
    return root


def county_policy(tmp_path: Path) -> Path:
    doc = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    doc["counties"][COUNTY][0].update({"medical_lookback_days": 150, "medical_yellow_amount": 4000,
                                       "medical_orange_amount": 9000, "proactive_discovery_amount": 20000,
                                       "living_subsidy_includes_dibao_edge": True, "recent_window_days": 200,
                                       "death_shock_age_max": 75, "employment_grace_months": 1})
    path = tmp_path / "county.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def evaluate_with(monkeypatch, sql_dir: Path, models: tuple[str, ...], staged, policy: Path, as_of: date):
    with monkeypatch.context() as m:
        m.setattr(catalog, "SQL_DIR", sql_dir)
        m.setattr(engine, "SQL_DIR", sql_dir)
        m.setattr(engine, "MODELS", models)
        return engine.evaluate(staged, load_policy(policy), as_of, DEV_PSEUDONYM_KEY)


def same_rows(a: pl.DataFrame, b: pl.DataFrame) -> bool:
    return a.schema == b.schema and a.sort(a.columns, nulls_last=True).equals(b.sort(b.columns, nulls_last=True))


@pytest.mark.parametrize("policy_kind", ["bundled", "county overrides"])
def test_rewritten_rules_flag_exactly_what_the_first_formulation_flagged(staged, reference_sql, monkeypatch, tmp_path,
                                                                          policy_kind):
    policy = DEFAULT_POLICY if policy_kind == "bundled" else county_policy(tmp_path)
    old = evaluate_with(monkeypatch, reference_sql, ("persons", *catalog.MODELS), staged, policy, SAMPLE_END)
    new = evaluate_with(monkeypatch, catalog.SQL_DIR, catalog.MODELS, staged, policy, SAMPLE_END)
    by_rule = dict(new.flags.group_by("rule_id").len().iter_rows())
    # the samples exercise every rewritten rule (otherwise equality would prove nothing about it)
    assert all(by_rule.get(r, 0) > 0 for r in ("R02", "R03", "R05", "W01", "W04")), by_rule
    assert new.flags.filter(pl.col("rule_id") == "W01")["subject_type"].n_unique() == 2  # households and persons alone
    for name in ("flags", "subjects", "households", "roster_sizes"):
        assert same_rows(getattr(old, name), getattr(new, name)), name
    assert old.flags.height == new.flags.height > 0


def test_no_model_reads_every_feed():
    """Each model reads what it needs: the one that listed everyone the departments mention is gone for good."""
    assert "persons" not in catalog.MODELS
    for model in catalog.MODELS:
        text = (catalog.SQL_DIR / "models" / f"{model}.sql").read_text(encoding="utf-8")
        assert "stg_medical_claims" not in text and "stg_hrss_benefits" not in text, model
