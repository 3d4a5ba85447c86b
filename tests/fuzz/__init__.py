"""Property-based tests (hypothesis) of everything a run takes from outside (issue #9).

Workflow inputs, `decide` signals and updates, steward.yaml, tool arguments and the pure
rules workflows apply to them get arbitrary and mutated input; the properties say that
each is either accepted or refused with a message naming what was wrong, and that nothing
an outsider can send puts a workflow task into a retry loop.

The profiles are derandomized and keep no example database, so CI runs the same examples
every time. `STEWARD_FUZZ=explore` switches to random generation with ten times the
examples, for hunting locally; a failure found that way is worth a fixed `@example`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "steward-fuzz",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "steward-fuzz-explore",
    derandomize=False,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

EXPLORE = os.environ.get("STEWARD_FUZZ") == "explore"
FUZZ = settings.get_profile("steward-fuzz-explore" if EXPLORE else "steward-fuzz")
"""The parent of every fuzz test's settings."""


def examples(count: int) -> settings:
    """FUZZ with `count` examples (ten times as many when exploring)."""
    return settings(FUZZ, max_examples=count * 10 if EXPLORE else count)
