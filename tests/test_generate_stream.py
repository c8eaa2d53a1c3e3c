"""The generator writes file by file, within memory bounded by the population plus one file, and its bytes do not change.

The golden digests below were first computed with the whole-world generator (main at 24f9116, before
the increments were drawn per file), so these tests compared the streaming generator with the
one it replaced, not with itself. Issue 11 (part chinese) changed the claims' costs on purpose (an
insured population's out-of-pocket costs, whatever the claims per person); the digests were then
recomputed from the streaming generator at that change, which changed nothing else: the draws are
the same in number and order, so every other feed's bytes are those of the whole-world generator.
Issue 11 (part oneflag) then added planted cases for runs of months (gaps, a certificate upgraded
mid-run, an R07 household paid through two members); the digests were recomputed once more at that
change. Since then they guard against unplanned changes of the generator's bytes.
"""

from __future__ import annotations

import hashlib
import importlib
import json
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from lowincome.feeds import DEPARTMENT_FEEDS as FEEDS
from lowincome.generate import generate
from lowincome.generate.deliveries import write_file
from lowincome.generate.increments import MonthlyRows
from lowincome.generate.manifest import RowRecords, write_manifest

deliveries_module = importlib.import_module("lowincome.generate.deliveries")  # the package exports a function of that name

WHOLE_WORLD_DIGESTS = {
    # options -> sha256 over (relative path, sha256 of the file) of everything written, expected.json included
    "a": (dict(seed=5, scale=0.3, end_date=date(2026, 10, 31), months=24, claims_factor=2.0),
          "6161e55d7d7bbbc9e9236cc90fbd9d7d233e7cc8eb96b20520f4aa589e9f9cde"),
    "b": (dict(seed=3, scale=0.2, end_date=date(2026, 8, 15), months=15, feeds=["medical_claims", "death_records", "hrss_benefits"]),
          "509a8857b4b4feb959a0547c0d72f0947edfcfc4df28368f2733801fe1e4ac07"),
}


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(folder)).encode())
            h.update(hashlib.sha256(p.read_bytes()).digest())
    return h.hexdigest()


@pytest.mark.parametrize("case", sorted(WHOLE_WORLD_DIGESTS))
def test_the_streaming_generator_writes_what_the_whole_world_generator_wrote(tmp_path, case):
    """24 months with a claims factor, and 15 months to a mid-month end date with three feeds: same bytes as before."""
    options, digest = WHOLE_WORLD_DIGESTS[case]
    generate(tmp_path / case, **options)
    assert _digest(tmp_path / case) == digest


def test_each_file_draws_only_its_own_months(tmp_path, monkeypatch):
    """No increment is ever built whole: a file asks for at most a quarter of months (3), one county at a time."""
    asked: list[int] = []
    original = MonthlyRows.__init__

    def spy(self, county, file_dates, rows, build):
        def counted(indices):
            asked.append(len(indices))
            return build(indices)
        original(self, county, file_dates, rows, counted)

    monkeypatch.setattr(MonthlyRows, "__init__", spy)
    manifest = generate(tmp_path / "g", seed=3, scale=0.2, end_date=date(2026, 10, 31), months=24)
    increments = [f for f in manifest["files"] if FEEDS[f["feed"]].kind == "increment" and f["feed"] != "death_records"]
    assert asked and max(asked) == 3  # quarterly extracts: three months, never the 24 of the history
    # one build per file, plus one per month to count each month's rows before the files are laid out
    assert sum(1 for n in asked if n == 3) <= len(increments)


class _NoShuffle:
    """Draws that keep the column order and add no extra column, so the text can be compared with Polars' own."""

    def random(self) -> float:
        return 0.99


