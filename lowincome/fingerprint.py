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

import ast
import hashlib
from functools import lru_cache
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Row reading, parsing, identity, validation, privacy, ingest, delivery discovery, the feed registry and
# any shipped reference data (lowincome/data/), plus the policy loader and the ingest assets that call
# ingest_feed: every module `lowincome.ingest` imports, directly or through other modules, at module
# level or inside a function (`import_closure`), so a new module is covered as soon as ingestion uses it.
# Modules ingestion never imports (publishing, marts, reports, worklists, the rules) are left out: a change
# to the household timeline must not make a city re-read years of deliveries. (The ingest assets' own
# imports are not followed: they reach the suites, which shape suite results, not parsed rows.)
_INGEST = (
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
# Modules whose import closure is in a scope besides its patterns ("pkg.*": every module of the package).
# The suites' modules count for the suite results: they reach modules ingestion does not import.
ENTRY_POINTS: dict[str, tuple[str, ...]] = {
    "ingest": ("lowincome.ingest",),
    "validation": ("lowincome.ingest", "checks.*"),
    "all": (),
}
# Third-party behaviour a cached result depends on (a new Polars may parse a date differently).
LIBRARIES: dict[str, tuple[str, ...]] = {
    "ingest": ("polars", "fastexcel", "pyarrow", "duckdb"),
    "validation": ("polars", "fastexcel", "pyarrow", "duckdb", "great_expectations", "pandas"),
    "all": (),
}
_SKIP_PARTS = {"__pycache__", ".pytest_cache"}
_SKIP_SUFFIXES = {".pyc", ".pyo", ".tmp"}


_PACKAGES = ("lowincome", "assets", "checks", "pipelines")  # this repository's import roots


def _module_file(root: Path, name: str) -> Path | None:
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _imported_names(path: Path, module: str) -> set[str]:
    """Every module name an import statement anywhere in the file may refer to (inside functions too)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from . import parsing` names a module
    return names


def import_closure(entry_points: tuple[str, ...], root: Path = ROOT) -> list[Path]:
    """The files of this repository's modules that `entry_points` import, transitively, with their packages
    (an entry `pkg.*` stands for every module of the package).

    Static (the source's import statements, not a run), so an import that only some branch executes is
    in: over-inclusion only costs a cache rebuild.
    """
    seen: dict[str, Path] = {}
    stack = []
    for entry in entry_points:
        package, star, _ = entry.partition(".*")
        stack += ([f"{package}.{p.stem}" for p in sorted(root.joinpath(*package.split(".")).glob("*.py"))]
                  if star else [entry])
    while stack:
        name = stack.pop()
        if name in seen or name.split(".")[0] not in _PACKAGES:
            continue
        path = _module_file(root, name)
        if path is None:
            continue
        seen[name] = path
        stack.extend(_imported_names(path, name))
        stack.extend(".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1))  # parent packages run too
    return list(seen.values())


def scope_files(scope: str, root: Path = ROOT) -> list[Path]:
    """The files of `scope` under `root`, sorted by their repository-relative POSIX path."""
    if scope not in SCOPES:
        raise KeyError(f"unknown fingerprint scope '{scope}' (known: {', '.join(SCOPES)})")
    found: dict[str, Path] = {}
    for path in import_closure(ENTRY_POINTS[scope], root):
        found[path.relative_to(root).as_posix()] = path
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
