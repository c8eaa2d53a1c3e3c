"""Planted cases: for every rule of rules.md, people and households that must
be flagged (positive) and look-alikes that must not (near miss).

Dates are relative to the generation's end date E, so the cases hold for any
end date. Each case is written to the manifest with the person's ID number or
the household's number, so tests can look for the flag under its key. The
planted people use sequence numbers 900-999, which background people never
draw, so their data is exactly what is written here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import polars as pl

from ..identity import make_id
from .population import GIVEN, SURNAMES, add_months, month_end

URBAN_STD = 70000
RURAL_STD_MONTH = 53167


@dataclass
class Planter:
    end: date
    rng: np.random.Generator
    tables: dict[str, list[dict]] = field(default_factory=lambda: {k: [] for k in (
        "roster", "rural", "certs", "claims", "payments", "deaths", "hrss")})
    cases: list[dict] = field(default_factory=list)
    _n: int = 0
    _hh: int = 0

    # -- people and households ---------------------------------------------------------------------
    def person(self, county: str, age: float, male: bool = True) -> dict:
        self._n += 1
        born = self.end - timedelta(days=int(age * 365.25) + 30 + self._n % 200)
        seq = 900 + (2 * self._n) % 98 + (1 if male else 0)
        name = str(self.rng.choice(SURNAMES)) + str(self.rng.choice(GIVEN)) + str(self.rng.choice(GIVEN))
        return {"id_number": make_id(county, born, seq), "name": name, "birth": born, "county": county,
                "division_code": f"{county}001{self._n % 30 + 1:03d}"}

    def civil_household(self, county: str, kind: str, members: list[tuple[dict, str]], *, urban: bool = True,
                        income: int = 40000, enrolled_on: date | None = None, ended_on: date | None = None,
                        benefit: int | None = None) -> str:
        self._hh += 1
        hid = f"JT{county}9{self._hh:05d}"
        head = members[0][0]
        std = URBAN_STD if urban else RURAL_STD_MONTH
        if benefit is None:
            benefit = max(std - income, 10000) * len(members) if kind == "低保" else (std * 13 // 10 if kind == "特困" else 0)
        for p, relation in members:
            self.tables["roster"].append({
                "county": county, "division_code": head["division_code"], "household_id": hid,
                "head_id_number": head["id_number"], "id_number": p["id_number"], "name": p["name"], "birth": p["birth"],
                "relation": relation, "assistance_type": kind, "urban_rural": "城市" if urban else "农村",
                "enrolled_on": enrolled_on or date(2022, 3, 1), "ended_true": ended_on, "household_size": len(members),
                "monthly_income_per_capita": income, "monthly_benefit": benefit,
            })
        return hid

    def rural_household(self, county: str, kind: str, members: list[tuple[dict, str]], *, income_year: int,
                        eliminated_on: date | None = None, identified_on: date | None = None) -> str:
        self._hh += 1
        hid = f"HB{county}9{self._hh:05d}"
        for p, relation in members:
            self.tables["rural"].append({
                "county": county, "division_code": members[0][0]["division_code"], "rural_household_id": hid,
                "id_number": p["id_number"], "name": p["name"], "birth": p["birth"], "relation": relation,
                "household_kind": kind, "monitoring_category": "边缘易致贫户" if kind == "监测户" else None,
                "risk_type": "因病" if kind == "监测户" else None,
                "identified_on": identified_on or (date(2023, 5, 10) if kind == "监测户" else date(2018, 6, 1)),
                "eliminated_true": eliminated_on, "annual_net_income_per_capita": income_year * 100,
            })
        return hid

    # -- facts ---------------------------------------------------------------------------------------
    def cert(self, p: dict, cat: int, lvl: int, issued_on: date, revoked_on: date | None = None) -> None:
        self.tables["certs"].append({
            "county": p["county"], "certificate_id": f"{p['id_number']}{cat}{lvl}", "id_number": p["id_number"],
            "name": p["name"], "division_code": p["division_code"], "cat": cat, "lvl": lvl, "issued_on": issued_on,
            "revoked_on": revoked_on, "moved_out": False, "pick": 0.0, "from_roster": False,
        })

    def pay(self, p: dict, subsidy_type: str, month: date, amount: int) -> None:
        self._n += 1
        self.tables["payments"].append({
            "county": p["county"], "payment_id": f"FF-{p['county']}-{month:%Y%m}-9{self._n:05d}", "id_number": p["id_number"],
            "name": p["name"], "division_code": p["division_code"], "subsidy_type": subsidy_type,
            "pay_month": f"{month:%Y-%m}", "amount": amount, "_file_date": month.replace(day=20),
        })

    def pay_months(self, p: dict, subsidy_type: str, first: int, last: int, amount: int) -> int:
        """Pay for the months `first`..`last` relative to E's month (0 = E's month, -1 the one before).

        Returns how many months were paid (a month is paid on the 20th: E's own month only from then on)."""
        paid = 0
        for k in range(first, last + 1):
            m = add_months(self.end, k)
            if m.replace(day=20) <= self.end:
                self.pay(p, subsidy_type, m, amount)
                paid += 1
        return paid

    def claim(self, p: dict, settled_on: date, oop: int, total: int | None = None, visit: str = "住院",
              file_date: date | None = None) -> None:
        self._n += 1
        total = total if total is not None else oop * 3
        basic = total - oop
        self.tables["claims"].append({
            "county": p["county"], "settlement_id": f"JS-{p['county']}-{settled_on:%Y%m}-9{self._n:06d}",
            "id_number": p["id_number"], "name": p["name"], "division_code": p["division_code"], "settled_on": settled_on,
            "visit_type": visit, "total_cost": total, "basic_insurance_paid": basic, "critical_illness_paid": 0,
            "medical_assistance_paid": 0, "out_of_pocket": oop, "diagnosis_code": "C34.9",
            "_file_date": file_date or min(month_end(settled_on), self.end),
        })

    def death(self, p: dict, died_on: date, source: str = "公安户籍注销") -> None:
        self.tables["deaths"].append({
            "county": p["county"], "id_number": p["id_number"], "name": p["name"], "died_on": died_on, "source": source,
            "_second": False, "_file_date": min(month_end(died_on), self.end),
        })

    def hrss(self, p: dict, item: str, first: int, last: int, amount: int) -> None:
        for k in range(first, last + 1):
            m = add_months(self.end, k)
            self.tables["hrss"].append({
                "county": p["county"], "id_number": p["id_number"], "name": p["name"], "item": item,
                "month": f"{m:%Y-%m}", "amount": amount, "_file_date": min(month_end(m), self.end),
            })

    def case(self, rule: str, case: str, note: str, *, person: dict | None = None, household: str | None = None,
             county: str | None = None, level: str | None = None, flags: int | None = None, months: int | None = None,
             amount: int | None = None) -> None:
        """One planted case. For runs of months (rules.md "What one flag is"), a positive may say how many flags
        the subject gets (`flags`), how many months the first of them covers and the total paid in them (cents)."""
        self.cases.append({
            "rule": rule, "case": case, "note": note,
            "subject_type": "household" if household else "person",
            "id_number": person["id_number"] if person else None,
            "household_id": household, "county": county or (person or {}).get("county"), "level": level,
            "flags": flags, "months": months, "amount_to_recover": amount / 100 if amount is not None else None,
        })

    def frames(self) -> dict[str, pl.DataFrame]:
        return {k: pl.DataFrame(v, infer_schema_length=None) for k, v in self.tables.items() if v}


def plant_all(end: date, rng: np.random.Generator, county: str = "371302", other_county: str = "371324") -> Planter:
    P = Planter(end, rng)
    E = end
    m0 = add_months(E, 0)

    def dibao(members, **kw) -> str:
        hid = P.civil_household(county, "低保", members, **kw)
        return hid

    # R01 deceased_still_paid -------------------------------------------------------------------------
    a = P.person(county, 72)
    hid = dibao([(a, "本人")], income=20000)
    P.pay_months(a, "低保金", -6, 0, 50000)
    P.death(a, E - timedelta(days=110))
    P.death(a, E - timedelta(days=107), "殡葬火化")
    P.case("R01", "positive", "低保金 paid for months after the death, and still 在保 on the roster", person=a)
    head, spouse = P.person(county, 66), P.person(county, 64, male=False)
    dibao([(head, "本人"), (spouse, "配偶")], income=25000)
    P.pay_months(head, "低保金", -6, 0, 90000)
    P.death(spouse, E - timedelta(days=70))
    P.case("R01", "positive", "member still 在保 on rosters dated after the death (the payment goes to the head)", person=spouse)
    b = P.person(county, 80)
    death_month = add_months(E, -2)
    P.civil_household(county, "低保", [(b, "本人")], income=20000, ended_on=month_end(death_month))
    P.pay_months(b, "低保金", -6, -2, 50000)
    P.death(b, death_month.replace(day=15))
    P.case("R01", "near_miss", "died mid-month; paid only up to the month of death; household stopped at that month's end", person=b)

    # R02 care_subsidy_ineligible ---------------------------------------------------------------------
    c = P.person(county, 50)
    P.cert(c, 4, 3, date(2019, 4, 2))
    n = P.pay_months(c, "重度残疾人护理补贴", -3, 0, 9000)
    P.case("R02", "positive", "care subsidy on a 肢体三级 certificate (not 一/二级, not 智力/精神): every month, one flag",
           person=c, flags=1, months=n, amount=n * 9000)
    d = P.person(county, 58)
    P.cert(d, 1, 1, date(2015, 8, 1), revoked_on=E - timedelta(days=200))
    P.pay_months(d, "重度残疾人护理补贴", -2, -2, 9000)
    P.case("R02", "positive", "care subsidy paid after the certificate was 注销", person=d)
    e = P.person(county, 35)
    P.cert(e, 6, 3, date(2020, 1, 15))
    P.pay_months(e, "重度残疾人护理补贴", -3, 0, 9000)
    P.case("R02", "near_miss", "精神三级: eligible for the care subsidy", person=e)
    f = P.person(county, 61)
    revoked = add_months(E, -2).replace(day=15)
    P.cert(f, 4, 1, date(2012, 3, 3), revoked_on=revoked)
    P.pay_months(f, "重度残疾人护理补贴", -2, -2, 9000)
    P.case("R02", "near_miss", "paid for the month in which the certificate was revoked (正常 during part of it)", person=f)
    # runs of months: a gap of one unpaid month continues the run; a gap of more than two months ends it
    gap = P.person(county, 51)
    P.cert(gap, 4, 3, date(2019, 4, 3))
    n = P.pay_months(gap, "重度残疾人护理补贴", -6, -4, 9000) + P.pay_months(gap, "重度残疾人护理补贴", -2, -1, 9000)
    P.case("R02", "positive", "肢体三级, paid 5 months with one unpaid month inside: one flag for the run",
           person=gap, flags=1, months=n, amount=n * 9000)
    again = P.person(county, 52)
    P.cert(again, 4, 3, date(2019, 4, 4))
    P.pay_months(again, "重度残疾人护理补贴", -10, -9, 9000)
    P.pay_months(again, "重度残疾人护理补贴", -4, -1, 9000)
    P.case("R02", "positive", "肢体三级, paid 2 months, nothing for 4 months, then 4 months again: two flags",
           person=again, flags=2, months=2, amount=2 * 9000)
    fixed = P.person(county, 53)
    P.cert(fixed, 4, 3, date(2019, 4, 5))
    P.cert(fixed, 4, 1, add_months(E, -2))  # upgraded to 一级 two months ago: eligible from then on
    P.pay_months(fixed, "重度残疾人护理补贴", -5, -1, 9000)
    P.case("R02", "positive", "肢体三级 paid 3 months, then eligible (一级) for 2 months: one flag of 3 months",
           person=fixed, flags=1, months=3, amount=3 * 9000)

    # R03 living_subsidy_ineligible -------------------------------------------------------------------
    g = P.person(county, 44)
    P.cert(g, 4, 2, date(2018, 5, 5))
    P.pay_months(g, "困难残疾人生活补贴", -1, 0, 8000)
    P.case("R03", "positive", "living subsidy to a certificate holder in no 在保 低保 household", person=g)
    h = P.person(county, 47)
    dibao([(h, "本人")], income=30000)
    P.pay_months(h, "低保金", -3, 0, 40000)
    P.cert(h, 4, 2, date(2018, 5, 6))
    P.pay_months(h, "困难残疾人生活补贴", -1, 0, 8000)
    P.case("R03", "near_miss", "holder of a 正常 certificate in an 在保 低保 household", person=h)

    # R04 duplicate_care_benefit ----------------------------------------------------------------------
    i = P.person(county, 52)
    P.cert(i, 4, 1, date(2016, 2, 2))
    P.pay_months(i, "重度残疾人护理补贴", -3, 0, 9000)
    P.hrss(i, "工伤保险生活护理费", -1, -1, 150000)
    P.case("R04", "positive", "care subsidy and 工伤保险生活护理费 for the same month", person=i)
    j = P.person(county, 53)
    P.cert(j, 4, 1, date(2016, 2, 3))
    P.pay_months(j, "重度残疾人护理补贴", -1, 0, 9000)
    P.hrss(j, "工伤保险生活护理费", -4, -2, 150000)
    P.case("R04", "near_miss", "the two care benefits in different months", person=j)

    # R05 income_above_standard (urban 700 元/人/月, grace 6 months) ---------------------------------------
    def r05(case: str, note: str, item: str, first: int, amount: int) -> None:
        hd, child = P.person(county, 62), P.person(county, 32)
        hid = dibao([(hd, "本人"), (child, "子女")], income=30000, enrolled_on=date(2021, 1, 5))
        P.pay_months(hd, "低保金", -6, 0, 80000)
        P.hrss(child, item, first, 0, amount)
        P.case("R05", case, note, household=hid, county=county, person=hd)

    r05("positive", "wages of 2000 元 a month for 10 months in a household of 2 (1000 元 per person > 700)", "就业登记工资", -9, 200000)
    r05("near_miss", "the same wages for only 5 months (inside the 6-month grace period)", "就业登记工资", -4, 200000)
    r05("near_miss", "3000 元 of unemployment benefit: not pension or wages", "失业保险金", -9, 300000)
    r05("near_miss", "wages of 1300 元 (650 per person, below 700)", "就业登记工资", -9, 130000)

    # R06 duplicate_enrollment ------------------------------------------------------------------------
    k = P.person(county, 39)
    P.civil_household(county, "低保", [(k, "本人")], income=20000, enrolled_on=date(2020, 6, 1))
    k2 = dict(k, county=other_county, division_code=f"{other_county}002003")
    P.civil_household(other_county, "低保", [(k2, "本人")], income=20000, enrolled_on=date(2024, 9, 1))
    P.case("R06", "positive", "在保 in a household of 371302 and one of 371324", person=k)
    l_ = P.person(county, 41, male=False)
    P.civil_household(county, "低保", [(l_, "本人")], income=20000, enrolled_on=date(2019, 6, 1), ended_on=month_end(add_months(E, -5)))
    hd2 = P.person(county, 45)
    P.civil_household(county, "低保", [(hd2, "本人"), (l_, "配偶")], income=20000, enrolled_on=add_months(E, -3))
    P.case("R06", "near_miss", "left one household (停保) before joining another", person=l_)

    # R07 paid_after_exit -----------------------------------------------------------------------------
    m_, m2 = P.person(county, 57), P.person(county, 55, male=False)
    hid = P.civil_household(county, "低保", [(m_, "本人"), (m2, "配偶")], income=20000, ended_on=month_end(add_months(E, -4)))
    P.pay_months(m_, "低保金", -6, -2, 50000)
    P.pay_months(m2, "低保金", -3, -3, 20000)
    P.case("R07", "positive", "低保金 paid to two members for the two months after the household's 停保日期: one household flag",
           household=hid, county=county, person=m_, flags=1, months=2, amount=2 * 50000 + 20000)
    tk = P.person(county, 70)
    P.civil_household(county, "特困", [(tk, "本人")], income=0, ended_on=month_end(add_months(E, -3)))
    P.pay_months(tk, "特困供养金", -5, -1, 91000)
    P.case("R07", "positive", "特困供养金 paid for two months after 停保: a person flag", person=tk, flags=1, months=2,
           amount=2 * 91000)
    n_ = P.person(county, 58)
    hid = P.civil_household(county, "低保", [(n_, "本人")], income=20000, ended_on=month_end(add_months(E, -2)))
    P.pay_months(n_, "低保金", -6, -2, 50000)
    P.case("R07", "near_miss", "last payment for the month the household stopped", household=hid, county=county, person=n_)

    # W01 medical_burden --------------------------------------------------------------------------------
    o, o2 = P.person(county, 55), P.person(county, 53, male=False)
    hid = dibao([(o, "本人"), (o2, "配偶")], income=50000)  # annual household income 12,000
    P.claim(o, E - timedelta(days=60), 400000)
    P.claim(o2, E - timedelta(days=20), 300000)
    P.case("W01", "positive", "out-of-pocket 7,000 元 on a household income of 12,000 元 a year (58%)", household=hid, county=county, person=o, level="橙")
    q = P.person(county, 48)
    P.claim(q, E - timedelta(days=100), 5_500_000)
    P.case("W01", "positive", "on no roster, 55,000 元 out of pocket (proactive discovery)", person=q, level="红")
    q2 = P.person(county, 36, male=False)
    P.claim(q2, E - timedelta(days=40), 1_200_000)
    P.case("W01", "near_miss", "on no roster, 12,000 元 out of pocket: below the proactive discovery line (35,000 元)", person=q2)
    r = P.person(county, 78)
    P.civil_household(county, "特困", [(r, "本人")], income=0)
    P.claim(r, E - timedelta(days=30), 6_000_000)
    P.case("W01", "near_miss", "特困 person: medical costs are covered by 特困供养", person=r)
    s_, s2, s3 = P.person(county, 45), P.person(county, 44, male=False), P.person(county, 16)
    hid = P.civil_household(county, "低保边缘", [(s_, "本人"), (s2, "配偶"), (s3, "子女")], income=300000)
    P.claim(s_, E - timedelta(days=50), 900000)
    P.case("W01", "near_miss", "9,000 元 on a household income of 108,000 元 (8%, under 10,000 元)", household=hid, county=county, person=s_)
    t = P.person(county, 50)
    late = E - timedelta(days=400)
    P.claim(t, late, 3_000_000, file_date=min(month_end(add_months(E, -11)), E))
    P.case("W01", "near_miss", "30,000 元 out of pocket, but settled before the 365-day look-back window", person=t)

    # W02 new_severe_disability ----------------------------------------------------------------------
    def w02(case: str, note: str, cat: int, lvl: int, days_ago: int, paid: bool) -> None:
        u = P.person(county, 40)
        dibao([(u, "本人")], income=30000)
        P.pay_months(u, "低保金", -3, 0, 40000)
        P.cert(u, cat, lvl, E - timedelta(days=days_ago))
        if paid:
            P.pay_months(u, "重度残疾人护理补贴", 0, 0, 9000)
        P.case("W02", case, note, person=u)

    w02("positive", "肢体二级 certificate issued 50 days ago, 低保 household, no care subsidy yet", 4, 2, 50, False)
    w02("near_miss", "the same certificate issued 150 days ago (outside the 90-day window)", 4, 2, 150, False)
    w02("near_miss", "issued 50 days ago and the care subsidy is already paid", 4, 2, 50, True)
    w02("near_miss", "肢体三级 certificate issued 50 days ago (not severe)", 4, 3, 50, False)

    # W03 monitoring_uncovered (rural 低保 standard 6380 元/年) --------------------------------------------
    def w03(case: str, note: str, income: int, covered: bool = False, eliminated: bool = False) -> None:
        v, v2 = P.person(county, 50), P.person(county, 20)
        hid = P.rural_household(county, "监测户", [(v, "本人"), (v2, "子女")], income_year=income,
                                eliminated_on=(E - timedelta(days=60)) if eliminated else None)
        if covered:
            P.civil_household(county, "低保", [(v, "本人")], urban=False, income=20000)
        P.case("W03", case, note, household=hid, county=county, person=v)

    w03("positive", "监测户, risk not eliminated, 5,000 元 per person per year, nobody 在保", 5000)
    w03("near_miss", "the same household with its head 在保 in 低保", 5000, covered=True)
    w03("near_miss", "income 7,000 元 (above the rural 低保 standard)", 7000)
    w03("near_miss", "risk eliminated", 5000, eliminated=True)

    # W04 household_death_shock -------------------------------------------------------------------------
    def w04(case: str, note: str, age: float, days_ago: int) -> None:
        hd, sp = P.person(county, age + 2), P.person(county, age, male=False)
        hid = dibao([(hd, "本人"), (sp, "配偶")], income=30000)
        P.pay_months(hd, "低保金", -3, 0, 80000)
        P.death(sp, E - timedelta(days=days_ago))
        P.case("W04", case, note, household=hid, county=county, person=hd)

    w04("positive", "a 45-year-old member died 30 days ago", 45, 30)
    w04("near_miss", "a 65-year-old member died 30 days ago (outside 18-59)", 65, 30)
    w04("near_miss", "a 40-year-old member died 120 days ago (outside the 90-day window)", 40, 120)

    # W05 income_below_monitoring_line (8500 元/年) -------------------------------------------------------
    for case, kind, income, note in (
        ("positive", "脱贫户", 8000, "脱贫户 with 8,000 元 per person per year"),
        ("near_miss", "脱贫户", 8600, "脱贫户 with 8,600 元"),
        ("near_miss", "监测户", 8000, "监测户 (already monitored) with 8,000 元"),
    ):
        w, w2 = P.person(county, 55), P.person(county, 25)
        hid = P.rural_household(county, kind, [(w, "本人"), (w2, "子女")], income_year=income)
        P.case("W05", case, note, household=hid, county=county, person=w)
    del m0
    return P
