"""A re-run with identical inputs reuses the rules' kept result; any change to an input evaluates again.

The inputs are the staged parts of the night (manifests, and each part file's size and time), the
policy as loaded, the as-of day, the pseudonym key and the code. Every test here works on a copy of
the published sample warehouse's parts, so the shared warehouse is never changed.
"""

from __future__ import annotations

import os
import shutil
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

from lowincome.config import DEFAULT_POLICY, DEV_PSEUDONYM_KEY
from lowincome.feeds import DEPARTMENT_FEEDS
from lowincome.rules import engine, reuse
from lowincome.rules.policy import load_policy
from lowincome.staging import Staging
from lowincome.workstore import WorkStore

from .conftest import SAMPLE_END


@pytest.fixture()
def parts(published, tmp_path) -> tuple[Path, dict[str, Staging]]:
    """A private copy of the sample night's parts (work root) and the night's manifests."""
    warehouse, _ = published
    store = WorkStore(warehouse)
    root = tmp_path / "work"
    shutil.copytree(store.root / "store", root / "store")
    return root, {f: store.staging(SAMPLE_END, f) for f in DEPARTMENT_FEEDS}


def run(root: Path, manifests: dict[str, Staging], kept: reuse.KeptResult | None, policy=None, as_of=SAMPLE_END,
        key=DEV_PSEUDONYM_KEY) -> engine.Evaluation:
    staging = {f: m.relation_sql(root) for f, m in manifests.items()}
    return engine.evaluate(staging, policy or load_policy(DEFAULT_POLICY), as_of, key, kept=kept)


def frames(ev: engine.Evaluation) -> dict[str, pl.DataFrame]:
    return {"flags": ev.flags, "subjects": ev.subjects, "households": ev.households, "roster_sizes": ev.roster_sizes}


def kept_for(root, manifests, policy=None, as_of=SAMPLE_END, key=DEV_PSEUDONYM_KEY) -> reuse.KeptResult:
    kept = reuse.KeptResult.for_inputs(root, manifests, policy or load_policy(DEFAULT_POLICY), as_of, key, 7)
    assert kept is not None
    return kept


def test_identical_inputs_reuse_the_kept_result_exactly(parts, monkeypatch):
    root, manifests = parts
    kept = kept_for(root, manifests)
    assert not kept.folder.exists()
    first = run(root, manifests, kept)
    assert "reused" not in first.timings and first.flags.height > 0
    assert sorted(p.name for p in kept.folder.iterdir()) == sorted(f"{n}.parquet" for n in reuse.FRAMES)
    assert oct(kept.folder.parent.stat().st_mode & 0o777) == oct(0o700)  # identified working storage

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated again although the inputs are identical")

    with monkeypatch.context() as m:
        m.setattr(engine, "_evaluate", no_evaluation)
        again = run(root, manifests, kept_for(root, manifests))
    assert "reused" in again.timings
    fresh = run(root, manifests, None)  # no kept result involved at all
    for name, frame in frames(fresh).items():
        assert frame.schema == frames(again)[name].schema, name
        assert frame.equals(frames(again)[name]), name
        assert frame.equals(frames(first)[name]), name


