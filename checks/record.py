"""The validation record of a run: every delivered file against its feed's suite, kept for auditors.

For each file the ingest asset hands over, the feed's suite (`checks.suites`)
runs once per file content, extraction date and previous-delivery size (the
volume check), and the result is cached under the working storage: a file
delivered months ago is not re-validated every night, yet every run records
its result in `audit.validation_results`. The masked GX results also go into a
persistent file-mode GX store under `<work>/gx/`, from which the publishing
step renders the Data Docs site (`render_data_docs`) covering every delivery.

Cost: each file's suite is one Polars pass (`checks.evaluate`) over its validated rows: for a file
parsed tonight, the frame ingestion holds in memory (`SuitePass`, the `on_file` hook of
`ingest_feed`); otherwise its parsed Parquet, reading only the columns the suite uses. One file at a
time in this process: memory is bounded by one file, and no worker pool holds pandas copies of files. The Data Docs site is rebuilt only
when a result was stored since it was last rendered (a generation stamp, `render_data_docs`).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import uuid
from contextlib import contextmanager
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path

import polars as pl

from lowincome.feeds import FEEDS, FeedSpec
from lowincome.fingerprint import fingerprint
from lowincome.ingest import DeliveredFile
from lowincome.privacy import neutralize_html, redact
from lowincome.temporaries import write_text_atomic
from lowincome.workstore import write_atomic

from .names import DEFAULT_VOLUME_MIN_ROWS, DEFAULT_VOLUME_SHARE, RESULT_SCHEMA, SITE_NAME, suite_name

LOG = logging.getLogger(__name__)


def _fingerprint() -> str:
    """Everything that shapes a file's suite results: its parsed rows (feed registry, reading, parsing,
    identity, validation, ...) and the suites themselves (`fingerprint("validation")`)."""
    return fingerprint("validation")


@contextmanager
def _locked(folder: Path):
    """GX's file store is not safe for concurrent writers (feeds may ingest in parallel processes)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@lru_cache(maxsize=4)
def _docs_context(gx_dir: Path):
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx  # here, not at import: a night with nothing to validate or render skips it

    ctx = gx.get_context(mode="file", project_root_dir=str(gx_dir))
    return ctx


def _validate_one(job: tuple) -> pl.DataFrame:
    """Validate one file from its validated rows (a frame in memory, or the parsed Parquet) and store its masked result."""
    feed, source, file_name, extracted_on, prev, share, min_rows, missing, gx_dir = job
    from .run import run_suite  # imports GX: only when a file is validated

    v = run_suite(FEEDS[feed], source if isinstance(source, pl.DataFrame) else Path(source), file_name=file_name,
                  extracted_on=extracted_on, previous_rows=prev, volume_share=share, missing_columns=missing,
                  volume_min_rows=min_rows)
    _store(gx_dir, [v])
    return v.frame


def _cache_path(cache_dir: Path, f: DeliveredFile, prev: int | None, volume_share: float, min_rows: int,
                fingerprint: str) -> Path:
    return cache_dir / (f"{f.sha256}_{f.extracted_on:%Y%m%d}_{f.county}_{prev}_{volume_share}_{min_rows}"
                        f"_{fingerprint}.parquet")


