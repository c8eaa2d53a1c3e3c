"""Code version for lineage: which code produced a publication."""

from __future__ import annotations

import functools
import subprocess

from . import __version__
from .config import REPO_ROOT
from .ingest import code_fingerprint


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """`<package version>+<git commit>[.dirty]`, or the validation-code fingerprint outside a checkout."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "rev-parse", "--short=12", "HEAD"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5, check=True,
        ).stdout.strip()
        return f"{__version__}+{commit}{'.dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"{__version__}+code.{code_fingerprint()}"
