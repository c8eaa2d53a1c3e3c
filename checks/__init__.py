"""Expectation suites and Dagster asset checks."""

from .deferred_imports import defer_unused_gx_dependencies

defer_unused_gx_dependencies()  # before anything here imports Great Expectations
