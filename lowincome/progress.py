"""Progress of a long run, per feed and per file: what a data team watching a night needs to see move.

A city's first night reads tens of millions of rows; the per-feed summary lines alone left minutes of
silence (issue 12, "long runs are silent"). Each delivered file that is read and validated reports one
line when it is done, with its position among the feed's files, its rows, the time it took (suite
included), the rows per second and the feed's elapsed time. A file already in the store costs next to
nothing and is covered by the feed's summary line. The lines go to the `lowincome.progress`
logger: the log file always has them; `lowincome run` shows them on the terminal unless `--quiet`; in
the Dagster UI the step's own summary line says the same per feed. Only file names and counts are
reported: a file name carries no personal data (feeds.md fixes it as feed, county and date).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

log = logging.getLogger("lowincome.progress")


@dataclass
class FeedProgress:
    """Counts one feed's files as they are done; `file_done` logs one line per file."""

    feed: str
    total_files: int
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    scope: str = "feed"  # whose elapsed time the line gives: the feed's, or one county step's ("county 110101")

    def file_seen(self, file_name: str, rows: int, seconds: float, parsed_now: bool,
                  position: int | None = None) -> str | None:
        """Count a file; one progress line when it was read and validated now (a file already in the store
        costs next to nothing and is covered by the feed's summary line). Returns the line, if any.

        `position`: the file's place among the feed's files, when counties are read in separate steps
        (a step cannot count what the others have done); by default the count of files done."""
        self.done += 1
        if not parsed_now:
            return None
        rate = f", {rows / seconds:,.0f} rows/s" if seconds > 0 else ""
        line = (f"{self.feed} [{position or self.done}/{self.total_files}] {file_name}: {rows:,} rows read and validated "
                f"读取校验 in {seconds:.1f} s{rate}; {self.scope} elapsed {_clock(time.monotonic() - self.started)}")
        log.info(line)
        return line


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{seconds:.1f}s"


@contextmanager
def on_terminal(enabled: bool):
    """While the block runs, progress lines also go to stderr as `HH:MM:SS progress - ...` (the CLI, not --quiet)."""
    if not enabled:
        yield
        return
    import sys

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s progress - %(message)s", "%H:%M:%S"))
    handler.setLevel(logging.INFO)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