def _policy_with(tmp_path: Path, **values) -> Path:
    doc = yaml.safe_load(DEFAULT_POLICY.read_text(encoding="utf-8"))
    doc["default"][-1].update(values)
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_any_changed_input_names_another_result(parts, tmp_path):
    root, manifests = parts
    base = kept_for(root, manifests).folder.name
    claims = manifests["medical_claims"]
    fewer = dict(manifests, medical_claims=Staging(claims.feed, claims.snapshot, claims.empty, claims.parts[:-1],
                                                   claims.latest, claims.quarantine, claims.rows))
    others = {
        "another day": kept_for(root, manifests, as_of=SAMPLE_END - timedelta(days=1)),
        "an edited policy": kept_for(root, manifests, policy=load_policy(_policy_with(tmp_path, medical_red_amount=54321))),
        "another pseudonym key": kept_for(root, manifests, key="another-key-" + "x" * 40),
        "a part less": kept_for(root, fewer),
    }
    part = root / claims.parts[0]
    st = part.stat()
    os.utime(part, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # rewritten in place under the same name
    others["a part rewritten in place"] = kept_for(root, manifests)
    names = {what: k.folder.name for what, k in others.items()}
    assert base not in names.values(), names
    assert len(set(names.values())) == len(names), names
    # a part that is gone: no name, so the rules evaluate (and report the missing file themselves)
    part.unlink()
    assert reuse.KeptResult.for_inputs(root, manifests, load_policy(DEFAULT_POLICY), SAMPLE_END, DEV_PSEUDONYM_KEY, 7) is None


def test_a_damaged_kept_result_is_evaluated_again(parts):
    root, manifests = parts
    kept = kept_for(root, manifests)
    first = run(root, manifests, kept)
    (kept.folder / "flags.parquet").write_bytes(b"not parquet")
    again = run(root, manifests, kept)
    assert "reused" not in again.timings
    assert again.flags.equals(first.flags)
    assert pl.read_parquet(kept.folder / "flags.parquet").equals(first.flags)  # kept again, whole


def test_results_unused_for_the_retention_period_are_dropped(tmp_path):
    folder = reuse.results_dir(tmp_path) / ("a" * 64)
    folder.parent.mkdir(parents=True)
    old, recent = folder.parent / ("b" * 64), folder.parent / ("c" * 64)
    many = [folder.parent / f"{i:064d}" for i in range(reuse.KEEP + 3)]
    for entry in (old, recent, *many):
        entry.mkdir()
    os.utime(old, (1, 1))  # last used in 1970
    os.utime(recent, None)
    for i, entry in enumerate(many):
        os.utime(entry, (10_000 + i, 10_000 + i))
    leftover = folder.parent / ".tmp-1-x"
    leftover.mkdir()
    os.utime(leftover, (1, 1))
    kept = reuse.KeptResult(folder, retention_days=100_000)  # here only the count bounds them
    kept.save({name: pl.DataFrame({"x": [1]}) for name in reuse.FRAMES})
    left = {p.name for p in folder.parent.iterdir()}
    assert reuse.KEEP == 2  # the night's result and the one before: working storage does not grow with nights
    assert left == {folder.name, recent.name}  # the most recently used; the leftover of a killed run is gone too
    # and a result unused for longer than the retention period goes whatever the count
    os.utime(recent, (1, 1))
    reuse.KeptResult(folder, retention_days=7).prune()
    assert recent.name not in {p.name for p in folder.parent.iterdir()} and folder.is_dir()


def test_a_rerun_of_the_night_reuses_the_rules_result(generated, lowincome_env, tmp_path, monkeypatch):
    """Through the nightly job: the second run of the same night evaluates no rule and publishes the same flags."""
    import duckdb

    from pipelines.definitions import defs

    out, _ = generated
    inbox = tmp_path / "inbox"
    shutil.copytree(out / "inbox", inbox)
    warehouse = lowincome_env(inbox)

    def run_night():
        assert defs.resolve_job_def("nightly").execute_in_process(partition_key=SAMPLE_END.isoformat()).success
        con = duckdb.connect(str(warehouse / "lowincome.duckdb"), read_only=True)
        try:
            return con.execute("SELECT * FROM mart.flags ORDER BY flag_id").fetchall()
        finally:
            con.close()

    first = run_night()
    kept = list(reuse.results_dir(warehouse / "work").iterdir())
    assert len(kept) == 1 and len(first) > 0

    def no_evaluation(*args, **kwargs):
        raise AssertionError("evaluated again although nothing changed")

    with monkeypatch.context() as m:
        m.setattr(engine, "_evaluate", no_evaluation)
        assert run_night() == first
    assert list(reuse.results_dir(warehouse / "work").iterdir()) == kept
    log = (warehouse / "logs" / "lowincome.log").read_text(encoding="utf-8")
    assert log.count("(result of identical inputs reused)") == 1
