"""Steward's workflows: deterministic orchestration only.

No I/O, no clock, no environment, no litellm or qdrant here. Every side effect is an
activity from `activities/`, referenced by method, never by a name the model emitted.
"""
