"""Synthetic people, households and their ID numbers, built column-wise.

Everything here is vectorised (numpy draws, Polars expressions): the same
code writes the 5-second bundled samples and the million-row benchmarks.
ID numbers are valid GB 11643 numbers whose birth date and sex digit agree
with the person's birth date and sex; they are unique across one generation.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import polars as pl

from ..identity import check_character_expr

# Linyi (临沂) districts and counties, plus a few places people were born elsewhere.
COUNTY_NAMES = {"371302": "兰山区", "371324": "莒南县", "371311": "罗庄区", "371321": "沂南县"}
BIRTH_AREAS_ELSEWHERE = ("371311", "371312", "371321", "371322", "371323", "371325", "371326", "371327",
                         "371328", "371329", "370102", "370203", "320106", "410105")
SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段钱汤尹黎易常武乔贺赖龚文")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华玉萍红鹏辉建国志淑珍凤海燕春梅玲雪莉宁欣浩宇晨阳佳琪子豪")

# Sequence numbers 000-899 belong to background people; 900-999 are reserved for planted cases.
BACKGROUND_SEQ_LIMIT = 900


def names(rng: np.random.Generator, n: int) -> np.ndarray:
    """Two- or three-character Chinese names."""
    surname = rng.choice(SURNAMES, n)
    first = rng.choice(GIVEN, n)
    second = np.where(rng.random(n) < 0.6, rng.choice(GIVEN, n), "")
    return np.char.add(np.char.add(surname, first), second)


def birth_dates(rng: np.random.Generator, ages_min: np.ndarray, ages_max: np.ndarray, today: date) -> np.ndarray:
    """Birth dates (numpy datetime64[D]) for ages drawn uniformly in [min, max] years at `today`."""
    # everyone is at least 13 months old, so nobody appears in a delivery of the past year before birth
    ages_min = np.clip(ages_min, 1.1, 105)
    ages_max = np.clip(np.maximum(ages_max, ages_min), 1.1, 105)
    days = rng.uniform(ages_min * 365.25, ages_max * 365.25 + 364)
    born = np.datetime64(today) - days.astype("timedelta64[D]")
    return np.maximum(born, np.datetime64("1910-01-01"))


def birth_areas(rng: np.random.Generator, county: str, n: int, local_share: float = 0.85) -> np.ndarray:
    return np.where(rng.random(n) < local_share, county, rng.choice(BIRTH_AREAS_ELSEWHERE, n))


def assign_ids(people: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Add `id_number` from (birth_area, birth, male), drawing sequence numbers until all are unique.

    Background people draw sequences below 900; a collision (same area, birth
    date and sequence) is re-drawn for the colliding rows only, a handful of
    passes at most.
    """
    n = people.height
    seq = rng.integers(0, BACKGROUND_SEQ_LIMIT // 2, n) * 2 + people["male"].cast(pl.Int64).to_numpy()
    frame = people.with_columns(pl.Series("_seq", seq))
    for _ in range(50):
        frame = frame.with_columns(
            _body=pl.concat_str(
                pl.col("birth_area"), pl.col("birth").dt.strftime("%Y%m%d"), pl.col("_seq").cast(pl.String).str.zfill(3)
            )
        )
        # keep the first holder of a body; re-draw the others
        first_idx = frame.with_row_index("_row").group_by("_body").agg(pl.col("_row").min())["_row"]
        clash = np.ones(n, dtype=bool)
        clash[first_idx.to_numpy()] = False
        if not clash.any():
            break
        redraw = rng.integers(0, BACKGROUND_SEQ_LIMIT // 2, n) * 2 + frame["male"].cast(pl.Int64).to_numpy()
        frame = frame.with_columns(pl.Series("_seq", np.where(clash, redraw, frame["_seq"].to_numpy())))
    else:  # pragma: no cover - would need tens of thousands of people born on one day in one county
        raise RuntimeError("could not draw unique ID numbers")
    return frame.with_columns(id_number=pl.col("_body") + check_character_expr(pl.col("_body"))).drop("_seq", "_body")


def make_people(rng: np.random.Generator, county: str, ages_min, ages_max, today: date, male=None) -> pl.DataFrame:
    """People of one county (columns birth_area, birth, male, name, county) without IDs yet."""
    ages_min = np.asarray(ages_min, dtype=float)
    ages_max = np.asarray(ages_max, dtype=float)
    n = len(ages_min)
    if male is None:
        male = rng.random(n) < 0.5
    return pl.DataFrame(
        {
            "birth_area": birth_areas(rng, county, n),
            "birth": birth_dates(rng, ages_min, ages_max, today),
            "male": np.asarray(male, dtype=bool),
            "name": names(rng, n),
            "county": np.full(n, county),
        }
    ).with_columns(pl.col("birth").cast(pl.Date))


def division_codes(rng: np.random.Generator, county: str, n: int) -> np.ndarray:
    """12-digit statistical division codes: county + town (001-020) + village (001-030)."""
    town = rng.integers(1, 21, n)
    village = rng.integers(1, 31, n)
    return np.char.add(np.char.add(county, np.char.zfill(town.astype(str), 3)), np.char.zfill(village.astype(str), 3))


def random_dates(rng: np.random.Generator, start: date, end: date, n: int) -> np.ndarray:
    span = max((end - start).days, 0)
    return (np.datetime64(start) + rng.integers(0, span + 1, n).astype("timedelta64[D]")).astype("datetime64[D]")


def month_end(d: date) -> date:
    nxt = date(d.year + (d.month == 12), d.month % 12 + 1, 1)
    return nxt - timedelta(days=1)


def add_months(d: date, months: int) -> date:
    """First day of the month `months` after d's month."""
    idx = d.year * 12 + d.month - 1 + months
    return date(idx // 12, idx % 12 + 1, 1)
