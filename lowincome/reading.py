"""Reading one delivered file into an all-text frame with canonical column names.

Everything is read as text first: type inference would turn ID numbers into
integers, drop leading zeros or choke on an `X`. Parsing to types is the
validator's job, where a failure becomes a quarantine reason instead of a crash.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from .errors import DeliveryError
from .feeds import FeedSpec
from .privacy import redact

ROW_COLUMN = "source_row"
EXTRA_COLUMN = "extra_columns"
# What a malformed file makes the readers raise; anything else is a bug and must surface as one.
_READ_ERRORS = (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError, OSError)
_BOMS = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))


@dataclass
class ReadResult:
    frame: pl.DataFrame  # canonical text columns + source_row + extra_columns (JSON text)
    encoding: str  # 'utf-8', 'utf-8-sig', 'gb18030', 'xlsx', 'parquet'
    missing_columns: list[str]  # headers of required columns the file lacks
    # Rows of a form left as they were sent (a returned worklist's rows nobody worked on, see
    # `FeedSpec.extra["untouched_unless"]`): not records of the feed, counted here, not in `frame`.
    untouched: int = 0


def _clean_header(h: str) -> str:
    return str(h).replace("\ufeff", "").replace("\u3000", " ").strip()


def _decode_csv(data: bytes, spec: FeedSpec) -> tuple[bytes, str]:
    """Detect the encoding per file (UTF-8, UTF-8 with BOM, GB18030/GBK) and return UTF-8 bytes.

    UTF-8 with a byte-order mark is returned as delivered (Polars' reader skips the mark): decoding
    a 500 MB file to a Python string and back cost seconds and twice the file in memory.
    """
    for bom, name in _BOMS:
        if data.startswith(bom):
            if name == "utf-8-sig" and _is_utf8(data):
                return data, name
            try:
                text = data.decode(name)
            except UnicodeDecodeError as exc:
                raise DeliveryError(f"starts with a {name} byte-order mark but is not valid {name} (byte {exc.start})")
            return text.lstrip("\ufeff").encode("utf-8"), name
    if _is_utf8(data):
        return data, "utf-8"
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        raise DeliveryError("encoding not recognised: the file is neither UTF-8 nor GB18030/GBK text")
    # GB18030 decodes many byte soups; insist that the header is one we know.
    first_line = text.split("\n", 1)[0]
    if not any(c.header in first_line for c in spec.columns):
        raise DeliveryError(
            "encoding not recognised: decoding as UTF-8 fails and as GB18030 gives no known header"
        )
    return text.encode("utf-8"), "gb18030"


def _is_utf8(data: bytes) -> bool:
    """Whether `data` is valid UTF-8 (the same strict definition as Python's codec: no surrogates, no overlongs).

    Checked by Polars' validator without building a Python string: on a 100 MB claims file the
    Python decode cost a third of the CSV parse. Values over 2 GiB go to Python's decoder (a Polars
    binary value holds at most 4 GiB).
    """
    if len(data) < 2**31:
        try:
            pl.Series([data], dtype=pl.Binary).cast(pl.String)
            return True
        except pl.exceptions.PolarsError:
            return False
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def _header_problem(headers: list[str], spec: FeedSpec, where: str = "the header") -> None:
    """Refuse a header that names a column twice: readers silently rename the second copy.

    A known header is quoted; an unknown one is described by position only, because in a file
    without a header row the "header" is a resident's record.
    """
    clean = [_clean_header(h) for h in headers]
    counts = Counter(c for c in clean if c)
    for name, n in counts.items():
        if n < 2:
            continue
        col = spec.by_header.get(name) or spec.by_name.get(name)
        if col is not None:
            raise DeliveryError(f"column '{col.header}' appears {'twice' if n == 2 else f'{n} times'} in {where}")
        positions = [str(i + 1) for i, c in enumerate(clean) if c == name]
        raise DeliveryError(f"two columns of {where} have the same name (columns {', '.join(positions)})")
    # Two spellings of one registry column (the Chinese header and the canonical name) are a duplicate too.
    seen: dict[str, int] = {}
    for i, c in enumerate(clean):
        col = spec.by_header.get(c) or spec.by_name.get(c)
        if col is None:
            continue
        if col.name in seen:
            raise DeliveryError(f"column '{col.header}' appears twice in {where} (columns {seen[col.name] + 1} and {i + 1})")
        seen[col.name] = i


def _csv_header(utf8: bytes) -> list[str]:
    """The header fields as written (the reader renames duplicates, so they are judged from the raw line)."""
    first = utf8.split(b"\n", 1)[0].decode("utf-8", errors="replace").rstrip("\r").lstrip("\ufeff")
    return next(csv.reader([first]), [])


_LINE = re.compile(r"\b(?:line|row)\s*(?:number\s*)?:?\s*(\d+)", re.IGNORECASE)


def _where(exc: Exception) -> str:
    """A line number from a reader's error, if it gives one: never the rest of its text (it may quote a row)."""
    m = _LINE.search(str(exc))
    return f" near line {m.group(1)}" if m else ""


def _read_csv(path: Path, spec: FeedSpec) -> tuple[pl.DataFrame, str]:
    data = path.read_bytes()
    if not data.strip():
        raise DeliveryError("the file is empty (0 bytes or only blank space)")
    utf8, encoding = _decode_csv(data, spec)
    _header_problem(_csv_header(utf8), spec)
    try:
        frame = pl.read_csv(
            io.BytesIO(utf8),
            infer_schema=False,
            has_header=True,
            raise_if_empty=False,
        )
    except _READ_ERRORS as exc:
        raise DeliveryError(
            f"malformed CSV{_where(exc)}: the parser stopped (an unterminated quote, or a row with more fields than "
            "the header?)"
        ) from None
    return frame, encoding


def _read_xlsx(path: Path, spec: FeedSpec) -> tuple[pl.DataFrame, str]:
    unreadable = "unreadable .xlsx file: not a valid Excel workbook, or its first sheet cannot be read"
    try:  # the header row as written: the reader renames a repeated header
        head = pl.read_excel(path, sheet_id=1, has_header=False, infer_schema_length=0, drop_empty_rows=False,
                             raise_if_empty=False, read_options={"n_rows": 1})
    except Exception:  # calamine raises its own exception types; their text may quote cells
        raise DeliveryError(unreadable) from None
    if head.height:
        _header_problem(["" if v is None else str(v) for v in head.row(0)], spec, "the header row of the first sheet")
    try:
        frame = pl.read_excel(path, sheet_id=1, infer_schema_length=0, drop_empty_rows=False, raise_if_empty=False)
    except Exception:
        raise DeliveryError(unreadable) from None
    return frame.cast(pl.String), "xlsx"


def _nested(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.List, pl.Array, pl.Struct, pl.Object)) or dtype == pl.Binary


