"""Pseudonymous keys: what analysts see instead of ID numbers.

Analysts see `person_key` = HMAC-SHA256(secret, normalised ID number), first 20
hex characters (80 bits: no collision in any realistic population). The HMAC is
computed inside DuckDB from two pre-padded key blocks, so a feed of tens of
millions of rows is keyed set-based instead of row by row in Python.

Kept apart from lowincome/privacy.py (masking, redaction) because ingestion imports that one and
never keys: the ingestion caches are named by the code ingestion imports (lowincome/fingerprint.py).
"""

from __future__ import annotations

import hashlib
import hmac

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

    The padded key blocks are bound as parameters into two variables of this connection (DuckDB's
    `SET VARIABLE`), so the secret never appears in SQL text (and so never in a query log or error).
    The macro reads them with `getvariable`, a constant: an earlier version read them from a one-row
    temporary table, and the subquery made every keyed query a join, a third of the keying's cost.
    """
    ipad, opad = _pads(secret)
    con.execute("SET VARIABLE lowincome_hmac_ipad = $ipad::BLOB", {"ipad": ipad})
    con.execute("SET VARIABLE lowincome_hmac_opad = $opad::BLOB", {"opad": opad})
    con.execute(  # sha256, encode and left pass NULL through: a NULL value has a NULL key
        """
        CREATE OR REPLACE TEMP MACRO pkey(v) AS
            left(sha256(getvariable('lowincome_hmac_opad')
                        || unhex(sha256(getvariable('lowincome_hmac_ipad') || encode(v::VARCHAR)))), %d)
        """ % KEY_HEX_CHARS
    )
