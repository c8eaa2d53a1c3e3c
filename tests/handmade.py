"""Hand-made deliveries, written independently of the generator, in the formats of feeds.md.

Each helper writes one file exactly as a department might: Chinese headers,
any column order, CSV in a chosen encoding, .xlsx or .parquet.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import xlsxwriter

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def person_id(area: str, birth: str, seq: int) -> str:
    """A valid 18-character ID (independent of lowincome.identity, on purpose)."""
    body = f"{area}{birth}{seq:03d}"
    return body + "10X98765432"[sum(int(d) * w for d, w in zip(body, _WEIGHTS)) % 11]


def bad_check(id18: str) -> str:
    last = id18[-1]
    return id18[:-1] + ("0" if last != "0" else "1")


def write_csv(path: Path, header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    def cell(v: str) -> str:
        v = "" if v is None else str(v)
        return f'"{v}"' if ("," in v or '"' in v) else v
    text = "\n".join(",".join(cell(v) for v in r) for r in [header, *rows]) + "\n"
    data = text.encode("utf-8-sig" if encoding == "utf-8-sig" else encoding)
    path.write_bytes(data)
    return path


def write_xlsx(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    """Strings stay text cells; ints/floats become number cells (as Excel would store them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet("Sheet1")
    ws.write_row(0, 0, header)
    for i, row in enumerate(rows, start=1):
        for j, v in enumerate(row):
            if v is None:
                continue
            if isinstance(v, (int, float)):
                ws.write_number(i, j, v)
            else:
                ws.write_string(i, j, str(v))
    wb.close()
    return path


def write_parquet(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame([dict(zip(header, r)) for r in rows], infer_schema_length=None).write_parquet(path)
    return path


def delivery_path(inbox: Path, feed: str, county: str, day: date, ext: str) -> Path:
    return inbox / feed / f"{feed}_{county}_{day:%Y%m%d}.{ext}"
