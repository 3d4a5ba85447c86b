"""Suite files: loading, clear refusals, case selection, and resolving against steward.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.expectations import JudgeSpec, ToolCalledSpec
from evals.suite import SuiteError, load_suite, resolve_cases, selected
from steward.authority import for_eval
from steward.config import StewardConfig
from steward.models import EvalOptions, RunRequest
from steward.tools import default_specs
from tests.evals.support import SUITES

SUPPORT = SUITES / "support.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def test_the_shipped_support_suite_is_large_and_varied() -> None:
    suite = load_suite(SUPPORT)
    runnable = selected(suite)
    assert len(runnable) >= 20
    tags = {tag for case in suite.cases for tag in case.tags}
    assert {"category", "tricky", "injection", "approval", "no-approval", "retrieval"} <= tags
    assert not suite.deterministic  # it runs on the real model
    grounded = selected(suite, tags=["retrieval"])
    assert grounded and all("retrieval" in case.tags for case in grounded)


def test_every_shipped_suite_resolves(config: StewardConfig) -> None:
    for path in SUITES.glob("*.yaml"):
        suite = load_suite(path)
        cases = resolve_cases(suite, config, suite.cases)
        assert {case.workflow_type for case in cases} <= {"SupportReplyWorkflow", "AgentWorkflow"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("suite: s\ncases: []\n", "cases: List should have at least 1 item"),
        ("suite: s\ncases: [{id: a, input: x, expect: [{contain: x}]}]\n", "unknown scorer"),
        (
            "suite: s\ncases: [{id: a, input: x, expect: [{status: ok, contains: x}]}]\n",
            "an expectation is one key",
        ),
        ("suite: s\ncases: [{id: a, input: x, inptu: y}]\n", "cases.0 (a).inptu: Extra inputs"),
        ("suite: s\ncases: [{id: 'a b', input: x}]\n", "cases.0 (a b).id"),
        ("suite: s\ncases: [{id: a, input_file: nope.txt}]\n", "cannot read nope.txt"),
        (
            "suite: s\ncases: [{id: a, input: x, approvals: [maybe]}]\n",
            "approvals.0.decision",
        ),
        ("- not a mapping\n", "expected a mapping"),
    ],
)
def test_bad_suites_are_refused_naming_the_place(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(SuiteError) as caught:
        load_suite(write(tmp_path, text))
    assert message in str(caught.value)


def test_resolving_refuses_what_steward_yaml_does_not_have(
    tmp_path: Path, config: StewardConfig
) -> None:
    suite = load_suite(write(tmp_path, "suite: s\ncases: [{id: a, input: hello}]\n"))
    with pytest.raises(SuiteError, match="no target"):
        resolve_cases(suite, config, suite.cases)
    with pytest.raises(SuiteError, match="unknown playbook or agent 'nope'"):
        resolve_cases(suite, config, suite.cases, agent="nope")
    with pytest.raises(SuiteError, match="--tier: unknown tier 'huge'"):
        resolve_cases(suite, config, suite.cases, agent="helpdesk", tier="huge")


def test_overrides_are_applied_before_the_eval_starts(
    tmp_path: Path, config: StewardConfig
) -> None:
    suite = load_suite(
        write(
            tmp_path,
            "suite: s\ntarget: support-reply\njudge_tier: fast\n"
            "cases:\n"
            "  - {id: a, input: x, approvals: [timeout], approval_deadline_seconds: 3,\n"
            "     expect: [{llm_judge: polite}, {tool_called: send_email}]}\n"
            "  - {id: b, input: y, tags: [slow]}\n",
        )
    )
    (case,) = resolve_cases(suite, config, selected(suite, case_ids=["a"]), tier="fast")
    # the run input carries the overrides as eval options; only an eval worker honours them
    assert isinstance(case.request, RunRequest)
    options = case.request.eval
    assert options == EvalOptions(tier="fast", approval_deadline_seconds=3)
    tiers = {name: [d.model for d in ds] for name, ds in config.tiers.items()}
    profile = for_eval(config.profile("support-reply", default_specs()), options, tiers)
    # every step on the one tier, whatever the routing rules would pick
    assert profile.tier_order == ["fast"] and set(profile.tiers.values()) == {"fast"}
    # a case that lets approvals time out waits seconds, not the configured day
    rules = [tool.approval for tool in profile.tools if tool.approval is not None]
    assert rules and all(rule.timeout_seconds == 3 and not rule.signed for rule in rules)
    judge, tool = case.expect
    assert isinstance(judge, JudgeSpec) and judge.tier == "fast"
    assert isinstance(tool, ToolCalledSpec)
    assert case.request.principal == "steward-eval"
    # the other case keeps the configured deadline
    (other,) = resolve_cases(suite, config, selected(suite, tags=["slow"]))
    assert isinstance(other.request, RunRequest) and other.request.eval == EvalOptions()


def test_selection_by_tag_and_id(tmp_path: Path) -> None:
    suite = load_suite(
        write(
            tmp_path,
            "suite: s\nskip_tags: [slow]\ncases:\n"
            "  - {id: a, input: x, tags: [fast]}\n"
            "  - {id: b, input: x, tags: [slow]}\n",
        )
    )
    assert [c.id for c in selected(suite)] == ["a"]
    assert [c.id for c in selected(suite, tags=["slow"])] == ["b"]
    assert [c.id for c in selected(suite, case_ids=["b"])] == ["b"]
    with pytest.raises(SuiteError, match="has no case zz"):
        selected(suite, case_ids=["zz"])
