"""Reuse the rules' result of an earlier run whose inputs were identical, instead of evaluating again.

A re-run of a night (nothing new delivered, or a failure after the rules) evaluated every rule over the
whole history a second time to get the same flags. The rules are a pure function of: the staged parts
of every department feed as of the day (the staging manifests, whose part names are content keys), the
policy as loaded, the as-of day, the pseudonym key and the code (SQL, engine, libraries). The digest of
all of these names a folder under `<work>/rules/results/`; when it exists, the run reads the four
frames `evaluate` returns from it; otherwise it evaluates and writes them there.

What invalidates a kept result, and how:
- a new, corrected or held-back file, a replay of another day: other manifests or another day, so
  another digest (each part file's size and modification time are in it too, so a part rewritten in
  place under the same name is not taken for the old one);
- an edited policy file: the loaded policy is in the digest (its values, not its path);
- any change to the code or SQL: the repository fingerprint of scope "all" plus the DuckDB and Polars
  versions are in it;
- another pseudonym key: an HMAC of a constant under the key is in it (never the key itself).
Kept results are working storage (identified: the subjects carry ID numbers, like the staged parts):
each is written whole into a temporary folder and renamed into place, so a killed run leaves none
half-written. Only the `KEEP` most recently used results are kept (and none unused for
LOWINCOME_RETENTION_DAYS).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import shutil
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from ..fingerprint import fingerprint
from ..privacy import ensure_private_dir
from ..staging import Staging
from ..temporaries import temporary_path
from ..workstore import write_atomic
from .policy import Policy

FORMAT = "lowincome rules result 2"
FRAMES = ("flags", "subjects", "households", "roster_sizes", "aliases", "not_assessable")
# Results kept at most: a night and its re-runs need one; the one before stays for a replay of the
# previous day. Every night's inputs differ (the day at least), so keeping more would make working
# storage grow with nights (a result is about 2 MB at scale 40) until the retention period ends.
KEEP = 2


def results_dir(work_root: Path) -> Path:
    return Path(work_root) / "rules" / "results"


def _policy_text(policy: Policy) -> str:
    return json.dumps({"default": policy.default, "counties": policy.counties, "served": list(policy.served_counties)},
                      sort_keys=True, default=str, ensure_ascii=False)


def inputs_digest(work_root: Path, manifests: dict[str, Staging], policy: Policy, as_of: date,
                  pseudonym_key: str) -> str:
    """The digest of everything a rules evaluation reads. Raises FileNotFoundError if a part is missing."""
    h = hashlib.sha256()

    def add(text: str) -> None:
        data = text.encode("utf-8")
        h.update(len(data).to_bytes(8, "big") + data)

    add(FORMAT)
    add(f"code={fingerprint('all')} duckdb={duckdb.__version__} polars={pl.__version__}")
    add(f"as_of={as_of.isoformat()}")
    add(_policy_text(policy))
    add(hmac.new(pseudonym_key.encode("utf-8"), b"lowincome rules result cache", hashlib.sha256).hexdigest())
    root = Path(work_root)
    for feed in sorted(manifests):
        staging = manifests[feed]
        add(staging.to_json())
        for rel in (*staging.parts, staging.empty):
            st = (root / rel).stat()
            add(f"{rel}|{st.st_size}|{st.st_mtime_ns}")
    return h.hexdigest()


@dataclass(frozen=True)
class KeptResult:
    """Where the result of one set of inputs is (or will be) kept."""

    folder: Path
    retention_days: int

    @classmethod
    def for_inputs(cls, work_root: Path, manifests: dict[str, Staging], policy: Policy, as_of: date,
                   pseudonym_key: str, retention_days: int) -> "KeptResult | None":
        """None when the inputs cannot be named (a part missing): the rules then evaluate and report it."""
        try:
            digest = inputs_digest(work_root, manifests, policy, as_of, pseudonym_key)
        except OSError:
            return None
        return cls(results_dir(work_root) / digest, retention_days)

    def load(self) -> dict[str, pl.DataFrame] | None:
        """The kept frames, or None when there are none (or they cannot be read: then they are evaluated again)."""
        if not self.folder.is_dir():
            return None
        try:
            frames = {name: pl.read_parquet(self.folder / f"{name}.parquet") for name in FRAMES}
        except Exception:  # damaged or removed meanwhile: working storage, so compute again
            return None
        try:
            os.utime(self.folder)  # used: kept for another retention period
        except OSError:
            pass
        return frames

    def save(self, frames: dict[str, pl.DataFrame]) -> None:
        """Keep the frames (whole or not at all), then drop results unused for the retention period."""
        parent = self.folder.parent
        ensure_private_dir(parent.parent)
        ensure_private_dir(parent)
        tmp = temporary_path(self.folder)  # this writer's own name: nothing of another writer's to clear first
        try:
            tmp.mkdir(mode=0o700)
            for name in FRAMES:
                write_atomic(tmp / f"{name}.parquet", frames[name])
            if self.folder.exists():  # kept before but unreadable (load returned None): replaced whole
                shutil.rmtree(self.folder, ignore_errors=True)
            os.replace(tmp, self.folder)
        except OSError:
            # another run kept the same result meanwhile (the folder exists), or the disk refused:
            # the result was computed either way, keeping it is only an optimisation
            shutil.rmtree(tmp, ignore_errors=True)
        self.prune()

    def prune(self) -> None:
        parent = self.folder.parent
        now = time.time()
        results, leftovers = [], []
        for entry in parent.iterdir():
            try:
                mtime = entry.stat().st_mtime
            except OSError:
                continue
            (leftovers if entry.name.startswith(".") else results).append((mtime, entry))
        results.sort(reverse=True)
        drop = [e for rank, (mtime, e) in enumerate(results) if rank >= KEEP or now - mtime > self.retention_days * 86400]
        drop += [e for mtime, e in leftovers if now - mtime > 86400]  # a killed run's half-written folder
        for entry in drop:
            if entry != self.folder:
                shutil.rmtree(entry, ignore_errors=True)
