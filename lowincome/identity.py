"""GB 11643-1999 citizen ID numbers (公民身份号码): check characters, normalisation, birth date, sex.

An ID is 18 characters: 6-digit address code, 8-digit birth date (YYYYMMDD),
3-digit sequence (odd = male, even = female) and a check character (ISO 7064
MOD 11-2, `X` for 10). Legacy 15-digit numbers have no century and no check
character; they become 18 characters by inserting `19` after the address code
and computing the check character.

The person key across all departments is the normalised 18-character ID, so
this module decides who is the same person. `normalize_id_expr` is what runs on
feeds of millions of rows (native Polars expressions only); the scalar
`normalize_id` is written separately, in plain Python, for generators and
tests, and the tests prove the two agree.

Problems are described without ever quoting the value: they end up in
quarantine reasons that auditors and analysts read.
"""

from __future__ import annotations

import re
from datetime import date

import polars as pl

from .parsing import STRIP_CHARS, halfwidth, halfwidth_expr

WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CHECK_CHARS = "10X98765432"  # indexed by (weighted sum of the first 17 digits) mod 11
EARLIEST_BIRTH = date(1900, 1, 1)

P_BLANK = "blank"
P_EXCEL = "looks like an Excel number (E+17), digits lost"
P_CHARS = "contains characters other than digits and a final X"
P_LEGACY_X = "15-character number ends in X (legacy 15-digit numbers are all digits)"
P_ADDRESS = "invalid address code"
P_BIRTH = "impossible birth date"
P_CHECK = "check character does not match"


def p_length(n: int) -> str:
    return f"wrong length ({n} characters, expected 18 or legacy 15)"


# ---- scalar helpers --------------------------------------------------------------------


