"""The generator writes what feeds.md describes, deterministically, with every planted kind."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import polars as pl

from lowincome.delivery import parse_delivery_name
from lowincome.feeds import DEPARTMENT_FEEDS as FEEDS
from lowincome.generate import generate
from lowincome.identity import normalize_id
from lowincome.reading import read_delivery

from .conftest import SAMPLE_END

RULES = ("R01", "R02", "R03", "R04", "R05", "R06", "R07", "W01", "W02", "W03", "W04", "W05")


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    a = generate(tmp_path / "a", seed=11, scale=0.3, end_date=SAMPLE_END)
    b = generate(tmp_path / "b", seed=11, scale=0.3, end_date=SAMPLE_END)
    assert a == b
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    c = generate(tmp_path / "c", seed=12, scale=0.3, end_date=SAMPLE_END)
    assert _digest(tmp_path / "a" / "inbox") != _digest(tmp_path / "c" / "inbox")


def test_files_follow_the_delivery_contract(generated):
    out, manifest = generated
    inbox = out / "inbox"
    formats = Counter(f["format"] for f in manifest["files"])
    assert set(formats) == {"csv-utf8", "csv-bom", "csv-gb18030", "xlsx", "parquet"}
    assert {f["feed"] for f in manifest["files"]} == set(FEEDS)
    assert {f["county"] for f in manifest["files"]} == {"371302", "371324"}
    for f in manifest["files"]:
        path = inbox / f["feed"] / f["file"]
        d = parse_delivery_name(f["feed"], path)
        assert d.extracted_on <= SAMPLE_END
        read = read_delivery(path, FEEDS[f["feed"]])
        assert read.frame.height == f["rows"]
        assert not read.missing_columns, f["file"]
    assert (inbox / "medical_claims").exists()
    raw = (next((inbox / "civil_roster").glob("*.csv"))).read_bytes()
    assert "家庭编号".encode("utf-8") in raw or "家庭编号".encode("gb18030") in raw


def test_ids_are_valid_and_consistent(generated):
    out, manifest = generated
    bad = {(b["file"], b["row"]) for b in manifest["bad_rows"]}
    f = next(x for x in manifest["files"] if x["feed"] == "civil_roster" and x["format"].startswith("csv"))
    frame = read_delivery(out / "inbox" / "civil_roster" / f["file"], FEEDS["civil_roster"]).frame
    clean = frame.filter(~pl.struct("source_row").map_elements(lambda s: (f["file"], s["source_row"]) in bad, return_dtype=pl.Boolean))
    for raw in clean["id_number"].to_list()[:500]:
        value, problem = normalize_id(raw, today=SAMPLE_END)
        assert problem is None and value is not None
    # households: one 本人 each, size column = members listed
    heads = clean.group_by("household_id").agg((pl.col("relation") == "本人").sum().alias("heads"), pl.len().alias("n"),
                                                pl.col("household_size").first().cast(pl.Int64).alias("size"))
    assert (heads["heads"] == 1).mean() > 0.95
    assert (heads["n"] == heads["size"]).mean() > 0.95


def test_claim_parts_sum_to_the_total(generated):
    out, manifest = generated
    bad = {(b["file"], b["row"]) for b in manifest["bad_rows"]}
    f = next(x for x in manifest["files"] if x["feed"] == "medical_claims" and x["format"] == "parquet")
    frame = pl.read_parquet(out / "inbox" / "medical_claims" / f["file"]).with_row_index("row", offset=1)
    frame = frame.filter(~pl.col("row").is_in([r for (fn, r) in bad if fn == f["file"]]))
    cents = lambda c: pl.col(c).str.replace_all(",", "").cast(pl.Float64).mul(100).round(0).cast(pl.Int64)  # noqa: E731
    parts = cents("基本医保统筹支付") + cents("大病保险支付") + cents("医疗救助支付") + cents("个人自付")
    assert frame.select((parts == cents("医疗总费用")).all()).item()


def test_bad_rows_stay_below_the_blocking_share(generated):
    _, manifest = generated
    per_file = Counter(b["file"] for b in manifest["bad_rows"])
    rows = {f["file"]: f["rows"] for f in manifest["files"]}
    for name, n in per_file.items():
        assert n / rows[name] <= 0.05, name
    kinds = {b["kind"] for b in manifest["bad_rows"]}
    for required in ("wrong_check_character", "wrong_length", "impossible_birth_date", "excel_float_id", "negative_amount",
                     "claim_parts_mismatch", "unknown_enum", "unparseable_date", "date_after_extraction",
                     "certificate_mismatch", "duplicate_settlement_id", "duplicate_payment_id"):
        assert required in kinds, required
    messy = {m["kind"] for m in manifest["messy_valid"]}
    for required in ("id_lowercase_x", "id_padded_with_spaces", "id_fullwidth_digits", "id_legacy_15_digits",
                     "date_slashes", "date_compact", "date_chinese", "money_thousands_separator", "month_compact",
                     "division_county_code_only", "coded_digit_only", "death_reported_by_a_second_source"):
        assert required in messy, required


def test_every_rule_has_a_positive_and_a_near_miss(generated):
    _, manifest = generated
    cases = Counter((c["rule"], c["case"]) for c in manifest["planted"])
    for rule in RULES:
        assert cases[(rule, "positive")] >= 1, rule
        assert cases[(rule, "near_miss")] >= 1, rule


def test_broken_inbox_and_redelivery(generated):
    out, manifest = generated
    assert len(manifest["broken_files"]) >= 5
    for b in manifest["broken_files"]:
        assert (out / "broken_inbox" / b["feed"] / b["file"]).exists()
    r = manifest["redeliveries"][0]
    assert (out / "redelivery" / r["feed"] / r["file"]).read_bytes() == (out / "inbox" / r["feed"] / r["copy_of"]).read_bytes()
