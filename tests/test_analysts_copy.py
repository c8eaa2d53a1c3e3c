"""The analysts' copy of a staging part, written by Polars beside SQL-computed keys, equals the all-SQL copy.

`lowincome.publish._write_analyst_part` lets DuckDB compute only `source_row`, the keys and the
pattern-checked codes, copies the other columns from the part and writes with Polars (decision 177).
These tests hold it to the plain `COPY (analyst_copy_sql(...))` it replaced, value for value, type
for type and row for row, on a part with awkward cells, rows out of order and a shared key table.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb
import polars as pl
import pyarrow.parquet as pq
import pytest

from lowincome.feeds import FEEDS
from lowincome.keys import install_key_macro
from lowincome.publish import _PART_KEYS, _write_analyst_part, analyst_copy_sql, sql_text

SECRET = "k" * 32
CLAIMS = FEEDS["medical_claims"]


def _claims_part(path, order):
    money = pl.Decimal(18, 2)
    rows = {
        "source_file": ["medical_claims_371302_20261031.csv"] * 6,
        "source_row": [1, 2, 3, 4, 5, 6],
        "file_sha256": ["ab" * 32] * 6,
        "delivered_on": [date(2026, 10, 31)] * 6,
        "file_county": ["371302"] * 6,
        "settlement_id": ["S1", "S2", "S3", "S4", "S5", "S6"],
        "id_number": ["371302199001011234", None, "371302199001011234", " 37130219900101123X", "371302198512120021", ""],
        "name": ["张三", "李四", "张三", "王五", "赵六", "钱七"],
        "division_code": ["371302001"] * 6,
        "county_code": ["371302"] * 6,
        "settled_on": [date(2026, 10, d) for d in (1, 2, 3, 4, 5, 6)],
        "visit_type": ["门诊", "住院", "门诊", "门诊", "住院", "门诊"],
        "total_cost": [Decimal("100.00")] * 6,
        "basic_insurance_paid": [Decimal("50.00")] * 6,
        "critical_illness_paid": [Decimal("0.00")] * 6,
        "medical_assistance_paid": [Decimal("0.00")] * 6,
        "out_of_pocket": [Decimal("50.00")] * 6,
        # an ICD-10 code, lower case with spaces, a clerk's note with a name and an ID, a look-alike
        # letter (U+017F, which some regex engines case-fold to 's'), empty, missing
        "diagnosis_code": ["J18.9", " i10 ", "张三 110101199003071234 复诊", "ſ01", "", None],
    }
    frame = pl.DataFrame(rows).with_columns(pl.col(c).cast(money) for c in
                                            ("total_cost", "basic_insurance_paid", "critical_illness_paid",
                                             "medical_assistance_paid", "out_of_pocket"))
    frame[order].write_parquet(path)
    return [f.name for f in pq.read_schema(path)]


def _both(tmp_path, order, shared: bool):
    source = tmp_path / "part.parquet"
    columns = _claims_part(source, order)
    con = duckdb.connect()
    install_key_macro(con, SECRET)
    keys = None
    if shared:  # the night's key table, as `_copy_parts` builds it for several parts
        con.execute(f"CREATE TEMP TABLE {_PART_KEYS} AS SELECT v, pkey(v) AS k FROM "
                    f"(SELECT DISTINCT id_number AS v FROM read_parquet({sql_text(str(source))})) WHERE v IS NOT NULL")
        keys = _PART_KEYS
    sql_copy = tmp_path / "sql.parquet"
    con.execute(f"COPY ({analyst_copy_sql(CLAIMS, columns, sql_text(str(source)), keys)}) TO '{sql_copy}' (FORMAT parquet)")
    written = tmp_path / "published" / "part.analysts.parquet"
    _write_analyst_part(con, CLAIMS, columns, source, written, keys)
    return pl.read_parquet(sql_copy), pl.read_parquet(written), written


@pytest.mark.parametrize("shared", [False, True])
@pytest.mark.parametrize("order", [[0, 1, 2, 3, 4, 5], [4, 0, 5, 2, 1, 3]])
def test_polars_written_copy_equals_the_sql_copy(tmp_path, order, shared):
    expected, got, written = _both(tmp_path, order, shared)
    assert got.schema == expected.schema  # names, order and types of the columns
    assert got.equals(expected)  # same values, nulls and row order (source_row order)
    assert got["source_row"].to_list() == [1, 2, 3, 4, 5, 6]
    assert "id_number" not in got.columns and "name" not in got.columns
    # the codes: kept where they have the ICD-10 shape, upper-cased and trimmed; else NULL. The check is
    # DuckDB's (RE2, case-insensitive, Unicode case folding: U+017F matches 's', upper() makes it 'S'),
    # and it stays DuckDB's whichever writer writes the file
    assert got["diagnosis_code"].to_list() == ["J18.9", "I10", None, "S01", None, None]
    keys = got["person_key"].to_list()
    assert keys[0] == keys[2] and keys[0] is not None and keys[1] is None
    assert len({keys[0], keys[3], keys[4], keys[5]}) == 4  # a padded ID number is another value, not the same person
    assert oct(written.stat().st_mode & 0o777) == "0o444"


def test_rows_that_do_not_line_up_publish_nothing(tmp_path, monkeypatch):
    """Should the SQL half ever lose or add a row, the part is refused and no file is left behind."""
    from lowincome import publish
    from lowincome.errors import LowincomeError

    source = tmp_path / "part.parquet"
    columns = _claims_part(source, [0, 1, 2, 3, 4, 5])
    con = duckdb.connect()
    install_key_macro(con, SECRET)
    real = publish.analyst_copy_sql
    monkeypatch.setattr(publish, "analyst_copy_sql",
                        lambda *a, **k: real(*a, **k).replace("ORDER BY src.source_row", "WHERE src.source_row <> 4 ORDER BY src.source_row"))
    target = tmp_path / "published" / "part.analysts.parquet"
    with pytest.raises(LowincomeError, match="do not line up"):
        _write_analyst_part(con, CLAIMS, columns, source, target, None)
    assert not target.exists() and not list(target.parent.glob(".*tmp"))