class SuitePass:
    """Run each new file's suite on its validated rows while ingestion holds them in memory (`ingest_feed(on_file=...)`).

    Reading the parsed cache back for the suite was one more pass over every new file. Called for
    every readable file in delivery order (the order `validate_files` sorts them in), it follows the
    previous delivery's row count per county exactly as `validate_files` does, and for a file just
    parsed whose result is not cached yet it evaluates the suite on the frame, stores the masked GX
    result and writes the result cache. `validate_files` then finds the result cached; anything this
    pass did not cover (a file parsed on an earlier night whose predecessor changed) it still
    evaluates from the parsed cache, so the record never depends on this pass having run.
    """

    def __init__(self, spec: FeedSpec, work_dir: Path, volume_share: float = DEFAULT_VOLUME_SHARE,
                 volume_min_rows: int = DEFAULT_VOLUME_MIN_ROWS):
        self.spec, self.volume_share, self.volume_min_rows = spec, volume_share, volume_min_rows
        self.cache_dir = work_dir / "validated" / spec.name
        self.gx_dir = work_dir / "gx"
        self.fingerprint = _fingerprint()
        self.previous: dict[str, int] = {}
        self.last: tuple | None = (date.min, "")  # None: called out of order, pass disabled

    def __call__(self, f: DeliveredFile, frame: pl.DataFrame | None) -> None:
        key = (f.extracted_on, f.file_name)
        if self.last is None or key < self.last:  # not in delivery order: leave every later file to validate_files
            self.last = None
            return
        self.last = key
        prev = self.previous.get(f.county)
        if f.rows and not f.missing_columns:
            self.previous[f.county] = f.rows
        if frame is None:
            return
        cache = _cache_path(self.cache_dir, f, prev, self.volume_share, self.volume_min_rows, self.fingerprint)
        if cache.exists():
            return
        _docs_context(self.gx_dir)  # create the store once
        result = _validate_one((self.spec.name, frame, f.file_name, f.extracted_on, prev, self.volume_share,
                                self.volume_min_rows, list(f.missing_columns), self.gx_dir))
        write_atomic(cache, result)


GENERATION = ".generation"  # in the GX store: changes whenever a result is stored
RENDERED = ".rendered"  # in the Data Docs site: the store generation (and code) it was rendered from


def _bump_generation(gx_dir: Path) -> str:
    token = uuid.uuid4().hex
    write_text_atomic(gx_dir / GENERATION, token)
    return token


def _generation(gx_dir: Path) -> str:
    """The store's current generation (created for a store from before stamps, so it renders once)."""
    try:
        token = (gx_dir / GENERATION).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    return token or _bump_generation(gx_dir)


def _suite_json(suite) -> str:
    """What a stored suite is made of (name, expectations, meta without the per-file parameters), as text."""
    expectations = [(e.configuration if hasattr(e, "configuration") else e).to_json_dict() for e in suite.expectations]
    for e in expectations:
        e.pop("id", None)  # GX assigns ids when a suite is stored: not part of what the suite checks
    meta = {k: val for k, val in (suite.meta or {}).items() if k != "parameters"}
    return json.dumps({"name": suite.name, "expectations": expectations, "meta": meta}, sort_keys=True, default=str)


SUITES_STORED = ".suites"  # beside GX's own folder: <name>.sha256, the suite JSON last added to the store


_CONFIRMED: set[tuple[Path, str, str]] = set()  # (store, suite name, code fingerprint) stored by this process


def _store_suite(ctx, gx_dir: Path, suite) -> None:
    """Add or update `suite` in the store only when it differs from the one stored last (or is missing).

    `add_or_update` compares every expectation of the stored suite with pydantic (0.7 s a call for the
    claims suite), so calling it for each file cost more than the suite's own evaluation. The digest of
    what was stored is kept beside the store (so a later night skips it too), and the store must still
    hold the suite. A suite is built by code (`checks.suites`), so within one process, under the same
    code fingerprint, a suite once confirmed is not serialised again (0.2 s per file for the claims).
    """
    confirmed = (gx_dir, suite.name, _fingerprint())
    if confirmed in _CONFIRMED and _suite_in_store(ctx, suite.name):
        return
    digest = hashlib.sha256(_suite_json(suite).encode("utf-8")).hexdigest()
    marker = gx_dir / SUITES_STORED / f"{suite.name}.sha256"
    try:
        current = marker.read_text(encoding="utf-8").strip() == digest
    except OSError:
        current = False
    if not (current and _suite_in_store(ctx, suite.name)):
        from great_expectations import ExpectationSuite

        stored = ExpectationSuite(
            name=suite.name,
            expectations=[e.configuration.to_domain_obj() if hasattr(e, "configuration") else e for e in suite.expectations],
            meta={k: val for k, val in (suite.meta or {}).items() if k != "parameters"},
        )
        ctx.suites.add_or_update(stored)
        marker.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(marker, digest)
    _CONFIRMED.add(confirmed)


