"""The background world of one county: residents, assistance households, rural
monitoring households, disability certificates, and a year of their events.

The background is drawn to be *consistent* with the rules (benefits stop when
households exit, subsidies go to eligible people, nobody on a roster dies
unnoticed), so that the rule hits in the samples come from the planted cases
and from the one place real data is noisy on purpose: medical costs and rural
incomes, where proactive discovery (W01, W05) is the point.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import polars as pl

from .population import add_months, assign_ids, division_codes, make_people, month_end, random_dates

URBAN_STANDARD_CENTS = 70000  # 700 元/人/月
RURAL_STANDARD_MONTHLY_CENTS = 53167  # 6380 元/人/年 ÷ 12
DIAGNOSES = ("I10", "E11.9", "J18.9", "C34.9", "I63.9", "N18.5", "K29.7", "M54.5", "J44.1", "C16.9", "F20.9", "I25.1")
RELATION_AGE_OFFSET = {"配偶": (-5, 5), "子女": (-38, -22), "父母": (20, 32), "孙子女": (-62, -45), "兄弟姐妹": (-8, 8), "其他": (-30, 10)}


@dataclass
class Sizes:
    """Counts per county at scale 1; everything scales linearly."""

    residents: int = 3000
    civil_households: int = 220
    rural_households: int = 180
    certificates: int = 260
    claims_per_month: int = 800

    def scaled(self, scale: float) -> "Sizes":
        return Sizes(*(max(int(round(v * scale)), 4) for v in (self.residents, self.civil_households,
                                                               self.rural_households, self.certificates,
                                                               self.claims_per_month)))


def _households(rng, county: str, n: int, today: date, prefix: str, sizes_p) -> tuple[pl.DataFrame, np.ndarray]:
    """Members of `n` households: (frame of members with relation and ages, per-household size)."""
    size = rng.choice(np.arange(1, len(sizes_p) + 1), n, p=sizes_p)
    hh_idx = np.repeat(np.arange(n), size)
    pos = np.concatenate([np.arange(k) for k in size]) if n else np.array([], dtype=int)
    head_age = rng.uniform(28, 85, n)
    r = rng.random(len(hh_idx))
    relation = np.where(pos == 0, "本人",
               np.where((pos == 1) & (r < 0.8), "配偶",
               np.where(r < 0.65, "子女", np.where(r < 0.78, "孙子女", np.where(r < 0.9, "父母", np.where(r < 0.96, "兄弟姐妹", "其他"))))))
    lo = np.zeros(len(hh_idx))
    hi = np.zeros(len(hh_idx))
    for rel, (a, b) in RELATION_AGE_OFFSET.items():
        m = relation == rel
        lo[m], hi[m] = a, b
    base = head_age[hh_idx]
    ages_min = np.where(pos == 0, base, np.clip(base + lo, 0, 100))
    ages_max = np.where(pos == 0, base, np.clip(base + hi, 0, 100))
    people = make_people(rng, county, ages_min, ages_max, today)
    ids = [f"{prefix}{county}{i:06d}" for i in range(n)]
    members = people.with_columns(
        pl.Series("hh", hh_idx), pl.Series("relation", relation), pl.Series("household_id", np.asarray(ids)[hh_idx] if n else [])
    )
    return members, size


def build_county(rng: np.random.Generator, county: str, sizes: Sizes, end: date, urban_share: float) -> dict[str, pl.DataFrame]:
    """Untyped-ID frames of one county (IDs are assigned once for all counties, later)."""
    first_month = add_months(end, -11)
    # -- residents: the insured population (claims, hrss, deaths) ---------------------------------
    residents = make_people(rng, county, np.zeros(sizes.residents), np.full(sizes.residents, 95.0), end)
    residents = residents.with_columns(division_code=pl.Series(division_codes(rng, county, sizes.residents)))

    # -- civil assistance households ----------------------------------------------------------------
    members, hh_size = _households(rng, county, sizes.civil_households, end, "JT", [0.3, 0.3, 0.2, 0.13, 0.07])
    nh = sizes.civil_households
    kind = rng.choice(["低保", "特困", "低保边缘", "刚性支出困难"], nh, p=[0.68, 0.12, 0.13, 0.07])
    # 特困 persons live alone in the roster
    urban = rng.random(nh) < urban_share
    enrolled = random_dates(rng, date(2015, 1, 1), end - timedelta(days=45), nh)
    ends = rng.random(nh) < 0.12
    end_day = enrolled + rng.integers(60, 3000, nh).astype("timedelta64[D]")
    # households stop at a month end, no later than the month before `end`
    end_cap = np.datetime64(month_end(add_months(end, -1)))
    ended = np.where(ends & (end_day <= end_cap), end_day, np.datetime64("NaT"))
    standard = np.where(urban, URBAN_STANDARD_CENTS, RURAL_STANDARD_MONTHLY_CENTS)
    income = np.select(
        [kind == "低保", kind == "特困", kind == "低保边缘"],
        [rng.uniform(0.1, 0.92, nh) * standard, rng.uniform(0, 0.4, nh) * standard, rng.uniform(1.02, 1.45, nh) * standard],
        rng.uniform(0.5, 2.0, nh) * standard,
    ).round(-2).astype(np.int64)
    hh = pl.DataFrame({
        "hh": np.arange(nh), "assistance_type": kind, "urban_rural": np.where(urban, "城市", "农村"),
        "enrolled_on": enrolled, "ended_true": ended, "monthly_income_per_capita": income,
        "household_division": division_codes(rng, county, nh), "_standard": standard,
    }).with_columns(pl.col("enrolled_on").cast(pl.Date), pl.col("ended_true").cast(pl.Date))
    roster = members.join(hh, on="hh", maintain_order="left").filter((pl.col("assistance_type") != "特困") | (pl.col("relation") == "本人"))
    roster = roster.with_columns(household_size=pl.len().over("hh").cast(pl.Int64))
    roster = roster.with_columns(
        monthly_benefit=pl.when(pl.col("assistance_type") == "低保")
        .then(((pl.col("_standard") - pl.col("monthly_income_per_capita")).clip(10000) * pl.col("household_size")) // 100 * 100)
        .when(pl.col("assistance_type") == "特困").then(pl.col("_standard") * 13 // 1000 * 100)
        .otherwise(0)
        .cast(pl.Int64),
        division_code=pl.col("household_division"),
    ).drop("household_division", "_standard")

    # -- rural monitoring households ----------------------------------------------------------------
    rmembers, _ = _households(rng, county, sizes.rural_households, end, "HB", [0.15, 0.3, 0.25, 0.2, 0.1])
    nr = sizes.rural_households
    monitored = rng.random(nr) < 0.25
    eliminated = monitored & (rng.random(nr) < 0.4)
    identified = np.where(monitored, random_dates(rng, date(2021, 3, 1), end - timedelta(days=120), nr),
                          random_dates(rng, date(2016, 1, 1), date(2020, 12, 31), nr))
    elim_on = np.where(eliminated, identified + rng.integers(60, 700, nr).astype("timedelta64[D]"), np.datetime64("NaT"))
    elim_on = np.where(elim_on > np.datetime64(end - timedelta(days=40)), np.datetime64("NaT"), elim_on)
    eliminated = ~np.isnat(elim_on)
    rural_income = np.where(monitored, rng.uniform(6600, 12000, nr), np.where(rng.random(nr) < 0.08, rng.uniform(7000, 8400, nr), rng.uniform(9000, 26000, nr)))
    rh = pl.DataFrame({
        "hh": np.arange(nr),
        "household_kind": np.where(monitored, "监测户", "脱贫户"),
        "monitoring_category": np.where(monitored, rng.choice(["脱贫不稳定户", "边缘易致贫户", "突发严重困难户"], nr), ""),
        "risk_type": np.where(monitored, rng.choice(["因病", "因残", "因学", "因灾", "因意外事故", "因务工就业不稳", "因产业项目失败", "其他"], nr, p=[0.35, 0.2, 0.1, 0.08, 0.07, 0.1, 0.05, 0.05]), ""),
        "identified_on": identified,
        "eliminated_true": elim_on,
        "annual_net_income_per_capita": (rural_income * 100).round(-2).astype(np.int64),
        "household_division": division_codes(rng, county, nr),
    }).with_columns(pl.col("identified_on").cast(pl.Date), pl.col("eliminated_true").cast(pl.Date),
                    pl.col("monitoring_category", "risk_type").replace("", None))
    rural = rmembers.join(rh, on="hh", maintain_order="left").rename({"household_id": "rural_household_id", "household_division": "division_code"})

    # -- disability certificates: a third to roster members, the rest to residents ----------------------
    nc = sizes.certificates
    from_roster = rng.random(nc) < 0.35
    cat = rng.choice(np.arange(1, 8), nc, p=[0.12, 0.12, 0.04, 0.4, 0.12, 0.12, 0.08])
    lvl = rng.choice(np.arange(1, 5), nc, p=[0.15, 0.25, 0.3, 0.3])
    issued = random_dates(rng, date(2008, 1, 1), end - timedelta(days=140), nc)
    status_r = rng.random(nc)
    revoked = np.where(status_r < 0.08, issued + rng.integers(200, 4000, nc).astype("timedelta64[D]"), np.datetime64("NaT"))
    revoked = np.where(revoked > np.datetime64(end - timedelta(days=40)), np.datetime64("NaT"), revoked)
    certs = pl.DataFrame({
        "from_roster": from_roster, "cat": cat, "lvl": lvl, "issued_on": issued, "revoked_on": revoked,
        "moved_out": (status_r > 0.96) & np.isnat(revoked), "pick": rng.random(nc),
    }).with_columns(pl.col("issued_on").cast(pl.Date), pl.col("revoked_on").cast(pl.Date))

    return {"residents": residents, "roster": roster, "rural": rural, "certs": certs, "first_month": first_month}


def assign_all_ids(rng, parts: list[dict[str, pl.DataFrame]]) -> None:
    """One pass of ID assignment over every person of every county, so IDs are unique overall."""
    frames = []
    for ci, p in enumerate(parts):
        for kind in ("residents", "roster", "rural"):
            f = p[kind]
            frames.append(f.select("birth_area", "birth", "male").with_columns(_c=pl.lit(ci), _k=pl.lit(kind), _i=pl.int_range(pl.len())))
    everyone = assign_ids(pl.concat(frames), rng)
    for ci, p in enumerate(parts):
        for kind in ("residents", "roster", "rural"):
            ids = everyone.filter((pl.col("_c") == ci) & (pl.col("_k") == kind)).sort("_i")["id_number"]
            p[kind] = p[kind].with_columns(ids.alias("id_number"))
        heads = p["roster"].filter(pl.col("relation") == "本人").select("household_id", pl.col("id_number").alias("head_id_number"))
        p["roster"] = p["roster"].join(heads, on="household_id", how="left", maintain_order="left")


def attach_certificates(rng, p: dict, county: str) -> pl.DataFrame:
    """Give each certificate a holder (roster member or resident) and derive its number."""
    certs = p["certs"]
    roster_people = p["roster"].unique("id_number", keep="first", maintain_order=True).select("id_number", "name", "division_code")
    residents = p["residents"].select("id_number", "name", "division_code")
    n_r = int(certs["from_roster"].sum())
    n_o = certs.height - n_r
    take_r = roster_people.sample(min(n_r, roster_people.height), seed=int(rng.integers(1 << 30)))
    take_o = residents.sample(min(n_o, residents.height), seed=int(rng.integers(1 << 30)))
    holders = pl.concat([take_r, take_o])
    certs = certs.head(holders.height).with_columns(holders.get_columns())
    return certs.with_columns(
        certificate_id=pl.col("id_number") + pl.col("cat").cast(pl.String) + pl.col("lvl").cast(pl.String),
        county=pl.lit(county),
    )


RECENT_MONTHS = 12  # the history of the bundled samples; its draws never change


def months(end: date, count: int = RECENT_MONTHS) -> list[date]:
    """First days of the `count` months ending with `end`'s month, oldest first."""
    return [add_months(end, -k) for k in range(count - 1, -1, -1)]


