"""Removing the delivery store's and the per-file caches' entries that no retained day refers to any more.

Every entry under `work/store/<feed>/`, `work/parsed/<feed>/` and `work/validated/<feed>/` is named by
the delivered file's content (sha256), extraction date and county, and by the fingerprint of the code
that read it (`lowincome.fingerprint`). A corrected file, and every update of the reading, parsing or
validation code, makes new entries; nothing removed the old ones, so after each such update the working
storage held the whole delivery history once more (at the city tier, about 2.1 GB per update).

An entry is kept while a retained day refers to it: the parts, quarantine parts and empty parts that a
committed day's staging manifests name (days older than LOWINCOME_RETENTION_DAYS are pruned before
this runs), and the parsed rows and suite results of the same delivered file read by the same code.
An entry no retained day refers to is removed once its newest file is older than the retention period
as well, so a file held back, or one read but not in use, keeps its entries that long; if it is needed
after that it is read again from the inbox (each entry is a cache that is rebuilt when it is missing).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from .fingerprint import fingerprint
from .parts import store_dir
from .workstore import WorkStore

# <sha256>_<YYYYMMDD>_<county>_...: the delivered file an entry belongs to (the rest names code and options)
_FILE_ID = re.compile(r"^([0-9a-f]{64}_[0-9]{8}_[^_.]+)_")
_EMPTY = "empty."  # a feed's zero-row part, one per reading code: `empty.<fingerprint>.parquet`


def _store_key(name: str) -> str | None:
    """The entry a store file belongs to: its part key `<parse key>_<name hash>`, or the empty part's name;
    None for anything else (the content-hash index), which is left alone."""
    if name.startswith(_EMPTY):
        return name
    return name.split(".", 1)[0] if _FILE_ID.match(name) else None


def _cache_key(name: str) -> str | None:
    """The entry a parsed-rows or suite-result file belongs to: its name without the extension."""
    return name.rsplit(".", 1)[0] if _FILE_ID.match(name) else None


def _referenced(store: WorkStore, feeds: list[str]) -> set[str]:
    """Store paths (relative to work/) that the staging manifests of every retained committed day name."""
    committed = store.committed()
    paths: set[str] = set()
    for day in committed.completed_days():
        for feed in feeds:
            try:
                staging = committed.staging(day, feed)
            except FileNotFoundError:
                continue
            paths.update(staging.parts)
            paths.update(staging.quarantine)
            paths.add(staging.empty)
    return paths


def _groups(folder: Path, key) -> dict[str, list[Path]]:
    """The files of `folder` by entry key (`key(name)`; None: not an entry, left alone)."""
    out: dict[str, list[Path]] = {}
    if not folder.is_dir():
        return out
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue  # temporaries are the sweep's (lowincome/temporaries.py)
        k = key(path.name)
        if k is not None:
            out.setdefault(k, []).append(path)
    return out


def _newest_mtime(paths: list[Path]) -> float:
    newest = 0.0
    for p in paths:
        try:
            newest = max(newest, p.stat().st_mtime)
        except FileNotFoundError:
            pass
    return newest


@dataclass
class StorePruning:
    """What `prune_store` removed."""

    files: list[Path] = field(default_factory=list)
    bytes: int = 0

    def message(self) -> str | None:
        """The run log's line (None when nothing was removed): the data team sees where the disk space went."""
        if not self.files:
            return None
        return (f"working storage: removed {len(self.files)} file(s), {self.bytes / 2**20:,.1f} MiB, of the delivery "
                f"store and its caches that no retained day refers to (replaced files, or read by an older version "
                f"of the code)")


def prune_store(store: WorkStore, feeds: list[str], keep_days: int, now: float | None = None) -> StorePruning:
    """Remove the entries of `feeds` no retained day refers to and none was written within `keep_days`.

    Call under the warehouse lock, after `WorkStore.prune_days` (whose survivors decide what is referenced).
    """
    cutoff = (time.time() if now is None else now) - keep_days * 86400
    referenced = _referenced(store, feeds)
    kept_keys = {_store_key(Path(p).name) for p in referenced} - {None}
    # a part key is <parse key>_<hash of the file name>: the parsed rows it was split from are those of the parse key
    kept_parse_keys = {k.rsplit("_", 1)[0] for k in kept_keys if _FILE_ID.match(k)}
    validation = fingerprint("validation")
    kept_files = {m.group(1) for k in kept_parse_keys if (m := _FILE_ID.match(k))}
    removed = StorePruning()

    def drop(groups: dict[str, list[Path]], keep) -> None:
        for k, paths in groups.items():
            if keep(k) or _newest_mtime(paths) >= cutoff:
                continue
            for p in paths:
                try:
                    size = p.stat().st_size
                    p.unlink()
                except FileNotFoundError:
                    continue
                removed.files.append(p)
                removed.bytes += size

    for feed in feeds:
        drop(_groups(store_dir(store.root, feed), _store_key), lambda k: k in kept_keys)
        drop(_groups(store.root / "parsed" / feed, _cache_key), lambda k: k in kept_parse_keys)
        # a suite result is named <file>_<previous rows>_<share>_<min rows>_<validation fingerprint>: kept for a
        # referenced file under the current suites (older suites' results are rebuilt when needed, not kept)
        drop(_groups(store.root / "validated" / feed, _cache_key),
             lambda k: (m := _FILE_ID.match(k)) is not None and m.group(1) in kept_files and k.endswith("_" + validation))
    return removed


__all__ = ["StorePruning", "prune_store"]
