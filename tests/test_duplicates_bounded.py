"""Copies across deliveries are quarantined without reading a whole delivered file into memory.

On the 24-month city, the quarantine of a few thousand copies in a 3.7M-row claims file read the
whole parsed file next to its accepted part, twice over: 6.1 GiB, the peak of the whole night
(docs/decisions.md, "mem24"). The step now reads only the copies' rows and the file's name
columns. These tests check both halves of that: the quarantine rows are the ones the whole-file
formulation gives (kept below as the reference, and checked against what the test wrote), and
nothing the step takes from the parsed file or the accepted part is bigger than the copies, apart
from the name columns.
"""

from __future__ import annotations

from datetime import date, timedelta

import polars as pl
import pytest

import lowincome.parts as parts_module
from lowincome.feeds import FEEDS
from lowincome.ingest import ingest_feed
from lowincome.parts import LINEAGE, _name_columns, file_names, quarantine_rows
from lowincome.reading import ROW_COLUMN
from lowincome.validation import REASONS

from .handmade import delivery_path, person_id, write_csv

AS_OF = date(2026, 10, 31)
SPEC = FEEDS["medical_claims"]
HEADER = ["结算ID", "身份证号", "姓名", "参保地行政区划", "结算日期", "就诊类型", "医疗总费用",
          "基本医保统筹支付", "大病保险支付", "医疗救助支付", "个人自付", "主要诊断编码"]
NAMES = ["张伟", "王芳", "李娜", "刘洋", "陈静", "杨磊", "赵敏"]
ROWS_PER_FILE = 300


def _claim(sid: str, k: int) -> list[str]:
    # every seventh row carries a resident's name where a code belongs: the analysts' record must mask it
    code = NAMES[(k + 3) % len(NAMES)] if k % 7 == 0 else "C34.9"
    return [sid, person_id("371302", "19800101", k % 50), NAMES[k % len(NAMES)], "371302001001", "2026-09-01", "住院",
            f"{100 + k}.00", "60.00", "0", "10.00", f"{30 + k}.00", code]


def _inbox(root) -> dict[str, list[str]]:
    """Four files; each later one repeats a few settlement IDs of the files before it (and one of its own)."""
    files = {}
    for n in range(4):
        day = date(2026, 9, 1) + timedelta(days=15 * n)
        ids = [f"S{n}-{j}" for j in range(ROWS_PER_FILE)]
        if n:
            ids[10:10 + 4 * n] = [f"S{m}-{j}" for m in range(n) for j in (5, 77, 150, 200)]
            ids[-1] = ids[0]  # a copy within the same file
        path = write_csv(delivery_path(root, "medical_claims", "371302", day, "csv"), HEADER,
                         [_claim(s, k) for k, s in enumerate(ids)])
        files[path.name] = ids
    return files


def _copies(files: dict[str, list[str]]) -> set[tuple[str, int]]:
    """(file, row) of every later copy of a settlement ID, in delivery (name) order: independent of the code."""
    seen, copies = set(), set()
    for name in sorted(files):
        for row, sid in enumerate(files[name], start=1):
            if sid in seen:
                copies.add((name, row))
            seen.add(sid)
    return copies


def _whole_file_reference(spec, work_dir, f, found) -> pl.DataFrame:
    """The quarantine of `found` as the step made it before: the parsed file and the accepted part read whole."""
    parsed = pl.read_parquet(f.parsed_cache)
    accepted = pl.read_parquet(work_dir / f.parts.accepted, columns=LINEAGE)
    headers = " and ".join(spec.column(k).header for k in spec.unique_key)
    message = (pl.lit(f"duplicate: same {headers} as the row already delivered in ")
               + pl.when(pl.col("first_file") == pl.col("source_file")).then(pl.lit("this file")).otherwise(pl.col("first_file"))
               + pl.lit(" row ") + pl.col("first_row").cast(pl.String))
    rows = (found.join(accepted, on=["source_file", "source_row"], how="left")
            .join(parsed.rename({ROW_COLUMN: "source_row"}), on="source_row", how="left")
            .with_columns(pl.col(REASONS).list.concat(pl.concat_list(message)).alias(REASONS)))
    return quarantine_rows(spec, rows, file_names(spec, parsed))


@pytest.fixture()
def watched(monkeypatch):
    """Runs the real quarantine step under watch: what it materialises, and the reference on the same input."""
    calls: list[dict] = []
    real = parts_module._duplicate_quarantine
    real_collect, real_read = pl.LazyFrame.collect, pl.read_parquet

    def step(spec, work_dir, f, found):
        call = {"file": f.file_name, "copies": found.height, "rows": f.parts.accepted_rows, "frames": [], "whole_reads": []}

        def collect(self, *args, **kwargs):
            frame = real_collect(self, *args, **kwargs)
            call["frames"].append((tuple(frame.columns), frame.height))
            return frame

        def read(source, *args, **kwargs):
            call["whole_reads"].append(str(source))
            return real_read(source, *args, **kwargs)

        monkeypatch.setattr(pl.LazyFrame, "collect", collect)
        monkeypatch.setattr(pl, "read_parquet", read)
        try:
            out = real(spec, work_dir, f, found)
        finally:
            monkeypatch.setattr(pl.LazyFrame, "collect", real_collect)
            monkeypatch.setattr(pl, "read_parquet", real_read)
        call["result"], call["reference"] = out, _whole_file_reference(spec, work_dir, f, found)
        calls.append(call)
        return out

    monkeypatch.setattr(parts_module, "_duplicate_quarantine", step)
    return calls


def test_copies_are_quarantined_as_the_whole_file_formulation_does(tmp_path, watched):
    files = _inbox(tmp_path / "inbox")
    result = ingest_feed(SPEC, tmp_path / "inbox", AS_OF, tmp_path / "work", blocking_share=1.0)
    expected = _copies(files)
    assert len(watched) == 3 and sum(c["copies"] for c in watched) == len(expected) == (4 + 8 + 12) + 3
    for call in watched:
        assert call["result"].equals(call["reference"]), call["file"]
    quarantine = result.quarantine.filter(pl.col("reasons").str.contains("duplicate: same"))
    assert set(zip(quarantine["source_file"], quarantine["source_row"])) == expected
    staged = set(zip(result.staging["source_file"], result.staging["source_row"]))
    assert staged == {(n, r) for n, ids in files.items() for r in range(1, len(ids) + 1)} - expected
    assert not quarantine["record_masked"].str.contains("|".join(NAMES)).any()  # names masked, also out of place
    assert quarantine["record"].str.contains("|".join(NAMES)).all()  # the caseworkers' record keeps them


def test_the_quarantine_of_copies_never_holds_a_whole_file(tmp_path, watched):
    """Regression guard for the 24-month peak: only the copies' rows, and the whole file's name columns alone."""
    _inbox(tmp_path / "inbox")
    ingest_feed(SPEC, tmp_path / "inbox", AS_OF, tmp_path / "work", blocking_share=1.0)
    names = set(_name_columns(SPEC))
    assert watched and names
    for call in watched:
        assert call["whole_reads"] == [], call["file"]  # nothing read eagerly, whole
        assert call["copies"] < call["rows"] // 10
        for columns, height in call["frames"]:
            assert set(columns) <= names or height <= call["copies"], (call["file"], columns, height)
        assert ((tuple(sorted(names)), ROWS_PER_FILE) in
                [(tuple(sorted(columns)), height) for columns, height in call["frames"]])  # the whole file's names