def older_months(end: date, count: int) -> list[date]:
    """The months of a `count`-month history that come before the recent year (none for 12), oldest first."""
    return months(end, count)[: max(count - RECENT_MONTHS, 0)]


BASE_CLAIMS_PER_YEAR = 2.7  # claims per claimant and year at the default sizes (800 a month, ~3,550 claimants)
INPATIENT_PER_YEAR = 0.18  # hospital stays per insured person and year
CHRONIC_PER_YEAR = 0.5  # 门诊慢特病 settlements per insured person and year
INPATIENT_SIGMA = 1.1  # spread of a hospital stay's cost (lognormal): the heavy tail


def claims_draws(rng, pool_size: int, m: date, per_month: int, end: date) -> dict[str, np.ndarray]:
    """The random draws of one month of settlements, in the samples' generator's order.

    Mostly residents, a share for roster members (`who` indexes the claimant pool); costs
    heavy-tailed. `increments.claims_rows` draws the months in the history's order (only these
    arrays, to move the stream on and count the rows) and draws a file's months again from the
    saved states, this time made into rows by `claims_frame`.
    """
    last = min(month_end(m), end)
    n = per_month
    who = rng.integers(0, pool_size, n)
    # An insured population, whatever the claims per person (`--claims-factor` multiplies rows, not illness):
    # hospital stays and chronic-disease settlements per person-year are fixed, so their share of the
    # claims falls as claims per person rise, and an outpatient visit costs less the more visits a person
    # makes. Most people then pay a few hundred yuan a year out of pocket, a few percent more than
    # 10,000, and a heavy tail of hospital stays reaches 50,000 (docs/decisions.md, part chinese).
    rate = max(n * 12 / max(pool_size, 1), 1e-9)  # claims per person and year
    inpatient, chronic = min(INPATIENT_PER_YEAR / rate, 0.5), min(CHRONIC_PER_YEAR / rate, 0.4)
    visit = rng.choice(["普通门诊", "门诊慢特病", "住院"], n, p=[1 - inpatient - chronic, chronic, inpatient])
    outpatient = min(1.0, BASE_CLAIMS_PER_YEAR / rate)
    median = np.select([visit == "住院", visit == "门诊慢特病"], [9000.0, 500.0 * outpatient], 120.0 * outpatient)
    sigma = np.where(visit == "住院", INPATIENT_SIGMA, 0.8)
    # the same draws as lognormal(0, sigma): exp(sigma * Z) from one standard-normal stream
    total = np.round(median * rng.lognormal(0, 1.0, n) ** sigma * 100).astype(np.int64) + 1000
    basic = (total * rng.uniform(0.45, 0.75, n)).astype(np.int64)
    critical = np.where((visit == "住院") & (total > 1_500_000), (total * rng.uniform(0.08, 0.18, n)).astype(np.int64), 0)
    assist = np.where(rng.random(n) < 0.15, ((total - basic - critical) * rng.uniform(0.1, 0.5, n)).astype(np.int64), 0)
    settled = random_dates(rng, m, last, n)
    diagnosis = rng.choice(DIAGNOSES, n)
    return {"who": who, "visit": visit, "total": total, "basic": basic, "critical": critical, "assist": assist,
            "settled": settled, "diagnosis": diagnosis}


