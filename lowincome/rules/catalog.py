"""The rules of rules.md: id, name, kind and the SQL file that implements each.

The SQL is the rule; this list only says which files exist and what to call
them, so the published flags carry names and kinds without the SQL repeating them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@dataclass(frozen=True)
class Rule:
    rule_id: str
    name: str
    kind: str  # review (应退尽退) | warning (应保尽保 / 防止返贫)
    summary: str  # one line for caseworkers (README, run report)
    # Feeds whose data the rule reads: when one of them is stale in a flag's county, the flag cannot be
    # resolved that day (rules.md "Stale data resolves nothing"); it is carried forward instead.
    feeds: tuple[str, ...] = ()

    @property
    def sql_path(self) -> Path:
        return SQL_DIR / "rules" / f"{self.rule_id.lower()}_{self.name}.sql"


RULES: tuple[Rule, ...] = (
    Rule("R01", "deceased_still_paid", "review", "paid, or still 在保, after a recorded death",
         ("death_records", "subsidy_payments", "civil_roster")),
    Rule("R02", "care_subsidy_ineligible", "review", "care subsidy without a valid certificate of an eligible level",
         ("subsidy_payments", "disability_cert")),
    Rule("R03", "living_subsidy_ineligible", "review", "living subsidy without a valid certificate or a 低保 household",
         ("subsidy_payments", "disability_cert", "civil_roster")),
    Rule("R04", "duplicate_care_benefit", "review", "care subsidy and work-injury care allowance for the same month",
         ("subsidy_payments", "hrss_benefits")),
    Rule("R05", "income_above_standard", "review", "household income above the 低保 standard beyond the grace period",
         ("civil_roster", "hrss_benefits")),
    Rule("R06", "duplicate_enrollment", "review", "在保 in two households or two counties",
         ("civil_roster",)),
    Rule("R07", "paid_after_exit", "review", "低保金/特困供养金 paid after the household's 停保日期",
         ("civil_roster", "subsidy_payments")),
    Rule("W01", "medical_burden", "warning", "large out-of-pocket medical costs for the household's income",
         ("medical_claims", "civil_roster", "rural_monitoring")),
    Rule("W02", "new_severe_disability", "warning", "new severe disability certificate, no care subsidy yet",
         ("disability_cert", "civil_roster", "rural_monitoring", "subsidy_payments")),
    Rule("W03", "monitoring_uncovered", "warning", "监测户 below the rural 低保 standard with nobody on 低保",
         ("rural_monitoring", "civil_roster")),
    Rule("W04", "household_death_shock", "warning", "a working-age member of a low-income household died",
         ("death_records", "civil_roster", "rural_monitoring")),
    Rule("W05", "income_below_monitoring_line", "warning", "脱贫户 income below the monitoring line",
         ("rural_monitoring",)),
)
BY_ID = {r.rule_id: r for r in RULES}

# Models the rules read, in dependency order (sql/models/<name>.sql → table <name>).
MODELS: tuple[str, ...] = ("roster_latest", "rural_latest", "certificates_latest", "deaths_by_person",
                           "household_of_person")
LEVEL_RANK = {"红": 3, "橙": 2, "黄": 1}
