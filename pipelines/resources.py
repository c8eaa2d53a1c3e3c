"""Resources: where the inbox, warehouse and policy are, resolved from the environment.

Fields left empty fall back to the LOWINCOME_* environment variables (and
their defaults), read when an asset runs. The pseudonym secret is never a
field: it comes from the environment only, so it never shows in run config.

Inside a run the resource hands out a work store scoped to that run's own
folder (the root run's, so a re-execution from failure finds what the steps
before it wrote), and at the start of a run it clears what killed runs left
behind: uncommitted run folders and half-built databases under `.building/`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import time

from dagster import ConfigurableIOManagerFactory, ConfigurableResource, FilesystemIOManager, InitResourceContext
from pydantic import PrivateAttr

from lowincome.config import Settings, load_settings
from lowincome.locking import WarehouseLocked, warehouse_lock
from lowincome.workstore import WorkStore


class LowincomeResource(ConfigurableResource):
    """Paths of one deployment; empty means: use LOWINCOME_INBOX / LOWINCOME_WAREHOUSE / LOWINCOME_POLICY."""

    inbox: str = ""
    warehouse: str = ""
    policy: str = ""
    # A deliberately empty day: run even when the inbox has no usable delivery dated on or before the day
    # (`lowincome run --allow-empty`). Stale feeds then carry their flags instead of resolving them.
    allow_empty: bool = False

    _run_id: str | None = PrivateAttr(default=None)
    _live_fds: list = PrivateAttr(default_factory=list)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        run = context.dagster_run
        if run is None:  # sensors, schedules: no run folder
            return
        self._run_id = run.root_run_id or run.run_id
        partition = (run.tags or {}).get("dagster/partition")
        try:
            store = self.store()
            remove_leftovers(store, keep_run=self._run_id)
            prune_handovers(store.warehouse, self._run_id, self.settings().retention_days)
            if partition:
                from datetime import date

                self._live_fds.append(store.hold_live(date.fromisoformat(partition)))
        except (OSError, ValueError):
            # A warehouse that cannot be written fails in the first step with a one-line message;
            # cleaning is best effort and must not mask that message.
            pass

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        for fd in self._live_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        self._live_fds.clear()

    def settings(self) -> Settings:
        env = dict(os.environ)
        for field, var in (("inbox", "LOWINCOME_INBOX"), ("warehouse", "LOWINCOME_WAREHOUSE"), ("policy", "LOWINCOME_POLICY")):
            value = getattr(self, field)
            if value:
                env[var] = value
        return load_settings(env)

    def store(self) -> WorkStore:
        """The run's own work store inside a run; the committed days' store elsewhere (sensors)."""
        return WorkStore(Path(self.settings().warehouse), self._run_id)


IO_DIR = ("work", "handover")  # under the warehouse: what steps hand over (a feed's plan, counties' results)


class WarehouseIOManager(ConfigurableIOManagerFactory):
    """Dagster's filesystem IO manager, rooted in the warehouse's working storage.

    The county steps of a feed hand their collect step a few KB each (the plan, each county's
    file results). Dagster's default puts them under the instance's storage folder, which on a
    Celery worker is that machine's own `DAGSTER_HOME`: the collect step, run on another machine,
    would not find them. The warehouse is the one folder every machine shares (deploy/README.md),
    so the hand-overs live there, whatever executor and instance run the job; pruned with the run
    folders after LOWINCOME_RETENTION_DAYS (a re-execution from failure still finds them).
    """

    warehouse: str = ""  # empty: LOWINCOME_WAREHOUSE

    def create_io_manager(self, context):
        env = dict(os.environ)
        if self.warehouse:
            env["LOWINCOME_WAREHOUSE"] = self.warehouse
        base = Path(load_settings(env).warehouse).joinpath(*IO_DIR)
        return FilesystemIOManager(base_dir=str(base)).create_io_manager(context)


def prune_handovers(warehouse: Path, keep_run: str | None, retention_days: int) -> None:
    """Remove the step hand-overs of runs older than the retention period (one folder per run)."""
    root = Path(warehouse).joinpath(*IO_DIR)
    if not root.is_dir():
        return
    cutoff = time.time() - retention_days * 86400
    for folder in root.iterdir():
        try:
            if folder.name != keep_run and folder.is_dir() and folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def drop_handovers(warehouse: Path, run_ids: set) -> None:
    """Remove a published run's hand-overs: once its publication is in place no step will read them again."""
    root = Path(warehouse).joinpath(*IO_DIR)
    for run_id in run_ids:
        if run_id:
            shutil.rmtree(root / run_id, ignore_errors=True)


def remove_leftovers(store: WorkStore, keep_run: str | None) -> None:
    """Clear what killed runs left, under the warehouse lock (never while another run publishes).

    `.building/` holds half-built databases, restricted ones included: only a publisher holding
    the lock writes there, so whatever is there while we hold the lock belongs to a dead run.
    """
    if not store.warehouse.is_dir():
        return
    try:
        with warehouse_lock(store.warehouse, "cleaning leftovers of earlier runs", wait_seconds=5.0):
            building = store.warehouse / ".building"
            if building.is_dir():
                shutil.rmtree(building, ignore_errors=True)
            store.remove_leftovers(keep_run=keep_run)
    except WarehouseLocked:
        pass  # someone is publishing; the next start cleans up
