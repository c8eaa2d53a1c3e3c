"""`lowincome accept-snapshot <file_name> --by <who>`: the data team accepts a snapshot that shrank sharply.

A snapshot whose row count drops by more than `snapshot_shrink_share` (policy)
from the county's previous snapshot in use is held back (feeds.md "Holding
back a file"): a half-copied file or an export that stopped half-way would
make thousands of people look absent overnight. When the drop is real (a
clean-up of the roster, a county split), someone of the data team says so
here. The acceptance is

- keyed by feed, file name and the file's sha256: a corrected file with the same
  name but another content needs a new acceptance;
- append-only: one JSON file per acceptance under `<warehouse>/work/acceptances/`,
  never rewritten, so the record of who accepted what stays;
- shown on the file's row in `audit.deliveries` ("accepted by … on … despite a drop
  of 35.0%"), hence in the run report, from the next run on.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
from datetime import datetime, timezone
from pathlib import Path

from .delivery_name import DELIVERY_NAME
from .errors import LowincomeError
from .temporaries import temporary_path

FOLDER = "acceptances"


def acceptance_dir(work_dir: Path) -> Path:
    return Path(work_dir) / FOLDER


def load_acceptances(work_dir: Path) -> tuple[dict[tuple[str, str, str], dict], list[str]]:
    """(feed, file name, sha256) → the first acceptance recorded for it; plus warnings for unreadable records."""
    folder = acceptance_dir(work_dir)
    found: dict[tuple[str, str, str], dict] = {}
    warnings: list[str] = []
    if not folder.is_dir():
        return found, warnings
    for path in sorted(folder.glob("*.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            key = (rec["feed"], rec["file_name"], rec["sha256"])
            if not rec["by"] or not rec["accepted_at"]:
                raise ValueError("incomplete record")
        except (OSError, ValueError, KeyError, TypeError):
            warnings.append(f"acceptance record {path} is unreadable and is ignored")
            continue
        found.setdefault(key, rec)  # the first acceptance of a content counts
    return found, warnings


def accept_snapshot(inbox: Path, work_dir: Path, file_name: str, by: str, note: str | None = None,
                    now: datetime | None = None) -> tuple[dict, bool]:
    """Record that `file_name` (in `<inbox>/<feed>/`) is accepted despite its drop; returns (record, newly_recorded)."""
    from .delivery import sha256_of
    from .feeds import FEEDS

    by = " ".join((by or "").split())
    if not by:
        raise LowincomeError("--by must name who accepts the snapshot")
    if len(by) > 80:
        raise LowincomeError("--by is longer than 80 characters: give a name or a staff id")
    m = DELIVERY_NAME.match(file_name)
    if "/" in file_name or not m:
        raise LowincomeError(f"'{file_name}' is not a delivery file name (<feed>_<county6>_<YYYYMMDD>.<ext>, without a folder)")
    spec = FEEDS.get(m["feed"])
    if spec is None:
        raise LowincomeError(f"'{file_name}' names no known feed (known: {', '.join(FEEDS)})")
    if spec.kind != "snapshot":
        raise LowincomeError(f"{spec.name} is an increment feed: its files are never held back for shrinking, "
                             "there is nothing to accept")
    path = Path(inbox) / spec.name / file_name
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise LowincomeError(f"no such delivery: {path}") from None
    if not stat.S_ISREG(st.st_mode):
        raise LowincomeError(f"{path} is not a regular file (symbolic links are never followed)")
    sha = sha256_of(path)
    existing, _ = load_acceptances(work_dir)
    key = (spec.name, file_name, sha)
    if key in existing:
        return existing[key], False
    now = now or datetime.now(timezone.utc)
    record = {
        "feed": spec.name,
        "file_name": file_name,
        "sha256": sha,
        "by": by,
        "note": (note or "").strip() or None,
        "accepted_at": now.astimezone(timezone.utc).isoformat(timespec="seconds"),
    }
    folder = acceptance_dir(work_dir)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = folder / f"{now:%Y%m%dT%H%M%S}_{file_name}_{sha[:12]}.json"
    tmp = temporary_path(folder / target.name)
    tmp.write_text(json.dumps(record, ensure_ascii=False, indent=1), encoding="utf-8")
    try:
        os.link(tmp, target)  # fails if the name exists: a record is never overwritten
    except FileExistsError:
        raise LowincomeError(f"an acceptance record {target} already exists; try again in a second") from None
    finally:
        tmp.unlink(missing_ok=True)
    return record, True


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file_name", help="the held-back snapshot, e.g. civil_roster_371302_20261031.csv (in LOWINCOME_INBOX)")
    p.add_argument("--by", required=True, help="who accepts it (recorded, and shown in audit.deliveries and the run report)")
    p.add_argument("--note", default=None, help="why the drop is real (kept in the acceptance record)")


def run(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .workstore import WorkStore

    settings = load_settings()
    work = WorkStore(settings.warehouse).root
    record, new = accept_snapshot(settings.inbox, work, args.file_name, args.by, args.note)
    when = record["accepted_at"][:10]
    if new:
        print(f"accepted {record['file_name']} (sha256 {record['sha256'][:12]}…) by {record['by']} on {when}: "
              f"the next run uses it; recorded in {acceptance_dir(work)}")
    else:
        print(f"{record['file_name']} with this content was already accepted by {record['by']} on {when}: nothing to do")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lowincome accept-snapshot",
                                     description="Accept a snapshot held back because it shrank sharply.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