def _suite_in_store(ctx, name: str) -> bool:
    """Whether the store still holds the suite (a file under `gx/expectations/`: GX's key, not ours)."""
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    return bool(ctx.expectations_store.has_key(ExpectationSuiteIdentifier(name=name)))


def _store(gx_dir: Path, validations: list) -> None:
    """Put masked results into the persistent store; the key is the file, so a re-validation replaces it.

    Each distinct suite is added to the store at most once per call, and not at all when the stored one
    is the same (`_store_suite`); what remains per file is writing its result.
    """
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    if not validations:
        return
    with _locked(gx_dir):
        ctx = _docs_context(gx_dir)
        seen: set[str] = set()
        stored: list[list] = []
        superseded: list[list] = []
        for v in validations:
            suite = v.suite
            if suite.name not in seen:
                seen.add(suite.name)
                _store_suite(ctx, gx_dir, suite)
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite.name),
                run_id=RunIdentifier(run_name=neutralize_html(v.file_name), run_time=_validation_time(v)),
                batch_identifier=v.feed,
            )
            ctx.validation_results_store.set(key, v.result)
            stored.append(list(key.to_tuple()))
            superseded += _supersede(ctx, gx_dir, key)
        _note_unrendered(gx_dir, stored)
        _note_superseded(gx_dir, superseded)
        _bump_generation(gx_dir)


def _validation_time(v) -> datetime:
    """When the file was validated (the Data Docs' "Run Time"); the extraction day for results from before."""
    try:
        return datetime.fromisoformat((v.result.meta or {})["validation_time"])
    except (KeyError, TypeError, ValueError):
        return datetime(v.extracted_on.year, v.extracted_on.month, v.extracted_on.day, tzinfo=timezone.utc)


LATEST = ".latest"  # in the GX store: per suite and file, the key of the file's current result
SUPERSEDED = ".superseded"  # in the GX store: keys replaced since the last render (their pages are removed)


def _supersede(ctx, gx_dir: Path, key) -> list[list]:
    """Make `key` the file's one result: remove the result it replaces (same suite and file, earlier run time).

    The run time in the key is when the file was validated, so a file validated again (the previous
    delivery's size changed, or the code did) gets a new key; one page per delivered file is what an
    auditor expects, so the older result leaves the store and its page leaves the site.
    """
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    suite, file_name = key.expectation_suite_identifier.name, key.run_id.run_name
    marker = gx_dir / LATEST / suite / (hashlib.sha256(file_name.encode("utf-8")).hexdigest()[:32] + ".json")
    current = list(key.to_tuple())
    try:
        earlier = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        earlier = None
    marker.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(marker, json.dumps(current, ensure_ascii=False))
    if not earlier or earlier == current:
        return []
    try:
        ctx.validation_results_store.remove_key(ValidationResultIdentifier.from_tuple(tuple(earlier)))
    except Exception:  # noqa: BLE001 - already gone (a store cleaned by hand): nothing to remove
        LOG.debug("superseded validation result already absent")
    return [earlier]


def _note_superseded(gx_dir: Path, keys: list[list]) -> None:
    """Remember which results were replaced, so the next render removes their pages (called under the lock)."""
    _append_keys(gx_dir / SUPERSEDED, keys)


