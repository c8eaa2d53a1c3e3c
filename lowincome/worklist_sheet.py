"""A worklist's data rows as sheet XML built column by column, in place of xlsxwriter's cell-by-cell writing.

Why: xlsxwriter spends about 18 µs of Python per cell (cell reference, format lookup, escaping, one
write per cell): 7.5 s of every city night went on writing 29k flags into 42 township lists, more than
anything else in the publication but the rules. A list's rows are a table of text and dates, so their
XML can be built with vectorised Polars string expressions instead.

How, without taking over what xlsxwriter does well: xlsxwriter still writes the whole workbook (styles,
column formats, frozen header, filter, drop-downs, instructions sheet), with two probe rows in place of
the data. The probe rows say which style each column's cells get (a plain cell takes its column's
format; a red level has its own); they are then replaced in the sheet by every data row, built here to
be exactly what xlsxwriter would have written in `constant_memory` mode (inline strings, control
characters as `_xHHHH_`, `xml:space="preserve"` for edge whitespace, dates as day serials).
tests/test_worklist_sheet.py holds the two writers' sheets to byte equality on hostile rows.

Rows this module does not reproduce exactly (a text over xlsxwriter's string limit, a date before
1900-03-01, a column that is neither text nor date) are not `reproducible`: the caller writes them
cell by cell, as before, without writing the workbook twice.
"""

from __future__ import annotations

import re
import zipfile
from datetime import date
from pathlib import Path

import polars as pl

from .temporaries import temporary_path

SHEET_XML = "xl/worksheets/sheet1.xml"
PROBE_TEXT = "x"
PROBE_DATE = date(2000, 1, 1)
_EXCEL_EPOCH = date(1899, 12, 30)  # day serial 0 for the dates after 1900-02-28 (Excel's phantom 1900-02-29)
_FIRST_EXACT_DATE = date(1900, 3, 1)
_LONGEST_TEXT = 16_383  # characters: at most 32,767 UTF-16 units, xlsxwriter's limit, whatever the characters
_CONTROL = [chr(c) for c in (*range(0x00, 0x09), *range(0x0B, 0x20))]  # xlsxwriter's re_control_chars_2


def column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def probe_styles(sheet_xml: str, row: int) -> dict[str, str | None]:
    """Column letter → style index (None: no `s` attribute) of the cells xlsxwriter wrote in probe `row` (1-based)."""
    match = re.search(rf'<row r="{row}"[^>]*>(.*?)</row>', sheet_xml, flags=re.S)
    if match is None:
        raise ValueError(f"probe row {row} is not in the sheet")
    return {letter: style for letter, style in re.findall(rf'<c r="([A-Z]+){row}"(?: s="(\d+)")?', match.group(1))}


def _style_attr(style: str | None) -> str:
    return f' s="{style}"' if style is not None else ""


_ESCAPED_ESCAPE = r"(_x[0-9a-fA-F]{4}_)"  # xlsxwriter's re_control_chars_1
_ANY_CONTROL = "[" + "".join(_CONTROL) + "]"
_ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"))  # in this order: & first
_REPLACEMENTS = (("escape", _ESCAPED_ESCAPE, False), ("control", _ANY_CONTROL, False),
                 *((raw, raw, True) for raw, _ in _ENTITIES))


def _needed(rows: pl.DataFrame, names: list[str]) -> dict[tuple[str, str], bool]:
    """(column, replacement) → whether the column holds anything that replacement changes (one pass)."""
    if not names:
        return {}
    found = rows.select([pl.col(n).str.contains(pattern, literal=literal).any().alias(f"{n}\x00{what}")
                         for n in names for what, pattern, literal in _REPLACEMENTS]).row(0, named=True)
    return {tuple(k.split("\x00")): bool(v) for k, v in found.items()}


def _escaped(text: pl.Expr, name: str, needed: dict[tuple[str, str], bool]) -> pl.Expr:
    """xlsxwriter's order: literal `_xHHHH_` escaped, control characters as `_xHHHH_`, then & < >.

    Each replacement is applied only to a column that holds what it replaces: passing 29 control
    characters over every text column cost more than the rest of the rows together.
    """
    out = text
    if needed[(name, "escape")]:
        out = out.str.replace_all(_ESCAPED_ESCAPE, "_x005F${1}")
    if needed[(name, "control")]:
        for ch in _CONTROL:
            out = out.str.replace_all(ch, f"_x{ord(ch):04X}_", literal=True)
    for raw, entity in _ENTITIES:
        if needed[(name, raw)]:
            out = out.str.replace_all(raw, entity, literal=True)
    return out


