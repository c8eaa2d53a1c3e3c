"""Great Expectations suites (checks/): clean files pass, planted defects fail the right expectation,
GX and the quarantine agree row for row, and the Data Docs site works offline without personal data."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest

from lowincome.feeds import FEEDS, Column
from lowincome.reading import ROW_COLUMN, read_delivery
from lowincome.validation import REASONS, validate_rows

from checks.run import RESULT_SCHEMA, quarantine_agreement, run_suite, validate_delivery
from checks.suites import suite_for, suite_name

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data_samples"
INBOX = SAMPLES / "inbox"
MANIFEST = json.loads((SAMPLES / "expected.json").read_text(encoding="utf-8"))
ID_PATTERN = re.compile(r"\d{17}[\dX]")

# Planted defect kind → the expectation type that must reject it.
EXPECTED_BY_KIND = {
    "excel_float_id": "expect_column_values_to_be_valid_gb11643_id",
    "wrong_length": "expect_column_values_to_be_valid_gb11643_id",
    "wrong_check_character": "expect_column_values_to_be_valid_gb11643_id",
    "legacy_number_ending_in_x": "expect_column_values_to_be_valid_gb11643_id",
    "impossible_birth_date": "expect_column_values_to_be_valid_gb11643_id",
    "ended_on_while_active": "expect_column_values_to_be_present_exactly_when",
    "household_size_zero": "expect_column_values_to_be_between",
    "unparseable_date": "expect_column_values_to_be_recognised",
    "unparseable_month": "expect_column_values_to_be_recognised",
    "unparseable_amount": "expect_column_values_to_be_recognised",
    "unknown_enum": "expect_column_values_to_be_in_set",
    "negative_amount": "expect_column_values_to_be_between",
    "zero_amount": "expect_column_values_to_be_between",
    "date_after_extraction": "expect_column_values_to_be_between",
    "blank_required": "expect_column_values_to_not_be_null",
    "claim_parts_mismatch": "expect_column_parts_to_sum_to_total",
    "certificate_mismatch": "expect_certificate_number_to_match_holder",
    "duplicate_payment_id": "expect_column_values_to_be_unique",
    "duplicate_settlement_id": "expect_column_values_to_be_unique",
}
SET_LEVEL_KINDS = {"duplicate_payment_id", "duplicate_settlement_id"}


def extracted_on(file_name: str) -> date:
    return datetime.strptime(re.search(r"_(\d{8})\.", file_name).group(1), "%Y%m%d").date()


def validated(feed: str, file_name: str, inbox: Path = INBOX) -> pl.DataFrame:
    spec = FEEDS[feed]
    rr = read_delivery(inbox / feed / file_name, spec)
    return validate_rows(rr.frame, spec, extracted_on(file_name))


def bad_rows_by_file() -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for b in MANIFEST["bad_rows"]:
        out[b["file"]].append(b)
    return out


def sample_file(feed: str) -> str:
    """A delivery of `feed` with planted bad rows if there is one, else the first delivery."""
    with_bad = sorted({b["file"] for b in MANIFEST["bad_rows"] if b["feed"] == feed})
    return with_bad[0] if with_bad else sorted(p.name for p in (INBOX / feed).iterdir())[0]


FEEDS_WITH_SAMPLES = [f for f in FEEDS if (INBOX / f).is_dir() and any((INBOX / f).iterdir())]


# ---- the suites ------------------------------------------------------------------------------


def test_suite_names_are_versioned_and_derived_from_the_registry():
    for spec in FEEDS.values():
        suite = suite_for(spec)
        assert suite.name == suite_name(spec) == f"{spec.name}.v1"
        columns = {c for e in suite.expectations for c in (e.configuration.kwargs.get("column_list") or [e.configuration.kwargs.get("column")]) if c}
        for col in spec.columns:
            if col.kind == "text" and col.nullable and not col.required:
                continue  # optional free text: nothing to expect
            assert any(col.name in c for c in columns), (spec.name, col.name)
    spec = FEEDS["death_records"]
    grown = dataclasses.replace(spec, columns=spec.columns + (Column("死亡地点", "place_of_death", "enum", values=("医院", "家中")),))
    added = {e.expectation_type + ":" + str(e.configuration.kwargs.get("column")) for e in suite_for(grown).expectations} - {
        e.expectation_type + ":" + str(e.configuration.kwargs.get("column")) for e in suite_for(spec).expectations
    }
    assert added == {
        "expect_column_to_exist:raw_place_of_death",
        "expect_column_values_to_not_be_null:raw_place_of_death",
        "expect_column_values_to_be_in_set:delivered_place_of_death",
    }


@pytest.mark.parametrize("feed", FEEDS_WITH_SAMPLES)
def test_clean_delivery_passes_its_suite(feed):
    file_name = sample_file(feed)
    frame = validated(feed, file_name)
    planted = {b["row"] for b in bad_rows_by_file().get(file_name, [])}
    clean = frame.filter(~pl.col(ROW_COLUMN).is_in(list(planted)))
    result = validate_delivery(
        FEEDS[feed], clean, file_name=file_name, extracted_on=extracted_on(file_name), previous_rows=clean.height
    )
    assert result.schema == pl.Schema(RESULT_SCHEMA)
    failed = result.filter(~pl.col("success"))
    assert failed.is_empty(), failed.select("expectation", "details").rows()
    assert set(result["suite"]) == {f"{feed}.v1"}
    assert (result["feed"] == feed).all() and (result["file_name"] == file_name).all()


def _file_with_a_duplicate() -> list[str]:
    return [next(f for f, rows in sorted(bad_rows_by_file().items()) if any(r["kind"].startswith("duplicate_") for r in rows))]


@pytest.mark.parametrize("file_name", sorted(set(sorted(bad_rows_by_file())[::7] + _file_with_a_duplicate())))
def test_planted_defects_fail_the_expectation_they_should(file_name):
    bad = bad_rows_by_file()[file_name]
    feed = bad[0]["feed"]
    spec = FEEDS[feed]
    frame = validated(feed, file_name)
    agreement = quarantine_agreement(spec, frame, extracted_on(file_name))
    summary = validate_delivery(spec, frame, file_name=file_name, extracted_on=extracted_on(file_name), previous_rows=None)
    for b in bad:
        expected_type = EXPECTED_BY_KIND[b["kind"]]
        header = spec.column(b["column"]).header
        if b["kind"] in SET_LEVEL_KINDS:
            # The first copy came in an earlier delivery (ingest de-duplicates across deliveries):
            # validated together with the earlier deliveries of the feed (keys are unique feed-wide), the key check fails.
            earlier = [validated(feed, p.name) for p in sorted((INBOX / feed).iterdir())
                       if (extracted_on(p.name), p.name) < (extracted_on(file_name), file_name)]
            together = pl.concat([*earlier, frame], how="vertical_relaxed")
            summary = validate_delivery(spec, together, file_name=file_name, extracted_on=extracted_on(file_name), previous_rows=None)
            hit = summary.filter(pl.col("expectation").str.starts_with(expected_type + "(") & pl.col("column").str.contains(header))
            assert hit.height == 1 and not hit["success"][0], b
            continue
        names = [n for n in agreement["by_expectation"] if n.startswith(expected_type + "(") and header in n]
        assert names and any(b["row"] in agreement["by_expectation"][n] for n in names), (b, agreement["by_expectation"])


def test_every_planted_kind_is_covered_by_the_mapping():
    assert {b["kind"] for b in MANIFEST["bad_rows"]} <= set(EXPECTED_BY_KIND)


@pytest.mark.parametrize("feed", FEEDS_WITH_SAMPLES)
def test_quarantine_and_suite_agree_row_for_row(feed):
    """Messy deliveries (planted defects and messy-but-valid cells): the same rows, no more, no fewer."""
    file_name = sample_file(feed)
    frame = validated(feed, file_name)
    agreement = quarantine_agreement(FEEDS[feed], frame, extracted_on(file_name))
    assert agreement["errors"] == []
    assert agreement["only_quarantined"] == [] and agreement["only_flagged"] == []
    assert agreement["agree"]
    planted_row_level = {b["row"] for b in MANIFEST["bad_rows"] if b["file"] == file_name and b["kind"] not in SET_LEVEL_KINDS}
    assert planted_row_level <= set(agreement["quarantined"])


def test_agreement_on_every_sample_with_messy_cells():
    """All files listed with messy-but-valid cells: none of those cells is rejected by either side."""
    messy = defaultdict(set)
    for m in MANIFEST["messy_valid"]:
        messy[(m["feed"], m["file"])].add(m["row"])
    for (feed, file_name), rows in sorted(messy.items())[::5]:
        if feed not in FEEDS or not (INBOX / feed / file_name).exists():
            continue
        frame = validated(feed, file_name)
        agreement = quarantine_agreement(FEEDS[feed], frame, extracted_on(file_name))
        assert agreement["agree"], (file_name, agreement["only_quarantined"], agreement["only_flagged"], agreement["errors"])
        bad = {b["row"] for b in MANIFEST["bad_rows"] if b["file"] == file_name}
        assert not (rows - bad) & set(agreement["flagged"]), file_name


def test_missing_required_column_is_blocking():
    file_name = "death_records_371311_20261031.csv"
    spec = FEEDS["death_records"]
    rr = read_delivery(SAMPLES / "broken_inbox" / "death_records" / file_name, spec)
    assert rr.missing_columns == ["死亡日期"]
    frame = validate_rows(rr.frame, spec, extracted_on(file_name))
    result = validate_delivery(
        spec, frame, file_name=file_name, extracted_on=extracted_on(file_name), previous_rows=None,
        missing_columns=rr.missing_columns,
    )
    row = result.filter(pl.col("expectation") == "expect_column_to_exist(死亡日期)").row(0, named=True)
    assert row["success"] is False and row["severity"] == "blocking"
    others = result.filter(pl.col("expectation").str.starts_with("expect_column_to_exist") & (pl.col("column") != "死亡日期"))
    assert others["success"].all()


@pytest.mark.parametrize(("previous", "share", "ok"), [(None, 0.30, True), (100, 0.30, None), (10_000, 0.30, False), (10_000, 0.99, True)])
def test_volume_change_is_flagged(previous, share, ok):
    file_name = sample_file("medical_claims")
    frame = validated("medical_claims", file_name)
    if ok is None:  # previous delivery the same size as this one
        previous, ok = frame.height, True
    result = validate_delivery(
        FEEDS["medical_claims"], frame, file_name=file_name, extracted_on=extracted_on(file_name),
        previous_rows=previous, volume_share=share,
    )
    row = result.filter(pl.col("expectation") == "expect_table_row_count_to_be_between(file)").row(0, named=True)
    assert row["success"] is ok
    assert row["severity"] == "warning"
    assert row["observed_value"] == str(frame.height)


def test_results_quote_no_id_numbers_or_names():
    for feed in ("civil_roster", "medical_claims", "disability_cert"):
        file_name = sample_file(feed)
        frame = validated(feed, file_name)
        dv = run_suite(FEEDS[feed], frame, file_name=file_name, extracted_on=extracted_on(file_name), previous_rows=None)
        text = " ".join(str(v) for row in dv.frame.rows() for v in row)
        assert not ID_PATTERN.search(text)
        names = [n for n in frame["raw_name"].drop_nulls().to_list() if len(n) >= 2]
        assert not any(n in text for n in names)
        assert not ID_PATTERN.search(json.dumps(dv.result.to_json_dict(), ensure_ascii=False))


def test_exceptions_surface_as_blocking_failures():
    """A column GX cannot evaluate must not read as a quiet pass (conventions: inspect exception_info)."""
    spec = FEEDS["hrss_benefits"]
    file_name = sample_file("hrss_benefits")
    frame = validated("hrss_benefits", file_name).drop("amount")  # the typed column vanishes
    result = validate_delivery(spec, frame.with_columns(amount=pl.lit("x")), file_name=file_name,
                               extracted_on=extracted_on(file_name), previous_rows=None)
    broken = result.filter(pl.col("expectation") == "expect_column_values_to_be_between(金额)").row(0, named=True)
    assert broken["success"] is False and broken["severity"] == "blocking"
    assert "could not be evaluated" in broken["details"]


# ---- Data Docs -----------------------------------------------------------------------------------

_SRC_HREF = re.compile(r"""\b(src|href)\s*=\s*["']([^"']*)["']""", re.IGNORECASE)
_TAG_URL = re.compile(r"""<(script|link|img)\b[^>]*\b(?:src|href)\s*=\s*["'](https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def data_docs(tmp_path_factory):
    from checks.data_docs import build_data_docs

    validations = []
    for feed in FEEDS_WITH_SAMPLES:
        file_name = sample_file(feed)
        frame = validated(feed, file_name)
        validations.append(
            run_suite(FEEDS[feed], frame, file_name=file_name, extracted_on=extracted_on(file_name), previous_rows=frame.height)
        )
    reports = tmp_path_factory.mktemp("reports")
    return build_data_docs(validations, reports), reports


def test_data_docs_site_is_built_in_the_reports_folder(data_docs):
    index, reports = data_docs
    assert index == reports / "validation" / "index.html" and index.is_file()
    pages = list(index.parent.rglob("*.html"))
    assert any("/validations/" in p.as_posix() for p in pages)
    assert any("/expectations/" in p.as_posix() for p in pages)
    html = index.read_text(encoding="utf-8")
    for feed in FEEDS_WITH_SAMPLES:
        assert f"{feed}.v1" in html


def test_data_docs_links_resolve_locally_and_no_cdn_remains(data_docs):
    index, _ = data_docs
    for page in index.parent.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not _TAG_URL.search(html), page
        assert "great-expectations-web-assets" not in html
        assert not re.search(r"\b(integrity|crossorigin)\b", html), f"subresource integrity left in {page}"
        assert "newsletter" not in html.lower() and "Subscribe" not in html, page
        for _, url in _SRC_HREF.findall(html):
            if re.match(r"(?i)https?:|//", url):
                pytest.fail(f"remote URL left in {page}: {url}")
            if not url or url.startswith(("#", "data:", "javascript:", "mailto:")):
                continue
            target = (page.parent / url.split("#")[0].split("?")[0]).resolve()
            assert target.exists(), (page, url)


def test_data_docs_fonts_and_css_urls_resolve(data_docs):
    index, _ = data_docs
    for css in index.parent.rglob("*.css"):
        for url in re.findall(r"url\(\s*['\"]?([^'\")]+)", css.read_text(encoding="utf-8", errors="replace")):
            if url.startswith(("data:", "#")):
                continue
            assert not re.match(r"(?i)https?:|//", url), (css, url)
            assert (css.parent / url.split("?")[0].split("#")[0]).resolve().exists(), (css, url)


def test_data_docs_say_custom_expectations_in_words(data_docs):
    """No custom expectation is shown as its raw argument dict; each reads as a sentence with delivered headers."""
    index, _ = data_docs
    seen = set()
    for page in index.parent.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert "(**{" not in html and "**{&#39;" not in html, f"a raw argument dict in {page}"
        seen |= {s for s in ("有效的公民身份号码", "每个非空值须可识别", "须等于各项之和", "持证人身份证号加类别", "时填写")
                 if s in html}
    assert {"有效的公民身份号码", "每个非空值须可识别"} <= seen, seen
    pages = "".join(p.read_text(encoding="utf-8") for p in index.parent.rglob("*.html"))
    assert "身份证号 (raw_id_number)" in pages
    # column headings (section header and sidebar) carry the delivered header too, never the bare suite name
    assert re.search(r'<h5 class="m-0" >\s*身份证号 \(raw_id_number\)\s*</h5>', pages)
    assert not re.search(r'<h5 class="m-0" >\s*raw_id_number\s*</h5>', pages)


def test_data_docs_show_no_id_numbers(data_docs):
    index, _ = data_docs
    for page in index.parent.rglob("*.html"):
        assert not ID_PATTERN.search(page.read_text(encoding="utf-8")), page


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_data_docs_render_offline_in_a_browser(data_docs, tmp_path):
    """The vendored jQuery and bootstrap-table run (they rewrite the tables) with the network off."""
    index, _ = data_docs
    page = next(p for p in index.parent.rglob("*.html") if "/validations/" in p.as_posix())
    out = {}
    for p in (index, page):
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--proxy-server=127.0.0.1:9",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000", "--dump-dom", p.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        out[p] = proc.stdout
    # bootstrap-table wraps every table it initialises; it only can if jQuery and the plugin loaded.
    assert "bootstrap-table" in out[index] and "fixed-table-container" in out[index]
    assert "Expectation Validation Result" in out[page] or "Validation" in out[page]
    assert not ID_PATTERN.search(out[page])


_CLICK_SCRIPT = """
<script>
window.addEventListener('load', function () {
  var more = document.querySelector('a[data-toggle="collapse"]');
  var tab = document.querySelector('a[data-toggle="tab"]:not(.active)');
  if (more) { more.click(); }
  if (tab) { tab.click(); }
  setTimeout(function () {
    var body = more ? document.querySelector(more.getAttribute('href')) : null;
    var pane = tab ? document.querySelector(tab.getAttribute('href')) : null;
    var out = document.createElement('pre');
    out.id = 'click-result';
    out.textContent = 'more=' + (body ? body.className : 'absent') + ';tab=' + (pane ? pane.className : 'absent');
    document.body.appendChild(out);
  }, 1500);
});
</script>
"""


def _clicked(page: Path, tmp_path: Path) -> str:
    """Open a copy of `page` (same folder, so its relative links hold) that clicks its first "Show more info..."
    and its first inactive tab once loaded, and report the classes of what they control."""
    probe = page.with_name(f"_click_{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _CLICK_SCRIPT + "</body>"), encoding="utf-8")
    try:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", "--proxy-server=127.0.0.1:9",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=120,
        )
    finally:
        probe.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="click-result">([^<]*)</pre>', proc.stdout)
    assert found, "the page's scripts did not run to the end"
    return found.group(1)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed")
def test_data_docs_tabs_and_show_more_info_work_offline(data_docs, tmp_path):
    """Bootstrap's tabs and collapsibles work from disk: its scripts are not refused for a failed integrity check."""
    index, _ = data_docs
    on_index = _clicked(index, tmp_path)
    assert re.search(r"tab=[^;]*\bactive\b", on_index), on_index  # "Expectation Suites" tab switched
    page = next(p for p in index.parent.rglob("*.html") if "/validations/" in p.as_posix())
    on_page = _clicked(page, tmp_path)
    assert re.search(r"more=[^;]*\bshow\b", on_page), on_page  # "Show more info..." opened


def test_suites_run_without_loading_the_libraries_of_expectations_they_do_not_use():
    """checks/deferred_imports.py: scipy.stats and altair, imported by Great Expectations for expectations our
    suites never use, stay unloaded through validation of every sample feed (about 2 s of every process's
    start), and still work when something does use them."""
    code = "\n".join([
        "import sys",
        "import checks.evaluate, checks.docs_render",
        "from checks.run import validate_delivery",
        "from lowincome.feeds import FEEDS",
        "from tests.test_checks import FEEDS_WITH_SAMPLES, extracted_on, sample_file, validated",
        "for feed in FEEDS_WITH_SAMPLES:",
        "    name = sample_file(feed)",
        "    result = validate_delivery(FEEDS[feed], validated(feed, name), file_name=name,",
        "                               extracted_on=extracted_on(name), previous_rows=None)",
        "    assert result.height > 0",
        "print(' '.join(n for n in ('scipy.stats', 'altair') if type(sys.modules.get(n)).__name__ == '_LazyModule'))",
        "from scipy import stats",
        "import altair",
        "print(stats.norm.cdf(0.0), bool(altair.__version__))",
    ])
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["scipy.stats altair", "0.5 True"]
