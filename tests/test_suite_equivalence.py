"""The one-pass Polars evaluation of the suites (checks.evaluate) gives what GX's pandas engine gives.

The reference is GX itself (`checks.reference.evaluate_with_gx_pandas`, the code that produced every
result before issue 9), run on the same validated frames: generated deliveries with planted defects,
and the same files with many more defects forced in (more than GX's 20 quoted examples, repeated
values, nulls in integer columns, a missing column, a volume jump). The audit rows must be equal,
and so must the masked GX result objects that go to the store and Data Docs (except GX's batch
bookkeeping: the batch id, load time and data fingerprint).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from checks import record
from checks.evaluate import evaluate_suite
from checks.reference import evaluate_with_gx_pandas
from checks.run import run_suite
from lowincome.feeds import FEEDS
from lowincome.reading import read_delivery
from lowincome.validation import RAW_PREFIX, validate_rows

END = date(2026, 10, 31)
SAMPLES = Path(__file__).resolve().parents[1] / "data_samples" / "inbox"
GENERATED_FEEDS = sorted(f for f in FEEDS if (SAMPLES / f).is_dir())  # the feeds the generator delivers
_BATCH_META = ("active_batch_definition", "batch_markers", "batch_spec", "run_id", "validation_time")  # differ by run, not result


def _day(file_name: str) -> date:
    return datetime.strptime(re.search(r"_(\d{8})\.", file_name).group(1), "%Y%m%d").date()


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory) -> dict[str, list[tuple[str, pl.DataFrame, pl.DataFrame]]]:
    """Per feed, its two deliveries with the most planted defects (or its largest two): (name, validated, text)."""
    from lowincome.generate import generate

    out = tmp_path_factory.mktemp("equivalence")
    manifest = generate(out, seed=11, scale=0.2, end_date=END)
    planted: dict[str, int] = {}
    for b in manifest["bad_rows"]:
        planted[b["file"]] = planted.get(b["file"], 0) + 1
    chosen: dict[str, list[tuple[str, pl.DataFrame]]] = {}
    for feed, spec in FEEDS.items():
        folder = out / "inbox" / feed
        if not folder.is_dir():
            continue
        paths = sorted((p for p in folder.iterdir() if p.is_file()), key=lambda p: (-planted.get(p.name, 0), -p.stat().st_size))[:2]
        texts = [(p.name, read_delivery(p, spec).frame) for p in paths]
        chosen[feed] = [(name, _validated(spec, text, name), text) for name, text in texts]
    assert sorted(chosen) == GENERATED_FEEDS
    assert sum(planted.get(d[0], 0) for files in chosen.values() for d in files) >= 20  # defects are really in play
    return chosen


def _validated(spec, text: pl.DataFrame, file_name: str) -> pl.DataFrame:
    """`validate_rows` as ingest runs it (with the county of the file's name)."""
    return validate_rows(text, spec, _day(file_name), county=file_name.rsplit("_", 2)[-2])


def _normalised(result) -> dict:
    d = json.loads(json.dumps(result.to_json_dict(), ensure_ascii=False, default=str))
    d["meta"] = {k: v for k, v in d["meta"].items() if k not in _BATCH_META}
    for r in d["results"]:
        r["expectation_config"]["kwargs"].pop("batch_id", None)
    return d


def _both(spec, frame, file_name, **kw):
    common = dict(file_name=file_name, extracted_on=_day(file_name), **kw)
    return (run_suite(spec, frame, **common), run_suite(spec, frame, evaluator=evaluate_with_gx_pandas, **common))


def _assert_same(new, old):
    assert new.frame.equals(old.frame), pl.concat([new.frame.with_columns(pl.lit("new").alias("by")),
                                                  old.frame.with_columns(pl.lit("gx").alias("by"))]).sort("expectation").rows()
    a, b = _normalised(new.result), _normalised(old.result)
    for x, y in zip(a["results"], b["results"]):
        assert x == y, (x, y)
    assert a == b


@pytest.mark.parametrize("feed", GENERATED_FEEDS)
def test_generated_deliveries_give_gx_results(deliveries, feed):
    for file_name, frame, _ in deliveries[feed]:
        new, old = _both(FEEDS[feed], frame, file_name, previous_rows=frame.height)
        _assert_same(new, old)


def _spoiled(spec, text: pl.DataFrame) -> pl.DataFrame:
    """The delivered text with many defects of every kind the suite checks, in known row ranges.

    Spoiled as delivered text, then parsed by `validate_rows` as ingest does, so the typed columns are
    what the quarantine makes of it (more than 20 bad values of a kind, repeated values, integer
    columns with nulls, rows missing one amount of several, a key delivered 30 times).
    """
    i = pl.int_range(pl.len())
    changes: list[pl.Expr] = []

    def rows(a: int, b: int) -> pl.Expr:
        return i.is_between(a, b - 1)

    for k, c in enumerate(spec.columns):
        col = pl.col(c.name)
        if c.kind == "id":  # 25 bad IDs of 3 distinct values
            changes.append(pl.when(rows(0, 25)).then(pl.lit("12345") + (i % 3).cast(pl.String)).otherwise(col).alias(c.name))
        elif c.kind in ("money", "int"):  # shifted per column: some rows miss one amount of several
            changes.append(pl.when(rows(25 + k, 40 + k)).then(pl.lit("约3千")).when(rows(50, 56)).then(pl.lit("-1"))
                           .when(rows(56, 60)).then(pl.lit("0")).otherwise(col).alias(c.name))
        elif c.kind in ("enum", "coded_enum"):
            changes.append(pl.when(rows(60, 85)).then(pl.lit("未知") + (i % 2).cast(pl.String)).otherwise(col).alias(c.name))
        elif c.kind in ("date", "month"):
            changes.append(pl.when(rows(85, 100)).then(pl.lit("2026-02-30")).when(rows(100, 110)).then(pl.lit("2099-01-01"))
                           .otherwise(col).alias(c.name))
        elif c.kind == "text" and not c.nullable:
            changes.append(pl.when(rows(110, 122)).then(pl.lit(" ")).otherwise(col).alias(c.name))
    out = text.with_columns(changes)
    key = spec.unique_key or spec.snapshot_key
    if key:  # the same key on 30 rows
        out = out.with_columns([pl.when(rows(122, 152)).then(pl.col(k).get(min(122, text.height - 1))).otherwise(pl.col(k)).alias(k)
                                for k in key])
    return out


@pytest.mark.parametrize("feed", GENERATED_FEEDS)
def test_many_defects_missing_column_and_volume_jump_give_gx_results(deliveries, feed):
    spec = FEEDS[feed]
    file_name, frame, text = max(deliveries[feed], key=lambda d: d[1].height)
    spoiled = _validated(spec, _spoiled(spec, text), file_name)
    missing = [next(c for c in reversed(spec.columns) if c.required).header]
    new, old = _both(spec, spoiled, file_name, previous_rows=spoiled.height * 3, missing_columns=missing,
                     volume_min_rows=0)  # judge the jump however small the file
    _assert_same(new, old)
    failed = new.frame.filter(~pl.col("success"))
    assert "expect_table_row_count_to_be_between(file)" in failed["expectation"].to_list()
    assert f"expect_column_to_exist({missing[0]})" in failed["expectation"].to_list()
    if frame.height >= 152:  # every kind of spoiled cell is there
        assert failed.height >= 5 and failed["unexpected_count"].max() >= 25


@pytest.mark.parametrize("feed", GENERATED_FEEDS)
def test_a_file_evaluated_in_slices_gives_the_result_of_the_whole_file(deliveries, feed, monkeypatch):
    """The GX input is built a slice of rows at a time (memory); counts, examples and uniqueness stay file-wide.

    Slices of 7 and 40 rows (1 for a feed of a few rows) cut through every spoiled range: more than
    20 bad values of a kind (the examples are the file's first 20, not each slice's), a key repeated
    on 30 rows (a duplicate is judged against the whole file, not its slice), integer columns with a
    null in one slice only.
    """
    import checks.evaluate as evaluate
    from checks.run import present_columns
    from checks.suites import suite_for, suite_parameters

    spec = FEEDS[feed]
    file_name, frame, text = max(deliveries[feed], key=lambda d: d[1].height)
    spoiled = _validated(spec, _spoiled(spec, text), file_name)
    params = suite_parameters(_day(file_name), spoiled.height * 3)
    complete = {"result_format": "COMPLETE", "return_unexpected_index_query": False}
    whole = [_normalised(evaluate_suite(spec, suite_for(spec), spoiled, params, present_columns(spec), fmt))
             for fmt in ("SUMMARY", complete)]
    sizes = (7, 40) if spoiled.height > 40 else (1,)  # a tiny feed (a few deaths): one row per slice
    for rows in sizes:
        monkeypatch.setattr(evaluate, "SUITE_SLICE_ROWS", rows)
        sliced = [_normalised(evaluate_suite(spec, suite_for(spec), spoiled, params, present_columns(spec), fmt))
                  for fmt in ("SUMMARY", complete)]
        for a, b in zip(sliced, whole):
            for x, y in zip(a["results"], b["results"]):
                assert x == y, (rows, x, y)
            assert a == b
    assert spoiled.height > sizes[0] and any(not r["success"] for r in whole[0]["results"])


def test_a_parquet_file_gives_the_result_of_its_frame_reading_only_the_suite_columns(deliveries, tmp_path, monkeypatch):
    spec = FEEDS["medical_claims"]
    file_name, frame, _ = deliveries["medical_claims"][0]
    path = tmp_path / "parsed.parquet"
    frame.with_columns(pl.lit("not read").alias("unrelated")).write_parquet(path)
    read: list = []
    real = pl.read_parquet

    def spy(source, *args, **kwargs):
        read.append(kwargs.get("columns"))
        return real(source, *args, **kwargs)

    monkeypatch.setattr(pl, "read_parquet", spy)
    from_file = run_suite(spec, path, file_name=file_name, extracted_on=_day(file_name), previous_rows=None)
    monkeypatch.undo()
    from_frame = run_suite(spec, frame, file_name=file_name, extracted_on=_day(file_name), previous_rows=None)
    assert from_file.frame.equals(from_frame.frame)
    assert _normalised(from_file.result) == _normalised(from_frame.result)
    assert read and all(cols is not None and "unrelated" not in cols and "reasons" not in cols for cols in read), read


def test_complete_format_lists_every_unexpected_row(deliveries):
    spec = FEEDS["civil_roster"]
    file_name, frame, text = max(deliveries["civil_roster"], key=lambda d: d[1].height)
    spoiled = _validated(spec, _spoiled(spec, text), file_name)
    from checks.run import present_columns
    from checks.suites import suite_for, suite_parameters

    fmt = {"result_format": "COMPLETE", "return_unexpected_index_query": False}
    params = suite_parameters(_day(file_name), None)
    new = evaluate_suite(spec, suite_for(spec), spoiled, params, present_columns(spec), fmt)
    old = evaluate_with_gx_pandas(spec, suite_for(spec), spoiled, params, present_columns(spec), fmt)
    assert _normalised(new) == _normalised(old)
    ids = next(r for r in new.results if r.expectation_config.type == "expect_column_values_to_be_valid_gb11643_id"
               and r.expectation_config.kwargs["column"] == "raw_id_number")
    assert ids.result["unexpected_index_list"][:25] == list(range(25))


# ---- Data Docs: rebuilt only when something new was stored ----------------------------------------


def test_data_docs_are_not_rebuilt_without_a_new_result_and_are_with_one(deliveries, tmp_path, monkeypatch):
    spec = FEEDS["death_records"]
    work, reports = tmp_path / "work", tmp_path / "reports"
    (file_a, frame_a, _), (file_b, frame_b, _) = deliveries["death_records"][:2]
    record._store(work / "gx", [run_suite(spec, frame_a, file_name=file_a, extracted_on=_day(file_a), previous_rows=None)])
    index = record.render_data_docs(work, reports)
    pages = {p.name for p in index.parent.rglob("*.html")}
    assert any(file_a in p.as_posix() for p in index.parent.rglob("*.html"))

    builds: list = []
    import checks.data_docs as data_docs  # imported by render_data_docs when it rebuilds (GX is imported lazily)

    real_make_offline = data_docs.make_offline
    monkeypatch.setattr(data_docs, "make_offline",
                        lambda site, **kw: builds.append(site) or real_make_offline(site, **kw))
    assert record.render_data_docs(work, reports) == index
    assert builds == []  # nothing stored since: not rebuilt
    assert {p.name for p in index.parent.rglob("*.html")} == pages

    record._store(work / "gx", [run_suite(spec, frame_b, file_name=file_b, extracted_on=_day(file_b), previous_rows=None)])
    record.render_data_docs(work, reports)
    assert len(builds) == 1
    assert any(file_b in p.as_posix() for p in index.parent.rglob("*.html"))

    index.unlink()  # a damaged site is rebuilt even without a new result
    record.render_data_docs(work, reports)
    assert len(builds) == 2 and index.is_file()

    monkeypatch.setattr(record, "_fingerprint", lambda: "code-changed")  # new validation code: rebuilt
    record.render_data_docs(work, reports)
    assert len(builds) == 3


def test_validate_files_reads_the_parsed_file_not_a_frame(tmp_path, monkeypatch):
    """The nightly path hands the suite the parsed Parquet's path (read narrowly), one file at a time."""
    from .handmade import delivery_path, person_id, write_csv
    from lowincome.ingest import ingest_feed

    inbox, work = tmp_path / "inbox", tmp_path / "work"
    header = ["身份证号", "姓名", "死亡日期", "信息来源"]
    write_csv(delivery_path(inbox, "death_records", "371302", END, "csv"), header,
              [[person_id("371302", "19400101", 1), "赵一", "2026-09-01", "殡葬火化"]])
    spec = FEEDS["death_records"]
    files = ingest_feed(spec, inbox, END, work).files
    seen: list = []
    import checks.run as run_module  # imported by validate_files when a file is validated (GX is imported lazily)

    real = run_module.run_suite

    def spy(spec_, validated, **kw):
        seen.append(validated)
        return real(spec_, validated, **kw)

    monkeypatch.setattr(run_module, "run_suite", spy)
    results = record.validate_files(spec, files, work)
    assert results.height > 0 and results["success"].all()
    assert seen and all(isinstance(v, Path) for v in seen)


# ---- the bundled samples ------------------------------------------------------------------------


def test_bundled_samples_give_gx_results():
    """Every sampled feed's messiest sample file (planted defects, messy-but-valid cells): as GX."""
    from .test_checks import FEEDS_WITH_SAMPLES, sample_file, validated

    for feed in FEEDS_WITH_SAMPLES:
        file_name = sample_file(feed)
        frame = validated(feed, file_name)
        new, old = _both(FEEDS[feed], frame, file_name, previous_rows=frame.height * 2)
        _assert_same(new, old)


def test_a_column_absent_from_the_parsed_file_fails_only_its_expectations(deliveries, tmp_path):
    spec = FEEDS["hrss_benefits"]
    file_name, frame, _ = deliveries["hrss_benefits"][0]
    path = tmp_path / "parsed.parquet"
    frame.drop("raw_amount").write_parquet(path)
    result = run_suite(spec, path, file_name=file_name, extracted_on=_day(file_name), previous_rows=None).frame
    broken = result.filter(pl.col("details").str.starts_with("could not be evaluated"))
    assert set(broken["expectation"]) == {"expect_column_values_to_not_be_null(金额)", "expect_column_values_to_be_recognised(金额)"}
    assert (broken["severity"] == "blocking").all() and not broken["success"].any()
    assert result.filter(pl.col("expectation") == "expect_column_values_to_be_between(金额)")["success"].item()
