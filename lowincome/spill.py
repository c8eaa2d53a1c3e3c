"""Where DuckDB spills: a folder of its own for every connection, inside a folder of its own for every process.

DuckDB names its spill files after the process id and the instance within the process
(`duckdb_temp_<pid>_<n>_storage_*.tmp`) and, when it spills, removes the files of owners whose
process id is not alive. That is safe on one machine only. Steps of one run share the warehouse's
working storage from several machines (Celery) or containers (Kubernetes, where every step's
process may be pid 1): two processes with the same pid wrote the same spill file, and a process
that does not see another machine's pid took its live files for a dead owner's. Reproduced with
two processes in separate pid namespaces spilling into one folder: both queries failed with
"Could not read enough bytes from file .../duckdb_temp_1_0_storage_S32K-0.tmp".

So every process gets `<warehouse>/work/tmp/<host>-<pid>-<random>/`, holding a lock on its
`owner.lock` for as long as it lives (`flock`, as the warehouse's publishing lock, carried by
NFSv4 between machines), and every connection a subfolder of it that DuckDB creates when it first
spills and removes when the connection closes. A process that was killed leaves its folder and its
spill files behind; `sweep` (at the start of every run, lowincome/workstore.py) removes the folders
whose lock nobody holds any more, and never a live one, whatever machine or namespace it lives in.
"""

from __future__ import annotations

import atexit
import fcntl
import itertools
import os
import re
import secrets
import shutil
import socket
import threading
import time
from pathlib import Path

OWNER = "owner.lock"
# Spill files DuckDB wrote straight into work/tmp before each process had its own folder: their
# writer is gone once nothing writes there any more, so a day without change is proof enough.
LOOSE_STALE_SECONDS = 24 * 3600
# A folder still without its lock file is one being created right now (mkdir, then the lock):
# it is left alone for this long.
UNLOCKED_GRACE_SECONDS = 3600

_lock = threading.Lock()
_folders: dict[tuple[int, Path], tuple[Path, int]] = {}  # (pid, spill root) -> (the process's folder, its lock fd)
_counter = itertools.count(1)


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:40] or "host"


def process_folder(root: Path) -> Path:
    """This process's folder under `root` (created, locked, owner-only), the same for all its connections.

    Keyed by pid too: a process forked from one that had a folder gets a folder of its own.
    """
    key = (os.getpid(), root)
    with _lock:
        known = _folders.get(key)
        if known is not None:
            if known[0].is_dir():
                return known[0]
            os.close(known[1])  # removed under us (working storage can always be deleted): start a new one
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        folder = root / f"{_host()}-{os.getpid()}-{secrets.token_hex(4)}"
        folder.mkdir(mode=0o700)
        fd = os.open(folder / OWNER, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until this process ends: the folder is in use
        _folders[key] = (folder, fd)
        atexit.register(_remove_own, key)  # a process that ends normally leaves nothing; a killed one, `sweep`
        return folder


def _remove_own(key: tuple[int, Path]) -> None:
    if key[0] != os.getpid():  # registered by the process this one was forked from: not this one's folder
        return
    folder, fd = _folders.pop(key, (None, None))
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(fd)


def release() -> None:
    """Remove this process's folders now: for a process that leaves by `os._exit`, which runs no `atexit`
    function (the `lowincome` command does, lowincome/cli.py). Its connections must be closed by then."""
    for key in [k for k in _folders if k[0] == os.getpid()]:
        _remove_own(key)


def connection_folder(root: Path) -> Path:
    """A folder for one connection's spill files: not created here (DuckDB creates it when it spills and
    removes it when the connection closes, as it does with any temp directory it created)."""
    return process_folder(root) / f"c{next(_counter)}"


def _owner_is_gone(folder: Path) -> bool:
    """True when nobody holds the folder's lock: its process ended (or the folder is a stray without a lock)."""
    try:
        fd = os.open(folder / OWNER, os.O_RDWR)
    except FileNotFoundError:
        return time.time() - folder.stat().st_mtime > UNLOCKED_GRACE_SECONDS
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the lock if we took it: the folder is removed next, nobody locks it again
    return True


def sweep(root: Path) -> list[Path]:
    """Remove what dead processes left under `root` (work/tmp): their folders, and loose old spill files.

    A folder whose lock some process holds is in use and kept, on whatever machine that process runs.
    This process's own folder is skipped without asking: over NFS, `flock` becomes a POSIX lock, which
    a process is always granted again on a file it already locked.
    """
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    own = {folder for (pid, r), (folder, _) in _folders.items() if pid == os.getpid() and r == root}
    now = time.time()
    for entry in root.iterdir():
        try:
            if entry.is_dir() and not entry.is_symlink():
                if entry in own or not _owner_is_gone(entry):
                    continue
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
            elif entry.name.startswith("duckdb_temp_") and now - entry.lstat().st_mtime > LOOSE_STALE_SECONDS:
                entry.unlink(missing_ok=True)
                removed.append(entry)
        except OSError:
            continue  # gone meanwhile, or not ours to judge: the next run looks again
    return removed
