"""Finding deliveries in the inbox: `<inbox>/<feed>/<feed>_<county6>_<YYYYMMDD>.<ext>`.

The extraction date in the file name decides which runs may use a file: a run
for day D reads only files dated on or before D, which is what makes a
backfill reproduce what was known on each day.

Every file in the inbox is accounted for (feeds.md "Delivery"): a feed's own
folder is listed by `discover` (what its ingest reads or reports), everything
else by `inventory_strays`. The inbox is walked with `os.scandir` and `lstat`:
a symbolic link is reported, never followed, so no file outside the inbox is
ever opened, and a hidden file or folder (`.snapshot`, an upload's `.part`) is
named but not read.
"""

from __future__ import annotations

import csv
import hashlib
import os
import stat
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from .delivery_name import DELIVERY_NAME

SUPPORTED_EXTENSIONS = (".csv", ".xlsx", ".parquet")
# Extraction dates are civil-affairs dates: "today" is today in China, whatever the server's zone.
LOCAL_ZONE = ZoneInfo("Asia/Shanghai")
GB2260_FILE = Path(__file__).resolve().parent / "data" / "gb2260_counties.csv"

# Status of a file that is not used: rejected (a problem the sender or operator must fix), later
# (dated after the run's day: a later run reads it), ignored (hidden: not a delivery).
REJECTED, LATER, IGNORED = "rejected", "later", "ignored"
SYMLINK_MESSAGE = "symbolic link, not followed (deliveries must be regular files inside the inbox)"


@dataclass(frozen=True)
class Delivery:
    feed: str | None
    path: Path
    county: str | None
    extracted_on: date | None
    problem: str | None = None  # why the file cannot be used, as a whole
    status: str = REJECTED  # the file's status when `problem` is set
    label: str | None = None  # how the file is named in the audit when not by its bare name (subfolders)
    size: int | None = None  # from lstat (None for symbolic links and folders)

    @property
    def file_name(self) -> str:
        return self.label or self.path.name

    @property
    def extension(self) -> str:
        return self.path.suffix.lower()


def today_local() -> date:
    return datetime.now(LOCAL_ZONE).date()


def parse_delivery_name(feed: str, path: Path) -> Delivery:
    """Read feed, county and extraction date from the file name, or say what is wrong with it."""
    m = DELIVERY_NAME.match(path.name)
    expected = f"expected {feed}_<county6>_<YYYYMMDD>.csv|.xlsx|.parquet"
    if not m:
        return Delivery(feed, path, None, None, f"file name does not follow the delivery convention ({expected})")
    if m["feed"] != feed:
        return Delivery(feed, path, None, None, f"file name names feed '{m['feed']}' but lies in the '{feed}' folder")
    try:
        extracted = datetime.strptime(m["date"], "%Y%m%d").date()
    except ValueError:
        return Delivery(feed, path, m["county"], None, f"extraction date '{m['date']}' in the file name is not a real date")
    if "." + m["ext"].lower() not in SUPPORTED_EXTENSIONS:
        return Delivery(feed, path, m["county"], extracted,
                        f"unsupported format '.{m['ext']}' (supported: {', '.join(SUPPORTED_EXTENSIONS)})")
    return Delivery(feed, path, m["county"], extracted)


def _dated(d: Delivery, as_of: date, today: date) -> Delivery:
    """A well-named file dated after today (a mistyped year) is rejected; after the as-of day it waits."""
    if d.problem or d.extracted_on is None:
        return d
    if d.extracted_on > today:
        return _with(d, f"extraction date {d.extracted_on.isoformat()} lies in the future (today is {today.isoformat()} "
                        "in Asia/Shanghai): a mistyped year?", REJECTED)
    if d.extracted_on > as_of:
        return _with(d, f"dated {d.extracted_on.isoformat()}, after the run's day {as_of.isoformat()}: left for a later "
                        "run (normal in a backfill)", LATER)
    return d