def _read_parquet(path: Path, spec: FeedSpec) -> tuple[pl.DataFrame, str]:
    try:
        schema = pl.read_parquet_schema(path)
    except _READ_ERRORS:
        raise DeliveryError("unreadable .parquet file: not a valid Parquet file (truncated or another format?)") from None
    _header_problem(list(schema), spec, "the file's columns")
    for name, dtype in schema.items():
        if _nested(dtype):
            raise DeliveryError(
                f"column '{redact(_clean_header(name))[:60]}' has type {dtype}, which a delivery cannot carry "
                "(only flat columns: text, numbers, dates)"
            )
    try:
        frame = pl.read_parquet(path)
    except _READ_ERRORS:
        raise DeliveryError("unreadable .parquet file: its data pages cannot be read (truncated or corrupt?)") from None
    return frame.with_columns(pl.all().cast(pl.String)), "parquet"


def _blank_cells(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
    """Per row: every one of `columns` is null or only blank space."""
    return frame.select(pl.all_horizontal([pl.col(c).is_null() | (pl.col(c).str.strip_chars() == "") for c in columns])).to_series()


def read_delivery(path: Path, spec: FeedSpec) -> ReadResult:
    """Read a delivery, map Chinese headers to canonical names, keep unknown columns as JSON text."""
    ext = path.suffix.lower()
    if path.stat().st_size == 0:
        raise DeliveryError("the file is empty (0 bytes)")
    if ext == ".csv":
        frame, encoding = _read_csv(path, spec)
    elif ext == ".xlsx":
        frame, encoding = _read_xlsx(path, spec)
    elif ext == ".parquet":
        frame, encoding = _read_parquet(path, spec)
    else:
        raise DeliveryError(f"unsupported format '{ext}'")

    headers = [_clean_header(h) for h in frame.columns]
    by_header = spec.by_header
    by_name = spec.by_name
    mapping: dict[str, str] = {}
    extras: list[str] = []
    for raw, clean in zip(frame.columns, headers):
        col = by_header.get(clean) or by_name.get(clean)
        if col is None:
            extras.append(raw)
        elif col.name in mapping.values():
            raise DeliveryError(f"column '{col.header}' appears twice in the header")
        else:
            mapping[raw] = col.name
    if not mapping:
        raise DeliveryError(
            "no known column in the header (is this the right feed, or a file without a header row?)"
        )

    # Keep the row number of the file before anything is dropped, so auditors can find the row.
    frame = frame.with_row_index(ROW_COLUMN, offset=1).with_columns(pl.col(ROW_COLUMN).cast(pl.Int64))
    value_cols = list(mapping) + extras
    if value_cols and _blank_cells(frame, value_cols[:1]).any():  # only a row blank in its first cell can be all blank
        blank = _blank_cells(frame, value_cols)
        if blank.any():
            frame = frame.filter(~blank)  # a wholly blank line is not a record (CSV readers skip them too)

    extra_expr = (
        pl.struct([pl.col(c).alias(_clean_header(c)) for c in extras]).struct.json_encode()
        if extras else pl.lit(None, dtype=pl.String)
    )
    out = frame.select(
        pl.col(ROW_COLUMN),
        *[pl.col(raw).alias(name) for raw, name in mapping.items()],
        extra_expr.alias(EXTRA_COLUMN),
    )
    present = set(mapping.values())
    missing = [c.header for c in spec.columns if c.required and c.name not in present]
    for c in spec.columns:  # optional columns absent from the file are simply blank
        if c.name not in present:
            out = out.with_columns(pl.lit(None, dtype=pl.String).alias(c.name))
    out = out.select(ROW_COLUMN, *[c.name for c in spec.columns], EXTRA_COLUMN)
    out, untouched = _drop_untouched(out, spec, present)
    return ReadResult(out, encoding, missing, untouched)


def _drop_untouched(frame: pl.DataFrame, spec: FeedSpec, present: set[str]) -> tuple[pl.DataFrame, int]:
    """Remove the rows of a returned form whose answer columns are all blank; (rows kept, rows removed).

    A township worklist comes back with every flag it listed; the rows a caseworker did not fill in
    are not outcomes and not errors (docs/decisions.md, "Township worklists"). Only when every answer
    column is in the header: a file without one is a structural fault and all its rows are quarantined.
    """
    answer = [c for c in spec.extra.get("untouched_unless", ()) if c in spec.by_name]
    if not answer or frame.is_empty() or not all(c in present for c in answer if spec.column(c).required):
        return frame, 0
    blank = _blank_cells(frame, answer)
    untouched = int(blank.sum())
    return (frame.filter(~blank), untouched) if untouched else (frame, 0)
