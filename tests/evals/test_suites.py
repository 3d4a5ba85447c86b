"""The pytest entry point of the deterministic suites in evals/suites/.

Every suite whose cases are all scripted runs here, on the real EvalWorkflow and eval
workers, with the fake model answering only the LLM judge. Each must pass in full and
match its committed baseline (evals/baselines/SUITE.json) scorer by scorer.
`STEWARD_RECORD_BASELINES=1` rewrites those baselines (do it for a deliberate change).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from temporalio.client import Client

from evals.render import render_markdown
from evals.report import build_report, compare, load_report, write_report
from evals.suite import load_suite
from steward.config import StewardConfig
from tests.evals.support import BASELINES, SUITES, VERDICT, request_for, run_request
from tests.support.fake_model import FakeModel

DETERMINISTIC = sorted(path for path in SUITES.glob("*.yaml") if load_suite(path).deterministic)


def test_there_is_a_deterministic_suite() -> None:
    assert DETERMINISTIC, "make test runs the deterministic suites: keep at least one"


@pytest.mark.parametrize("path", DETERMINISTIC, ids=lambda p: p.stem)
async def test_deterministic_suite(
    path: Path, client: Client, config: StewardConfig, fake_model: FakeModel, task_queue: str
) -> None:
    suite = load_suite(path)
    request = request_for(suite, config, task_queue)
    judges = sum(1 for case in request.cases for s in case.expect if s.kind == "llm_judge")
    for _ in range(judges):
        fake_model.queue(VERDICT)

    result = await run_request(client, config, request, task_queue)

    report = build_report(result, suite.description)
    failing = {
        o.id: [f"{s.name}: {s.detail}" for s in o.scores if not s.passed] + [o.error]
        for o in report.outcomes
        if not o.passed
    }
    assert not failing
    assert len(fake_model.calls) == judges  # scripted runs never reach a model
    baseline = BASELINES / f"{suite.suite}.json"
    if os.environ.get("STEWARD_RECORD_BASELINES") == "1":
        write_report(report, baseline)
        baseline.with_suffix(".md").write_text(render_markdown(report), encoding="utf-8")
    comparison = compare(report, load_report(baseline))
    assert not comparison.failed, comparison.reasons
    changed = {c.id: c.scorers for c in comparison.cases if c.scorers or c.change != "same"}
    assert not changed