def check_character(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits ('X' stands for 10)."""
    if len(first17) != 17 or not first17.isascii() or not first17.isdigit():
        raise ValueError("the check character needs exactly 17 digits")
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def make_id(area6: str, birth: date, sequence: int) -> str:
    """A valid 18-character ID; `sequence` 0..999, odd = male, even = female."""
    if len(area6) != 6 or not area6.isascii() or not area6.isdigit():
        raise ValueError("area code must be 6 digits")
    if not 0 <= sequence <= 999:
        raise ValueError("sequence must be between 0 and 999")
    body = f"{area6}{birth.year:04d}{birth.month:02d}{birth.day:02d}{sequence:03d}"
    return body + check_character(body)


def to_legacy15(id18: str) -> str:
    """The legacy 15-digit form: drop the century `19` and the check character (births 1900-1999 only)."""
    if len(id18) != 18 or id18[6:8] != "19":
        raise ValueError("only 18-character IDs of people born 1900-1999 have a legacy 15-digit form")
    return id18[:6] + id18[8:17]


def birth_date(id18: str) -> date:
    """Birth date encoded in an 18-character ID (ValueError if it is not a real date)."""
    if len(id18) != 18 or not id18[6:14].isascii() or not id18[6:14].isdigit():
        raise ValueError("not an 18-character ID number")
    return date(int(id18[6:10]), int(id18[10:12]), int(id18[12:14]))


def sex(id18: str) -> str:
    """'男' for an odd sequence number, '女' for an even one."""
    if len(id18) != 18 or not id18[14:17].isascii() or not id18[14:17].isdigit():
        raise ValueError("not an 18-character ID number")
    return "男" if int(id18[16]) % 2 else "女"


_EXCEL_SCIENTIFIC = re.compile(r"[0-9](?:\.[0-9]+)?[eE][+]?[0-9]+")
_EXCEL_FLOAT = re.compile(r"[0-9]+\.0+")
_LEGACY_FLOAT = re.compile(r"[0-9]{15}\.0+")


def normalize_id(raw: str | None, today: date | None = None) -> tuple[str | None, str | None]:
    """(normalised 18-character ID, None) or (None, problem). Same semantics as `normalize_id_expr`."""
    today = today or date.today()
    if raw is None:
        return None, P_BLANK
    s = halfwidth(str(raw)).strip(STRIP_CHARS).replace("x", "X")
    if s == "":
        return None, P_BLANK
    if _LEGACY_FLOAT.fullmatch(s):  # 15 digits survive a float exactly: only the '.0' is Excel's
        s = s.split(".")[0]
    if _EXCEL_SCIENTIFIC.fullmatch(s) or _EXCEL_FLOAT.fullmatch(s):
        return None, P_EXCEL
    if not re.fullmatch(r"[0-9]*X?", s):
        return None, P_CHARS
    if len(s) not in (15, 18):
        return None, p_length(len(s))
    if len(s) == 15 and s.endswith("X"):
        return None, P_LEGACY_X
    if s[0] == "0":
        return None, P_ADDRESS
    body17 = s[:6] + "19" + s[6:] if len(s) == 15 else s[:17]
    try:
        born = date(int(body17[6:10]), int(body17[10:12]), int(body17[12:14]))
    except ValueError:
        return None, P_BIRTH
    if not EARLIEST_BIRTH <= born <= today:
        return None, P_BIRTH
    check = check_character(body17)
    if len(s) == 18 and s[17] != check:
        return None, P_CHECK
    return body17 + check, None


# ---- vectorised ------------------------------------------------------------------------


def _check_char_expr(body17: pl.Expr) -> pl.Expr:
    """Check character of a 17-digit text (null for null or non-digit input).

    Integer arithmetic on the number the 17 digits form (< 2**63) is much
    faster than 17 string slices. `body17` is referenced once.
    """
    return (
        pl.struct(body17.str.to_integer(strict=False).alias("n"))
        .struct.with_fields(r=pl.sum_horizontal([(pl.field("n") // 10 ** (16 - i)) % 10 * w for i, w in enumerate(WEIGHTS)]) % 11)
        .struct.field("r")
        .replace_strict(list(range(11)), list(CHECK_CHARS), return_dtype=pl.String)
    )


def normalize_id_struct(raw: pl.Expr, today: date | None = None) -> pl.Expr:
    """Struct with fields `value` (normalised 18-character ID or null, problem or null) for a text expression.

    Normalisation: surrounding whitespace (also U+3000, U+00A0) trimmed,
    full-width digits and `Ｘ`/`ｘ` made half-width, `x` → `X`, legacy 15-digit
    numbers converted to 18 characters (also when Excel wrote them as `….0`:
    15 digits survive a float). Problems, one per value, first applicable:
    blank; looks like an Excel number (E+17), digits lost; contains characters
    other than digits and a final X; wrong length (N characters, ...); 15-character
    number ends in X; invalid address code (starts with 0); impossible birth
    date (not a calendar date, before 1900-01-01 or after `today`); check
    character does not match.

    The intermediate values live in a struct built stage by stage
    (`struct.with_fields`), so each is computed once: eager frames get no
    common-subexpression elimination, and a plain when/then tree that mentions
    the cleaned text a dozen times would compute it a dozen times.
    """
    today = today or date.today()
    f = pl.field
    cleaned = halfwidth_expr(raw).str.strip_chars(STRIP_CHARS).str.replace_all("x", "X", literal=True)
    # 15 digits survive a float exactly: a legacy number Excel wrote as `….0` only gained the '.0'.
    s = pl.when(f("c").str.contains(r"^[0-9]{15}\.0+$")).then(f("c").str.slice(0, 15)).otherwise(f("c"))
    body17 = f("s").str.replace(r"^([0-9]{6})([0-9]{9})$", "${1}19${2}").str.slice(0, 17)
    born = f("b").str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False, cache=False)
    # The checks yield a small integer first (cheap to combine), turned into words once.
    code = (
        pl.when(f("s").is_null() | (f("n") == 0)).then(1)
        .when(f("s").str.contains(r"^(?:[0-9](?:\.[0-9]+)?[eE]\+?[0-9]+|[0-9]+\.0+)$")).then(2)
        .when(~f("s").str.contains(r"^[0-9]*X?$")).then(3)
        .when((f("n") != 15) & (f("n") != 18)).then(4)
        .when((f("n") == 15) & f("s").str.ends_with("X")).then(5)
        .when(f("s").str.starts_with("0")).then(6)
        .when(f("born").is_null() | (f("born") < pl.lit(EARLIEST_BIRTH)) | (f("born") > pl.lit(today))).then(7)
        .when((f("n") == 18) & (f("s").str.slice(17, 1) != f("check"))).then(8)
        .otherwise(0)
        .cast(pl.UInt8)
    )
    words = {1: P_BLANK, 2: P_EXCEL, 3: P_CHARS, 5: P_LEGACY_X, 6: P_ADDRESS, 7: P_BIRTH, 8: P_CHECK}
    problem = (
        pl.when(f("code") == 4)
        .then(pl.format("wrong length ({} characters, expected 18 or legacy 15)", f("n")))
        .otherwise(f("code").replace_strict(list(words), list(words.values()), default=None, return_dtype=pl.String))
    )
    staged = (
        pl.struct(cleaned.alias("c"))
        .struct.with_fields(s=s)
        .struct.with_fields(n=f("s").str.len_chars(), b=body17)
        .struct.with_fields(born=born, check=_check_char_expr(f("b")))
        .struct.with_fields(code=code)
        .struct.with_fields(
            problem=problem,
            id=pl.when(f("code") == 0).then(f("b") + f("check")).otherwise(pl.lit(None, dtype=pl.String)),
        )
    )
    return staged.struct.with_fields(value=f("id"))


def normalize_id_expr(raw: pl.Expr, today: date | None = None) -> tuple[pl.Expr, pl.Expr]:
    """(normalised ID or null, problem or null); see `normalize_id_struct` for the rules."""
    st = normalize_id_struct(raw, today)
    return st.struct.field("value"), st.struct.field("problem")


check_character_expr = _check_char_expr


_CANON_ID = r"^[1-9][0-9]{16}[0-9X]$"


def fast_id(raw: pl.Expr, today: date) -> tuple[pl.Expr, pl.Expr]:
    """(ID, ok) for a cell already in canonical form: 18 characters, a real birth date, a matching check character.

    For such a cell `normalize_id_struct` gives the cell itself and no problem (see `parsing`'s
    fast section for why this exists).
    """
    born = raw.str.slice(6, 8).str.strptime(pl.Date, "%Y%m%d", strict=False, cache=False)
    ok = (raw.str.contains(_CANON_ID) & born.is_between(pl.lit(EARLIEST_BIRTH), pl.lit(today))
          & (raw.str.slice(17, 1) == _check_char_expr(raw.str.slice(0, 17))))
    return raw, ok
