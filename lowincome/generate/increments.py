"""The increment feeds (claims, payments, 人社 rows) of one county, drawn when a delivery file needs them.

Why: these rows grow with scale × months. Held whole, as the generator first did, the city tier
(`--scale 250 --claims-factor 6.25`) peaked at 15.3 GB with 12 months and did not fit in 24 GB with
24. Here each county's history is a list of months that can be rebuilt on demand, so the generator
holds the population (residents, rosters, certificates, deaths) plus the one file it is writing.

Byte-identity with the whole-world generator is the constraint that shapes this module:
- Claims are random draws. The months are drawn once while the world is built, in the order the
  whole-world generator drew them, so every later draw from the same stream is unchanged; the state
  of the stream before each month is kept (a few hundred bytes), and a file's months are drawn again
  from those states when the file is written. Same states, same draws, same rows.
- Payments and 人社 rows draw nothing per month: they are derived again from the population.
- Each file's rows come in the order the whole-world generator had them (its concatenation order),
  so a stable sort on the key gives the same file even where keys tie.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

import numpy as np
import polars as pl

from .background import active_in, claims_draws, claims_frame, months, older_months
from .population import month_end


@dataclass
class MonthlyRows:
    """One county's rows of one increment feed, month by month, in the whole-world generator's order.

    `file_dates[i]` is the delivery date (`_file_date`) every row of month i carries, `rows[i]` how
    many rows month i has, and `build(indices)` the rows of those months (ascending indices), in the
    order they had in the whole history.
    """

    county: str
    file_dates: list[date]
    rows: list[int]
    build: Callable[[list[int]], pl.DataFrame]


def _restored(state: dict) -> np.random.Generator:
    """A generator at a saved state (the bit generator of `default_rng`: PCG64)."""
    gen = np.random.Generator(np.random.PCG64())
    gen.bit_generator.state = state
    return gen


def _claims_alive(claims: pl.DataFrame, died: pl.DataFrame) -> pl.DataFrame:
    """Claims not settled after the claimant's death (nobody claims from the grave)."""
    return (claims.join(died, on="id_number", how="left", maintain_order="left")
            .filter(pl.col("died_on").is_null() | (pl.col("settled_on") <= pl.col("died_on"))).drop("died_on"))


def claims_rows(rng: np.random.Generator, county: str, residents: pl.DataFrame, roster: pl.DataFrame, per_month: int,
                end: date, history: int, older_rng: np.random.Generator, former: pl.DataFrame | None,
                died: pl.DataFrame) -> MonthlyRows:
    """`history` months of settlements, drawn now to move the streams on, kept as the streams' states.

    The recent year is drawn from `rng` as it always was; the months before it (history > 12) from
    `older_rng`, with the `former` residents (who died before the recent year) among the claimants,
    so a longer history leaves every draw of the recent year, and of everything drawn after it,
    unchanged: the same city, with more history behind it. Claims settled after the claimant's
    death are dropped.
    """
    pool = pl.concat([residents.select("id_number", "name", "division_code"),
                      roster.unique("id_number", keep="first", maintain_order=True).select("id_number", "name", "division_code")])
    older_pool = pool if former is None or former.is_empty() else pl.concat([pool, former.select(pool.columns)])
    plan = [(older_rng, older_pool, m) for m in older_months(end, history)] + [(rng, pool, m) for m in months(end)]
    # when each claimant of a pool died (NaT: alive), to count a month's rows from its draws alone
    death_of = {id(p): p.select("id_number").join(died, on="id_number", how="left", maintain_order="left")["died_on"]
                .cast(pl.Datetime("ms")).to_numpy().astype("datetime64[D]") for p in (pool, older_pool)}
    states, rows, dates = [], [], []
    for gen, pool_, m in plan:
        states.append(gen.bit_generator.state)
        drawn = claims_draws(gen, pool_.height, m, per_month, end)
        death = death_of[id(pool_)][drawn["who"]]
        rows.append(int((np.isnat(death) | (drawn["settled"] <= death)).sum()))
        dates.append(min(month_end(m), end))

    def build(indices: list[int]) -> pl.DataFrame:
        drawn = [claims_frame(claims_draws(_restored(states[i]), plan[i][1].height, plan[i][2], per_month, end),
                              county, plan[i][1], plan[i][2], end) for i in indices]
        return _claims_alive(pl.concat(drawn).with_columns(county=pl.lit(county)), died)

    return MonthlyRows(county, dates, rows, build)


