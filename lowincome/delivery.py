"""Finding deliveries in the inbox: `<inbox>/<feed>/<feed>_<county6>_<YYYYMMDD>.<ext>`.

The extraction date in the file name decides which runs may use a file: a run
for day D reads only files dated on or before D, which is what makes a
backfill reproduce what was known on each day.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

SUPPORTED_EXTENSIONS = (".csv", ".xlsx", ".parquet")
_NAME = re.compile(r"^(?P<feed>[a-z_]+)_(?P<county>\d{6})_(?P<date>\d{8})\.(?P<ext>[A-Za-z]+)$")


@dataclass(frozen=True)
class Delivery:
    feed: str
    path: Path
    county: str | None
    extracted_on: date | None
    problem: str | None = None  # why the file cannot be used, as a whole

    @property
    def file_name(self) -> str:
        return self.path.name

    @property
    def extension(self) -> str:
        return self.path.suffix.lower()


def parse_delivery_name(feed: str, path: Path) -> Delivery:
    """Read feed, county and extraction date from the file name, or say what is wrong with it."""
    m = _NAME.match(path.name)
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


def discover(inbox: Path, feed: str, as_of: date) -> list[Delivery]:
    """Files of one feed usable on `as_of`, oldest first; misnamed files are returned with a problem.

    Misnamed files are kept (not silently skipped) so the audit shows them.
    Files dated after `as_of` are left for later runs and not reported.
    """
    folder = inbox / feed
    if not folder.is_dir():
        return []
    found: list[Delivery] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        d = parse_delivery_name(feed, path)
        if d.extracted_on is not None and d.extracted_on > as_of:
            continue
        found.append(d)
    found.sort(key=lambda d: (d.extracted_on or date.min, d.file_name))
    return found


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
