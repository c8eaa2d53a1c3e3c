"""GB 11643-1999 ID numbers: lowincome.identity against the spec and the independent `id-validator` package."""

from __future__ import annotations

import functools
import random
import re
from datetime import date, timedelta

import polars as pl
import pytest
from id_validator import validator
from id_validator import data as iv_data
from id_validator import helper as iv_helper

from lowincome import identity
from lowincome.identity import (
    P_ADDRESS,
    P_BIRTH,
    P_BLANK,
    P_CHARS,
    P_CHECK,
    P_EXCEL,
    P_LEGACY_X,
    birth_date,
    check_character,
    make_id,
    normalize_id,
    normalize_id_expr,
    p_length,
    sex,
    to_legacy15,
)

# id-validator rebuilds its address tables (a 500 kB literal) on every call; memoise them for the test run.
for _name in ("get_address_code", "get_address_code_timeline", "get_additional_address_code_timeline"):
    setattr(iv_data, _name, functools.lru_cache(maxsize=None)(getattr(iv_data, _name)))

TODAY = date(2026, 10, 31)
SEED = 20261031
FULLWIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


def expr_results(values: list[str | None], today: date = TODAY) -> list[tuple[str | None, str | None]]:
    """Run the Polars expression over `values` (one frame, as the pipeline does)."""
    norm, problem = normalize_id_expr(pl.col("raw"), today=today)
    out = pl.DataFrame({"raw": values}, schema={"raw": pl.String}).select(norm.alias("id"), problem.alias("problem"))
    return list(out.iter_rows())


def scalar_results(values: list[str | None], today: date = TODAY) -> list[tuple[str | None, str | None]]:
    return [normalize_id(v, today=today) for v in values]


def assert_agree(values: list[str | None], today: date = TODAY) -> list[tuple[str | None, str | None]]:
    vec = expr_results(values, today)
    sca = scalar_results(values, today)
    mismatches = [(v, s, e) for v, s, e in zip(values, sca, vec) if s != e]
    assert not mismatches, mismatches[:10]
    return vec


# ---- generated numbers, cross-checked with id-validator -------------------------------------------


def _county_codes() -> list[str]:
    """County-level codes id-validator knows (its `is_valid` checks the address code too)."""
    codes = [c for c in iv_data.get_address_code() if c[4:6] != "00" and c[0] not in "08"]
    return sorted(codes)


def _generated(n: int, seed: int = SEED) -> list[tuple[str, date, int, str]]:
    """(area, birth, sequence, id18) for random areas, births 1900-01-01..2025-12-31 and sequences."""
    rng = random.Random(seed)
    areas = _county_codes()
    first, last = date(1900, 1, 1).toordinal(), date(2025, 12, 31).toordinal()
    out = []
    for _ in range(n):
        area = rng.choice(areas)
        birth = date.fromordinal(rng.randint(first, last))
        seq = rng.randint(0, 999)
        out.append((area, birth, seq, make_id(area, birth, seq)))
    return out


@pytest.fixture(scope="module")
def generated() -> list[tuple[str, date, int, str]]:
    return _generated(6000)


def _wrong_check(id18: str, rng: random.Random) -> str:
    return id18[:17] + rng.choice([c for c in "0123456789X" if c != id18[17]])


def test_check_character_matches_id_validator(generated):
    assert len(generated) >= 5000
    for _, _, _, id18 in generated:
        assert check_character(id18[:17]) == iv_helper.generator_check_bit(id18[:17])
        assert validator.is_valid(id18), id18
    # every check character occurs, X included
    assert {id18[17] for *_, id18 in generated} == set("0123456789X")


def test_generated_numbers_are_accepted_by_both(generated):
    ids = [g[3] for g in generated]
    results = assert_agree(ids)
    assert results == [(i, None) for i in ids]
    assert all(validator.is_valid(i) for i in ids)


def test_wrong_check_character_is_rejected_by_both(generated):
    rng = random.Random(SEED + 1)
    mutated = [_wrong_check(g[3], rng) for g in generated]
    results = assert_agree(mutated)
    assert results == [(None, P_CHECK)] * len(mutated)
    assert not any(validator.is_valid(m) for m in mutated)


def test_single_digit_errors_are_rejected_by_both(generated):
    """MOD 11-2 catches every single substitution; id-validator must agree it is invalid."""
    rng = random.Random(SEED + 2)
    mutated = []
    for _, _, _, id18 in generated:
        pos = rng.randrange(17)
        digit = rng.choice([d for d in "0123456789" if d != id18[pos]])
        mutated.append(id18[:pos] + digit + id18[pos + 1 :])
    results = assert_agree(mutated)
    assert all(norm is None and problem is not None for norm, problem in results)
    assert not any(validator.is_valid(m) for m in mutated)


def test_legacy_15_conversion_matches_id_validator(generated):
    legacy = [(g[3], to_legacy15(g[3])) for g in generated if g[1].year < 2000]
    assert len(legacy) > 3000
    results = assert_agree([old for _, old in legacy])
    for (id18, old), (norm, problem) in zip(legacy, results):
        assert len(old) == 15 and old.isdigit()
        assert (norm, problem) == (id18, None)
        assert validator.upgrade_id(old) == id18


