"""Synthetic deliveries for all seven feeds, deterministic from a seed and scalable.

`generate(out, seed, scale, end_date)` writes `out/inbox/<feed>/<file>` as
feeds.md describes, plus `out/redelivery/` (a file delivered again under
another name), `out/broken_inbox/` (file-level failures) and
`out/expected.json`: the manifest of every file, every planted bad row and
messy-but-valid value (file and row), and every planted rule case. The same
code serves the bundled samples, the tests and the benchmarks.
"""

from __future__ import annotations

import contextlib
import json
import numbers
import os
import shutil
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Callable

import numpy as np
import polars as pl

from ..errors import LowincomeError
from ..feeds import DEPARTMENT_FEEDS as FEEDS
from .background import (
    RECENT_MONTHS,
    Sizes,
    assign_all_ids,
    attach_certificates,
    build_county,
    deaths_for,
    former_residents,
)
from .broken import write_broken_inbox
from .deliveries import as_text, choose_format, deliveries, ext_of, spoil_file, write_file
from .increments import MonthlyRows, claims_rows, hrss_rows, payments_rows
from .manifest import RowRecords, write_manifest
from .planted import plant_all
from .population import add_months
from .spoil import BAD_KINDS

COUNTIES = ("371302", "371324")
URBAN_SHARE = {"371302": 0.6, "371324": 0.25}
DEFAULT_END = date(2026, 10, 31)
BAD_ROWS_PER_FILE = 2
BAD_SHARE_CAP = 0.03  # below the 5% blocking threshold
MESSY_SHARE = 0.03
OLDER_STREAM = 2412  # mixed into the seed for the draws of the months before the recent year


class BadHistory(LowincomeError):
    """A history shorter than the recent year the planted cases and snapshots are drawn in."""


def _older_rng(seed: int) -> np.random.Generator:
    """The generator of everything about the months before the recent year, apart from the main stream.

    Keeping these draws out of the main stream is what keeps a longer history "the same city": the
    population, the planted cases and the recent year's deliveries are drawn exactly as with 12 months,
    and the recent year's files come out byte for byte the same.
    """
    return np.random.default_rng([seed, OLDER_STREAM])


@dataclass
class World:
    """The city: population-sized tables whole, the increments month by month (drawn per file when written)."""

    tables: dict[str, pl.DataFrame]  # roster, rural, certs, deaths: every county plus the planted rows
    increments: dict[str, list[MonthlyRows]]  # claims, payments, hrss: one entry per county, in county order
    planted: dict[str, pl.DataFrame]  # the planted rows of the increments
    cases: list[dict]


def build_world(seed: int, scale: float, end: date, counties=COUNTIES, feeds: set[str] | None = None,
                claims_factor: float = 1.0, months: int = RECENT_MONTHS) -> World:
    """Draw the city in the order the generator always drew it, so the same seed gives the same city.

    The increments are not kept: claims are drawn here (to move the random streams on exactly as
    before) and drawn again from saved states when their file is written; see `increments`.
    """
    rng = np.random.default_rng(seed)
    older_rng = _older_rng(seed)
    sizes = Sizes().scaled(scale)
    sizes.claims_per_month = max(int(sizes.claims_per_month * claims_factor), 4)
    parts = [build_county(rng, c, sizes, end, URBAN_SHARE.get(c, 0.4)) for c in counties]
    assign_all_ids(rng, parts)
    taken = pl.concat([p[k]["id_number"] for p in parts for k in ("residents", "roster", "rural")])
    former: dict[str, pl.DataFrame] = {}
    for county in counties:  # the dead of the months before the recent year (none with 12 months)
        former[county] = former_residents(older_rng, county, sizes.residents, end, months, taken)
        if former[county].height:
            taken = pl.concat([taken, former[county]["id_number"]])
    del taken
    tables: dict[str, list[pl.DataFrame]] = {k: [] for k in ("roster", "rural", "certs", "deaths")}
    increments: dict[str, list[MonthlyRows]] = {"claims": [], "payments": []}
    want_hrss = feeds is None or "hrss_benefits" in feeds
    if want_hrss:
        increments["hrss"] = []
    for county, p in zip(counties, parts):
        certs = attach_certificates(rng, p, county)
        roster = p["roster"].with_columns(county=pl.lit(county))
        rural = p["rural"].with_columns(county=pl.lit(county))
        residents = p["residents"]
        deaths, dead = deaths_for(rng, county, residents, end, former[county], older_rng)
        died = deaths.filter(~pl.col("_second")).select("id_number", "died_on")
        increments["claims"].append(claims_rows(rng, county, residents, roster, sizes.claims_per_month, end, months,
                                                older_rng, former[county], died))
        if want_hrss:
            increments["hrss"].append(hrss_rows(rng, county, residents, end, months, died))
        tables["roster"].append(roster)
        tables["rural"].append(rural)
        tables["certs"].append(certs)
        increments["payments"].append(payments_rows(county, roster, certs, end, months))
        tables["deaths"].append(deaths)
    planter = plant_all(end, rng, counties[0], counties[-1])
    planted = planter.frames()
    for k in tables:
        if k in planted:
            tables[k].append(planted[k])
    world = {k: pl.concat(v, how="diagonal_relaxed") for k, v in tables.items() if v}
    return World(world, increments, {k: v for k, v in planted.items() if k in increments}, planter.cases)


