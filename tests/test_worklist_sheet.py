"""The worklist's column-wise rows (lowincome/worklist_sheet.py) against xlsxwriter writing the same rows cell by cell.

The two workbooks must be the same package: every part byte for byte, except that a style's index
in the styles table follows the order in which xlsxwriter first met each format (the sheets are
therefore compared with each cell's style index replaced by the style it names), and the creation
time in docProps/core.xml.
"""

from __future__ import annotations

import random
import re
import zipfile
from datetime import date, timedelta

import openpyxl
import polars as pl
import pytest

from lowincome import worklist_sheet
from lowincome.worklists import CELLS, COLUMNS, write_xlsx

TEXT = [c for _, c, _, kind in COLUMNS if c is not None and kind != "date"]
DATES = [c for _, c, _, kind in COLUMNS if c is not None and kind == "date"]
SCHEMA = {c: (pl.Date if c in DATES else pl.String) for _, c, _, _ in COLUMNS if c is not None}

# what a delivery or a summary can carry into a cell: XML's specials, control characters (\x0b and \x0c are
# whitespace to a regex but escaped by xlsxwriter), text that looks like xlsxwriter's own escape, edge
# whitespace of several kinds, line breaks, characters outside the BMP
HOSTILE = ["&", "<", ">", '"', "'", "\x00", "\x01", "\x08", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f",
           "_x0041_", "_x00zz_", "_X004A_", " ", "\u3000", "\u00a0", "\u2028", "𠀀", "😀", "张", "三", "a", "1"]


def _random_rows(n: int, seed: int) -> pl.DataFrame:
    rnd = random.Random(seed)

    def text() -> str | None:
        if rnd.random() < 0.1:
            return None
        return "".join(rnd.choice(HOSTILE) for _ in range(rnd.randint(0, 8)))

    rows = []
    for _ in range(n):
        row = {c: text() for c in TEXT}
        row["level"] = rnd.choice(["红", "橙", "黄", None, " 红"])
        for c in DATES:
            row[c] = None if rnd.random() < 0.1 else date(2020, 1, 1) + timedelta(days=rnd.randint(0, 3000))
        rows.append(row)
    return pl.DataFrame(rows, schema=SCHEMA)


def _package(path) -> dict[str, str]:
    """The workbook's parts, with the first sheet's style indices replaced by the styles they name."""
    with zipfile.ZipFile(path) as z:
        parts = {name: z.read(name).decode("utf-8") for name in z.namelist()}
    # the workbook's creation time (to the second) is the only part that depends on when it was written
    parts["docProps/core.xml"] = re.sub(r"(<dcterms:(created|modified)[^>]*>)[^<]*", r"\1", parts["docProps/core.xml"])
    styles = parts.pop("xl/styles.xml")
    xfs_block = re.search(r"<cellXfs[^>]*>(.*?)</cellXfs>", styles, flags=re.S).group(1)
    xfs = re.findall(r"<xf\b[^>]*/>|<xf\b[^>]*>.*?</xf>", xfs_block, flags=re.S)
    parts["xl/styles.xml (other than cell styles)"] = styles.replace(xfs_block, "")
    parts["xl/styles.xml (cell styles, as a set)"] = "\n".join(sorted(xfs))
    sheet = worklist_sheet.SHEET_XML
    parts[sheet] = re.sub(r' (s|style)="(\d+)"', lambda m: f' {m.group(1)}="{xfs[int(m.group(2))]}"', parts[sheet])
    return parts


def _both(rows: pl.DataFrame, tmp_path) -> tuple[dict[str, str], dict[str, str]]:
    fast, cellwise = tmp_path / "fast.xlsx", tmp_path / "cellwise.xlsx"
    write_xlsx(rows, fast, "核查清单 t")
    write_xlsx(rows, cellwise, "核查清单 t", cellwise=True)
    return _package(fast), _package(cellwise)


@pytest.mark.parametrize("n, seed", [(1, 1), (2, 2), (40, 3), (700, 4)])
def test_column_wise_rows_are_xlsxwriters_rows(tmp_path, n, seed):
    rows = _random_rows(n, seed)
    fast, cellwise = _both(rows, tmp_path)
    assert fast.keys() == cellwise.keys()
    for name in cellwise:
        assert fast[name] == cellwise[name], name


def test_every_hostile_value_in_every_text_column(tmp_path):
    """Each hostile character alone, and at both edges of a word, in every text column."""
    values = [h for h in HOSTILE] + [f"{h}词{h}" for h in HOSTILE] + ["", "词", "_x0041__x0042_"]
    rows = pl.DataFrame([{**{c: v for c in TEXT}, "first_seen_on": date(2026, 11, 1), "due_on": date(1900, 3, 1)}
                         for v in values], schema=SCHEMA)
    fast, cellwise = _both(rows, tmp_path)
    assert fast == cellwise
    # and what openpyxl reads back is what was written (xlsxwriter's escapes undone, dates as dates)
    ws = openpyxl.load_workbook(tmp_path / "fast.xlsx", read_only=True).worksheets[0]
    read = list(ws.iter_rows(min_row=2, values_only=True))
    assert len(read) == rows.height
    plain = re.compile(r"^[^\x00-\x1f_]*$")  # no control character, no `_xHHHH_` look-alike: read back as written
    summary_col = next(i for i, c in enumerate(COLUMNS) if c[1] == "summary")
    checked = [(v, r[summary_col]) for v, r in zip(rows["summary"].to_list(), read) if plain.match(v)]
    assert len(checked) > 20
    assert all((got or "") == v for v, got in checked), [c for c in checked if (c[1] or "") != c[0]]
    due_col = next(i for i, c in enumerate(COLUMNS) if c[1] == "due_on")
    assert {r[due_col].date() for r in read} == {date(1900, 3, 1)}


def test_what_it_cannot_reproduce_is_written_cell_by_cell(tmp_path):
    old = _random_rows(3, 5).with_columns(pl.lit(date(1900, 2, 28)).alias("due_on"))
    long = _random_rows(3, 6).with_columns(pl.lit("长" * 20_000).alias("summary"))
    for rows in (old, long):
        assert not worklist_sheet.reproducible(rows, CELLS)
        fast, cellwise = _both(rows, tmp_path)
        assert fast == cellwise


def test_an_empty_list_still_has_its_header_and_drop_downs(tmp_path):
    fast, cellwise = _both(pl.DataFrame(schema=SCHEMA), tmp_path)
    assert fast == cellwise
    assert "<row r=\"2\"" not in fast[worklist_sheet.SHEET_XML]
