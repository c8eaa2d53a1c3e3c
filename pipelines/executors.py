"""Which Dagster executor runs the nightly job, and the Dagster instance a run spread over processes needs.

Three ways to run the same job (issue 10):

- in-process, the default of `lowincome run`: one process, `execute_in_process`;
- multiprocess, `lowincome run --workers N` (N > 1): Dagster's multiprocess executor, at most N steps at a
  time, each in its own process on this machine;
- Celery, `lowincome run --celery`: every step a Celery task sent to the broker at LOWINCOME_CELERY_BROKER
  and run by whichever worker takes it, on any machine that shares the warehouse folder.

Out of one process, two things must hold. The job must be loadable by name wherever a step runs: a
*reconstructable* job, i.e. a module-level function here that returns it (`nightly_job`,
`celery_nightly_job`). And the run's record must live in a Dagster instance that every step process can
open: `$DAGSTER_HOME` when it is set (the operator's instance), otherwise a run-local instance under the
warehouse's working storage (`<warehouse>/work/dagster/run-<time>-<pid>`), removed when the run ends.
It is under the warehouse because the warehouse is the one folder every Celery worker shares; a local
temporary folder would not be seen by a worker on another machine.

No IO manager is involved: every asset returns a `MaterializeResult` and hands nothing to the next step in
memory. The data goes through the run's folder of the work store, on disk in the warehouse, and only the
publishing step writes the published databases, under the warehouse lock (lowincome/locking.py).
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance, JobDefinition

from pipelines.jobs import NIGHTLY_JOB_NAME

IN_PROCESS, MULTIPROCESS, CELERY = "in_process", "multiprocess", "celery"
RUN_INSTANCES = ("work", "dagster")  # under the warehouse: run-local Dagster instances


def nightly_job() -> JobDefinition:
    """The nightly job of the default code location (in-process or multiprocess): reconstructable by name."""
    from pipelines.definitions import defs

    return defs.resolve_job_def(NIGHTLY_JOB_NAME)


def celery_nightly_job() -> JobDefinition:
    """The same nightly job with the Celery executor (pipelines/celery_definitions.py): reconstructable by name.

    Built for the broker the environment names at the call, not the module's `defs`: a process that
    loaded the Celery code location once (a test, a long-lived process) must not send a later run's
    tasks, or wait for their results, on the broker it saw first."""
    from pipelines.celery_definitions import build_celery_definitions

    return build_celery_definitions().resolve_job_def(NIGHTLY_JOB_NAME)


def celery_backend(broker: str) -> str:
    """Where Celery keeps task results: the broker itself for Redis, RPC replies over the broker for AMQP."""
    return broker if broker.split("://", 1)[0].lower() in ("redis", "rediss") else "rpc://"


def celery_executor_config(broker: str) -> dict:
    """The celery_executor's config for this broker; the workers' app (pipelines/celery_app.py) uses the same."""
    return {"broker": broker, "backend": celery_backend(broker)}


def run_config_for(executor: str, workers: int) -> dict:
    """The `execution` part of the run config: the default executor accepts `multiprocess` or `in_process`."""
    if executor == MULTIPROCESS:
        # forkserver: every step is forked from one server that has imported the libraries once
        # (pipelines/step_process.py) instead of a fresh interpreter paying the imports per step.
        return {"execution": {"config": {"multiprocess": {
            "max_concurrent": workers,
            "start_method": {"forkserver": {"preload_modules": ["pipelines.step_process"]}},
        }}}}
    return {}


def run_instances_dir(warehouse: Path) -> Path:
    return Path(warehouse).joinpath(*RUN_INSTANCES)


@contextmanager
def run_instance(warehouse: Path):
    """A persistent Dagster instance for one run spread over processes; yields (instance, where it lives).

    `$DAGSTER_HOME` when set: the operator's instance keeps the run's record for the UI. Otherwise a
    run-local instance in the warehouse, removed afterwards (like the ephemeral instance of an in-process
    run, it keeps nothing once the command ends: the run's record is in audit.runs and the log file).
    """
    if os.environ.get("DAGSTER_HOME"):
        instance = DagsterInstance.get()
        try:
            yield instance, Path(os.environ["DAGSTER_HOME"])
        finally:
            instance.dispose()
        return
    folder = run_instances_dir(warehouse) / f"run-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    folder.mkdir(parents=True, exist_ok=False, mode=0o700)
    instance = DagsterInstance.local_temp(str(folder), overrides={"telemetry": {"enabled": False}})
    try:
        yield instance, folder
    finally:
        instance.dispose()
        shutil.rmtree(folder, ignore_errors=True)


def execute_nightly(executor: str, partition_key: str, run_config: dict, instance: DagsterInstance, workers: int = 1):
    """Run the nightly job for one partition on `executor`; returns Dagster's result (never raises on step failure)."""
    from dagster import execute_job, reconstructable

    if executor == IN_PROCESS:
        return nightly_job().execute_in_process(
            partition_key=partition_key, instance=instance, raise_on_error=False, run_config=run_config,
        )
    target = celery_nightly_job if executor == CELERY else nightly_job
    config = {**run_config, **run_config_for(executor, workers)}
    _stop_forkserver()
    try:
        return execute_job(reconstructable(target), instance=instance, run_config=config,
                           tags={"dagster/partition": partition_key}, raise_on_error=False)
    finally:
        _stop_forkserver()


def _stop_forkserver() -> None:
    """Stop this process's multiprocessing forkserver, if one runs.

    Step processes are forked from the forkserver, so they get ITS environment, fixed when it started:
    a second run in the same process (a test, a caller of `lowincome.cli.main`) with other LOWINCOME_*
    values would otherwise run its steps with the first run's inbox, warehouse and memory share. Each
    multiprocess run therefore starts its own server (the preload costs once per run) and stops it.
    """
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    stop = getattr(server, "_stop", None)
    if stop is not None:
        try:
            stop()
        except OSError:
            pass