def claims_frame(draws: dict[str, np.ndarray], county: str, pool: pl.DataFrame, m: date, end: date) -> pl.DataFrame:
    """One month of settlements as rows (claimant, settlement number, costs), from `claims_draws`."""
    n = len(draws["who"])
    total, basic, critical, assist = draws["total"], draws["basic"], draws["critical"], draws["assist"]
    return pool[draws["who"]].with_columns(
        settlement_id=pl.lit(f"JS-{county}-{m:%Y%m}-") + pl.int_range(n).cast(pl.String).str.zfill(7),
        settled_on=pl.Series(draws["settled"]).cast(pl.Date),
        visit_type=pl.Series(draws["visit"]), total_cost=pl.Series(total), basic_insurance_paid=pl.Series(basic),
        critical_illness_paid=pl.Series(critical), medical_assistance_paid=pl.Series(assist),
        out_of_pocket=pl.Series(total - basic - critical - assist),
        diagnosis_code=pl.Series(draws["diagnosis"]),
        _file_date=pl.lit(min(month_end(m), end)),
    )


def active_in(frame: pl.DataFrame, m: date, start_col: str, end_col: str) -> pl.DataFrame:
    """Rows active for the whole month m (started before its end, not ended before its end)."""
    me = month_end(m)
    return frame.filter((pl.col(start_col) <= me) & (pl.col(end_col).is_null() | (pl.col(end_col) >= me)))