@pytest.mark.parametrize("fmt", ["csv-utf8", "csv-bom", "csv-gb18030"])
def test_a_csv_written_in_slices_is_the_csv_written_whole(tmp_path, monkeypatch, fmt):
    """Quotes, commas, line breaks and Chinese in the fields; BOM only at the start; header only once."""
    spec = FEEDS["death_records"]
    values = ["张三", 'a "quoted" name', "comma, inside", "line\nbreak", "", None, "李四"]
    n = 1003
    frame = pl.DataFrame({c.name: [values[(i + k) % len(values)] for i in range(n)] for k, c in enumerate(spec.columns)})
    headers = {c.name: c.header for c in spec.columns}
    whole = frame.rename(headers).write_csv()
    encoding = {"csv-utf8": "utf-8", "csv-bom": "utf-8-sig", "csv-gb18030": "gb18030"}[fmt]
    monkeypatch.setattr(deliveries_module, "CSV_SLICE_ROWS", 97)
    rng = _NoShuffle()
    write_file(frame, spec, tmp_path / "f.csv", fmt, rng)
    assert (tmp_path / "f.csv").read_bytes() == whole.encode(encoding)
    write_file(frame.head(0), spec, tmp_path / "empty.csv", fmt, rng)
    assert (tmp_path / "empty.csv").read_bytes() == frame.head(0).rename(headers).write_csv().encode(encoding)


def _records(n: int) -> list[dict]:
    kinds = [("id_fullwidth_digits", "id_number"), ("date_chinese", "settled_on"), ("money_thousands_separator", "amount")]
    return [{"feed": "medical_claims" if i < n // 2 else "hrss_benefits", "file": f"f{i // 7}.csv", "row": i * 3 + 1,
             "kind": kinds[i % 3][0], "column": kinds[i % 3][1]} for i in range(n)]


def test_row_records_give_back_the_dicts_they_were_given():
    plain = _records(50)
    records = RowRecords()
    records += plain[:20]
    records.extend(plain[20:])
    assert len(records) == 50 and list(records) == plain and records == plain
    assert records[0] == plain[0] and records[-1] == plain[-1] and records[23] == plain[23] and records[3:6] == plain[3:6]
    assert records != plain[:-1] and RowRecords() == [] and not RowRecords()
    with pytest.raises(IndexError):
        records[50]
    with pytest.raises(ValueError, match="keys"):
        RowRecords([{"file": "x", "feed": "y", "row": 1, "kind": "k", "column": "c"}])
    with pytest.raises(TypeError):  # not silently serialised as an empty list
        json.dumps({"messy_valid": records})


@pytest.mark.parametrize("n", [0, 1, 40])
def test_the_manifest_is_written_as_json_dumps_wrote_it(tmp_path, n):
    plain = {"seed": 7, "scale": 1.0, "end_date": "2026-10-31", "counties": ["371302", "371324"], "files": [],
             "bad_rows": _records(3), "messy_valid": _records(n), "planted": [{"rule": "R01", "note": "低保金 paid", "level": None}],
             "redeliveries": [], "months": 24, "nested": {"a": [1, {"b": []}], "c": {}}}
    write_manifest(tmp_path / "m.json", {**plain, "messy_valid": RowRecords(plain["messy_valid"])})
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == json.dumps(plain, ensure_ascii=False, indent=1)
    write_manifest(tmp_path / "e.json", {})
    assert (tmp_path / "e.json").read_text(encoding="utf-8") == json.dumps({}, ensure_ascii=False, indent=1)


def test_the_counted_rows_of_each_month_are_the_rows_it_builds():
    """Claims are counted from their draws alone (dead claimants' later claims left out): the count is the build's."""
    from lowincome.generate import build_world

    world = build_world(3, 0.2, date(2026, 10, 31), months=24)
    for table, sources in world.increments.items():
        for source in sources:
            built = [source.build([i]).height for i in range(len(source.rows))]
            assert source.rows == built, (table, source.county)
    claims = pl.concat([s.build(list(range(len(s.rows)))) for s in world.increments["claims"]])
    died = world.tables["deaths"].filter(~pl.col("_second")).select("id_number", "died_on")
    claimed_by_the_dead = claims.join(died, on="id_number")
    assert claimed_by_the_dead.height > 0  # the dead did claim, before dying
    assert claimed_by_the_dead.filter(pl.col("settled_on") > pl.col("died_on")).height == 0
