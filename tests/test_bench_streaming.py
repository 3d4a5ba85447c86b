"""The streaming bench's run must be able to complete: its one turn's answer has to pass
the helpdesk's own answer guardrail (which asks again, and one turn cannot). The bench
itself is `make bench`.
"""

from __future__ import annotations

from bench.streaming import AGENT, ANSWER, bench_config
from steward.guardrails import failures, run_checks
from steward.tools import default_specs


def test_the_streamed_answer_passes_the_agents_answer_guardrail() -> None:
    profile = bench_config("fake/bench", "native").profile(AGENT, default_specs())
    assert profile.max_turns == 1
    verdicts = run_checks(profile.guardrails["answer"], ANSWER, target="answer")
    assert verdicts and not failures(verdicts)
