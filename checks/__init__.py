"""Expectation suites and Dagster asset checks."""