def _sort_key(spec) -> list[str]:
    return list(spec.unique_key or spec.snapshot_key or ("id_number",))


def generate(out: Path | str, seed: int = 7, scale: float = 1.0, end_date: date = DEFAULT_END,
             feeds: list[str] | None = None, counties=COUNTIES, claims_factor: float = 1.0,
             months: int = RECENT_MONTHS) -> dict:
    """Write the deliveries and return the manifest (also saved as `out/expected.json`).

    `months` is the length of the increments' history, ending with `end_date`'s month (12, the
    default, writes the bundled samples). A longer history is the same city over more months: the
    months before the recent year are drawn from their own random stream and written as further
    quarterly extracts, so the recent year's files stay as they are with 12 months.

    Memory is bounded by the population plus one file, not by the history: the increments are
    drawn per file (`increments`), and the manifest's `messy_valid` is a `manifest.RowRecords`
    (a sequence of the same dicts, stored as columns), written to `expected.json` piece by piece.
    """
    if isinstance(months, bool) or not isinstance(months, numbers.Integral) or months < RECENT_MONTHS:
        raise BadHistory(f"months must be a whole number of at least {RECENT_MONTHS}, not {months!r} "
                         f"(历史月数至少为 {RECENT_MONTHS})")
    out = Path(out)
    inbox = out / "inbox"
    clear_previous_output(out)
    wanted = set(feeds or FEEDS)
    world = build_world(seed, scale, end_date, counties, wanted, claims_factor, int(months))
    rng = np.random.default_rng(seed + 1)
    older_rng = np.random.default_rng([seed + 1, OLDER_STREAM])
    recent_start = add_months(end_date, -(RECENT_MONTHS - 1))
    manifest: dict = {"seed": seed, "scale": scale, "end_date": end_date.isoformat(), "counties": list(counties),
                      "files": [], "bad_rows": [], "messy_valid": RowRecords(), "planted": world.cases, "redeliveries": []}
    if months != RECENT_MONTHS:  # the default manifest stays byte-identical
        manifest["months"] = months
    per_feed = deliveries(world.tables, world.increments, world.planted, end_date, list(counties))
    for feed_idx, (feed, spec) in enumerate(FEEDS.items()):
        if feed not in wanted:
            continue
        files = sorted(per_feed[feed], key=lambda t: (t[1], t[0]))
        older = [f for f in files if f[1] < recent_start]
        recent = [f for f in files if f[1] >= recent_start]
        kinds = BAD_KINDS.get(feed, [])
        # The older files come first, with their own random stream, their own earlier keys and file
        # numbers counting back from the recent year's first (-1, -2, ...), so that the recent year's
        # files get the very formats, spoiled rows and shuffles they get with 12 months.
        batches = ((older_rng, -len(older), older), (rng, 0, recent))
        for rng_, first_idx, batch in batches:
            previous_keys: list[str] = []
            for file_idx, (county, extracted_on, make) in enumerate(batch, start=first_idx):
                _write_delivery(inbox, manifest, rng_, spec, feed, feed_idx, list(counties).index(county), file_idx,
                                county, extracted_on, make, kinds, previous_keys)
    _write_redelivery(out, manifest, end_date)
    manifest["broken_files"] = write_broken_inbox(out / "broken_inbox", end_date)
    write_manifest(out / MANIFEST, manifest)
    return manifest


