"""Content fingerprints of the code that shapes a result, by named scope, for cache keys and lineage.

A cache is only as trustworthy as its key. The per-file parsed cache
(`ingest.cached_file_path`), the per-file suite results (`checks.record`) and
the recorded `code_version` of a publication must each change whenever any
code, SQL or data file that shapes them changes. A hand-kept list of five file
names went stale the first time a module was added (issue 8, item 5), so a
scope is a set of glob patterns over the repository: a new module, rule or
data file under a covered folder is covered without anyone remembering to add
it. Over-inclusion only costs a cache rebuild; under-inclusion records stale
results, so the patterns err wide.

The hash covers each file's path relative to the repository root (POSIX form)
and its bytes, in sorted path order, so two clones with the same content agree
and a renamed file changes the fingerprint. Caches also depend on the parsing
and validation libraries (Polars, fastexcel, GX ...): their versions are part
of the cache scopes, not of `all`, which describes this repository's code only.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Row reading, parsing, identity, validation, privacy, ingest, delivery discovery, the feed registry and
# any shipped reference data (lowincome/data/), plus the policy loader and the ingest assets that call
# ingest_feed. Every top-level module of the package is in: new ones are covered by default.
_INGEST = (
    "lowincome/*.py",
    "lowincome/data/**/*",
    "lowincome/rules/policy.py",
    "assets/ingest.py",
)
# The suite results of a file: the rows above plus the expectation suites and how they run.
_VALIDATION = _INGEST + ("checks/*.py",)
# Everything that shapes a publication: all package code and data, rule and model SQL, the default
# policy, the Dagster definitions. (The vendored Data Docs assets shape pages, not data.)
_ALL = (
    "lowincome/**/*",
    "checks/*.py",
    "assets/**/*.py",
    "pipelines/**/*.py",
    "sql/**/*.sql",
    "pyproject.toml",
)

SCOPES: dict[str, tuple[str, ...]] = {"ingest": _INGEST, "validation": _VALIDATION, "all": _ALL}
# Third-party behaviour a cached result depends on (a new Polars may parse a date differently).
LIBRARIES: dict[str, tuple[str, ...]] = {
    "ingest": ("polars", "fastexcel", "pyarrow", "duckdb"),
    "validation": ("polars", "fastexcel", "pyarrow", "duckdb", "great_expectations", "pandas"),
    "all": (),
}
_SKIP_PARTS = {"__pycache__", ".pytest_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo", ".tmp"}


def scope_files(scope: str, root: Path = ROOT) -> list[Path]:
    """The files of `scope` under `root`, sorted by their repository-relative POSIX path."""
    if scope not in SCOPES:
        raise KeyError(f"unknown fingerprint scope '{scope}' (known: {', '.join(SCOPES)})")
    found: dict[str, Path] = {}
    for pattern in SCOPES[scope]:
        for path in root.glob(pattern):
            rel = path.relative_to(root)
            if (not path.is_file() or _SKIP_PARTS.intersection(rel.parts) or path.suffix in _SKIP_SUFFIXES
                    or any(part.startswith(".") for part in rel.parts)):
                continue
            found[rel.as_posix()] = path
    return [found[k] for k in sorted(found)]


def compute(scope: str, root: Path = ROOT, libraries: bool = True) -> str:
    """Fingerprint of `scope` under `root` (uncached: tests hash temporary copies with it)."""
    h = hashlib.sha256()
    for path in scope_files(scope, root):
        rel = path.relative_to(root).as_posix().encode()
        data = path.read_bytes()
        # Length-prefixed so that no two different file sets can produce the same byte stream.
        h.update(len(rel).to_bytes(4, "big") + rel + len(data).to_bytes(8, "big"))
        h.update(data)
    if libraries:
        for dist in LIBRARIES[scope]:
            h.update(f"\0{dist}={_version(dist)}".encode())
    return h.hexdigest()[:12]


@lru_cache(maxsize=None)
def fingerprint(scope: str) -> str:
    """Fingerprint of `scope` of this checkout: computed once per process (code does not change under a run)."""
    return compute(scope, ROOT)


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "absent"


__all__ = ["SCOPES", "fingerprint", "compute", "scope_files"]
