"""The set-based rewrite of the rules (issue 9, "rules speed") keeps its shape: no model reads every feed.

Until issue 11 this file also proved that the rewrite flagged exactly what the first formulation
flagged, by running the first formulation kept in `tests/rules_reference_sql/` (the `persons` model,
`household_of_person` over it, per-month R02/R03, R05, W01, W04) beside the current SQL. Issue 11 changed
what those rules mean on purpose (one flag per continuing condition, complete evidence); the reference
models were written to pair with the reference rules (W01 read a `household_of_person` that listed every
person), so neither half can be compared alone any more. The equivalence test and its reference files
were dropped (docs/decisions.md, "One flag per continuing condition"); the planted cases
(tests/test_rules.py) and the hand-made edge cases now carry the rules' meaning.
"""

from __future__ import annotations

from lowincome.rules import catalog


def test_no_model_reads_every_feed():
    """Each model reads what it needs: the one that listed everyone the departments mention is gone for good."""
    assert "persons" not in catalog.MODELS
    for model in catalog.MODELS:
        text = (catalog.SQL_DIR / "models" / f"{model}.sql").read_text(encoding="utf-8")
        assert "stg_medical_claims" not in text and "stg_hrss_benefits" not in text, model
