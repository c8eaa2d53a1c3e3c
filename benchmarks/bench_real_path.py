"""Measure the real nightly path (`lowincome run`) against the physical floor of reading the same files.

    .venv/bin/python benchmarks/bench_real_path.py --scale 1
    .venv/bin/python benchmarks/bench_real_path.py --scale 250 --claims-factor 6.25 --out /data/bench --keep
    .venv/bin/python benchmarks/bench_real_path.py --scale 250 --claims-factor 6.25 --months 24
    .venv/bin/python benchmarks/bench_real_path.py --scale 2 --empty-nights 30

Why a separate script: `bench_nightly.py` calls the library functions stage by stage and so leaves out
what a bureau actually pays for every night — Dagster, the validation suites and their worker
processes, the run report and the Data Docs. Issue 9 asks for the cost of a night through the real
command line, next to what the machine needs just to read the delivered bytes, and for the memory of
the whole process tree. This script runs `lowincome run` as a subprocess, exactly as cron would.

What it does, and the choices behind it:

1. Generates ONE inbox with the repo's generator (`lowincome.generate.generate`, in a child process
   so that the generator's memory is not held by this process during the runs), with its last
   extraction day E = --end-date. The files extracted on E are held back; the first night runs as of
   D = E - 1 day over the rest, the next night moves the E files into the inbox and runs as of E.
   Both nights therefore see one consistent world. (Generating a second inbox with end date E and
   copying its E files would not be honest: the generator draws a different population for another
   end date — only one ID of 433 on a scale-1 roster is shared — so the next night's snapshots would
   replace every person.) The generator puts a full month's volume of claims and 人社 rows into the
   file of E, so the "next day" delivered here is larger than a real day: an upper bound.
2. History: `--months N` (default 12, at least 12) is passed to the generator, which writes N months of
   history ending with E's month: the same city (same population, same recent-year files byte for
   byte) with more older increments, as quarterly extracts. The header prints the history length.
3. The floor: every delivered file read once, all columns as text. UTF-8 CSV (with or without BOM)
   and Parquet by DuckDB (`read_csv(..., all_varchar=true, quote='"', header=true)`;
   `read_parquet` with every column cast to VARCHAR); GB18030 CSV and .xlsx cannot be read by DuckDB
   offline (its `encodings`/`excel` extensions download at run time), so those are read eagerly by
   Polars (`read_csv(encoding="gb18030")`, `read_excel` with calamine) and their time is counted in
   the floor. Every column is touched (`max(length(COLUMNS(*)))`) so the reader cannot skip any.
   The page cache is warm for both the floor and the runs (the files were just written); "cold"
   below means a fresh warehouse, not a cold disk.
4. Runs `lowincome run --as-of D` (first night, fresh warehouse), `--as-of E` (next night, on top),
   and `--as-of E` again (re-run of the same night), with LOWINCOME_INBOX / LOWINCOME_WAREHOUSE set
   and DAGSTER_HOME removed (the CLI then uses an ephemeral Dagster instance). LOWINCOME_MEMORY_LIMIT
   is passed through if set.
5. Peak memory: the sum of VmRSS over the CLI and all its descendants (the Great Expectations worker
   processes included), sampled every 0.2 s from /proc. A sum of RSS counts shared pages once per
   process, so it is an upper bound; a child living less than 0.2 s may be missed.
6. Prints a Markdown table: absolute figures and ratios, the sizes of `lowincome.duckdb`,
   `restricted.duckdb` and `work/`, the load average (the machine may be shared), and where each
   night's time went, from the timestamps of the CLI's own log file (see `phases`), with the peak RSS
   of the process tree within each phase (`phase_peaks`), so that one sees which step holds the memory.
7. `--empty-nights N`: after the re-run, N more consecutive nights as of E+1 ... E+N over the same
   inbox, which receives nothing new. Such a night still has every earlier delivery dated on or
   before its day, so the CLI does not take it for an empty inbox and it runs without
   `--allow-empty` (`lowincome.freshness.check_not_empty` refuses only a day with no usable delivery
   at all); should a future CLI refuse it anyway, the night is run again with `--allow-empty` and the
   output says so. Reported: each night's time and peak RSS (min / median / max), and the size of the
   published warehouse (everything under the warehouse but `work/`: databases, reports, Data Docs,
   logs) and of working storage (`work/`) after the first night, before the empty nights and after
   them, with the growth in percent of the first night's size (issue 9: < 10% over 30 nights).
   Sizes are apparent sizes (`st_size`, what `du --apparent-size` sums, without directory entries),
   of regular files only, symbolic links not followed, a file with several hard links counted once;
   the allocated size (`st_blocks`, what plain `du` sums) is printed beside the totals.
   With `--days-apart` empty night k runs under libfaketime with the clock k days ahead, as
   nights a day apart would: the parts and generation notes a reader of an older
   `lowincome.duckdb` may still use are kept for LOWINCOME_RETENTION_DAYS of wall-clock time, so
   thirty nights run minutes apart keep all thirty publications' parts, which production never does.
8. `--workers N` (issue 10): after the in-process nights, the same three nights again with
   `lowincome run --workers N` (Dagster's multiprocess executor) on a second, fresh warehouse over the
   same inbox (the next night's files held back again for its first night), then a table of wall time
   per night, in-process next to multiprocess, with the speedup (in-process wall / multiprocess wall),
   and whether the two warehouses publish identical tables (tests/warehouse_compare.py). Wall time only:
   the multiprocess steps run in processes forked by Dagster's forkserver, which the CLI does not wait
   for, so the CPU seconds of `RUSAGE_CHILDREN` undercount them.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path

DEFAULT_END = date(2026, 11, 1)  # E: the next night; the first night is the day before (the samples' 2026-10-31)
SAMPLE_SECONDS = 0.2
GENERATE = """
import json, sys
from datetime import date
from lowincome.generate import generate
out, seed, scale, end, factor = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), date.fromisoformat(sys.argv[4]), float(sys.argv[5])
months = int(sys.argv[6])
generate(out, seed=seed, scale=scale, end_date=end, claims_factor=factor, months=months)
"""


# -- memory of a process tree -------------------------------------------------------------------------

HAVE_CHILDREN_FILES = Path(f"/proc/self/task/{os.getpid()}/children").exists()  # needs CONFIG_PROC_CHILDREN


def _children(pid: int) -> list[int]:
    """Direct children of `pid`: from /proc/<pid>/task/*/children when the kernel has it, else a /proc scan."""
    found: list[int] = []
    if HAVE_CHILDREN_FILES:
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                found += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass  # the process or one of its threads is gone
        return found
    for entry in Path("/proc").iterdir():  # match parent ids
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0  # gone, or a zombie (no VmRSS line)


def tree_rss(root: int) -> tuple[int, int]:
    """(sum of VmRSS in bytes, number of processes) over `root` and all its descendants."""
    seen: set[int] = set()
    todo = [root]
    total = 0
    while todo:
        pid = todo.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss_bytes(pid)
        todo += _children(pid)
    return total, len(seen)


class PeakSampler(threading.Thread):
    """Polls a process tree every SAMPLE_SECONDS until stopped; keeps the peak RSS and process count.

    Every sample is kept with its time (`samples`, (time.time(), bytes)), so that the peak of each
    phase of the night can be told afterwards (`phase_peaks`): a 45-minute night is about 13,500 pairs.
    """

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.most_processes = pid, 0, 0
        self.samples: list[tuple[float, int]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            rss, n = tree_rss(self.pid)
            self.samples.append((time.time(), rss))
            self.peak, self.most_processes = max(self.peak, rss), max(self.most_processes, n)
            self._halt.wait(SAMPLE_SECONDS)

    def stop(self) -> None:
        self._halt.set()
        self.join()


# -- the floor: a plain read of every delivered file ----------------------------------------------------

def plain_read(files: list[dict], inbox: Path) -> dict:
    """Read every file once, all columns as text; seconds and rows in all and per reader."""
    import duckdb
    import polars as pl

    con = duckdb.connect()
    out = {"seconds": 0.0, "rows": 0, "files": len(files), "duckdb_s": 0.0, "polars_s": 0.0, "polars_files": 0}
    cpu_before = _cpu(resource.RUSAGE_SELF)
    for f in files:
        path = str(inbox / f["feed"] / f["file"])
        t = time.perf_counter()
        if f["format"] in ("csv-utf8", "csv-bom"):
            rows = con.execute(
                "SELECT count(*), max(length(COLUMNS(*))) FROM read_csv(?, all_varchar=true, quote='\"', header=true, delim=',')",
                [path],
            ).fetchone()[0]
            reader = "duckdb"
        elif f["format"] == "parquet":
            rows = con.execute("SELECT count(*), max(length(CAST(COLUMNS(*) AS VARCHAR))) FROM read_parquet(?)", [path]).fetchone()[0]
            reader = "duckdb"
        elif f["format"] == "csv-gb18030":
            frame = pl.read_csv(path, encoding="gb18030", infer_schema=False)
            frame.select(pl.all().str.len_bytes().max())
            rows, reader = frame.height, "polars"
        elif f["format"] == "xlsx":
            frame = pl.read_excel(path, sheet_id=1, engine="calamine", infer_schema_length=0)
            frame.select(pl.all().cast(pl.String).str.len_bytes().max())
            rows, reader = frame.height, "polars"
        else:
            raise SystemExit(f"unknown format {f['format']!r} of {f['file']} in the generator's manifest")
        dt = time.perf_counter() - t
        out["seconds"] += dt
        out[f"{reader}_s"] += dt
        out["polars_files"] += reader == "polars"
        out["rows"] += int(rows)
        if int(rows) != f["rows"]:
            print(f"note: {f['file']}: read {rows:,} rows, the manifest says {f['rows']:,}", file=sys.stderr)
    con.close()
    out["cpu"] = _cpu(resource.RUSAGE_SELF) - cpu_before
    return out


def _cpu(who: int) -> float:
    """User + system CPU seconds: on a shared machine they move far less with the load than wall time."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


# -- one night through the command line ------------------------------------------------------------------

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) ([\w.]+): (.*)$")
FILE_LINE = re.compile(r"^([a-z_]+) \[\d+/\d+\] ")  # a county step's line per delivered file read


def phases(log_text: str, started: float, ended: float) -> list[tuple[str, float]]:
    """(label, seconds) of each phase of a night: `phase_windows` without the moments."""
    return [(label, end - start) for label, start, end in phase_windows(log_text, started, ended)]


def phase_windows(log_text: str, started: float, ended: float) -> list[tuple[str, float, float]]:
    """Where a night's time went, from the timestamps of `<warehouse>/logs/lowincome.log`: (label, start, end).

    The run logs one progress line per delivered file read (`<feed> [i/n] <file>: ...`, from the county
    steps), one INFO line per feed's `collect` step and one for the rules, nothing per suite, per mart or
    for publishing; in process the steps run one at a time. So each gap between two lines is charged to
    the step that logged the second one (suites and other silent steps that ran in between included),
    consecutive lines of the same label are merged (one "reading <feed>" phase, not one per file), the
    time before "starting" goes to start-up (imports, settings, preflight), and the time after the last
    step line to what follows it (lifecycle, marts, publish, report, Data Docs). With `--workers N` the
    steps overlap and the phases are only indicative.
    """
    marks: list[tuple[float, str]] = []
    for line in log_text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        logger, message = m.group(3), m.group(4)
        read = FILE_LINE.match(message) if logger == "lowincome.progress" else None
        if logger in ("lowincome.cli", "lowincome.progress") and message.startswith("lowincome run --as-of"):
            marks.append((at, "start-up"))
        elif read:
            marks.append((at, f"reading {read.group(1)} (parse, validate, suite)"))
        elif logger == "dagster" and message.count(" - ") >= 3:
            marks.append((at, "…" + message.split(" - ")[2]))
        elif logger == "lowincome.cli":
            marks.append((at, "after the last step line (lifecycle, marts, publish, report, Data Docs)"))
    out, previous = [], started
    for at, label in marks:
        if out and out[-1][0] == label:
            out[-1] = (label, out[-1][1], at)
        else:
            out.append((label, previous, at))
        previous = at
    out.append(("exit", previous, ended))
    return out


def phase_peaks(windows: list[tuple[str, float, float]], samples: list[tuple[float, int]]) -> list[int | None]:
    """The peak RSS of the process tree within each phase window (None: no sample fell inside it).

    A sample is charged to the phase whose window holds its moment, so a phase shorter than
    SAMPLE_SECONDS may have none. Log lines are written when a step ends, so a phase's peak is the
    peak of the step named by its label (and of any silent step that ran before it).
    """
    peaks: list[int | None] = []
    for _, start, end in windows:
        inside = [rss for at, rss in samples if start <= at <= end]
        peaks.append(max(inside) if inside else None)
    return peaks


def run_night(cli: Path, as_of: date, env: dict, out_path: Path, warehouse_log: Path, extra: tuple[str, ...] = (),
              prefix: tuple[str, ...] = ()) -> dict:
    load_before = os.getloadavg()
    offset = warehouse_log.stat().st_size if warehouse_log.exists() else 0
    started, t = time.time(), time.perf_counter()
    cpu_before = _cpu(resource.RUSAGE_CHILDREN)  # the run's whole tree, once the CLI has been waited for
    with out_path.open("w", encoding="utf-8") as out:
        proc = subprocess.Popen([*prefix, str(cli), "run", "--as-of", as_of.isoformat(), *extra], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
        sampler = PeakSampler(proc.pid)
        sampler.start()
        code = proc.wait()
        sampler.stop()
    seconds = time.perf_counter() - t
    cpu = _cpu(resource.RUSAGE_CHILDREN) - cpu_before
    text = out_path.read_text(encoding="utf-8", errors="replace")
    log = ""
    if warehouse_log.exists():
        with warehouse_log.open("rb") as f:
            f.seek(offset if warehouse_log.stat().st_size >= offset else 0)  # rotated at 10 MB meanwhile
            log = f.read().decode("utf-8", errors="replace")
    windows = phase_windows(log, started, started + seconds)
    return {"as_of": as_of, "seconds": seconds, "cpu": cpu, "code": code, "peak": sampler.peak, "processes": sampler.most_processes,
            "phases": [(label, end - start) for label, start, end in windows],
            "phase_peaks": phase_peaks(windows, sampler.samples), "last_line": (text.strip().splitlines() or [""])[-1],
            "load": (load_before, os.getloadavg()), "output": text}


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum((Path(d) / n).stat().st_size for d, _, names in os.walk(path) for n in names
               if not (Path(d) / n).is_symlink()) if path.is_dir() else 0


def disk_usage(root: Path, exclude: Path | None = None) -> tuple[int, int, int]:
    """(apparent bytes, allocated bytes, files) of the regular files under `root`, `exclude` left out.

    Apparent = sum of st_size (`du --apparent-size`, minus directory entries); allocated = st_blocks
    × 512 (plain `du`). Symbolic links are neither followed nor counted, and a file with several hard
    links (a generation kept by linking) is counted once, as `du` does.
    """
    seen: set[tuple[int, int]] = set()
    apparent = allocated = files = 0
    if not root.is_dir():
        return 0, 0, 0
    for d, dirs, names in os.walk(root):
        here = Path(d)
        if exclude is not None and here == exclude.parent:
            dirs[:] = [x for x in dirs if here / x != exclude]
        for n in names:
            try:
                st = (here / n).lstat()
            except OSError:  # removed meanwhile
                continue
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            apparent += st.st_size
            allocated += st.st_blocks * 512
            files += 1
    return apparent, allocated, files


def storage(warehouse: Path) -> dict:
    """Published warehouse (all but work/) and working storage (work/), as `disk_usage` measures them."""
    return {"published": disk_usage(warehouse, exclude=warehouse / "work"), "work": disk_usage(warehouse / "work")}


def sizes(warehouse: Path) -> dict:
    return {"lowincome.duckdb": _size(warehouse / "lowincome.duckdb"), "restricted.duckdb": _size(warehouse / "restricted.duckdb"),
            "work/": _size(warehouse / "work"), "warehouse": _size(warehouse)}


# -- report ----------------------------------------------------------------------------------------------

def _mb(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def table(floor_first: dict, floor_next: dict, nights: list[tuple[str, dict, dict]]) -> str:
    first = nights[0][1]["seconds"]
    lines = ["| measurement | files | rows | time | ratio | peak RSS (tree) | lowincome.duckdb | restricted.duckdb | work/ |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|"]
    for label, floor in (("plain read, first night's files", floor_first), ("plain read, next night's new files", floor_next)):
        lines.append(f"| {label} | {floor['files']} | {floor['rows']:,} | {floor['seconds']:.1f} s (CPU {floor['cpu']:.1f} s) | "
                     f"DuckDB {floor['duckdb_s']:.1f} s + Polars {floor['polars_s']:.1f} s ({floor['polars_files']} GB18030/xlsx files) | – | – | – | – |")
    for label, night, size in nights:
        if label.startswith("first"):
            ratio = (f"{night['seconds'] / floor_first['seconds']:.1f}× the plain read "
                     f"(CPU: {night['cpu'] / floor_first['cpu']:.1f}×)")
        else:
            ratio = f"{night['seconds'] / first:.0%} of the first night (CPU: {night['cpu'] / nights[0][1]['cpu']:.0%})"
            if label.startswith("next"):
                ratio += f"; {night['seconds'] / floor_next['seconds']:.0f}× the plain read of its new files"
        failed = "" if night["code"] == 0 else f" (FAILED, exit {night['code']})"
        lines.append(f"| {label} (`--as-of {night['as_of']}`){failed} | | | {night['seconds']:.1f} s (CPU {night['cpu']:.1f} s) | {ratio} | "
                     f"{_mb(night['peak'])} ({night['processes']} process{'es' if night['processes'] > 1 else ''}) | {_mb(size['lowincome.duckdb'])} | "
                     f"{_mb(size['restricted.duckdb'])} | {_mb(size['work/'])} |")
    return "\n".join(lines)


def workers_nights(cli: Path, workers: int, env: dict, work: Path, first_day: date, next_day: date,
                   next_files: list[dict], inbox: Path, held: Path) -> list[tuple[str, dict]]:
    """The same three nights with `--workers N` on a fresh warehouse of their own (issue 10)."""
    warehouse = work / f"warehouse-w{workers}"
    env = {**env, "LOWINCOME_WAREHOUSE": str(warehouse)}
    for f in next_files:  # the first night again without the next night's files
        (held / f["feed"]).mkdir(parents=True, exist_ok=True)
        os.replace(inbox / f["feed"] / f["file"], held / f["feed"] / f["file"])
    done: list[tuple[str, dict]] = []
    for label, day in (("first night, cold", first_day), ("next night", next_day), ("re-run of the next night", next_day)):
        if label == "next night":
            for f in next_files:
                os.replace(held / f["feed"] / f["file"], inbox / f["feed"] / f["file"])
        night = run_night(cli, day, env, work / f"run-w{workers}-{len(done) + 1}-{day}.log", warehouse / "logs" / "lowincome.log",
                          ("--workers", str(workers)))
        done.append((label, night))
        print(f"{label}, --workers {workers}: {night['seconds']:.1f} s, exit {night['code']}, peak {_mb(night['peak'])} "
              f"({night['processes']} processes); {night['last_line'][:160]}", flush=True)
        if night["code"] != 0:
            print(f"  the run failed; its output is in {work}/run-w{workers}-{len(done)}-{day}.log", flush=True)
            break
    return done


def speedup_table(workers: int, nights: list[tuple[str, dict, dict]], spread: list[tuple[str, dict]]) -> str:
    lines = [f"| night | in-process | --workers {workers} | speedup | peak RSS in-process / --workers {workers} |",
             "|---|---:|---:|---:|---:|"]
    for (label, base, _), (_, multi) in zip(nights, spread):
        failed = "" if multi["code"] == 0 else f" (FAILED, exit {multi['code']})"
        lines.append(f"| {label} (`--as-of {base['as_of']}`){failed} | {base['seconds']:.1f} s | {multi['seconds']:.1f} s | "
                     f"{base['seconds'] / multi['seconds']:.2f}× | {_mb(base['peak'])} / {_mb(multi['peak'])} |")
    return "\n".join(lines)


def compare_warehouses(a: Path, b: Path) -> str:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.warehouse_compare import differences

    found, compared = differences(a, b)
    return f"identical ({compared} tables and views)" if not found else "DIFFERENT: " + "; ".join(found[:5])


def _months(text: str) -> int:
    value = _count(text)
    if value < 12:
        raise argparse.ArgumentTypeError(f"{value}: the history must be at least 12 months")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _spread(values: list[float], fmt) -> str:
    return f"{fmt(min(values))} / {fmt(statistics.median(values))} / {fmt(max(values))}"


def empty_nights_table(empties: list[dict], after_first: dict, before: dict, after: dict) -> str:
    """Time and memory of the nights with nothing new, and how much the storage grew over them."""
    n = len(empties)
    ok = sum(e["code"] == 0 for e in empties)
    allowed = sum(e["allow_empty"] for e in empties)
    lines = [f"{n} night(s) over an inbox that received nothing new ({empties[0]['as_of']} to {empties[-1]['as_of']}): "
             f"{ok} succeeded, {n - ok} failed; {allowed} needed --allow-empty",
             "",
             "| empty nights | min / median / max |",
             "|---|---:|",
             f"| time | {_spread([e['seconds'] for e in empties], lambda v: f'{v:.1f} s')} |",
             f"| peak RSS (tree) | {_spread([e['peak'] for e in empties], _mb)} |",
             "",
             "| storage (apparent size: sum of st_size of regular files, hard links once, links not followed) | after the first night | before the empty nights | after them | growth over the empty nights, % of the first night | per night | allocated (du) after |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, label in (("published", "warehouse, published (all but work/)"), ("work", "working storage (work/)")):
        first, start, end = after_first[key][0], before[key][0], after[key][0]
        grew = end - start
        share = f"{grew / first:+.1%}" if first else "–"
        lines.append(f"| {label} | {_fine(first)} ({after_first[key][2]} files) | {_fine(start)} | {_fine(end)} ({after[key][2]} files) | "
                     f"{_signed_mb(grew)} = {share} | {_signed_mb(grew / n)} | {_fine(after[key][1])} |")
    first = after_first["published"][0] + after_first["work"][0]
    grew = (after["published"][0] + after["work"][0]) - (before["published"][0] + before["work"][0])
    if first:
        lines.append("")
        lines.append(f"both together: {_signed_mb(grew)} over {n} night(s) = {grew / first:+.1%} of their size after the first "
                     f"night; at this rate 30 nights would add {30 * grew / n / first:+.1%} (a linear extrapolation; issue 9 "
                     "asks for < 10% over 30 nights)")
    return "\n".join(lines)


def _fine(n: float) -> str:
    """A size with enough digits to show a small night's growth (KiB below 1 MiB)."""
    if n >= 2**30:
        return f"{n / 2**30:.2f} GiB"
    return f"{n / 2**20:.1f} MiB" if n >= 2**20 else f"{n / 2**10:.0f} KiB"


def _signed_mb(n: float) -> str:
    return ("-" if n < 0 else "+") + _fine(abs(n))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="generator size factor; 1 = the bundled samples")
    ap.add_argument("--claims-factor", type=float, default=1.0, help="multiply claims per month on top of --scale")
    ap.add_argument("--end-date", type=date.fromisoformat, default=DEFAULT_END,
                    help=f"the next night's day E (default {DEFAULT_END}); the first night is E - 1 day")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--months", type=_months, default=12,
                    help="months of history the generator writes, ending with E's month (default 12; at least 12)")
    ap.add_argument("--empty-nights", type=_count, default=0, metavar="N",
                    help="after the re-run, N more nights (E+1 ... E+N) over an inbox that receives nothing new")
    ap.add_argument("--days-apart", action="store_true",
                    help="run empty night k with the clock k days ahead (libfaketime's `faketime`, Debian package "
                         "faketime), as nights a day apart see it: the analysts' parts are kept for a retention "
                         "period of wall-clock time")
    ap.add_argument("--out", type=Path, help="work folder (default: a new temporary folder)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (inbox, warehouse, logs) afterwards")
    ap.add_argument("--inbox-from", type=Path,
                    help="a folder this script (or `lowincome generate`) generated before with the same options: its "
                         "files are hard-linked into the work folder instead of generating again (the city tier takes minutes)")
    ap.add_argument("--workers", type=_count, default=0, metavar="N",
                    help="also run the three nights with `lowincome run --workers N` on a second warehouse and print "
                         "the speedup over in-process (N >= 2)")
    args = ap.parse_args()
    if args.days_apart and not shutil.which("faketime"):
        ap.error("--days-apart needs the `faketime` command (Debian: apt-get install faketime)")
    if args.workers == 1:
        ap.error("--workers 1 is the in-process run itself: give 2 or more")
    cli = Path(sys.executable).parent / "lowincome"
    if not cli.exists():
        cli = Path(shutil.which("lowincome") or "lowincome")
    work = args.out or Path(tempfile.mkdtemp(prefix="lowincome-realpath-"))
    work.mkdir(parents=True, exist_ok=True)
    gen, warehouse, held = work / "gen", work / "warehouse", work / "held_back"
    if warehouse.exists() or held.exists():
        raise SystemExit(f"{work} already holds a warehouse or held-back files from an earlier run: choose an empty --out")
    first_day, next_day = args.end_date - timedelta(days=1), args.end_date
    try:
        empty = (f"; then {args.empty_nights} night(s) with nothing new, {next_day + timedelta(days=1)} to "
                 f"{next_day + timedelta(days=args.empty_nights)}"
                 f"{', each with the clock a day later (faketime)' if args.days_apart else ', minutes apart'}"
                 if args.empty_nights else "")
        print(f"# bench_real_path: scale {args.scale}, claims factor {args.claims_factor}, seed {args.seed}, "
              f"history {args.months} months; nights {first_day} and {next_day}{empty}; work folder {work}", flush=True)
        cores, mem = os.cpu_count(), Path("/proc/meminfo").read_text().split("\n")[0].split()[1]
        print(f"machine: {cores} cores, {int(mem) / 2**20:.1f} GiB RAM; load average {os.getloadavg()[0]:.2f} "
              f"{os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}", flush=True)
        t = time.perf_counter()
        if args.inbox_from:
            source = args.inbox_from / "gen" if (args.inbox_from / "gen" / "expected.json").exists() else args.inbox_from
            if not (source / "expected.json").exists():
                raise SystemExit(f"--inbox-from {args.inbox_from}: no expected.json (not a generated folder)")
            subprocess.run(["cp", "-al", str(source), str(gen)], check=True)  # hard links: moving a file here leaves it there
            print(f"inbox hard-linked from {source} (generated earlier with the same options)", flush=True)
        else:
            subprocess.run([sys.executable, "-c", GENERATE, str(gen), str(args.seed), str(args.scale),
                            args.end_date.isoformat(), str(args.claims_factor), str(args.months)], check=True)
        manifest = json.loads((gen / "expected.json").read_text(encoding="utf-8"))
        files = manifest["files"]
        later = [f for f in files if f["extracted_on"] > next_day.isoformat()]
        if later:
            raise SystemExit(f"the generator wrote {len(later)} file(s) after {next_day}: cannot split the nights")
        next_files = [f for f in files if f["extracted_on"] == next_day.isoformat()]
        first_files = [f for f in files if f["extracted_on"] < next_day.isoformat()]
        if not next_files:
            raise SystemExit(f"the generator wrote no file extracted on {next_day}: no next night to measure")
        months = len({f["extracted_on"][:7] for f in files})
        print(f"generated {sum(f['rows'] for f in files):,} rows in {len(files)} files ({time.perf_counter() - t:.0f} s); "
              f"first night: {len(first_files)} files, {sum(f['rows'] for f in first_files):,} rows; next night adds "
              f"{len(next_files)} files extracted on {next_day}, {sum(f['rows'] for f in next_files):,} rows "
              f"({', '.join(sorted({f['feed'] for f in next_files}))})", flush=True)
        print(f"history: {args.months} months ending {next_day:%Y-%m} (extraction dates in {months} calendar months: "
              "older increments arrive as quarterly extracts, the last three months monthly)", flush=True)
        inbox = gen / "inbox"
        floor_first = plain_read(first_files, inbox)
        floor_next = plain_read(next_files, inbox)
        for f in next_files:  # held back until the next night
            (held / f["feed"]).mkdir(parents=True, exist_ok=True)
            os.replace(inbox / f["feed"] / f["file"], held / f["feed"] / f["file"])

        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not (k.startswith("LOWINCOME_") and k != "LOWINCOME_MEMORY_LIMIT")}
        env.update(LOWINCOME_INBOX=str(inbox), LOWINCOME_WAREHOUSE=str(warehouse))
        print(f"memory budget: LOWINCOME_MEMORY_LIMIT={env.get('LOWINCOME_MEMORY_LIMIT', '(default)')}", flush=True)
        nights: list[tuple[str, dict, dict]] = []
        for label, day in (("first night, cold", first_day), ("next night", next_day), ("re-run of the next night", next_day)):
            if label == "next night":
                for f in next_files:
                    os.replace(held / f["feed"] / f["file"], inbox / f["feed"] / f["file"])
            night = run_night(cli, day, env, work / f"run-{len(nights) + 1}-{day}.log", warehouse / "logs" / "lowincome.log")
            nights.append((label, night, sizes(warehouse)))
            if label.startswith("first"):
                after_first = storage(warehouse)
            (b1, _, _), (a1, _, _) = night["load"]
            print(f"{label}: {night['seconds']:.1f} s (CPU {night['cpu']:.1f} s), exit {night['code']}, peak {_mb(night['peak'])}; load average "
                  f"{b1:.2f} before, {a1:.2f} after; {night['last_line'][:200]}", flush=True)
            if night["code"] != 0:
                print(f"  the run failed; its output is in {work}/run-{len(nights)}-{day}.log", flush=True)
                if len(nights) == 1:
                    break
        spread: list[tuple[str, dict]] = []
        if args.workers and len(nights) == 3:
            spread = workers_nights(cli, args.workers, env, work, first_day, next_day, next_files, inbox, held)
        empties: list[dict] = []
        if args.empty_nights and len(nights) == 3:
            before_empty = storage(warehouse)
            for k in range(1, args.empty_nights + 1):
                day = next_day + timedelta(days=k)
                log_path = work / f"run-{len(nights) + k}-{day}.log"
                clock = ("faketime", "-f", f"+{k}d") if args.days_apart else ()
                night = run_night(cli, day, env, log_path, warehouse / "logs" / "lowincome.log", prefix=clock)
                night["allow_empty"] = False
                if night["code"] != 0 and "--allow-empty" in night["output"]:
                    # the CLI took a night with old deliveries but no new one for an empty inbox: say so, run it as such
                    night = run_night(cli, day, env, log_path, warehouse / "logs" / "lowincome.log", ("--allow-empty",),
                                      prefix=clock)
                    night["allow_empty"] = True
                empties.append(night)
                print(f"empty night {k} ({day}): {night['seconds']:.1f} s, exit {night['code']}, peak {_mb(night['peak'])}"
                      f"{', run with --allow-empty (refused without it)' if night['allow_empty'] else ''}; "
                      f"{night['last_line'][:160]}", flush=True)
                if night["code"] != 0:
                    print(f"  the run failed; its output is in {log_path}", flush=True)
        print()
        if len(nights) == 3:
            print(table(floor_first, floor_next, nights))
            if empties:
                print()
                print(empty_nights_table(empties, after_first, before_empty, storage(warehouse)))
        else:
            print("the first night failed: no table")
        if spread:
            print()
            print(speedup_table(args.workers, nights, spread))
            print(f"- published tables, in-process vs --workers {args.workers}: {compare_warehouses(warehouse, work / f'warehouse-w{args.workers}')}")
        print()
        for label, night, _ in nights:
            shown = ", ".join(f"{name} {sec:.1f} s (peak {_mb(peak) if peak is not None else '–'})"
                              for (name, sec), peak in zip(night["phases"], night["phase_peaks"]))
            print(f"- {label}: {shown}")
        size = nights[-1][2]
        print(f"- warehouse after the last run: {_mb(size['warehouse'])} in all; floor read with "
              f"{floor_first['polars_files'] + floor_next['polars_files']} GB18030/xlsx files read by Polars (DuckDB cannot read "
              "them offline); the sum of per-process RSS counts shared pages once per process")
        print(f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({cores} cores)")
    finally:
        if args.keep:
            print(f"work folder kept: {work}")
        elif args.out:  # a folder the user named: remove only what this script wrote there
            for path in (gen, warehouse, held, *work.glob("run-*.log")):
                shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