# ---- scalar helpers -------------------------------------------------------------------------------


def test_known_check_characters():
    # The worked example of GB 11643-1999 and a classic one with check digit 4.
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"
    with pytest.raises(ValueError):
        check_character("1101051949123100")


def test_make_id_birth_and_sex():
    male = make_id("371302", date(1990, 1, 1), 123)
    female = make_id("371302", date(1990, 1, 1), 124)
    assert male.startswith("37130219900101123") and len(male) == 18
    assert sex(male) == "男" and sex(female) == "女"
    assert birth_date(male) == date(1990, 1, 1)
    assert make_id("110105", date(1949, 12, 31), 2) == "11010519491231002X"
    with pytest.raises(ValueError):
        make_id("37130", date(1990, 1, 1), 1)
    with pytest.raises(ValueError):
        make_id("371302", date(1990, 1, 1), 1000)


def test_to_legacy15():
    id18 = make_id("371302", date(1985, 6, 7), 45)
    assert to_legacy15(id18) == "371302850607045"
    assert normalize_id(to_legacy15(id18)) == (id18, None)
    with pytest.raises(ValueError):
        to_legacy15(make_id("371302", date(2001, 6, 7), 45))


def test_birth_date_of_an_impossible_number_raises():
    with pytest.raises(ValueError):
        birth_date("371302199002301234")


# ---- normalisation cases ------------------------------------------------------------------------

VALID = make_id("371302", date(1990, 1, 1), 123)  # 371302199001011233
VALID_X = make_id("110105", date(1949, 12, 31), 2)  # ends in X
LEGACY = to_legacy15(VALID)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (VALID, VALID),
        (VALID_X, VALID_X),
        (VALID_X.lower(), VALID_X),
        (VALID_X[:-1] + "ｘ", VALID_X),
        (VALID_X[:-1] + "Ｘ", VALID_X),
        (VALID.translate(FULLWIDTH_DIGITS), VALID),
        (f"  {VALID}  ", VALID),
        (f"\u3000{VALID}\u3000", VALID),
        (f"\u00a0{VALID}\t\r\n", VALID),
        (f"\ufeff{VALID}", VALID),
        (LEGACY, VALID),
        (f" {LEGACY.translate(FULLWIDTH_DIGITS)} ", VALID),
        (LEGACY + ".0", VALID),  # 15 digits survive Excel's float: only '.0' was added
    ],
)
def test_accepted_forms(raw, expected):
    assert normalize_id(raw, today=TODAY) == (expected, None)
    assert expr_results([raw]) == [(expected, None)]


@pytest.mark.parametrize(
    "raw, problem",
    [
        (None, P_BLANK),
        ("", P_BLANK),
        ("   ", P_BLANK),
        ("\u3000", P_BLANK),
        ("3.71302E+17", P_EXCEL),
        ("3.71302199001011E+17", P_EXCEL),
        ("3.71302199001011e+17", P_EXCEL),
        ("3.71302E17", P_EXCEL),
        ("371302199001011000.0", P_EXCEL),
        ("371302199001011000.00", P_EXCEL),
        ("37130219900101123Y", P_CHARS),
        ("3713021990010112X3", P_CHARS),
        ("371302-19900101-1233", P_CHARS),
        ("371302 199001011233", P_CHARS),
        ("张三", P_CHARS),
        ("37130219900101", p_length(14)),
        ("3713021990010112333", p_length(19)),
        ("37130219900101123", p_length(17)),
        ("37130290010112X", P_LEGACY_X),
        ("071302199001011234", P_ADDRESS),
        ("371302199002301230", P_BIRTH),  # 1990-02-30
        ("371302199013011230", P_BIRTH),  # month 13
        ("371302900230123", P_BIRTH),  # legacy, 1990-02-30
        (make_id("371302", date(1899, 12, 31), 1), P_BIRTH),
        (make_id("371302", date(2026, 11, 1), 1), P_BIRTH),  # after TODAY
        (VALID[:-1] + "0", P_CHECK),
        (VALID_X[:-1] + "1", P_CHECK),
    ],
)
def test_problems(raw, problem):
    assert normalize_id(raw, today=TODAY) == (None, problem)
    assert expr_results([raw]) == [(None, problem)]


def test_wrong_length_message():
    assert p_length(14) == "wrong length (14 characters, expected 18 or legacy 15)"


def test_today_is_respected():
    born_yesterday = make_id("371302", TODAY - timedelta(days=1), 7)
    born_today = make_id("371302", TODAY, 7)
    born_tomorrow = make_id("371302", TODAY + timedelta(days=1), 7)
    values = [born_yesterday, born_today, born_tomorrow]
    assert assert_agree(values) == [(born_yesterday, None), (born_today, None), (None, P_BIRTH)]
    assert assert_agree(values, today=TODAY + timedelta(days=1))[2] == (born_tomorrow, None)


