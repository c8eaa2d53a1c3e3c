"""UTF-8 files with a byte-order mark are read as delivered (no decode to a Python string and back).

The mark is skipped by the CSV reader itself; these tests pin what that must not change: the
header is still recognised when its first cell is quoted, a header naming a column twice is still
refused, and a file whose mark promises UTF-8 but whose bytes are not is still refused with the
reason, never read as something else.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lowincome.errors import DeliveryError
from lowincome.feeds import FEEDS
from lowincome.reading import _decode_csv, read_delivery

SPEC = FEEDS["death_records"]
BOM = b"\xef\xbb\xbf"
BODY = '身份证号,姓名,死亡日期,信息来源\n"1",张三,2026-09-01,殡葬火化\n2,"李,四",2026-09-02,公安户籍注销\n'


def _write(tmp_path: Path, data: bytes, name: str = "death_records_371302_20261031.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_a_marked_file_reads_as_the_same_file_without_the_mark(tmp_path):
    plain = read_delivery(_write(tmp_path, BODY.encode("utf-8"), "a.csv"), SPEC)
    marked = read_delivery(_write(tmp_path, BOM + BODY.encode("utf-8"), "b.csv"), SPEC)
    assert (plain.encoding, marked.encoding) == ("utf-8", "utf-8-sig")
    assert marked.frame.equals(plain.frame) and marked.missing_columns == []
    assert marked.frame["name"].to_list() == ["张三", "李,四"]


def test_a_marked_file_is_handed_to_the_reader_without_a_copy():
    data = BOM + BODY.encode("utf-8")
    utf8, encoding = _decode_csv(data, SPEC)
    assert utf8 is data and encoding == "utf-8-sig"


def test_a_quoted_first_header_after_the_mark_is_recognised(tmp_path):
    quoted = '"身份证号","姓名",死亡日期,信息来源\n1,张三,2026-09-01,殡葬火化\n'
    result = read_delivery(_write(tmp_path, BOM + quoted.encode("utf-8")), SPEC)
    assert result.missing_columns == [] and result.frame["id_number"].to_list() == ["1"]


def test_a_column_named_twice_after_the_mark_is_refused(tmp_path):
    twice = '"身份证号",身份证号,姓名,死亡日期,信息来源\n1,1,张三,2026-09-01,殡葬火化\n'
    with pytest.raises(DeliveryError, match="身份证号.*twice"):
        read_delivery(_write(tmp_path, BOM + twice.encode("utf-8")), SPEC)


def test_a_mark_followed_by_bytes_that_are_not_utf8_is_refused(tmp_path):
    gbk = BODY.encode("gb18030")
    with pytest.raises(DeliveryError, match="byte-order mark but is not valid utf-8-sig"):
        read_delivery(_write(tmp_path, BOM + gbk), SPEC)
