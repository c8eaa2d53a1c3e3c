"""Code version for lineage: which code produced a publication (recorded in `audit.runs.code_version`)."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

from . import __version__
from .fingerprint import ROOT, compute

# Folders whose uncommitted changes (or new untracked files) make a checkout's state differ from its commit.
_CODE_DIRS = ("lowincome", "checks", "assets", "pipelines", "sql", "pyproject.toml")


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`<version>+<commit>`, `<version>+<commit>.dirty.<content>` or `<version>+code.<content>`.

    <content> is the fingerprint of every file that shapes a publication (`fingerprint("all")`), so
    two different dirty states, or two different copies outside a git checkout, never share a version.
    """
    return describe(ROOT)


def describe(root: Path) -> str:
    """The code version of the tree at `root` (uncached; `code_version` is this for the running code)."""
    commit, dirty = _git_state(root)
    if commit is None:
        return f"{__version__}+code.{compute('all', root)}"
    return f"{__version__}+{commit}.dirty.{compute('all', root)}" if dirty else f"{__version__}+{commit}"


def _git_state(root: Path) -> tuple[str | None, bool]:
    """(short commit, has uncommitted or untracked code) if `root` is itself a git checkout, else (None, False).

    `root` must be the top of the work tree: a copy of the code unpacked inside some other repository
    (say a deployment repository) is not described by that repository's commit.
    """
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5,
                              check=True).stdout.strip()

    try:
        top = git("rev-parse", "--show-toplevel")
        if Path(top).resolve() != root.resolve():
            return None, False
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=all", "--", *_CODE_DIRS)
    except (OSError, subprocess.SubprocessError):
        return None, False
    return commit, bool(dirty)
