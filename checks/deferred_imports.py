"""Defer the libraries Great Expectations imports for expectations our suites never use.

Importing our validation code (`checks.evaluate`, `checks.docs_render`) took 7.9 s on the reference
machine, almost all of it Great Expectations, once in every process that validates or renders: an
in-process night, the fork server the multiprocess executor's steps start from, each Celery worker.
About 2 s of it are two imports made at module level by expectations we do not use: `scipy.stats`
(KL divergence and Kolmogorov–Smirnov tests) and `altair` (the KL-divergence chart); without them
the import takes 5.7 s. Here they are loaded lazily (`importlib.util.LazyLoader`): the import
returns a module object at once, and the library is really loaded the first time anything reads an
attribute of it. Nothing in our suites or their Data Docs does, so a night does not pay for them; if
a future suite uses such an expectation, it works as before and pays the import then.

Limits: only the module names in `DEFERRED`, only when they have not been imported yet, and only
where the interpreter can find them (a missing library stays an ImportError at the same place).
On Python 3.11 a lazy module's first load is not safe from two threads at once (fixed in 3.12);
our steps run the validation code in one thread.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys

DEFERRED = frozenset({"scipy.stats", "altair"})


class _DeferredFinder(importlib.abc.MetaPathFinder):
    """Finds the deferred modules through the other finders and wraps their loader in a LazyLoader."""

    def find_spec(self, name, path, target=None):
        if name not in DEFERRED:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is None or not hasattr(spec.loader, "exec_module"):
                    return spec
                spec.loader = importlib.util.LazyLoader(spec.loader)
                return spec
        return None


def defer_unused_gx_dependencies() -> None:
    """Install the finder once, ahead of the standard ones (a no-op for modules already imported)."""
    if not any(isinstance(f, _DeferredFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _DeferredFinder())
