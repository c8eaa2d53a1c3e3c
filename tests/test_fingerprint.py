"""Fingerprints cover what they claim: any code, SQL or data that shapes a cached result or a publication."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from lowincome import fingerprint as fp
from lowincome import lineage

REPO = fp.ROOT
COPIED = ("lowincome", "checks", "assets", "pipelines", "sql", "pyproject.toml")


def _clone(target: Path) -> Path:
    """A copy of the code as a second clone (or an unpacked release) would hold it: no git, no caches."""
    target.mkdir(parents=True)
    for name in COPIED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, target / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "datadocs_static"))
        else:
            shutil.copy2(src, target / name)
    return target


@pytest.fixture(scope="module")
def clones(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("clones")
    return _clone(base / "a"), _clone(base / "b")


def test_same_content_in_two_clones_gives_the_same_fingerprint(clones):
    a, b = clones
    for scope in fp.SCOPES:
        assert fp.compute(scope, a) == fp.compute(scope, b), scope
        # ... and the same as the checkout itself: paths are relative, bytecode and caches are not hashed
        assert fp.compute(scope, a) == fp.fingerprint(scope), scope
    assert lineage.describe(a) == lineage.describe(b)
    assert "+code." in lineage.describe(a)  # a copy outside git is described by its content


@pytest.mark.parametrize("changed", [
    "lowincome/feeds.py", "lowincome/reading.py", "lowincome/parsing.py", "lowincome/identity.py",
    "lowincome/validation.py", "lowincome/privacy.py", "lowincome/ingest.py", "lowincome/delivery.py",
])
def test_a_change_to_row_handling_changes_both_cache_keys_and_the_code_version(clones, tmp_path, changed):
    root = _clone(tmp_path / "c")
    before = {s: fp.compute(s, root) for s in fp.SCOPES}
    version = lineage.describe(root)
    with (root / changed).open("a", encoding="utf-8") as handle:
        handle.write("\n# a change\n")
    for scope in fp.SCOPES:
        assert fp.compute(scope, root) != before[scope], (changed, scope)
    assert lineage.describe(root) != version


def test_a_change_to_the_suites_changes_the_suite_cache_key_only(tmp_path):
    root = _clone(tmp_path / "c")
    before = {s: fp.compute(s, root) for s in fp.SCOPES}
    (root / "checks" / "suites.py").write_text((root / "checks" / "suites.py").read_text() + "\n# tuned\n")
    assert fp.compute("validation", root) != before["validation"]
    assert fp.compute("all", root) != before["all"]
    assert fp.compute("ingest", root) == before["ingest"]  # parsed rows do not depend on the suites


def test_new_reference_data_and_new_modules_are_covered(tmp_path):
    root = _clone(tmp_path / "c")
    before = {s: fp.compute(s, root) for s in fp.SCOPES}
    (root / "lowincome" / "data").mkdir(exist_ok=True)
    (root / "lowincome" / "data" / "gb2260_extra.csv").write_text("code,name\n371399,x\n", encoding="utf-8")
    for scope in fp.SCOPES:
        assert fp.compute(scope, root) != before[scope], scope
    middle = {s: fp.compute(s, root) for s in fp.SCOPES}
    (root / "lowincome" / "counties.py").write_text("SERVED = ()\n", encoding="utf-8")
    assert fp.compute("all", root) != middle["all"]  # a new module is part of the code version at once
    unused = {s: fp.compute(s, root) for s in fp.SCOPES}
    assert unused["ingest"] == middle["ingest"]  # ... and of the caches' keys once ingestion uses it:
    # imported inside a function of a module ingestion imports (no row changes yet, the key does)
    parsing = root / "lowincome" / "parsing.py"
    parsing.write_text(parsing.read_text(encoding="utf-8") + "\n\ndef _served():\n    from .counties import SERVED\n"
                       "    return SERVED\n", encoding="utf-8")
    imported = {s: fp.compute(s, root) for s in fp.SCOPES}
    (root / "lowincome" / "counties.py").write_text("SERVED = ('371302',)\n", encoding="utf-8")
    for scope in fp.SCOPES:
        assert fp.compute(scope, root) != imported[scope], scope


@pytest.mark.parametrize("changed", ["lowincome/marts.py", "lowincome/publish.py", "lowincome/worklists.py",
                                     "lowincome/report.py", "lowincome/rules/engine.py", "lowincome/keys.py"])
def test_a_change_after_staging_changes_the_code_version_but_not_the_caches(tmp_path, changed):
    """Publishing, marts, reports and rules do not shape a file's parsed rows or its suite: an update to
    them must not make a bureau read years of deliveries again."""
    root = _clone(tmp_path / "c")
    before = {s: fp.compute(s, root) for s in fp.SCOPES}
    with (root / changed).open("a", encoding="utf-8") as handle:
        handle.write("\n# a change\n")
    assert fp.compute("all", root) != before["all"]
    assert fp.compute("ingest", root) == before["ingest"]
    assert fp.compute("validation", root) == before["validation"]


def test_a_change_to_rule_sql_changes_the_code_version_but_not_the_caches(tmp_path):
    root = _clone(tmp_path / "c")
    before = {s: fp.compute(s, root) for s in fp.SCOPES}
    version = lineage.describe(root)
    rule = sorted((root / "sql" / "rules").glob("*.sql"))[0]
    rule.write_text(rule.read_text(encoding="utf-8") + "\n-- threshold changed\n", encoding="utf-8")
    assert lineage.describe(root) != version
    assert fp.compute("all", root) != before["all"]
    assert fp.compute("validation", root) == before["validation"]
    assert fp.compute("ingest", root) == before["ingest"]


def test_renaming_a_file_changes_the_fingerprint(tmp_path):
    root = _clone(tmp_path / "c")
    before = fp.compute("all", root)
    model = sorted((root / "sql" / "models").glob("*.sql"))[0]
    model.rename(model.with_name("zz_" + model.name))
    assert fp.compute("all", root) != before


def test_bytecode_and_temporary_files_are_not_hashed(tmp_path):
    root = _clone(tmp_path / "c")
    before = {s: fp.compute(s, root) for s in fp.SCOPES}
    (root / "lowincome" / "__pycache__").mkdir(exist_ok=True)
    (root / "lowincome" / "__pycache__" / "feeds.cpython-311.pyc").write_bytes(b"\0")
    (root / "lowincome" / "x.tmp").write_text("scratch")
    assert {s: fp.compute(s, root) for s in fp.SCOPES} == before


def test_a_dirty_checkout_carries_its_content_fingerprint(tmp_path):
    """Inside git: a clean tree is its commit; two different dirty states get two different versions."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    import subprocess

    root = _clone(tmp_path / "repo")

    def git(*args):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "-m", "code")
    clean = lineage.describe(root)
    assert "dirty" not in clean and "+code." not in clean
    rule = sorted((root / "sql" / "rules").glob("*.sql"))[0]
    original = rule.read_text(encoding="utf-8")
    rule.write_text(original + "\n-- one edit\n", encoding="utf-8")
    first = lineage.describe(root)
    rule.write_text(original + "\n-- another edit\n", encoding="utf-8")
    second = lineage.describe(root)
    assert ".dirty." in first and ".dirty." in second and first != second
    rule.write_text(original, encoding="utf-8")
    (root / "sql" / "rules" / "r99_new.sql").write_text("SELECT 1\n", encoding="utf-8")  # untracked: shapes output too
    assert ".dirty." in lineage.describe(root)