def _with(d: Delivery, problem: str, status: str) -> Delivery:
    return Delivery(d.feed, d.path, d.county, d.extracted_on, problem, status, d.label, d.size)


def _walk(folder: Path, prefix: str = "", descend: bool = True):
    """(entry, label) for everything under `folder`, never following a link, hidden folders not entered.

    A folder that cannot be listed yields (None, message)."""
    try:
        with os.scandir(folder) as it:
            entries = sorted(it, key=lambda e: e.name)
    except OSError as exc:
        yield None, f"{prefix or folder.name + '/'}: folder cannot be listed ({exc.strerror or type(exc).__name__})"
        return
    for e in entries:
        label = prefix + e.name
        yield e, label
        try:
            is_dir = e.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if descend and is_dir and not e.name.startswith("."):
            yield from _walk(Path(e.path), label + "/")


def _entry_problem(e: os.DirEntry) -> tuple[str, str] | None:
    """(status, message) for entries that are not plain visible files; None for a regular file."""
    if e.is_symlink():
        return REJECTED, SYMLINK_MESSAGE
    if e.name.startswith("."):
        kind = "folder" if e.is_dir(follow_symlinks=False) else "file"
        return IGNORED, f"hidden {kind} (name starts with '.'): not read" + (" (nor anything inside it)" if kind == "folder" else "")
    if not e.is_file(follow_symlinks=False) and not e.is_dir(follow_symlinks=False):
        return REJECTED, "not a regular file (device, socket or pipe): not read"
    return None


def _size(e: os.DirEntry) -> int | None:
    try:
        st = e.stat(follow_symlinks=False)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def discover(inbox: Path, feed: str, as_of: date, today: date | None = None) -> list[Delivery]:
    """Every file in the feed's folder, oldest first; those that cannot be used carry a problem and status.

    Usable files are those dated on or before `as_of` (and not after today: a mistyped year is rejected).
    Files dated after `as_of` come back with status "later". Misnamed files, hidden files, symbolic links
    (never followed) and files in subfolders come back too, so the audit names every file.
    """
    today = today or today_local()
    folder = inbox / feed
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return []
    if stat.S_ISLNK(st.st_mode):
        return [Delivery(feed, folder, None, None, f"the feed folder {feed}/ is a " + SYMLINK_MESSAGE, REJECTED, feed + "/")]
    if not stat.S_ISDIR(st.st_mode):
        return []  # a plain file named like a feed at the inbox root: `inventory_strays` reports it
    found: list[Delivery] = []
    for e, label in _walk(folder):
        if e is None:  # `label` is the message; it starts with the folder that cannot be listed
            found.append(Delivery(feed, folder, None, None, label, REJECTED, label.split(":", 1)[0]))
            continue
        path = Path(e.path)
        problem = _entry_problem(e)
        if problem is not None:
            found.append(Delivery(feed, path, None, None, problem[1], problem[0], label, _size(e)))
            continue
        if e.is_dir(follow_symlinks=False):
            continue  # its files are listed one by one
        if "/" in label:
            m = DELIVERY_NAME.match(e.name)
            found.append(Delivery(feed, path, m["county"] if m else None, None,
                                  f"in a subfolder of {feed}/: deliveries must lie directly in <inbox>/{feed}/", REJECTED,
                                  label, _size(e)))
            continue
        d = parse_delivery_name(feed, path)
        found.append(_dated(Delivery(d.feed, d.path, d.county, d.extracted_on, d.problem, REJECTED, None, _size(e)),
                            as_of, today))
    found.sort(key=lambda d: (d.extracted_on or date.min, d.file_name))
    return found


