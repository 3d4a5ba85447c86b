"""The stable import path of Steward's payloads; they live in `steward.payloads`, by domain.

Most of the code imports payloads from here, so every name this module exported before
the payloads were split by domain is still here: all of the package's, the same objects
(tests/test_layout.py checks it). New code imports from `steward.payloads`; `Strict`,
`finite_json` and `problems` come from `steward.strict`, the limits shared with
steward.yaml from `steward.bounds`.
"""

from __future__ import annotations

from steward import payloads
from steward.bounds import DEFAULT_CONTEXT_CHARS, MAX_RETRY_SECONDS, MAX_TURNS, MAX_WAIT_SECONDS
from steward.payloads import *  # noqa: F403  # this module is the package's facade
from steward.strict import Strict, finite_json, problems

__all__ = [
    *payloads.__all__,
    "DEFAULT_CONTEXT_CHARS",
    "MAX_RETRY_SECONDS",
    "MAX_TURNS",
    "MAX_WAIT_SECONDS",
    "Strict",
    "finite_json",
    "problems",
]