def deaths_for(rng, county: str, residents: pl.DataFrame, end: date, former: pl.DataFrame | None = None,
               older_rng: np.random.Generator | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Deaths among residents (none on a roster: roster deaths are planted); a share reported twice.

    0.7% of the residents die in the recent year (drawn from `rng` as always). With a longer history,
    the deaths of the months before it are those of `former` residents (see `former_residents`),
    reported with draws from `older_rng`.
    """
    n = max(int(residents.height * 0.007), 2)
    idx = rng.choice(residents.height, n, replace=False)
    dead = residents[idx].with_columns(died_on=pl.Series(random_dates(rng, add_months(end, -11), end - timedelta(days=2), n)).cast(pl.Date))
    out = _reported(rng, dead, end)
    if former is not None and former.height:
        out = pl.concat([_reported(older_rng, former.select(dead.columns), end), out])
        dead = pl.concat([former.select(dead.columns), dead])
    out = out.select("id_number", "name", "died_on", "source", "_second").with_columns(
        _file_date=pl.col("died_on").dt.month_end().clip(upper_bound=end) , county=pl.lit(county))
    return out, dead.select("id_number")


def former_residents(rng: np.random.Generator, county: str, residents: int, end: date, history: int,
                     taken: pl.Series) -> pl.DataFrame:
    """Residents who died in the months before the recent year (none with 12 months of history).

    Why not let some of today's residents die earlier: their recent-year claims and 人社 rows would
    then vanish, and the recent year's files would no longer be those of the 12-month city. So the
    older months have their own dead, at the recent year's rate (0.7% of residents a year), with ID
    numbers unique against `taken` (every ID already given), dying at least 4 days before the recent
    year so that a second report (0-3 days later) stays in the older files.
    """
    older = older_months(end, history)
    if not older:
        return pl.DataFrame()
    n = max(int(residents * 0.007 * len(older) / RECENT_MONTHS), 2)
    people = make_people(rng, county, np.full(n, 45.0), np.full(n, 95.0), end)
    people = people.with_columns(id_number=ids_beside(rng, people, taken),
                                 division_code=pl.Series(division_codes(rng, county, n)))
    died = random_dates(rng, older[0], add_months(end, -11) - timedelta(days=4), n)
    return people.with_columns(died_on=pl.Series(died).cast(pl.Date))


def ids_beside(rng: np.random.Generator, people: pl.DataFrame, taken: pl.Series) -> pl.Series:
    """ID numbers for `people`, unique among themselves and against `taken`; clashing ones are re-drawn."""
    ids = assign_ids(people, rng)["id_number"]
    for _ in range(50):
        clash = (ids.is_in(taken.implode()) | ids.is_duplicated()).to_numpy()
        if not clash.any():
            return ids
        redrawn = assign_ids(people.filter(pl.Series(clash)), rng)["id_number"]
        ids = ids.scatter(np.flatnonzero(clash), redrawn)
    raise RuntimeError("could not draw unique ID numbers")  # pragma: no cover


def _reported(rng, dead: pl.DataFrame, end: date) -> pl.DataFrame:
    """The death reports of `dead`: one source each, a second source for about 40%."""
    n = dead.height
    first = dead.with_columns(source=pl.Series(rng.choice(["公安户籍注销", "殡葬火化", "医学死亡证明"], n, p=[0.6, 0.25, 0.15])))
    twice = first.filter(pl.Series(rng.random(n) < 0.4))
    second = twice.with_columns(
        source=pl.when(pl.col("source") == "殡葬火化").then(pl.lit("公安户籍注销")).otherwise(pl.lit("殡葬火化")),
        died_on=(pl.col("died_on") + pl.duration(days=pl.Series(rng.integers(0, 4, twice.height)))).clip(upper_bound=end),
        _second=pl.lit(True),
    )
    return pl.concat([first.with_columns(_second=pl.lit(False)), second], how="diagonal")
