"""The feed registry: every department delivery described as data.

feeds.md is the contract; this module is its executable form. Ingestion,
quarantine, the expectation suites and the generator all read the same
`FeedSpec`, so a column added here changes what is parsed, what is rejected
and what is validated in one step, and they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ColumnKind = Literal[
    "id",  # 18-character GB 11643 ID number (15-digit legacy numbers are converted)
    "text",  # free text, trimmed
    "division",  # 12-digit statistical division code or 6-digit county code
    "enum",  # one of `values`
    "coded_enum",  # label or digit, e.g. 视力 / 1 / 视力(1); stored as label + code
    "date",  # YYYY-MM-DD, YYYY/M/D, YYYYMMDD, YYYY年M月D日
    "month",  # YYYY-MM (also YYYY/M, YYYYMM, YYYY年M月)
    "money",  # yuan, two decimals, thousands separators allowed
    "int",
    "cert_id",  # disability certificate number: holder ID + category digit + level digit
]

FeedKind = Literal["snapshot", "increment"]

RELATIONS = ("本人", "配偶", "子女", "父母", "孙子女", "兄弟姐妹", "其他")


@dataclass(frozen=True)
class Column:
    header: str
    name: str
    kind: ColumnKind
    nullable: bool = False
    values: tuple[str, ...] = ()
    codes: tuple[tuple[str, int], ...] = ()  # for coded_enum: (label, code)
    min_value: float | None = None
    min_exclusive: bool = False
    # Must be present in the file's header; a file without it is rejected whole.
    required: bool = True
    # Mentioned in quarantine reasons and reports instead of the value itself.
    personal: bool = False
    # Free text (anything a clerk typed): never published to analysts, withheld from masked records.
    free_text: bool = False
    # Published to analysts only when the whole value matches this regex (case-insensitive);
    # otherwise NULL there and withheld from masked records: a code field may carry free text.
    publish_pattern: str | None = None
    # enum: other spellings accepted for a value, as (delivered, canonical) pairs; the canonical value is stored
    # (a returned worklist says 确认 where the pipeline records confirmed).
    synonyms: tuple[tuple[str, str], ...] = ()

    @property
    def label(self) -> str:
        """How reasons name the column: the header departments know it by."""
        return self.header


@dataclass(frozen=True)
class FeedSpec:
    name: str
    title: str
    kind: FeedKind
    columns: tuple[Column, ...]
    # Columns that identify one row across all deliveries of the feed: a later
    # row with the same key is a duplicate and is quarantined.
    unique_key: tuple[str, ...] = ()
    # Uniqueness inside one snapshot file (roster: one row per person and household).
    snapshot_key: tuple[str, ...] = ()
    # The date column that must not lie after the delivery's extraction date.
    event_date: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def by_header(self) -> dict[str, Column]:
        return {c.header: c for c in self.columns}

    @property
    def by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    def column(self, name: str) -> Column:
        return self.by_name[name]

    @property
    def id_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.kind == "id")

    @property
    def personal_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.personal)


def _id(header: str, name: str, nullable: bool = False) -> Column:
    return Column(header, name, "id", nullable=nullable, personal=True)


def _name() -> Column:
    return Column("姓名", "name", "text", nullable=True, personal=True)


def _division(header: str = "行政区划代码") -> Column:
    return Column(header, "division_code", "division")


def _money(header: str, name: str, *, positive: bool = False, nullable: bool = False) -> Column:
    return Column(header, name, "money", nullable=nullable, min_value=0.0, min_exclusive=positive)


CIVIL_ROSTER = FeedSpec(
    name="civil_roster",
    title="民政: 社会救助对象名册",
    kind="snapshot",
    columns=(
        _division(),
        Column("家庭编号", "household_id", "text"),
        _id("户主身份证号", "head_id_number"),
        _id("身份证号", "id_number"),
        _name(),
        Column("与户主关系", "relation", "enum", values=RELATIONS),
        Column("救助类型", "assistance_type", "enum", values=("低保", "特困", "低保边缘", "刚性支出困难")),
        Column("城乡类别", "urban_rural", "enum", values=("城市", "农村")),
        Column("保障状态", "status", "enum", values=("在保", "停保")),
        Column("纳入日期", "enrolled_on", "date"),
        Column("停保日期", "ended_on", "date", nullable=True),
        Column("家庭人口数", "household_size", "int", min_value=1),
        _money("家庭月人均收入", "monthly_income_per_capita"),
        _money("月救助金额", "monthly_benefit"),
    ),
    snapshot_key=("household_id", "id_number"),
    event_date="enrolled_on",
)

SUBSIDY_PAYMENTS = FeedSpec(
    name="subsidy_payments",
    title="民政: 残疾人两项补贴及救助金发放明细",
    kind="increment",
    columns=(
        Column("发放流水号", "payment_id", "text"),
        _id("身份证号", "id_number"),
        _name(),
        _division(),
        Column(
            "补贴类型",
            "subsidy_type",
            "enum",
            values=("低保金", "特困供养金", "困难残疾人生活补贴", "重度残疾人护理补贴"),
        ),
        Column("发放月份", "pay_month", "month"),
        _money("金额", "amount", positive=True),
    ),
    unique_key=("payment_id",),
    event_date="pay_month",
)

RURAL_MONITORING = FeedSpec(
    name="rural_monitoring",
    title="乡村振兴: 防止返贫监测对象及脱贫人口",
    kind="snapshot",
    columns=(
        _division(),
        Column("户编号", "rural_household_id", "text"),
        _id("身份证号", "id_number"),
        _name(),
        Column("与户主关系", "relation", "enum", values=RELATIONS),
        Column("户类型", "household_kind", "enum", values=("脱贫户", "监测户")),
        Column(
            "监测对象类别",
            "monitoring_category",
            "enum",
            nullable=True,
            values=("脱贫不稳定户", "边缘易致贫户", "突发严重困难户"),
        ),
        Column(
            "主要风险类型",
            "risk_type",
            "enum",
            nullable=True,
            values=("因病", "因残", "因学", "因灾", "因意外事故", "因务工就业不稳", "因产业项目失败", "其他"),
        ),
        Column("识别监测时间", "identified_on", "date", nullable=True),
        Column("风险是否消除", "risk_eliminated", "enum", nullable=True, values=("是", "否")),
        Column("风险消除时间", "eliminated_on", "date", nullable=True),
        _money("家庭年人均纯收入", "annual_net_income_per_capita"),
    ),
    snapshot_key=("rural_household_id", "id_number"),
    event_date="identified_on",
)

# An ICD-10 code: a letter, two digits, optionally a dot and up to four more (C34.9, K29, S72.001).
ICD10_PATTERN = r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?"

MEDICAL_CLAIMS = FeedSpec(
    name="medical_claims",
    title="医保: 医疗费用结算明细",
    kind="increment",
    columns=(
        Column("结算ID", "settlement_id", "text"),
        _id("身份证号", "id_number"),
        _name(),
        _division("参保地行政区划"),
        Column("结算日期", "settled_on", "date"),
        Column("就诊类型", "visit_type", "enum", values=("住院", "普通门诊", "门诊慢特病")),
        _money("医疗总费用", "total_cost"),
        _money("基本医保统筹支付", "basic_insurance_paid"),
        _money("大病保险支付", "critical_illness_paid"),
        _money("医疗救助支付", "medical_assistance_paid"),
        _money("个人自付", "out_of_pocket"),
        Column("主要诊断编码", "diagnosis_code", "text", nullable=True, required=False, publish_pattern=ICD10_PATTERN),
    ),
    unique_key=("settlement_id",),
    event_date="settled_on",
)

DISABILITY_CATEGORIES = (("视力", 1), ("听力", 2), ("言语", 3), ("肢体", 4), ("智力", 5), ("精神", 6), ("多重", 7))
DISABILITY_LEVELS = (("一级", 1), ("二级", 2), ("三级", 3), ("四级", 4))

DISABILITY_CERT = FeedSpec(
    name="disability_cert",
    title="残联: 残疾人证信息",
    kind="snapshot",
    columns=(
        Column("残疾人证号", "certificate_id", "cert_id", personal=True),
        _id("身份证号", "id_number"),
        _name(),
        _division(),
        Column("残疾类别", "disability_category", "coded_enum", codes=DISABILITY_CATEGORIES),
        Column("残疾等级", "disability_level", "coded_enum", codes=DISABILITY_LEVELS),
        Column("发证日期", "issued_on", "date"),
        Column("证件状态", "certificate_status", "enum", values=("正常", "注销", "迁出")),
        Column("注销日期", "revoked_on", "date", nullable=True),
    ),
    snapshot_key=("certificate_id",),
    event_date="issued_on",
)

DEATH_RECORDS = FeedSpec(
    name="death_records",
    title="公安户籍注销 / 殡葬火化: 死亡人员信息",
    kind="increment",
    columns=(
        _id("身份证号", "id_number"),
        _name(),
        Column("死亡日期", "died_on", "date"),
        Column("信息来源", "source", "enum", values=("公安户籍注销", "殡葬火化", "医学死亡证明")),
    ),
    # The same death from the same source twice is a re-delivery; from two sources it is corroboration.
    unique_key=("id_number", "source"),
    event_date="died_on",
)

HRSS_BENEFITS = FeedSpec(
    name="hrss_benefits",
    title="人社: 社会保险待遇及就业登记",
    kind="increment",
    columns=(
        _id("身份证号", "id_number"),
        _name(),
        Column("项目", "item", "enum", values=("城镇职工养老金", "工伤保险生活护理费", "失业保险金", "就业登记工资")),
        Column("月份", "month", "month"),
        _money("金额", "amount"),
    ),
    # feeds.md: one row per person-month-item.
    unique_key=("id_number", "month", "item"),
    event_date="month",
)

# 核查结果: caseworkers' verification outcomes come back through the inbox like any delivery
# (README: "Recording verification outcomes"), typically as a township worklist (核查清单,
# lowincome/worklists.py) returned filled in: its Chinese headers and values are this feed's, so the
# file is read as it comes back. The canonical English names (flag_id, outcome, ...) are accepted as
# headers too. A worklist row whose four outcome columns are all blank was not worked on: it is not
# a record of the feed (`untouched_unless`), counted per file, neither accepted nor quarantined
# (docs/decisions.md, "Township worklists"). The name of the caseworker is personal data.
OUTCOME_COLUMNS = ("outcome", "note", "decided_on", "caseworker")
VERIFICATION_OUTCOMES = FeedSpec(
    name="verification_outcomes",
    title="民政: 预警核查结果 (caseworkers' verification outcomes)",
    kind="increment",
    columns=(
        Column("线索编号", "flag_id", "text"),
        Column("核查结果", "outcome", "enum", values=("confirmed", "dismissed"),
               synonyms=(("确认", "confirmed"), ("排除", "dismissed"))),
        Column("核查说明", "note", "text", nullable=True, free_text=True),
        Column("核查日期", "decided_on", "date"),
        Column("核查人", "caseworker", "text", nullable=True, personal=True),
        # A returned worklist carries the residents' names: read (optional) so that they are known names,
        # masked wherever a shifted cell puts one into a reason; never published (lowincome/worklists.py).
        Column("姓名", "name", "text", nullable=True, required=False, personal=True),
    ),
    # a decision re-delivered is the same decision; a later decision on the same flag is a new row
    unique_key=("flag_id", "decided_on", "outcome"),
    event_date="decided_on",
    extra={"untouched_unless": OUTCOME_COLUMNS},
)

# The seven department feeds of feeds.md (what the generator writes and the rules read).
DEPARTMENT_FEEDS: dict[str, FeedSpec] = {
    f.name: f
    for f in (
        CIVIL_ROSTER,
        SUBSIDY_PAYMENTS,
        RURAL_MONITORING,
        MEDICAL_CLAIMS,
        DISABILITY_CERT,
        DEATH_RECORDS,
        HRSS_BENEFITS,
    )
}
# Everything the pipeline ingests: the department feeds and the outcomes that close the loop.
FEEDS: dict[str, FeedSpec] = {**DEPARTMENT_FEEDS, VERIFICATION_OUTCOMES.name: VERIFICATION_OUTCOMES}
