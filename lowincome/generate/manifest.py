"""The manifest's row-level records, kept as columns, and `expected.json` written as a stream.

Why: a messy-but-valid value is planted in about 3% of all rows, and the manifest lists each one
(feed, file, row, kind, column). At the city tier with 24 months that is about two million records:
as Python dicts about half a gigabyte, and `json.dumps` of the manifest built a list of some twenty
million string pieces before joining them. Here a record costs a row number and a kind code, the
dicts exist only while one is read, and `expected.json` is written piece by piece, byte for byte
what `json.dumps(manifest, ensure_ascii=False, indent=1)` wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

KEYS = ("feed", "file", "row", "kind", "column")


class RowRecords(Sequence):
    """A sequence of {feed, file, row, kind, column} dicts, stored as runs of (feed, file) with row and kind columns.

    It is not a `list` on purpose: code that would serialise it without going through
    `write_manifest` (e.g. `json.dumps` with no indent) fails loudly instead of writing nothing.
    """

    def __init__(self, records: Iterable[dict] = ()) -> None:
        self._runs: list[tuple[str, str, np.ndarray, np.ndarray]] = []
        self._pairs: list[tuple[str, str]] = []  # (kind, column) by code
        self._codes: dict[tuple[str, str], int] = {}
        self._len = 0
        self.extend(records)

    def extend(self, records: Iterable[dict]) -> None:
        """Append records in order; consecutive ones of the same (feed, file) share a run."""
        run: tuple[str, str] | None = None
        rows: list[int] = []
        codes: list[int] = []
        for rec in records:
            if tuple(rec) != KEYS or not isinstance(rec["row"], int):
                raise ValueError(f"a row record has the keys {KEYS} in that order and a whole row number, not {rec!r}")
            key = (rec["feed"], rec["file"])
            if key != run:
                self._close(run, rows, codes)
                run, rows, codes = key, [], []
            pair = (rec["kind"], rec["column"])
            code = self._codes.setdefault(pair, len(self._pairs))
            if code == len(self._pairs):
                self._pairs.append(pair)
            rows.append(rec["row"])
            codes.append(code)
        self._close(run, rows, codes)

    def __iadd__(self, records: Iterable[dict]) -> RowRecords:
        self.extend(records)
        return self

    def _close(self, run: tuple[str, str] | None, rows: list[int], codes: list[int]) -> None:
        if run is None or not rows:
            return
        self._runs.append((run[0], run[1], np.asarray(rows, dtype=np.int64), np.asarray(codes, dtype=np.int32)))
        self._len += len(rows)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[dict]:
        pairs = self._pairs
        for feed, file, rows, codes in self._runs:
            for row, code in zip(rows.tolist(), codes.tolist()):
                kind, column = pairs[code]
                yield {"feed": feed, "file": file, "row": row, "kind": kind, "column": column}

    def __getitem__(self, index):
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("row record index out of range")
        for feed, file, rows, codes in self._runs:
            if index < len(rows):
                kind, column = self._pairs[int(codes[index])]
                return {"feed": feed, "file": file, "row": int(rows[index]), "kind": kind, "column": column}
            index -= len(rows)
        raise IndexError("row record index out of range")  # pragma: no cover - lengths add up

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (RowRecords, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"RowRecords({self._len} records in {len(self._runs)} files)"


def _dumps(value, level: int) -> str:
    """`value` as `json.dumps(..., ensure_ascii=False, indent=1)` writes it at nesting depth `level`."""
    return json.dumps(value, ensure_ascii=False, indent=1).replace("\n", "\n" + " " * level)


def write_manifest(path: Path, manifest: dict) -> None:
    """Write `manifest` exactly as `json.dumps(manifest, ensure_ascii=False, indent=1)` would, piece by piece.

    With `indent=1` that text is "{", one line per key at depth 1 holding the value's own text
    indented by one more space, and "}"; a list is "[", its items at depth 2, and " ]". The row
    records are written one by one from their columns, so the whole text is never built.
    """
    with open(path, "w", encoding="utf-8") as fh:
        if not manifest:
            fh.write("{}")
            return
        fh.write("{")
        for i, (key, value) in enumerate(manifest.items()):
            fh.write(("," if i else "") + "\n " + json.dumps(key, ensure_ascii=False) + ": ")
            if not isinstance(value, RowRecords):
                fh.write(_dumps(value, 1))
            elif not len(value):
                fh.write("[]")
            else:
                for j, record in enumerate(value):
                    fh.write(("," if j else "[") + "\n  " + _dumps(record, 2))
                fh.write("\n ]")
        fh.write("\n}")
