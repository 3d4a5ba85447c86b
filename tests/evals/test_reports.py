"""Reports: the summary, the comparison with a baseline, and the Markdown and HTML forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from evals.models import CaseOutcome, EvalResult, Score
from evals.render import render_html, render_markdown, trace_command
from evals.report import Comparison, EvalReport, build_report, compare, load_report, write_report

START = datetime(2026, 1, 1, tzinfo=UTC)


def outcome(case: str, *verdicts: bool, latency: float = 2.0, **fields: object) -> CaseOutcome:
    scores = [
        Score(name=f"s{i}", kind="contains", passed=v, detail="" if v else f"s{i} failed")
        for i, v in enumerate(verdicts)
    ]
    return CaseOutcome.model_validate(
        {
            "id": case,
            "target": "support-reply",
            "workflow_id": f"eval-x.{case}",
            "run_id": "r1",
            "status": "completed",
            "passed": all(verdicts),
            "scores": scores,
            "latency_seconds": latency,
            "cost_usd": 0.001,
        }
        | fields
    )


def report(*outcomes: CaseOutcome, eval_id: str = "eval-x") -> EvalReport:
    return build_report(
        EvalResult(
            suite="x",
            eval_id=eval_id,
            started_at=START,
            finished_at=START + timedelta(seconds=10),
            concurrency=2,
            labels={"tier": "as routed"},
            outcomes=list(outcomes),
        )
    )


def test_summary() -> None:
    summary = report(outcome("a", True), outcome("b", False, latency=4.0)).summary
    assert (summary.cases, summary.passed, summary.pass_rate) == (2, 1, 0.5)
    assert summary.cost_usd == 0.002 and summary.case_seconds_total == 6.0
    assert summary.wall_seconds == 10.0 and summary.latency_p50_seconds == 3.0


def test_a_case_that_regressed_fails_the_comparison() -> None:
    baseline = report(outcome("a", True, True), outcome("b", True), outcome("c", False))
    now = report(outcome("a", True, False), outcome("b", True), outcome("c", True))
    comparison = compare(now, baseline, max_pass_rate_drop=0.5)
    assert comparison.failed
    assert [c.id for c in comparison.regressions] == ["a"]
    changes = {c.id: c for c in comparison.cases}
    assert changes["c"].change == "improved" and changes["b"].change == "same"
    (scorer,) = changes["a"].scorers
    assert (scorer.scorer, scorer.before, scorer.after) == ("s1", True, False)
    assert "1 case(s) regressed: a" in comparison.reasons[0]
    # the same regression is allowed when the suite says cases may trade places
    assert not compare(now, baseline, fail_on_case_regression=False).failed


def test_a_pass_rate_drop_beyond_the_threshold_fails() -> None:
    baseline = report(*(outcome(f"c{i}", True) for i in range(10)))
    slightly = report(*(outcome(f"c{i}", i != 0) for i in range(10)))

    def lenient(now: EvalReport) -> Comparison:
        return compare(now, baseline, max_pass_rate_drop=0.1, fail_on_case_regression=False)

    assert not lenient(slightly).failed
    comparison = lenient(report(*(outcome(f"c{i}", i > 1) for i in range(10))))
    assert comparison.failed
    assert comparison.reasons == ["pass rate fell from 100% to 80% (allowed drop 10%)"]


def test_only_cases_in_both_count_for_the_rate() -> None:
    baseline = report(outcome("a", True), outcome("gone", False))
    now = report(outcome("a", True), outcome("new", False))
    comparison = compare(now, baseline)
    assert not comparison.failed and comparison.compared_cases == 1
    kinds = {c.id: c.change for c in comparison.cases}
    assert kinds == {"a": "same", "new": "new", "gone": "removed"}


def test_json_round_trip(tmp_path: Path) -> None:
    original = report(outcome("a", True))
    write_report(original, tmp_path / "r.json")
    assert load_report(tmp_path / "r.json") == original


def test_markdown_and_html_show_cases_changes_and_escape_run_output() -> None:
    hostile = "<script>alert(1)</script> | pipe"
    baseline = report(outcome("a", True), outcome("b", True))
    now = report(
        outcome("a", True),
        outcome("b", False, error=hostile, answer_preview=hostile),
    )
    now.comparison = compare(now, baseline)

    markdown = render_markdown(now)
    assert "# Eval `x`: 1/2 passed (50%)" in markdown
    assert "**FAILED**: 1 case(s) regressed: b" in markdown
    assert "| b | **regressed** | pass | fail |" in markdown
    assert f"`{trace_command(now.outcomes[0])}`" in markdown
    assert "steward trace eval-x.a --run-id r1" in markdown
    assert "\\| pipe" not in markdown.split("## Failed scores")[0]  # errors stay out of tables

    page = render_html(now, ui_base="http://127.0.0.1:8233/namespaces/default/workflows")
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "http://127.0.0.1:8233/namespaces/default/workflows/eval-x.b" in page
    assert "<link" not in page and "src=" not in page  # self-contained
    assert "FAILED: 1 case(s) regressed: b" in page