def hrss_rows(rng: np.random.Generator, county: str, residents: pl.DataFrame, end: date, history: int,
              died: pl.DataFrame) -> MonthlyRows:
    """Pensions for retired residents, wages for employed ones, some unemployment benefit, over `history` months.

    Who and how much is drawn per person now; the monthly rows are made per file.

    The whole-world generator listed them person group by person group, each over every month; a
    file's rows keep that order (group, then month), and the rows of the dead stop with their month.
    """
    age = (pl.lit(end) - pl.col("birth")).dt.total_days() / 365.25
    pensioners = residents.filter((age >= 60) & pl.Series(rng.random(residents.height) < 0.3))
    workers = residents.filter((age >= 22) & (age < 60) & pl.Series(rng.random(residents.height) < 0.18))
    jobless = residents.filter((age >= 22) & (age < 60) & pl.Series(rng.random(residents.height) < 0.01))
    groups = []
    for people, item, lo, hi in ((pensioners, "城镇职工养老金", 1800, 4500), (workers, "就业登记工资", 2200, 8000), (jobless, "失业保险金", 1400, 1800)):
        base = (rng.uniform(lo, hi, people.height) * 100).round(-2).astype(np.int64)
        groups.append((people.select("id_number", "name"), item, base))
    history_months = months(end, history)
    died_month = died.with_columns(dm=pl.col("died_on").dt.strftime("%Y-%m"))

    def build(indices: list[int]) -> pl.DataFrame:
        frames = []
        for people, item, base in groups:
            for i in indices:
                m = history_months[i]
                frames.append(people.with_columns(item=pl.lit(item), month=pl.lit(f"{m:%Y-%m}"), amount=pl.Series(base),
                                                  _file_date=pl.lit(min(month_end(m), end))))
        hrss = pl.concat(frames).with_columns(county=pl.lit(county))
        hrss = hrss.join(died_month, on="id_number", how="left", maintain_order="left")
        return hrss.filter(pl.col("dm").is_null() | (pl.col("month") <= pl.col("dm"))).drop("died_on", "dm")

    dates = [min(month_end(m), end) for m in history_months]
    return MonthlyRows(county, dates, [build([i]).height for i in range(len(history_months))], build)


