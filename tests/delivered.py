"""Counting what was delivered without the pipeline's code, and checking that every row is accounted for.

A conservation check is only worth something if its two sides are counted
independently (issue 8, item 7): the pipeline computes `rows_quarantined` as
read − accepted, so `rows_read == accepted + quarantined` holds whatever it
reads. Here the delivered side is counted from the files with other readers
than the pipeline's (Polars / fastexcel): the `csv` module after decoding the
bytes, the xlsx XML read with `zipfile` + `xml.etree`, Parquet metadata via
PyArrow. The other side is what was published, row by row: staging rows by
(source_file, source_row) and quarantine rows by (file_name, row_number).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from pathlib import Path
from xml.etree import ElementTree

_XLSX_NS = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValueError("neither UTF-8 nor GB18030")


def _csv_rows(path: Path) -> int:
    records = [r for r in csv.reader(io.StringIO(_decode(path.read_bytes()), newline="")) if r]
    return max(len(records) - 1, 0)  # the header is not a row


def _xlsx_rows(path: Path) -> int:
    """Rows below the header of the first worksheet that hold at least one value."""
    with zipfile.ZipFile(path) as book:
        sheets = sorted(n for n in book.namelist() if n.startswith("xl/worksheets/sheet") and n.endswith(".xml"))
        root = ElementTree.fromstring(book.read(sheets[0]))
    rows = 0
    for row in root.iter(f"{_XLSX_NS}row"):
        if any(c.find(f"{_XLSX_NS}v") is not None or c.find(f"{_XLSX_NS}is") is not None for c in row):
            rows += 1
    return max(rows - 1, 0)


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def count_rows(path: Path) -> int:
    """Data rows in one delivered file, counted without the pipeline's readers."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _csv_rows(path)
    if suffix == ".xlsx":
        return _xlsx_rows(path)
    if suffix == ".parquet":
        return _parquet_rows(path)
    raise ValueError(f"no independent reader for {path.name}")


def assert_every_row_accounted_for(delivered: dict[str, int], staged: list[tuple[str, int]],
                                   quarantined: list[tuple[str, int]]) -> None:
    """Per file: rows 1..n each appear exactly once, either accepted (staged) or quarantined, and nothing else.

    `delivered` maps a file name to its independently counted rows; `staged` and `quarantined` are the
    (file, row number) pairs as published. A dropped row, a row counted twice (twice in one table or in
    both), or a row invented beyond the file's end all fail here, naming the file.
    """
    seen: dict[str, list[int]] = defaultdict(list)
    accepted: dict[str, int] = defaultdict(int)
    rejected: dict[str, int] = defaultdict(int)
    for name, row in staged:
        seen[name].append(row)
        accepted[name] += 1
    for name, row in quarantined:
        seen[name].append(row)
        rejected[name] += 1
    unknown = set(seen) - set(delivered)
    assert not unknown, f"rows published for files that were not delivered: {sorted(unknown)}"
    for name, rows in delivered.items():
        assert rows == accepted[name] + rejected[name], (
            f"{name}: {rows} row(s) delivered, {accepted[name]} accepted + {rejected[name]} quarantined")
        assert sorted(seen[name]) == list(range(1, rows + 1)), f"{name}: a row is missing and another counted twice"
