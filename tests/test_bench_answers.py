"""What the bench's fakes answer must get past Steward's own guardrails, or `make bench`
fails (a one-turn run cannot write again) or waits for an approval that never comes. The
bench itself is `make bench`.
"""

from __future__ import annotations

from bench.__main__ import DRAFT
from bench.streaming import AGENT, ANSWER, bench_config
from steward.config import load_config
from steward.guardrails import failures, run_checks
from steward.tools import default_specs
from tests.conftest import REPO


def test_the_streamed_answer_passes_the_agents_answer_guardrail() -> None:
    profile = bench_config("fake/bench", "native").profile(AGENT, default_specs())
    assert profile.max_turns == 1
    verdicts = run_checks(profile.guardrails["answer"], ANSWER, target="answer")
    assert verdicts and not failures(verdicts)


def test_the_routed_cost_draft_passes_the_support_draft_guardrail() -> None:
    config = load_config(REPO / "examples" / "steward.yaml")
    profile = config.profile("support-reply", default_specs())
    verdicts = run_checks(profile.guardrails["draft"], DRAFT, target="draft")
    assert verdicts and not failures(verdicts)