def _write_delivery(inbox: Path, manifest: dict, rng: np.random.Generator, spec, feed: str, feed_idx: int, county_idx: int,
                    file_idx: int, county: str, extracted_on: date, make: Callable[[], pl.DataFrame], kinds: list,
                    previous_keys: list[str]) -> None:
    """Make, spoil and write one delivery file, and list it, its bad rows and messy values in the manifest.

    The file's typed rows are made here and let go once they are text, so that one file's rows
    are held once at a time (an empty file is skipped before anything is drawn).
    """
    typed = make()
    if typed.height == 0:
        return
    typed = typed.sort(_sort_key(spec), maintain_order=True)
    fmt = choose_format(feed_idx, county_idx, file_idx, typed.height)
    name = f"{feed}_{county}_{extracted_on:%Y%m%d}.{ext_of(fmt)}"
    text = as_text(typed, spec)
    second = np.flatnonzero(typed["_second"].fill_null(False).to_numpy()) if "_second" in typed.columns else []
    del typed
    plan = [kinds[(file_idx + j) % len(kinds)] for j in range(min(BAD_ROWS_PER_FILE, len(kinds)))] if kinds else []
    text, bad, messy = spoil_file(text, spec, rng, file_name=name, extracted_on=extracted_on, bad_plan=plan,
                                  messy_share=MESSY_SHARE, previous_keys=previous_keys, bad_share=BAD_SHARE_CAP)
    for r in second:
        messy.append({"feed": feed, "file": name, "row": int(r) + 1, "kind": "death_reported_by_a_second_source", "column": "source"})
    if spec.unique_key and len(spec.unique_key) == 1:
        key = spec.unique_key[0]
        previous_keys.extend(text[key].head(20).to_list())
    write_file(text, spec, inbox / feed / name, fmt, rng)
    manifest["files"].append({"feed": feed, "file": name, "county": county, "extracted_on": extracted_on.isoformat(),
                              "rows": text.height, "format": fmt})
    manifest["bad_rows"] += bad
    manifest["messy_valid"] += messy


GENERATED_DIRS = ("inbox", "redelivery", "broken_inbox")
MANIFEST = "expected.json"


class ForeignFiles(LowincomeError):
    """The output folder holds files the generator did not write: it refuses rather than delete them."""


def _previous_files(out: Path) -> set[str]:
    """Paths (relative to `out`) the previous run wrote, from its manifest; none if there is no readable manifest."""
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        written = {f"inbox/{f['feed']}/{f['file']}" for f in manifest.get("files", [])}
        written |= {f"redelivery/{f['feed']}/{f['file']}" for f in manifest.get("redeliveries", [])}
        written |= {f"broken_inbox/{f['feed']}/{f['file']}" for f in manifest.get("broken_files", [])}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return set()
    # A manifest is data: an entry that climbs out of its folder ("../x") is never taken as ours.
    return {p for p in written if ".." not in Path(p).parts and not Path(p).is_absolute()}


def clear_previous_output(out: Path) -> None:
    """Remove what the previous generation wrote under `out`, and nothing else.

    `generate --out DIR` used to `rmtree` DIR/inbox, deleting whatever else was there (a real inbox
    given by mistake). Now only files listed in the previous manifest (DIR/expected.json) are removed;
    any other file, link or folder entry under DIR/inbox, DIR/redelivery or DIR/broken_inbox makes it
    refuse with one line before anything is deleted.
    """
    ours = _previous_files(out)
    foreign: dict[Path, list[str]] = {}
    remove: list[Path] = []
    for sub in GENERATED_DIRS:
        folder = out / sub
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            foreign[folder] = [sub]
            continue
        if not folder.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            here = Path(dirpath)
            links = [d for d in dirnames if (here / d).is_symlink()]  # never descended into, never ours
            dirnames[:] = [d for d in dirnames if d not in links]
            for name in filenames + links:
                path = here / name
                rel = path.relative_to(out).as_posix()
                if rel in ours and not path.is_symlink():  # the generator never writes links
                    remove.append(path)
                else:
                    foreign.setdefault(folder, []).append(path.relative_to(folder).as_posix())
    if foreign:
        parts = [f"{folder} holds {len(names)} file(s)" for folder, names in foreign.items()]
        example = sorted(next(iter(foreign.values())))[0]
        raise ForeignFiles(
            f"{' and '.join(parts)} the generator did not write (e.g. {example}); choose an empty folder or "
            "remove them (输出目录中有非生成器写入的文件，未删除任何文件)"
        )
    for path in remove:
        path.unlink()
    for sub in GENERATED_DIRS:  # the folders left empty (feed folders, then the top ones)
        folder = out / sub
        if folder.is_dir():
            for dirpath, _, _ in sorted(os.walk(folder), key=lambda t: len(t[0]), reverse=True):
                with contextlib.suppress(OSError):
                    Path(dirpath).rmdir()
    (out / MANIFEST).unlink(missing_ok=True)


def _write_redelivery(out: Path, manifest: dict, end: date) -> None:
    """The second-to-last claims file of the first county, delivered again under a later date."""
    claims = [f for f in manifest["files"] if f["feed"] == "medical_claims" and f["county"] == manifest["counties"][0]]
    if len(claims) < 2:
        return
    src = claims[-2]
    new_date = date.fromisoformat(src["extracted_on"]) + timedelta(days=5)
    if new_date > end:
        return
    ext = src["file"].rsplit(".", 1)[1]
    name = f"medical_claims_{src['county']}_{new_date:%Y%m%d}.{ext}"
    target = out / "redelivery" / "medical_claims" / name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "inbox" / "medical_claims" / src["file"], target)
    manifest["redeliveries"].append({"feed": "medical_claims", "file": name, "copy_of": src["file"], "rows": src["rows"]})
