"""Ingestion in fewer passes gives what the passes gave: names found by windows, UTF-8 by Polars, the suite from memory.

Each shortcut has a plain definition next to it in the code; these tests hold the two equal on
cases built to separate them (names with blank space around them, names that are format words,
names inside other names, text long enough to take the direct way, invalid UTF-8 of every kind).
"""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

from lowincome.feeds import FEEDS
from lowincome.parts import file_names, names_in, present_names
from lowincome.reading import _is_utf8

SPEC = FEEDS["medical_claims"]


def _parsed(names: list[str | None]) -> pl.DataFrame:
    return pl.DataFrame({"raw_name": pl.Series(names, dtype=pl.String), "raw_id_number": [None] * len(names)})


NAMES = ["张伟", " 王芳\u3000", "李", "欧阳娜娜", "娜娜", "住院", None, "", "刘洋" * 7, "司马相如x"]


@pytest.mark.parametrize("texts", [
    ["医疗总费用: 张伟 and 王芳", "nothing here"],
    ["欧阳娜娜 住院 李 刘洋刘洋"],
    ["司马相如x; 娜娜", None],
    [],
    ["张伟" + "。" * 300_000],  # long: the direct way
])
def test_present_names_equal_the_names_of_the_file_found_in_the_texts(texts):
    parsed = _parsed(NAMES)
    series = pl.Series(texts, dtype=pl.String)
    expected = names_in(series, file_names(SPEC, parsed))
    assert present_names(SPEC, parsed, series) == expected
    if any(t and "张伟" in t for t in texts):
        assert "张伟" in expected  # the case is not vacuous


@pytest.mark.parametrize("data, ok", [
    ("结算ID,姓名\n1,张伟\n".encode("utf-8"), True),
    (b"", True),
    ("结算ID,姓名\n1,张伟\n".encode("gb18030"), False),
    (b"a\xed\xa0\x80b", False),  # an encoded surrogate
    (b"a\xc0\xafb", False),  # overlong
    (b"a\xf4\x90\x80\x80", False),  # beyond U+10FFFF
    (b"abc\xe4\xb8", False),  # truncated at the end
])
def test_utf8_check_agrees_with_python(data, ok):
    try:
        data.decode("utf-8")
        python = True
    except UnicodeDecodeError:
        python = False
    assert python == ok
    assert _is_utf8(data) == ok


def test_the_suite_from_memory_equals_the_suite_from_the_parsed_cache(tmp_path):
    """`SuitePass` (the frame in memory) and `validate_files` alone (the parsed cache) record the same results."""
    from checks.record import SuitePass, validate_files
    from lowincome.generate import generate
    from lowincome.ingest import ingest_feed

    out = tmp_path / "gen"
    generate(out, seed=5, scale=0.2, end_date=date(2026, 10, 31), feeds=["medical_claims", "civil_roster"])
    for feed in ("medical_claims", "civil_roster"):
        spec = FEEDS[feed]
        results = {}
        for label in ("memory", "cache"):
            work = tmp_path / f"{label}-{feed}"
            hook = {"on_file": SuitePass(spec, work)} if label == "memory" else {}
            ingested = ingest_feed(spec, out / "inbox", date(2026, 10, 31), work, blocking_share=1.0, **hook)
            cached = list((work / "validated" / feed).glob("*.parquet")) if (work / "validated").exists() else []
            assert len(cached) == (len(ingested.files) if label == "memory" else 0)  # the pass ran, or did not
            results[label] = validate_files(spec, ingested.files, work)
        assert results["memory"].height > 10 and (~results["memory"]["success"]).any(), feed
        assert results["memory"].equals(results["cache"]), feed
