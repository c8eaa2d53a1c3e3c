"""The independent counter and the row-accounting check that the conservation tests rely on can fail."""

from __future__ import annotations

from datetime import date

import pytest

from .delivered import assert_every_row_accounted_for, count_rows
from .handmade import delivery_path, write_csv, write_parquet, write_xlsx

HEADER = ["身份证号", "姓名", "死亡日期", "信息来源"]
ROWS = [["1", "张三", "2026-09-01", "殡葬火化"], ["2", "李,四", "2026-09-02", "公安户籍注销"], ["3", None, "", "x"]]


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030"])
def test_csv_rows_are_counted_as_records(tmp_path, encoding):
    path = write_csv(delivery_path(tmp_path, "death_records", "371302", date(2026, 10, 31), "csv"), HEADER, ROWS, encoding)
    assert count_rows(path) == 3  # a quoted comma does not make a column or a row


def test_xlsx_and_parquet_rows_are_counted(tmp_path):
    day = date(2026, 10, 31)
    assert count_rows(write_xlsx(delivery_path(tmp_path, "death_records", "371302", day, "xlsx"), HEADER,
                                 [[*r[:2], 20260901, r[3]] for r in ROWS])) == 3
    assert count_rows(write_parquet(delivery_path(tmp_path, "death_records", "371324", day, "parquet"), HEADER, ROWS)) == 3
    header_only = write_csv(tmp_path / "h.csv", HEADER, [])
    assert count_rows(header_only) == 0


def test_accounting_fails_on_a_dropped_a_doubled_or_an_invented_row():
    delivered = {"a.csv": 3, "b.csv": 2}
    staged = [("a.csv", 1), ("a.csv", 3), ("b.csv", 1)]
    quarantined = [("a.csv", 2), ("b.csv", 2)]
    assert_every_row_accounted_for(delivered, staged, quarantined)
    with pytest.raises(AssertionError, match="a.csv"):  # dropped
        assert_every_row_accounted_for(delivered, staged[1:], quarantined)
    with pytest.raises(AssertionError, match="a.csv"):  # accepted and quarantined
        assert_every_row_accounted_for(delivered, staged + [("a.csv", 2)], quarantined)
    with pytest.raises(AssertionError, match="b.csv"):  # one dropped, another counted twice: totals still match
        assert_every_row_accounted_for(delivered, staged, [("a.csv", 2), ("b.csv", 1)])
    with pytest.raises(AssertionError, match="a.csv"):  # a row beyond the file's end
        assert_every_row_accounted_for(delivered, staged + [("a.csv", 4)], quarantined)
    with pytest.raises(AssertionError, match="c.csv"):  # a file that was never delivered
        assert_every_row_accounted_for(delivered, staged + [("c.csv", 1)], quarantined)
