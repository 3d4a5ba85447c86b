"""Steward: a durable workflow engine for AI work, on Temporal.

This package is the core: pure types and rules shared by workflows, activities, workers and
the `steward` CLI. Nothing in its pure modules does I/O.
"""