def inventory_strays(inbox: Path, as_of: date, today: date | None = None) -> pl.DataFrame:
    """One row per file in the inbox outside the known feed folders, in ingest's delivery schema.

    Files at the inbox root, in unknown folders (feed = the folder name), hidden files and folders,
    symbolic links (reported, never followed) and special files. Nothing is read and nothing is
    logged here: the publishing step records the rows in `audit.deliveries`. `as_of` is accepted for
    symmetry with `discover` (a stray file's date does not change why it is not used).
    """
    from .feeds import FEEDS
    from .ingest import _DELIVERY_SCHEMA

    rows: list[dict] = []

    def add(feed, name, size, message, status=REJECTED):
        m = DELIVERY_NAME.match(name.rsplit("/", 1)[-1])
        extracted = None
        if m:
            try:
                extracted = datetime.strptime(m["date"], "%Y%m%d").date()
            except ValueError:
                extracted = None
        rows.append({"feed": feed, "file_name": name, "county": m["county"] if m else None, "extracted_on": extracted,
                     "sha256": None, "size_bytes": size, "format": Path(name).suffix.lower().lstrip(".") or None,
                     "status": status, "message": message, "rows_read": 0, "rows_accepted": 0, "rows_quarantined": 0})

    inbox = Path(inbox)
    if not inbox.is_dir():
        return pl.DataFrame(rows, schema=_DELIVERY_SCHEMA)

    def entries():
        """The inbox's entries, minus the known feed folders (and links in their place): their feeds report them."""
        for e, label in _walk(inbox, descend=False):
            if e is not None and e.name in FEEDS and (e.is_symlink() or e.is_dir(follow_symlinks=False)):
                continue
            yield e, label
            if e is not None and e.is_dir(follow_symlinks=False) and not e.is_symlink() and not e.name.startswith("."):
                yield from _walk(Path(e.path), label + "/")

    for e, label in entries():
        if e is None:
            add(None, label.split(":", 1)[0], None, label)
            continue
        top = label.split("/", 1)[0]
        problem = _entry_problem(e)
        in_folder = "/" in label
        feed = top if in_folder else None
        name = label.split("/", 1)[1] if in_folder else label
        if problem is not None:
            add(feed, name + ("/" if e.is_dir(follow_symlinks=False) else ""), _size(e), problem[1], problem[0])
            continue
        if e.is_dir(follow_symlinks=False):
            continue  # its files are listed one by one
        m = DELIVERY_NAME.match(e.name)
        hint = f"; named for feed {m['feed']}: move it to <inbox>/{m['feed']}/" if m and m["feed"] in FEEDS else ""
        if not in_folder:
            add(None, name, _size(e), f"file at the inbox root: deliveries go to <inbox>/<feed>/ (not read){hint}")
        else:
            add(feed, name, _size(e), f"unknown feed folder '{top}' (known: {', '.join(FEEDS)}): not read{hint}")
    return pl.DataFrame(rows, schema=_DELIVERY_SCHEMA)


def sha256_of(path: Path) -> str:
    """Content hash, opening the file without following a link (a file swapped for a link since the scan fails)."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---- counties ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def gb2260_counties() -> dict[str, str]:
    """County code → name from the GB/T 2260 list shipped in lowincome/data (see its README)."""
    with GB2260_FILE.open(encoding="utf-8", newline="") as f:
        return {r["code"]: r["name"] for r in csv.DictReader(f)}


def county_problem(county: str, served: tuple[str, ...], policy_path: Path | str) -> str | None:
    """Why a file named for `county` cannot be used (not in GB/T 2260, or not served here), or None."""
    known = gb2260_counties()
    served_text = f"served_counties in {policy_path}: {', '.join(served)}"
    list_text = f"GB/T 2260 list lowincome/data/gb2260_counties.csv, {len(known)} counties"
    if county not in known:
        return (f"county code {county} in the file name is not a GB/T 2260 county ({list_text}) and so not one this "
                f"warehouse serves ({served_text}): a typo in the file name?")
    if county not in served:
        return (f"county {county} ({known[county]}) is a GB/T 2260 county ({list_text}) but not one this warehouse "
                f"serves ({served_text})")
    return None