def reproducible(rows: pl.DataFrame, cells: list[tuple[int, str, str]]) -> bool:
    """Whether `rows_xml` writes exactly what xlsxwriter would: text and dates only, no text over its
    string limit, no date before 1900-03-01. `cells`: (column index, frame column, kind) as in `rows_xml`."""
    for _, name, kind in cells:
        dtype = rows.schema[name]
        if kind == "date":
            first = rows[name].min() if dtype == pl.Date else None
            if dtype != pl.Date or (first is not None and first < _FIRST_EXACT_DATE):
                return False
        elif dtype != pl.String or (rows[name].str.len_chars().max() or 0) > _LONGEST_TEXT:
            return False
    return True


def rows_xml(rows: pl.DataFrame, cells: list[tuple[int, str, str]], styles: dict[str, str | None],
             red: tuple[int, str, str | None] | None, first_row: int = 2) -> str:
    """The `<row>` elements of every row of `rows` (sheet rows from `first_row`); only for `reproducible` rows.

    `cells`: (column index, frame column, kind) for each written column, kind "date" or text;
    `styles`: column letter → style of a plain cell (from the probe); `red`: (column index, value, style)
    of the one column whose cells take another style when they hold that value.
    """
    if rows.is_empty():
        return ""
    needed = _needed(rows, [name for _, name, kind in cells if kind != "date"])
    number = pl.int_range(first_row, first_row + rows.height, eager=False).cast(pl.String)
    pieces: list[pl.Expr] = [pl.lit('<row r="'), number, pl.lit('">')]
    for index, name, kind in cells:
        letter = column_letter(index)
        value = pl.col(name)
        style = pl.lit(_style_attr(styles.get(letter)))
        if red is not None and red[0] == index:
            style = pl.when(value == red[1]).then(pl.lit(_style_attr(red[2]))).otherwise(style)
        if kind == "date":
            serial = (value - pl.lit(_EXCEL_EPOCH)).dt.total_days().cast(pl.String)
            cell = pl.concat_str([pl.lit(f'<c r="{letter}'), number, pl.lit('"'), style, pl.lit("><v>"), serial,
                                  pl.lit("</v></c>")])
        else:
            text = _escaped(value, name, needed)
            preserve = pl.when(text.str.contains(r"^\s|\s$")).then(pl.lit(' xml:space="preserve"')).otherwise(pl.lit(""))
            cell = pl.concat_str([pl.lit(f'<c r="{letter}'), number, pl.lit('"'), style, pl.lit(' t="inlineStr"><is><t'),
                                  preserve, pl.lit(">"), text, pl.lit("</t></is></c>")])
        pieces.append(pl.when(value.is_null()).then(pl.lit(None, dtype=pl.String)).otherwise(cell))
    pieces.append(pl.lit("</row>"))
    built = rows.lazy().select(pl.concat_str(pieces, ignore_nulls=True).alias("xml")).collect()
    return "".join(built["xml"].to_list())


def replace_probe_rows(path: Path, probe_rows: tuple[int, ...], data_xml: str, last_row: int) -> None:
    """Put `data_xml` in place of the probe rows of the first sheet of workbook `path`, and its dimension to `last_row`.

    The other parts of the package are copied as they are (same names, order, times and compression).
    """
    path = Path(path)
    tmp = temporary_path(path)
    with zipfile.ZipFile(path) as source:
        sheet = source.read(SHEET_XML).decode("utf-8")
        start = sheet.index(f'<row r="{probe_rows[0]}"')
        end = sheet.index("</row>", sheet.index(f'<row r="{probe_rows[-1]}"')) + len("</row>")
        sheet = sheet[:start] + data_xml + sheet[end:]
        sheet = re.sub(r'<dimension ref="([A-Z]+)1:([A-Z]+)\d+"/>', rf'<dimension ref="\g<1>1:\g<2>{last_row}"/>', sheet,
                       count=1)
        try:
            with zipfile.ZipFile(tmp, "w") as target:
                for info in source.infolist():
                    data = sheet.encode("utf-8") if info.filename == SHEET_XML else source.read(info)
                    target.writestr(info, data, compress_type=info.compress_type)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)
