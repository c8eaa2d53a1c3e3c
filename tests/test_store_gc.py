"""An update of the reading or validation code does not leave a second copy of the delivery history behind.

Every entry of the delivery store and of the per-file caches is named by the code that read it. The
night after an update reads every delivery again under the new code's name; the old entries stay while
a retained day refers to them (a replay or a rollback of that day still finds them) and for the
retention period after, then go (lowincome/store_gc.py). Here the "old code" is the current code
under another fingerprint, so everything else about the nights is the same.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import checks.record as record_module
import lowincome.ingest as ingest_module
import lowincome.nightly as nightly_module
from lowincome.workstore import WorkStore
from pipelines.definitions import defs

from .conftest import SAMPLE_END

OLD_READING = "0ld0ld0ld0ld"  # the fingerprints the previous release's code had
OLD_SUITES = "5u1te5u1te5u"
NIGHTS = [SAMPLE_END - timedelta(days=4), SAMPLE_END - timedelta(days=2), SAMPLE_END]
ENTRY_FOLDERS = ("store", "parsed", "validated")


def _run(day) -> None:
    assert defs.resolve_job_def("nightly").execute_in_process(partition_key=day.isoformat()).success


def _entries(work: Path, marker: str) -> list[Path]:
    """Files of the store and the caches whose name carries `marker` (a code fingerprint)."""
    return [p for folder in ENTRY_FOLDERS for p in (work / folder).rglob("*") if p.is_file() and marker in p.name]


def _bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def test_the_previous_codes_entries_go_after_the_retention_period(generated, lowincome_env, monkeypatch, reads):
    out, _ = generated
    warehouse = lowincome_env(out / "inbox")
    work = warehouse / "work"
    monkeypatch.setenv("LOWINCOME_RETENTION_DAYS", "1")

    with monkeypatch.context() as old_release:
        old_release.setattr(ingest_module, "code_fingerprint", lambda: OLD_READING)
        old_release.setattr(record_module, "_fingerprint", lambda: OLD_SUITES)
        _run(NIGHTS[0])
    old = _entries(work, OLD_READING) + _entries(work, OLD_SUITES)
    assert any("/parsed/" in str(p) for p in old) and any("/store/" in str(p) for p in old)
    assert any("/validated/" in str(p) for p in old)

    # the update: every delivery is read again under the new code's name
    _run(NIGHTS[1])
    store = WorkStore(warehouse)
    assert store.completed_days() == [NIGHTS[1]]  # the old code's night is past the retention: pruned
    # no retained day refers to the old entries any more, but they were written within the retention period
    assert all(p.exists() for p in old)
    current = _entries(work, ingest_module.code_fingerprint())
    assert _bytes(current) > 0

    # a day later than the retention period: nothing refers to them and they are old enough to go
    long_ago = time.time() - 3 * 86400
    for p in old:
        os.utime(p, (long_ago, long_ago))
    old_bytes = _bytes(old)
    prunings = []
    real_prune = nightly_module.prune_store
    monkeypatch.setattr(nightly_module, "prune_store", lambda *a, **k: prunings.append(real_prune(*a, **k)) or prunings[-1])
    reads.clear()
    _run(NIGHTS[2])
    assert not any(p.exists() for p in old), [str(p.relative_to(work)) for p in old if p.exists()]
    assert _entries(work, OLD_READING) == [] and _entries(work, OLD_SUITES) == []
    # the run says what it removed, counted apart from the removal: exactly the old entries
    (pruning,) = prunings
    assert sorted(pruning.files) == sorted(old) and pruning.bytes == old_bytes
    assert f"removed {len(old)} file(s)" in pruning.message()

    # what the retained days refer to is all there: the same night again reads no delivery
    first_read = list(reads)
    reads.clear()
    _run(NIGHTS[2])
    assert reads == [], reads
    assert prunings[-1].files == [] and prunings[-1].message() is None  # nothing more to remove
    for feed_manifest in (store.committed_dir(NIGHTS[2]) / "staging").glob("*.json"):
        staging = store.staging(NIGHTS[2], feed_manifest.stem)
        assert all((work / p).exists() for p in (*staging.parts, *staging.quarantine, staging.empty))
    # and the night before the re-run read only what the third night delivered (files dated after the second)
    assert all(name.rsplit("_", 1)[1][:8] > f"{NIGHTS[1]:%Y%m%d}" for name in first_read), first_read


def test_entries_a_retained_day_refers_to_are_kept_however_old(generated, lowincome_env, monkeypatch, reads):
    """Age alone removes nothing: a part in use since the first night stays for as long as it is in use."""
    out, _ = generated
    warehouse = lowincome_env(out / "inbox")
    work = warehouse / "work"
    monkeypatch.setenv("LOWINCOME_RETENTION_DAYS", "1")
    _run(NIGHTS[0])
    long_ago = time.time() - 30 * 86400
    everything = [p for folder in ENTRY_FOLDERS for p in (work / folder).rglob("*") if p.is_file()]
    for p in everything:
        os.utime(p, (long_ago, long_ago))
    _run(NIGHTS[1])
    store = WorkStore(warehouse)
    for feed_manifest in (store.committed_dir(NIGHTS[1]) / "staging").glob("*.json"):
        staging = store.staging(NIGHTS[1], feed_manifest.stem)
        missing = [p for p in (*staging.parts, *staging.quarantine, staging.empty) if not (work / p).exists()]
        assert missing == []
    parsed = [p for p in (work / "parsed").rglob("*.json")]
    assert parsed and all(p.exists() for p in parsed)
    # nothing a night reads is gone: the same night again reads no delivery (every file in the inbox, used,
    # rejected or held back, has the entries that spare it a second reading)
    reads.clear()
    _run(NIGHTS[1])
    assert reads == [], reads