def test_code_inside_another_repository_is_not_described_by_its_commit(tmp_path):
    """An unpacked copy of the code inside some other git repository is described by its content."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    import subprocess

    outer = tmp_path / "deploy"
    outer.mkdir()
    subprocess.run(["git", "-C", str(outer), "init", "-q"], check=True)
    root = _clone(outer / "app")
    assert "+code." in lineage.describe(root)


def test_the_parsed_cache_and_the_suite_cache_use_the_wide_fingerprints():
    from checks import record
    from lowincome import ingest

    assert ingest.code_fingerprint() == fp.fingerprint("ingest")
    assert record._fingerprint() == fp.fingerprint("validation")
    assert fp.fingerprint("validation") != fp.fingerprint("ingest")
    path = ingest.cached_file_path(Path("/w"), "civil_roster", "abc", date(2026, 1, 2), "371302")
    assert path.name.endswith(f"_{fp.fingerprint('ingest')}.parquet")


def test_scopes_cover_the_modules_that_shape_results():
    ingest_files = {p.relative_to(REPO).as_posix() for p in fp.scope_files("ingest")}
    for name in ("feeds", "reading", "parsing", "identity", "validation", "privacy", "ingest", "delivery",
                 "acceptance", "reasons", "config", "parts"):
        assert f"lowincome/{name}.py" in ingest_files
    assert {"assets/ingest.py", "lowincome/rules/policy.py", "lowincome/data/gb2260_counties.csv"} <= ingest_files
    assert "lowincome/marts.py" not in ingest_files and "lowincome/publish.py" not in ingest_files
    validation_files = {p.relative_to(REPO).as_posix() for p in fp.scope_files("validation")}
    assert {"checks/suites.py", "checks/expectations.py", "checks/run.py", "checks/record.py"} <= validation_files
    # what the suites' modules import is in too, though ingestion does not import it
    assert "lowincome/freshness.py" in validation_files and "lowincome/freshness.py" not in ingest_files
    assert ingest_files <= validation_files
    all_files = {p.relative_to(REPO).as_posix() for p in fp.scope_files("all")}
    assert validation_files <= all_files
    assert {p.relative_to(REPO).as_posix() for p in (REPO / "sql").rglob("*.sql")} <= all_files
    with pytest.raises(KeyError):
        fp.scope_files("nonsense")
