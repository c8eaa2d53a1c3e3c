"""Masking and redaction: what keeps ID numbers and names out of sight.

The analysts' pseudonymous keys are made in lowincome/keys.py, a module of its own: ingestion masks
and redacts with this one but never keys, so a change to the keying does not change the ingestion
code's fingerprint (lowincome/fingerprint.py) and re-read every delivery.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import polars as pl

# ---- masking for quarantine records and reports ---------------------------------

_STARS = "*" * 64


def mask_id_expr(col: pl.Expr) -> pl.Expr:
    """`371302199001011234` → `371302**********34`: the county stays, the person does not."""
    s = col.cast(pl.String).str.strip_chars()
    n = s.str.len_chars()
    return (
        pl.when(s.is_null() | (n == 0))
        .then(s)
        .when(n <= 8)
        .then(pl.lit(_STARS).str.slice(0, n))
        .otherwise(s.str.slice(0, 6) + pl.lit(_STARS).str.slice(0, n - 8) + s.str.slice(-2, 2))
    )


def mask_name_expr(col: pl.Expr) -> pl.Expr:
    """`张三丰` → `张**`: a surname alone identifies nobody."""
    s = col.cast(pl.String).str.strip_chars()
    n = s.str.len_chars()
    return pl.when(s.is_null() | (n == 0)).then(s).otherwise(
        s.str.slice(0, 1) + pl.lit(_STARS).str.slice(0, pl.max_horizontal(n - 1, 1))
    )


# ---- masking by content: whatever a value looks like, wherever it ended up ---------------
#
# Masking by column is not enough: a row missing one field shifts a head of household's ID number
# into 家庭编号, a name into 与户主关系, and reasons quote the values of enum and date columns. So
# every text that reaches analysts, reports, logs or messages is also masked by what it contains:
# anything shaped like an ID number, and every name known from the delivery.

_D = "0-9\uff10-\uff19"  # ASCII and full-width digits
_X = "Xx\uff38\uff58"  # the check character X, also full-width
# One pattern for Polars (Rust regex: no look-around) and Python: a run of 15 or more digits,
# optionally ending in X (18-character, 15-digit legacy, digits run together with others), keeps
# its first 6 characters (the county) and last 2; an Excel float (3.71302199001011E+17) keeps
# its first 4 decimals. A run always matches from its first digit (leftmost match), so the
# county kept is the real one.
ID_RUN_PATTERN = f"([{_D}]{{6}})[{_D}]{{7,}}([{_D}][{_D}{_X}])"
ID_FLOAT_PATTERN = f"([0-9][.\uff0e][0-9]{{0,4}})[0-9]*([eE][+]?1[4-8])"
ID_PATTERN = f"{ID_RUN_PATTERN}|{ID_FLOAT_PATTERN}"
_ID_RE = re.compile(ID_PATTERN)

MIN_NAME_CHARS = 2  # a single character is a surname or a word, never enough to mask on
MAX_NAME_CHARS = 12
WITHHELD = "已隐去 (withheld)"  # what analysts see instead of free text


def mask_name(name: str) -> str:
    """`张三丰` → `张**` (the Python twin of `mask_name_expr`)."""
    return name[:1] + "*" * max(len(name) - 1, 1)


def _id_sub(m: re.Match) -> str:
    if m.group(1) is not None:
        return f"{m.group(1)}**********{m.group(2)}"
    return f"{m.group(3)}*****{m.group(4)}"


def known_names(values, exclude=()) -> list[str]:
    """Names worth masking, longest first: distinct, trimmed, at least two characters.

    `exclude` holds words of the delivery format (headers, enum values): a header row repeated
    in the data, or a shifted row, can put those into the 姓名 column, and they must not be
    masked wherever a reason names a column. `values` may be a Polars Series: a city roster
    holds hundreds of thousands of names, so everything but `str.isprintable` runs in Polars.
    """
    if isinstance(values, pl.Series):
        series = values.cast(pl.String)
    else:
        series = pl.Series([None if v is None else str(v) for v in values], dtype=pl.String)
    names = series.drop_nulls().unique().str.strip_chars(_NAME_TRIM).unique()  # a name recurs in many rows
    length = names.str.len_chars()
    names = names.filter(length.is_between(MIN_NAME_CHARS, MAX_NAME_CHARS)
                         & ~names.is_in(pl.Series(sorted(set(exclude)), dtype=pl.String))
                         & ~names.str.contains(f"^(?:{ID_PATTERN})$"))
    ordered = pl.DataFrame({"n": names}).sort(pl.col("n").str.len_chars(), "n", descending=[True, False])["n"]
    return [n for n in ordered.to_list() if n.isprintable()]


_NAME_TRIM = " \t\r\n\u3000\u00a0"


def mask_content_expr(col: pl.Expr, names: list[str] | tuple[str, ...] = (), keep=()) -> pl.Expr:
    """Vectorised content masking of a text column: ID shapes by regex, known names with Aho-Corasick.

    `names` must come from `known_names` (longest first: with leftmost-first matching a longer
    name wins over a shorter one it contains). Words in `keep` (headers, enum values of the
    feed) are matched first and left as they are, so a resident called 孙子 does not turn the
    relation 孙子女 into 孙*女.
    """
    out = (col.cast(pl.String)
           .str.replace_all(ID_RUN_PATTERN, "${1}**********${2}")
           .str.replace_all(ID_FLOAT_PATTERN, "${1}*****${2}"))
    if names:
        kept = sorted({k for k in keep if k and any(n in k for n in names)}, key=lambda k: (-len(k), k))
        out = out.str.replace_many(kept + list(names), kept + [mask_name(n) for n in names], leftmost=True)
    return out


def redact(text: str, names=(), keep=()) -> str:
    """Mask anything in a message that looks like an ID number, and every known name in `names`.

    For Python strings (messages, log lines, GX examples): library errors can quote data. `names`
    may be any iterable of names (a set is fastest); only those of at least two characters count.
    Words in `keep` (the feed's headers and enum values) are never masked.
    """
    out = _ID_RE.sub(_id_sub, str(text))
    if names:
        wanted = names if isinstance(names, (set, frozenset)) else set(names)
        wanted = {n for n in wanted if n and len(n) >= MIN_NAME_CHARS}
        if wanted:
            kept = {k for k in keep if k and any(n in k for n in wanted)}
            lengths = sorted({len(n) for n in wanted | kept}, reverse=True)
            parts, i = [], 0
            while i < len(out):
                for n in lengths:
                    piece = out[i:i + n]
                    if piece in kept or piece in wanted:
                        parts.append(piece if piece in kept else mask_name(piece))
                        i += n
                        break
                else:
                    parts.append(out[i])
                    i += 1
            out = "".join(parts)
    return out


def format_words(spec) -> set[str]:
    """A feed's headers, column names and allowed values: words of the format, never names.

    A shifted or repeated header row can put them into 姓名; they are neither taken for names nor
    masked inside reasons (see `mask_content_expr`'s `keep`).
    """
    words = {c.header for c in spec.columns} | {c.name for c in spec.columns}
    for c in spec.columns:
        words.update(c.values)
        words.update(label for label, _ in c.codes)
    return words


# ---- HTML: delivered values never become markup ------------------------------------------

_HTML_LOOKALIKES = str.maketrans({"<": "\uff1c", ">": "\uff1e", "&": "\uff06", '"': "\uff02", "'": "\uff07", "`": "\uff40"})


def neutralize_html(text: str) -> str:
    """Replace HTML's special characters by their full-width look-alikes (`<` → `＜`).

    For values that a third-party renderer (GX Data Docs) puts into pages, sometimes escaped and
    sometimes not, sometimes inside a <script> block of chart data: look-alikes are inert in every
    one of those contexts and still read the same to an auditor, where `&lt;` would show up
    double-escaped wherever the renderer does escape.
    """
    return str(text).translate(_HTML_LOOKALIKES)


# ---- working storage: identified data, owner only ----------------------------------------

PRIVATE_DIR_MODE = 0o700


def ensure_private_dir(path: Path) -> None:
    """Create `path` owner-only (0700), or put it back to 0700: re-applied by every run.

    Best effort: an unwritable warehouse is reported, in one line, by the first write into it.
    """
    try:
        path.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        if path.stat().st_mode & 0o777 != PRIVATE_DIR_MODE:
            os.chmod(path, PRIVATE_DIR_MODE)
    except OSError:
        pass
