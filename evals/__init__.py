"""Evaluation: suites as data, scorers over a run's result and its history, baselines.

`steward eval SUITE` runs a suite's cases as child workflows of an `EvalWorkflow` (with
tools that only record, and scripted approvals), scores them, writes JSON, Markdown and
HTML reports, and compares them with a baseline. See docs/evals.md.
"""
