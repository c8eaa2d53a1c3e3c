"""Pseudonymous keys, masking and redaction: what keeps ID numbers and names out of sight.

Analysts see `person_key` = HMAC-SHA256(secret, normalised ID number), first 20
hex characters (80 bits: no collision in any realistic population). The HMAC is
computed inside DuckDB from two pre-padded key blocks, so a feed of tens of
millions of rows is keyed set-based instead of row by row in Python.
"""

from __future__ import annotations

import hashlib
import hmac
import re

import polars as pl

KEY_HEX_CHARS = 20
_BLOCK = 64  # SHA-256 block size in bytes


def _pads(secret: str) -> tuple[bytes, bytes]:
    key = secret.encode("utf-8")
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def pseudonym(secret: str, value: str, namespace: str = "") -> str:
    """Python reference of the SQL key; used for single values and to test the SQL."""
    digest = hmac.new(secret.encode("utf-8"), (namespace + value).encode("utf-8"), hashlib.sha256)
    return digest.hexdigest()[:KEY_HEX_CHARS]


def install_key_macro(con, secret: str) -> None:
    """Create `pkey(text)` in a DuckDB connection: the HMAC pseudonym of a text value.

    The padded key blocks are written into a temporary table so the secret
    never appears in SQL text (and so never in a query log or error).
    """
    ipad, opad = _pads(secret)
    con.execute("CREATE OR REPLACE TEMP TABLE _hmac_pads AS SELECT $ipad::BLOB AS ipad, $opad::BLOB AS opad",
                {"ipad": ipad, "opad": opad})
    con.execute(
        """
        CREATE OR REPLACE TEMP MACRO pkey(v) AS (
            SELECT CASE WHEN v IS NULL THEN NULL ELSE
                left(sha256(opad || unhex(sha256(ipad || encode(v::VARCHAR)))), %d) END
            FROM _hmac_pads
        )
        """ % KEY_HEX_CHARS
    )


# ---- masking for quarantine records and reports ---------------------------------

def mask_id_expr(col: pl.Expr) -> pl.Expr:
    """`371302199001011234` → `371302**********34`: the county stays, the person does not."""
    s = col.cast(pl.String).str.strip_chars()
    n = s.str.len_chars()
    return (
        pl.when(s.is_null() | (n == 0))
        .then(s)
        .when(n <= 8)
        .then(pl.lit("*").repeat_by(n).list.join(""))
        .otherwise(s.str.slice(0, 6) + pl.lit("*").repeat_by(n - 8).list.join("") + s.str.slice(-2, 2))
    )


def mask_name_expr(col: pl.Expr) -> pl.Expr:
    """`张三丰` → `张**`: a surname alone identifies nobody."""
    s = col.cast(pl.String).str.strip_chars()
    n = s.str.len_chars()
    return pl.when(s.is_null() | (n == 0)).then(s).otherwise(
        s.str.slice(0, 1) + pl.lit("*").repeat_by(pl.max_horizontal(n - 1, 1)).list.join("")
    )


_ID_LIKE = re.compile(r"(?<![0-9０-９])[0-9０-９]{14,17}[0-9０-９XxＸｘ](?![0-9０-９])|[0-9]\.[0-9]+[eE]\+?1[4-8]")


def redact(text: str) -> str:
    """Mask anything in a message that looks like an ID number (library errors can quote data)."""
    return _ID_LIKE.sub(lambda m: m.group(0)[:6] + "*" * max(len(m.group(0)) - 6, 1), str(text))