def _remove_superseded_pages(ctx, gx_dir: Path, site_dir: Path) -> int:
    """Delete the site's pages of results that were replaced (the index is rebuilt from the store)."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    path = gx_dir / SUPERSEDED
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return 0
    removed = 0
    for line in lines:
        try:
            key = ValidationResultIdentifier.from_tuple(tuple(json.loads(line)))
        except (ValueError, TypeError, IndexError):
            continue
        page = site_dir.joinpath("validations", *key.expectation_suite_identifier.name.split("."),
                                 key.run_id.run_name, key.run_id.to_tuple()[1], f"{key.batch_identifier}.html")
        if page.is_file():
            page.unlink()
            removed += 1
            for folder in (page.parent, page.parent.parent):  # the run-time and file folders, when now empty
                try:
                    folder.rmdir()
                except OSError:
                    break
    path.unlink(missing_ok=True)
    return removed


def validate_files(spec: FeedSpec, files: list[DeliveredFile], work_dir: Path,
                   volume_share: float = DEFAULT_VOLUME_SHARE,
                   volume_min_rows: int = DEFAULT_VOLUME_MIN_ROWS) -> pl.DataFrame:
    """Expectation results of every file (schema `RESULT_SCHEMA` + county, extracted_on, previous_rows)."""
    cache_dir = work_dir / "validated" / spec.name
    fingerprint = _fingerprint()
    previous: dict[str, int] = {}
    gx_dir = work_dir / "gx"
    plan = []
    for f in sorted(files, key=lambda f: (f.extracted_on, f.file_name)):
        prev = previous.get(f.county)
        cache = _cache_path(cache_dir, f, prev, volume_share, volume_min_rows, fingerprint)
        plan.append((f, prev, cache))
        if f.rows and not f.missing_columns:
            previous[f.county] = f.rows
    cached = {cache: _read_cached(cache) for _, _, cache in plan}
    todo = [(f, prev, cache) for f, prev, cache in plan if cached[cache] is None]
    jobs = [(spec.name, f.cache, f.file_name, f.extracted_on, prev, volume_share, volume_min_rows,
             list(f.missing_columns), gx_dir)
            for f, prev, _ in todo]
    if jobs:
        _docs_context(gx_dir)  # create the store once
    results = [_validate_one(j) for j in jobs]  # one file at a time: memory bounded by one file
    for (_, _, cache), frame in zip(todo, results):
        write_atomic(cache, frame)
        cached[cache] = frame
    frames: list[pl.DataFrame] = []
    for f, prev, cache in plan:
        frames.append(cached[cache].with_columns(
            pl.lit(f.county).alias("county"), pl.lit(f.extracted_on).alias("extracted_on"),
            pl.lit(prev, dtype=pl.Int64).alias("previous_rows"), pl.lit(f.sha256).alias("sha256")))
    if not frames:
        return pl.DataFrame(schema={**RESULT_SCHEMA, "county": pl.String, "extracted_on": pl.Date,
                                    "previous_rows": pl.Int64, "sha256": pl.String})
    return pl.concat(frames, how="diagonal_relaxed")


def _read_cached(cache: Path) -> pl.DataFrame | None:
    """A cached suite result, or None when there is none or it cannot be trusted (then it is recomputed).

    Working storage is disposable: a truncated or otherwise unreadable entry (a full disk, a killed
    copy, a stray edit), or one that lacks result columns, is removed with a warning naming it, and
    the file is validated again from its parsed rows instead of failing every later run.
    """
    if not cache.exists():
        return None
    try:
        frame = pl.read_parquet(cache)
        missing = [c for c in RESULT_SCHEMA if c not in frame.columns]
        if missing:
            raise ValueError(f"missing column(s) {', '.join(missing)}")
    except Exception as exc:  # noqa: BLE001 - any unreadable entry is rebuilt; the reason goes into the warning
        LOG.warning("validation cache %s is corrupt or partial (%s: %s); validating the file again",
                    cache, type(exc).__name__, redact(str(exc).splitlines()[0] if str(exc) else "")[:200])
        cache.unlink(missing_ok=True)
        return None
    return frame


UNRENDERED = ".unrendered"  # in the GX store: results stored since the site was last rendered (one JSON key per line)


def _note_unrendered(gx_dir: Path, keys: list[list]) -> None:
    """Remember which results the site lacks, so the next render draws only their pages (called under the lock)."""
    _append_keys(gx_dir / UNRENDERED, keys)


def _append_keys(path: Path, keys: list[list]) -> None:
    """Add result keys to a list kept in the store, one JSON key per line."""
    if not keys:
        return
    try:
        earlier = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        earlier = ""
    write_text_atomic(path, earlier + "".join(json.dumps(k, ensure_ascii=False) + "\n" for k in keys))


def _unrendered(gx_dir: Path) -> list | None:
    """The keys stored since the last render, or None when that is not known (then the whole site is rebuilt)."""
    from great_expectations.data_context.types.resource_identifiers import ValidationResultIdentifier

    try:
        lines = (gx_dir / UNRENDERED).read_text(encoding="utf-8").splitlines()
        return [ValidationResultIdentifier.from_tuple(tuple(json.loads(line))) for line in lines if line.strip()]
    except (OSError, ValueError, TypeError, IndexError):
        return None


def render_data_docs(work_dir: Path, reports_dir: Path) -> Path:
    """Render the Data Docs of every stored delivery validation into `<reports_dir>/validation/`, offline.

    GX rebuilds the whole site from every stored result, which grows with the history, so a night
    renders only what it must. The site records (`.rendered`) the store generation it was rendered
    from, with the validation code's fingerprint: when both are unchanged and the site's index is
    there, nothing is rebuilt. When only new results were stored since (`_store` lists them in
    `.unrendered`), only their pages and the index are drawn. When the code changed, the site is
    missing or the list is lost, every page is drawn again.
    """
    gx_dir = work_dir / "gx"
    site_dir = (Path(reports_dir) / SITE_NAME).resolve()
    site_dir.mkdir(parents=True, exist_ok=True)
    index = site_dir / "index.html"
    with _locked(gx_dir):
        stamp = f"{_generation(gx_dir)} {_fingerprint()}"
        try:
            rendered = (site_dir / RENDERED).read_text(encoding="utf-8").strip()
        except OSError:
            rendered = ""
        if rendered == stamp and index.is_file():
            LOG.info("Data Docs unchanged since the last render (no new validation result): not rebuilt")
            return index
        same_code = index.is_file() and rendered.split(" ")[1:] == [_fingerprint()]
        new_keys = _unrendered(gx_dir) if same_code else None
        (site_dir / RENDERED).unlink(missing_ok=True)  # a failed build below must not look current
        ctx = _docs_context(gx_dir)
        for name in list(ctx.get_config().data_docs_sites or {}):
            ctx.delete_data_docs_site(name)
        from .data_docs import _site_config, make_offline, page_times  # imports GX: only when the site is rebuilt
        from . import expectations  # noqa: F401 - registers the custom expectations the stored suites name (a
        # publishing step in a process of its own, multiprocess or Celery, has not imported them while validating)

        ctx.add_data_docs_site(SITE_NAME, _site_config(site_dir))
        _remove_superseded_pages(ctx, gx_dir, site_dir)
        if new_keys:
            before = page_times(site_dir)
            ctx.build_data_docs(site_names=[SITE_NAME], resource_identifiers=new_keys)
            make_offline(site_dir, only_changed_since=before)
            LOG.info(f"Data Docs: {len(new_keys)} new page(s) drawn, the others kept")
        else:
            ctx.build_data_docs(site_names=[SITE_NAME])
            make_offline(site_dir)
        (gx_dir / UNRENDERED).unlink(missing_ok=True)
        write_text_atomic(site_dir / RENDERED, stamp)
    return index


def summarize(results: pl.DataFrame) -> dict:
    """Key figures for the asset check: rows checked, failing expectations, blocking failures, top problems."""
    if results.height == 0:
        return {"files": 0, "rows_checked": 0, "failed": 0, "blocking": 0, "top": []}
    failed = results.filter(~pl.col("success"))
    per_file_rows = results.group_by("file_name").agg(pl.col("element_count").max())
    top = (failed.group_by("expectation").agg(pl.col("unexpected_count").sum(), pl.len().alias("files"))
           .sort("unexpected_count", descending=True).head(10))
    return {
        "files": results["file_name"].n_unique(),
        "rows_checked": int(per_file_rows["element_count"].fill_null(0).sum()),
        "failed": failed.height,
        "blocking": int((failed["severity"] == "blocking").sum()),
        "top": top.rows(),
        "suite": suite_name_of(results),
    }


def suite_name_of(results: pl.DataFrame) -> str:
    return results["suite"].drop_nulls().first() if results.height else ""


__all__ = ["validate_files", "render_data_docs", "summarize", "suite_name"]
