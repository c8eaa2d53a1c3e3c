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
    # Chinese name (rules.md is read by staff who read Chinese first) and what a caseworker checks (核查要点).
    name_zh: str = ""
    check_zh: str = ""

    @property
    def sql_path(self) -> Path:
        return SQL_DIR / "rules" / f"{self.rule_id.lower()}_{self.name}.sql"


RULES: tuple[Rule, ...] = (
    Rule("R01", "deceased_still_paid", "review", "paid, or still 在保, after a recorded death",
         ("death_records", "subsidy_payments", "civil_roster"),
         name_zh="死亡人员仍在领取待遇", check_zh="核实死亡信息；停发待遇，追回死亡次月起发放的资金"),
    Rule("R02", "care_subsidy_ineligible", "review", "care subsidy without a valid certificate of an eligible level",
         ("subsidy_payments", "disability_cert"),
         name_zh="不符合条件领取重度残疾人护理补贴", check_zh="核实残疾证是否正常有效、残疾等级是否符合护理补贴条件"),
    Rule("R03", "living_subsidy_ineligible", "review", "living subsidy without a valid certificate or a 低保 household",
         ("subsidy_payments", "disability_cert", "civil_roster"),
         name_zh="不符合条件领取困难残疾人生活补贴", check_zh="核实残疾证是否正常有效、是否属于在保低保家庭"),
    Rule("R04", "duplicate_care_benefit", "review", "care subsidy and work-injury care allowance for the same month",
         ("subsidy_payments", "hrss_benefits"),
         name_zh="重复领取护理补贴和工伤生活护理费", check_zh="核实是否同时领取工伤保险生活护理费；按规定只保留一项"),
    Rule("R05", "income_above_standard", "review", "household income above the 低保 standard beyond the grace period",
         ("civil_roster", "hrss_benefits"),
         name_zh="家庭收入超过低保标准", check_zh="核实家庭成员就业和养老金收入，是否仍符合低保条件"),
    Rule("R06", "duplicate_enrollment", "review", "在保 in two households or two counties",
         ("civil_roster",),
         name_zh="重复纳入低保或特困", check_zh="核实实际在哪一户、哪一县保障；注销重复的保障"),
    Rule("R07", "paid_after_exit", "review", "低保金/特困供养金 paid after the household's 停保日期",
         ("civil_roster", "subsidy_payments"),
         name_zh="停保后仍发放救助金", check_zh="核实停保日期；停发并追回停保后发放的资金"),
    Rule("W01", "medical_burden", "warning", "large out-of-pocket medical costs for the household's income",
         ("medical_claims", "civil_roster", "rural_monitoring"),
         name_zh="医疗支出负担过重", check_zh="入户了解医疗支出和家庭收入，评估医疗救助、临时救助或纳入低保"),
    Rule("W02", "new_severe_disability", "warning", "new severe disability certificate, no care subsidy yet",
         ("disability_cert", "civil_roster", "rural_monitoring", "subsidy_payments"),
         name_zh="新增重度残疾未享受护理补贴", check_zh="告知并协助申请重度残疾人护理补贴"),
    Rule("W03", "monitoring_uncovered", "warning", "监测户 below the rural 低保 standard with nobody on 低保",
         ("rural_monitoring", "civil_roster"),
         name_zh="监测户未纳入兜底保障", check_zh="核实家庭收入，符合条件的纳入低保或特困"),
    Rule("W04", "household_death_shock", "warning", "a working-age member of a low-income household died",
         ("death_records", "civil_roster", "rural_monitoring"),
         name_zh="家庭劳动力死亡", check_zh="入户了解家庭变故，评估临时救助或纳入低保"),
    Rule("W05", "income_below_monitoring_line", "warning", "脱贫户 income below the monitoring line",
         ("rural_monitoring",),
         name_zh="脱贫户收入低于监测线", check_zh="核实收入，符合条件的纳入防返贫监测"),
)
BY_ID = {r.rule_id: r for r in RULES}

# Models the rules read, in dependency order (sql/models/<name>.sql → table <name>).
MODELS: tuple[str, ...] = ("roster_latest", "rural_latest", "certificates_latest", "deaths_by_person",
                           "household_of_person")
LEVEL_RANK = {"红": 3, "橙": 2, "黄": 1}  # higher is more urgent; 红 sorts first by rank DESC