def payments_rows(county: str, roster: pl.DataFrame, certs: pl.DataFrame, end: date, history: int) -> MonthlyRows:
    """Benefits paid month by month, over `history` months, to those entitled that month and to nobody else; no draws."""
    eligible_care = (pl.col("lvl") <= 2) | pl.col("cat").is_in([5, 6])
    paid_months = [m for m in months(end, history) if date(m.year, m.month, 20) <= end]

    def build(indices: list[int]) -> pl.DataFrame:
        rows = []
        for i in indices:
            m = paid_months[i]
            active = active_in(roster, m, "enrolled_on", "ended_true")
            heads = active.filter((pl.col("relation") == "本人") & (pl.col("assistance_type") == "低保"))
            rows.append(heads.select("id_number", "name", "division_code", pl.lit("低保金").alias("subsidy_type"), pl.col("monthly_benefit").alias("amount"), pl.lit(m).alias("_m")))
            tk = active.filter(pl.col("assistance_type") == "特困")
            rows.append(tk.select("id_number", "name", "division_code", pl.lit("特困供养金").alias("subsidy_type"), pl.col("monthly_benefit").alias("amount"), pl.lit(m).alias("_m")))
            valid = certs.filter((pl.col("issued_on") <= month_end(m)) & (pl.col("revoked_on").is_null() | (pl.col("revoked_on") > month_end(m))) & ~pl.col("moved_out"))
            dibao_members = active.filter(pl.col("assistance_type") == "低保").select("id_number").unique(maintain_order=True)
            living = valid.join(dibao_members, on="id_number", maintain_order="left").filter(pl.col("pick") < 0.9)
            rows.append(living.select("id_number", "name", "division_code", pl.lit("困难残疾人生活补贴").alias("subsidy_type"), pl.lit(8000, dtype=pl.Int64).alias("amount"), pl.lit(m).alias("_m")))
            care = valid.filter(eligible_care & (pl.col("pick") < 0.92))
            rows.append(care.select("id_number", "name", "division_code", pl.lit("重度残疾人护理补贴").alias("subsidy_type"), pl.lit(9000, dtype=pl.Int64).alias("amount"), pl.lit(m).alias("_m")))
        pay = pl.concat(rows).filter(pl.col("amount") > 0)
        return pay.with_columns(
            pay_month=pl.col("_m").dt.strftime("%Y-%m"),
            _file_date=pl.col("_m").dt.offset_by("19d"),
            county=pl.lit(county),
        ).with_columns(
            payment_id=pl.lit(f"FF-{county}-") + pl.col("_m").dt.strftime("%Y%m-") + pl.int_range(pl.len()).over("_m").cast(pl.String).str.zfill(6)
        ).drop("_m")

    dates = [date(m.year, m.month, 20) for m in paid_months]
    return MonthlyRows(county, dates, [build([i]).height for i in range(len(paid_months))], build)


def _quarter(file_date: date, end: date) -> int:
    """The delivery a month's rows go to (see `deliveries.quarterly_backlog`): 0, 1, 2 monthly, then per quarter."""
    k = end.year * 12 + end.month - (file_date.year * 12 + file_date.month)
    return k // 3 * 3 if k >= 3 else k


def increment_files(source: MonthlyRows, planted: pl.DataFrame | None, end: date) -> list[tuple[date, Callable[[], pl.DataFrame]]]:
    """(extraction date, rows on demand) of each delivery of one county's increment, oldest first.

    The same files `deliveries.quarterly_backlog` cuts from the whole history: rows dated after `end`
    are never delivered, a file is dated by the latest row it holds, and the planted rows of the
    county come after the background ones.
    """
    groups: dict[int, dict] = {}
    for i, (fd, n) in enumerate(zip(source.file_dates, source.rows)):
        if n > 0 and fd <= end:
            g = groups.setdefault(_quarter(fd, end), {"months": [], "dates": []})
            g["months"].append(i)
            g["dates"].append(fd)
    if planted is not None and planted.height:
        planted = planted.filter(pl.col("_file_date") <= end)
        quarter_of = {fd: _quarter(fd, end) for fd in planted["_file_date"].unique().to_list()}
        for fd, q in quarter_of.items():
            groups.setdefault(q, {"months": [], "dates": []})["dates"].append(fd)
        planted = planted.with_columns(_quarter=pl.col("_file_date").replace_strict(quarter_of, return_dtype=pl.Int64))

    def maker(indices: list[int], quarter: int, file_date: date) -> Callable[[], pl.DataFrame]:
        def make() -> pl.DataFrame:
            parts = [source.build(indices)] if indices else []
            if planted is not None and planted.height:
                mine = planted.filter(pl.col("_quarter") == quarter).drop("_quarter")
                if mine.height:
                    parts.append(mine)
            frame = parts[0] if len(parts) == 1 else pl.concat(parts, how="diagonal_relaxed")
            return frame.with_columns(_file_date=pl.lit(file_date))
        return make

    files = [(max(g["dates"]), maker(g["months"], q, max(g["dates"]))) for q, g in groups.items()]
    return sorted(files, key=lambda t: t[0])
