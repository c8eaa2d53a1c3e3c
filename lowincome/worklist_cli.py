"""`lowincome worklist`: list a county's township worklists (核查清单), or write them again to send again.

    lowincome worklist --county 371302 [--as-of 2026-10-31] [--township 371302001 | unknown] [--resend]

Listing reads the index the night wrote beside the files (no workbook is opened). `--resend`
writes the county's lists (or one township's) again from the committed day's flags and the
current restricted indexes, e.g. after a file was lost or sent to the wrong township. Every
problem (a county this warehouse does not serve, a day without a completed run or without lists,
a township without a list) is one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import re
from datetime import date

from .errors import LowincomeError


class WorklistCliError(LowincomeError):
    pass


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--as-of must be a date YYYY-MM-DD, got '{text}'") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("核查清单 List a county's township worklists (paths and open flags per township), or write them "
                          "again with --resend for the data team to send again. Files are under <warehouse>/worklists/"
                          "<county6>/<as-of>/ (owner-only: they hold names and ID numbers).")
    parser.add_argument("--county", required=True, help="6-digit county code (one this warehouse serves)")
    parser.add_argument("--as-of", type=_day, default=None,
                        help="the day of the lists, YYYY-MM-DD (default: the newest day with lists; with --resend, "
                             "the newest completed run)")
    parser.add_argument("--township", default=None,
                        help="one township: its 9-digit code, or 'unknown' for the county's township-unknown list")
    parser.add_argument("--resend", action="store_true",
                        help="write the county's lists (or the township's) again from that day's flags, then list them")


def _check_county(county: str, settings) -> str:
    from .delivery import county_problem, gb2260_counties
    from .rules.policy import load_policy

    if not re.fullmatch(r"[0-9]{6}", county):
        raise WorklistCliError(f"--county must be a 6-digit county code, got '{county[:20]}'")
    policy = load_policy(settings.policy)
    problem = county_problem(county, policy.served_counties, settings.policy)
    if problem:
        raise WorklistCliError(problem.replace("in the file name ", "").replace("a typo in the file name?", "a typo?"))
    return gb2260_counties().get(county, "")


def _check_township(county: str, township: str | None) -> None:
    from .worklists import UNKNOWN_TOWNSHIP

    if township is None or township == UNKNOWN_TOWNSHIP:
        return
    if not re.fullmatch(r"[0-9]{9}", township) or not township.startswith(county):
        raise WorklistCliError(f"--township must be a 9-digit township code of county {county} ({county}xxx) or "
                               f"'{UNKNOWN_TOWNSHIP}', got '{township[:20]}'")


def run(args) -> int:
    from .config import load_settings
    from .workstore import WorkStore
    from .worklists import day_folder, read_index, worklist_days, write_worklists

    settings = load_settings()
    county = args.county.strip()
    name = _check_county(county, settings)
    _check_township(county, args.township)
    warehouse = settings.warehouse
    if args.resend:
        completed = WorkStore(warehouse).completed_days() if (warehouse / "work").is_dir() else []
        if not completed:
            raise WorklistCliError(f"no completed run in warehouse {warehouse}: nothing to write (run lowincome run first)")
        day = args.as_of or max(completed)
        if day not in completed:
            raise WorklistCliError(f"no completed run for as-of {day} (completed runs: {completed[0]} to {completed[-1]}, "
                                   f"{len(completed)} day(s))")
        from .rules.policy import load_policy

        write_worklists(warehouse, day, policy=load_policy(settings.policy), county=county, township=args.township,
                        group=settings.restricted_group or None, reuse=False)
        verb = "written again"
    else:
        days = worklist_days(warehouse, county)
        if not days:
            raise WorklistCliError(f"no worklists of county {county} in {warehouse / 'worklists'} yet (they are written "
                                   "after each successful run; --resend writes them for a completed run)")
        day = args.as_of or days[-1]
        if day not in days:
            raise WorklistCliError(f"no worklists of county {county} for {day} (days with lists: {days[0]} to {days[-1]}, "
                                   f"{len(days)} day(s); --resend writes them for a completed run)")
        verb = "written"
    index = read_index(warehouse, county, day) or {"townships": [], "flags": 0, "written_at": "?"}
    entries = index["townships"]
    if args.township is not None:
        entries = [e for e in entries if e["township"] == args.township]
        if not entries:
            known = ", ".join(e["township"] for e in index["townships"]) or "none"
            raise WorklistCliError(f"no worklist for township {args.township} of county {county} on {day}: no open flag "
                                   f"there (townships with lists: {known})")
    folder = day_folder(warehouse, county, day)
    flags = sum(e["flags"] for e in entries)
    print(f"核查清单 worklists of county {county} {name} as of {day}: {len(entries)} file(s), {flags} open flag(s); "
          f"{verb} {index.get('written_at', '?')}; folder {folder}")
    for e in entries:
        print(f"  {e['township']:<16} {e['flags']:>6} flag(s)  红 {e['red']:<5} 逾期 overdue {e['overdue']:<5} "
              f"{folder / e['file']}")
    return 0
