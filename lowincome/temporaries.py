"""The half-written files a killed process leaves in the warehouse, and their removal.

Every writer here writes a hidden temporary beside its target and renames it into place
(`.<name>.<pid>.<random>.tmp` or `.link` from `temporary_path`, the timeline's `.building.<time>.parquet`;
before `temporary_path`, `.<name>.<pid>.tmp` and rules/reuse.py's `.tmp-<pid>-<folder>/`, still
recognised so that an upgrade's first run removes them too), so a reader never sees half a file. A process killed while writing leaves its temporary behind: a
3.7M-row claims file's parsed cache is about 150 MB, and nothing else ever removes it. They are
removed at the start of the next run (lowincome/workstore.py) once no writer can still be at work
on them: a temporary is written and renamed within seconds, so one untouched for a day is
abandoned. Its name's pid says nothing about that when the warehouse is shared by several
machines; its age does, whatever machine wrote it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from pathlib import Path

STALE_SECONDS = 24 * 3600
_SUFFIXES = (".tmp", ".link")
_PREFIXES = (".building.", ".tmp-")
_SKIP = {".building"}  # half-built databases: removed whole under the publishing lock (pipelines/resources.py)


def temporary_path(target: Path, suffix: str = ".tmp") -> Path:
    """The hidden temporary to write `target` through, unique to this writer.

    The pid alone was not: on a warehouse shared by several machines or containers (where every
    process may be pid 1), two writers of the same target, such as two runs of a backfill parsing the
    same delivery, wrote into one temporary. A random part makes it the writer's own.
    """
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` whole or not at all: through the writer's own temporary, renamed
    into place; a failed write (a full disk) leaves no temporary behind."""
    tmp = temporary_path(path)
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def is_temporary(name: str) -> bool:
    """A name only a writer's temporary has (hidden, and shaped as the writers above shape them)."""
    return name.startswith(".") and (name.endswith(_SUFFIXES) or name.startswith(_PREFIXES))


def sweep(root: Path, skip: set[Path] = frozenset(), older_than: float = STALE_SECONDS) -> list[Path]:
    """Remove the writers' temporaries under `root` not modified for `older_than` seconds; returns them.

    `skip`: folders not to enter (DuckDB's spill folders have their own owner: lowincome/spill.py).
    """
    removed: list[Path] = []
    cutoff = time.time() - older_than
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        for name in list(dirs):
            path = here / name
            if name in _SKIP or path in skip:
                dirs.remove(name)
            elif is_temporary(name):
                dirs.remove(name)
                if _untouched_since(path, cutoff):
                    shutil.rmtree(path, ignore_errors=True)
                    removed.append(path)
        for name in files:
            path = here / name
            if is_temporary(name) and _untouched_since(path, cutoff):
                try:
                    path.unlink()
                    removed.append(path)
                except OSError:
                    continue  # renamed into place meanwhile, or not ours: the next run looks again
    return removed


def _untouched_since(path: Path, cutoff: float) -> bool:
    """No change to the entry (or, for a folder, to anything in it) after `cutoff`."""
    try:
        if path.lstat().st_mtime > cutoff:
            return False
        if path.is_dir() and not path.is_symlink():
            return all(p.lstat().st_mtime <= cutoff for p in path.rglob("*"))
    except OSError:
        return False
    return True
