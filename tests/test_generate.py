"""The generator writes what feeds.md describes, deterministically, with every planted kind."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from lowincome.delivery import parse_delivery_name
from lowincome.feeds import DEPARTMENT_FEEDS as FEEDS
from lowincome.generate import ForeignFiles, generate
from lowincome.identity import normalize_id, normalize_id_expr
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


# --- `generate --out DIR` deletes only what it wrote (issue 8, item 6) ------------------------------------

SMALL = {"seed": 3, "scale": 0.05, "end_date": SAMPLE_END, "feeds": ["death_records", "medical_claims"]}


def _tree(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def test_regenerating_in_place_replaces_only_its_own_files(tmp_path):
    out = tmp_path / "out"
    generate(out, **SMALL)
    assert (out / "redelivery").is_dir() and (out / "broken_inbox").is_dir()
    first = _tree(out)
    generate(out, **SMALL)  # the previous manifest names every file: replaced, same bytes
    assert _tree(out) == first
    generate(out, **{**SMALL, "feeds": ["death_records"]})  # fewer feeds: the claims files it wrote are gone
    assert not (out / "inbox" / "medical_claims").exists()
    fresh = tmp_path / "fresh"
    generate(fresh, **{**SMALL, "feeds": ["death_records"]})
    assert _tree(out) == _tree(fresh)


@pytest.mark.parametrize("where", ["inbox/death_records/death_records_371302_20261031.csv.part",
                                   "inbox/notes.txt", "broken_inbox/medical_claims/mine.csv",
                                   "redelivery/x/y/z.csv", "inbox/.hidden"])
def test_a_file_it_did_not_write_makes_it_refuse_and_delete_nothing(tmp_path, where):
    out = tmp_path / "out"
    generate(out, **SMALL)
    foreign = out / where
    foreign.parent.mkdir(parents=True, exist_ok=True)
    foreign.write_text("not the generator's", encoding="utf-8")
    before = _tree(out)
    with pytest.raises(ForeignFiles) as err:
        generate(out, **SMALL)
    message = str(err.value)
    folder = out / where.split("/")[0]
    assert f"{folder} holds 1 file(s) the generator did not write" in message
    assert where.split("/", 1)[1] in message and "\n" not in message
    assert _tree(out) == before  # nothing deleted, the old manifest included


def test_a_real_inbox_given_by_mistake_is_left_alone(tmp_path):
    """No manifest: every file in DIR/inbox is someone else's (say a department's deliveries)."""
    out = tmp_path / "srv"
    generate(out, **SMALL)
    (out / "expected.json").unlink()
    (out / "redelivery").rename(tmp_path / "elsewhere")
    import shutil

    shutil.rmtree(out / "broken_inbox")
    before = _tree(out)
    count = sum(1 for _ in (out / "inbox").rglob("*.*"))
    with pytest.raises(ForeignFiles, match=rf"{out / 'inbox'} holds {count} file\(s\)"):
        generate(out, **SMALL)
    assert _tree(out) == before


def test_a_manifest_cannot_point_outside_its_folders(tmp_path):
    """expected.json is data: an entry such as ../../x never lets the generator delete a file elsewhere."""
    out = tmp_path / "out"
    generate(out, **SMALL)
    victim = out / "inbox" / "keep.csv"
    victim.write_text("keep me", encoding="utf-8")
    manifest = json.loads((out / "expected.json").read_text(encoding="utf-8"))
    manifest["files"].append({"feed": "death_records", "file": "../keep.csv", "rows": 1})
    (out / "expected.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(ForeignFiles):
        generate(out, **SMALL)
    assert victim.read_text(encoding="utf-8") == "keep me"


def test_a_linked_inbox_is_not_written_through(tmp_path):
    real = tmp_path / "real_inbox"
    real.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "inbox").symlink_to(real, target_is_directory=True)
    with pytest.raises(ForeignFiles):
        generate(out, **SMALL)
    assert list(real.iterdir()) == []


def test_the_command_refuses_with_one_line_and_a_non_zero_exit(tmp_path):
    out = tmp_path / "out"
    (out / "inbox" / "civil_roster").mkdir(parents=True)
    for i in range(3):
        (out / "inbox" / "civil_roster" / f"civil_roster_371302_2026100{i + 1}.csv").write_text("身份证号\n", encoding="utf-8")
    before = _tree(out)
    done = subprocess.run([sys.executable, "-m", "lowincome.cli", "generate", "--out", str(out), "--scale", "0.05"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"lowincome generate: {out / 'inbox'} holds 3 file(s) the generator did not write (e.g. civil_roster/")
    assert "choose an empty folder or remove them" in lines[0]
    assert _tree(out) == before


def test_make_samples_clears_every_folder_the_generator_guards():
    """`make samples` regenerates data_samples/ in place: its rm must cover each folder the generator refuses on."""
    from lowincome.generate import GENERATED_DIRS, MANIFEST

    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\nsamples:", 1)[1].split("\n\n", 1)[0]
    rm = next(line for line in recipe.splitlines() if "rm -rf" in line)
    for name in (*GENERATED_DIRS, MANIFEST):
        assert f"data_samples/{name}" in rm.split(), name


def test_the_default_history_writes_the_bundled_samples_byte_for_byte(generated):
    """`months` defaults to 12 and must leave the committed samples as they are (`make samples` rewrites them)."""
    out, _ = generated
    samples = Path(__file__).resolve().parent.parent / "data_samples"
    for sub in ("inbox", "redelivery", "broken_inbox"):
        assert _digest(out / sub) == _digest(samples / sub), sub
    assert (out / "expected.json").read_bytes() == (samples / "expected.json").read_bytes()


def _months_between(first: str, last: str) -> int:
    return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:7]) - int(first[5:7]) + 1


def test_a_longer_history_is_the_same_city_with_older_quarterly_extracts(tmp_path):
    """24 months = the 12-month inbox unchanged, plus a year of older increments as quarterly extracts."""
    short = generate(tmp_path / "12", seed=5, scale=0.3, end_date=SAMPLE_END)
    long = generate(tmp_path / "24", seed=5, scale=0.3, end_date=SAMPLE_END, months=24)
    recent, everything = _digest(tmp_path / "12" / "inbox"), _digest(tmp_path / "24" / "inbox")
    assert {k: everything.get(k) for k in recent} == recent  # every 12-month file, byte for byte
    assert short["planted"] == long["planted"]
    older = [f for f in long["files"] if f["file"] not in {g["file"] for g in short["files"]}]
    assert older and {f["feed"] for f in older} == {FEEDS[f].name for f in FEEDS if FEEDS[f].kind == "increment"}
    assert all(f["extracted_on"] < "2025-11-01" for f in older)  # the months before the recent year only
    # quarterly: one file per county and quarter (Nov-Jan, Feb-Apr, ...), dated in the quarter's last month
    claims = [f for f in older if f["feed"] == "medical_claims"]
    assert sorted({f["extracted_on"] for f in claims}) == ["2025-01-31", "2025-04-30", "2025-07-31", "2025-10-31"]
    assert len(claims) == 2 * 4
    # the rows themselves, read back from the files, cover 24 calendar months of settlements
    inbox = tmp_path / "24" / "inbox"
    settled = pl.concat([read_delivery(inbox / f["feed"] / f["file"], FEEDS["medical_claims"]).frame.select("settled_on")
                         for f in long["files"] if f["feed"] == "medical_claims"])
    iso = settled["settled_on"].drop_nulls()
    months = iso.filter(iso.str.contains(r"^\d{4}-\d{2}-\d{2}$")).str.slice(0, 7)  # messy spellings aside
    in_range = months.filter((months >= "2024-11") & (months <= "2026-10"))
    assert in_range.n_unique() == 24
    assert _months_between(in_range.min(), in_range.max()) == 24
    assert in_range.len() > 0.9 * iso.len()
    # the population is the same: the latest roster delivery is one of the unchanged files
    roster = [f["file"] for f in long["files"] if f["feed"] == "civil_roster"]
    assert roster == [f["file"] for f in short["files"] if f["feed"] == "civil_roster"]


def test_older_deaths_are_of_people_unknown_to_the_recent_year(tmp_path):
    """The dead of the older months are former residents: nobody dies twice, and nobody claims after dying."""
    manifest = generate(tmp_path / "g", seed=3, scale=0.3, end_date=SAMPLE_END, months=24)
    inbox = tmp_path / "g" / "inbox"

    def frame(feed: str, newer: bool | None = None) -> pl.DataFrame:
        files = [f for f in manifest["files"] if f["feed"] == feed
                 and (newer is None or (f["extracted_on"] >= "2025-11-01") == newer)]
        return pl.concat([read_delivery(inbox / feed / f["file"], FEEDS[feed]).frame for f in files], how="diagonal_relaxed")

    def ids(frame: pl.DataFrame) -> set[str]:
        value, _ = normalize_id_expr(pl.col("id_number"), today=SAMPLE_END)
        return set(frame.select(value.alias("id")).drop_nulls()["id"].to_list())

    old_deaths = frame("death_records", newer=False)
    old_dead = ids(old_deaths)
    assert len(old_dead) >= 2
    recent_people = ids(frame("civil_roster")) | ids(frame("medical_claims", newer=True)) | ids(frame("death_records", newer=True))
    recent_people |= ids(frame("hrss_benefits", newer=True)) | ids(frame("subsidy_payments", newer=True))
    assert not old_dead & recent_people
    # and their claims, if any, are not settled after the death (bad rows aside: they are planted unreadable)
    bad = {(b["file"], b["row"]) for b in manifest["bad_rows"]}
    died = old_deaths.select(normalize_id_expr(pl.col("id_number"), today=SAMPLE_END)[0].alias("id"), "died_on")
    claims = pl.concat([read_delivery(inbox / "medical_claims" / f["file"], FEEDS["medical_claims"]).frame
                        .with_columns(pl.lit(f["file"]).alias("file"))
                        for f in manifest["files"] if f["feed"] == "medical_claims"], how="diagonal_relaxed")
    claims = claims.filter(~pl.struct("file", "source_row").map_elements(lambda r: (r["file"], r["source_row"]) in bad,
                                                                       return_dtype=pl.Boolean))
    after = claims.with_columns(normalize_id_expr(pl.col("id_number"), today=SAMPLE_END)[0].alias("id")).join(
        died, on="id").filter(pl.col("settled_on").str.slice(0, 10) > pl.col("died_on").str.slice(0, 10))
    assert after.height == 0


@pytest.mark.parametrize("months", [11, 0, -3])
def test_a_history_shorter_than_a_year_is_refused(tmp_path, months):
    from lowincome.generate import BadHistory

    with pytest.raises(BadHistory, match="at least 12"):
        generate(tmp_path / "g", scale=0.05, months=months)
    assert not (tmp_path / "g" / "inbox").exists()


def test_the_command_refuses_a_history_shorter_than_a_year(tmp_path):
    done = subprocess.run([sys.executable, "-m", "lowincome.cli", "generate", "--out", str(tmp_path / "g"), "--scale", "0.05",
                           "--months", "11"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--months" in done.stderr and "at least" in done.stderr
    assert not (tmp_path / "g" / "inbox").exists()