def test_today_defaults_to_the_real_date():
    future = make_id("371302", date.today() + timedelta(days=1), 7)
    past = make_id("371302", date.today() - timedelta(days=1), 7)
    norm, problem = normalize_id_expr(pl.col("raw"))
    out = pl.DataFrame({"raw": [past, future]}).select(norm, problem.alias("p"))
    assert out.rows() == [(past, None), (None, P_BIRTH)]
    assert normalize_id(future) == (None, P_BIRTH)


# ---- scalar and vectorised agree ------------------------------------------------------------------


def _messy(rng: random.Random, ids: list[str]) -> list[str | None]:
    """Valid numbers spoiled the ways deliveries spoil them, plus random junk."""
    alphabet = "0123456789" * 4 + "Xx. E+-０１９ｘＸ\u3000\u00a0\t/"
    out: list[str | None] = [None, "", " "]
    for id18 in ids:
        kind = rng.randrange(12)
        if kind == 0:
            out.append(id18.lower())
        elif kind == 1:
            out.append(" " * rng.randrange(3) + id18 + "\u3000" * rng.randrange(2))
        elif kind == 2:
            out.append(id18.translate(FULLWIDTH_DIGITS))
        elif kind == 3 and id18[6:8] == "19":
            legacy = to_legacy15(id18)
            out.append(rng.choice([legacy, legacy + ".0", legacy + " ", legacy[:14] + "X"]))
        elif kind == 4:
            out.append(f"{int(id18[:17]) / 10**16:.5f}E+17")
        elif kind == 5:
            out.append(id18[:15] + "000.0")
        elif kind == 6:
            pos = rng.randrange(18)
            out.append(id18[:pos] + id18[pos + 1 :])
        elif kind == 7:
            pos = rng.randrange(18)
            out.append(id18[:pos] + rng.choice(alphabet) + id18[pos:])
        elif kind == 8:
            out.append(id18[:6] + f"{rng.randrange(10**8):08d}" + id18[14:])
        elif kind == 9:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randrange(25))))
        elif kind == 10:
            out.append(rng.choice("0123456789") + id18[1:])
        else:
            out.append(id18)
    return out


def test_scalar_and_polars_agree_on_messy_input(generated):
    rng = random.Random(SEED + 3)
    values = _messy(rng, [g[3] for g in generated] * 3)
    results = assert_agree(values)
    problems = {p for _, p in results if p is not None}
    # the mixture exercises every kind of problem
    for expected in (P_BLANK, P_EXCEL, P_CHARS, P_LEGACY_X, P_ADDRESS, P_BIRTH, P_CHECK):
        assert expected in problems
    assert any(p.startswith("wrong length (") for p in problems)
    # and whatever is accepted is a valid 18-character ID according to id-validator too
    accepted = [n for n, _ in results if n is not None]
    assert len(accepted) > len(values) / 3
    assert all(re.fullmatch(r"[1-9][0-9]{16}[0-9X]", n) for n in accepted)
    known_areas = set(_county_codes())
    assert all(validator.is_valid(n) for n in accepted if n[:6] in known_areas)


def test_problems_never_contain_the_value(generated):
    rng = random.Random(SEED + 4)
    values = _messy(rng, [g[3] for g in generated[:2000]])
    fixed = {P_BLANK, P_EXCEL, P_CHARS, P_LEGACY_X, P_ADDRESS, P_BIRTH, P_CHECK}
    for raw, (_, problem) in zip(values, expr_results(values)):
        if problem is None:
            continue
        assert problem in fixed or re.fullmatch(r"wrong length \([0-9]{1,2} characters, expected 18 or legacy 15\)", problem)
        stripped = (raw or "").strip()
        if len(stripped) >= 3:
            assert stripped not in problem


# ---- the expression in a pipeline -------------------------------------------------------------------


def test_expression_types_and_lazy_use():
    values = [VALID, "bad", None, LEGACY]
    norm, problem = normalize_id_expr(pl.col("raw"), today=TODAY)
    lf = pl.LazyFrame({"raw": values}).with_columns(id=norm, problem=problem)
    out = lf.collect()
    assert out.schema["id"] == pl.String and out.schema["problem"] == pl.String
    assert out["id"].to_list() == [VALID, None, None, VALID]
    assert out["problem"].to_list() == [None, P_CHARS, P_BLANK, None]


def test_non_text_column_is_read_as_text():
    """A parquet delivery may carry the IDs as integers; the expression casts to text first."""
    norm, problem = normalize_id_expr(pl.col("raw"), today=TODAY)
    out = pl.DataFrame({"raw": [int(VALID)]}).select(norm.alias("id"), problem.alias("p"))
    assert out.row(0) == (VALID, None)


def test_no_python_row_functions_in_the_module():
    source = open(identity.__file__, encoding="utf-8").read()
    for banned in ("map_elements", "map_batches", "apply(", "map_rows"):
        assert banned not in source
