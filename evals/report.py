"""An eval's report, and its comparison with a baseline report.

The JSON form is the machine's: it is what `--baseline` reads, so a report committed next
to a suite is that suite's baseline. Comparing names each case that regressed (passed in
the baseline, fails now) or improved, each scorer whose verdict changed, and the change of
the pass rate; the eval fails when a case regressed or the pass rate fell by more than
the suite allows. Only cases in both reports are compared for the rate, so running part of
a suite is compared fairly.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError

from evals.models import CaseOutcome, EvalResult
from steward.runs import RunError

REPORT_VERSION = 1


class Summary(BaseModel):
    """Totals over the cases of one eval."""

    cases: int
    passed: int
    failed: int
    errors: int
    pass_rate: float
    cost_usd: float
    unpriced_calls: int
    judge_cost_usd: float
    judge_unpriced_calls: int
    model_calls: int
    tokens: int
    latency_p50_seconds: float | None
    latency_p95_seconds: float | None
    case_seconds_total: float = Field(description="the sum of every case's run time")
    wall_seconds: float = Field(description="the eval from start to end")


class ScorerChange(BaseModel):
    """One scorer of one case whose verdict differs from the baseline's."""

    scorer: str
    before: bool | None
    after: bool | None
    before_value: float | None = None
    after_value: float | None = None
    detail: str = ""


class CaseChange(BaseModel):
    """How one case compares with the baseline."""

    id: str
    change: Literal["regressed", "improved", "new", "removed", "same"]
    before: bool | None
    after: bool | None
    scorers: list[ScorerChange] = Field(default_factory=list)


class Comparison(BaseModel):
    """An eval compared with a baseline report."""

    baseline: str = Field(description="the baseline's eval id and when it finished")
    compared_cases: int
    pass_rate_before: float
    pass_rate_after: float
    max_pass_rate_drop: float
    cost_before_usd: float
    cost_after_usd: float
    latency_p50_before: float | None
    latency_p50_after: float | None
    cases: list[CaseChange]
    failed: bool
    reasons: list[str] = Field(default_factory=list)

    @property
    def regressions(self) -> list[CaseChange]:
        """Cases that passed in the baseline and fail now."""
        return [c for c in self.cases if c.change == "regressed"]


class EvalReport(BaseModel):
    """Everything `steward eval` writes: summary, per-case results, comparison."""

    version: int = REPORT_VERSION
    suite: str
    description: str = ""
    eval_id: str
    started_at: datetime
    finished_at: datetime
    concurrency: int
    labels: dict[str, str] = Field(default_factory=dict)
    summary: Summary
    outcomes: list[CaseOutcome]
    comparison: Comparison | None = None

    @property
    def failed(self) -> bool:
        """Whether the comparison with the baseline fails the eval."""
        return self.comparison is not None and self.comparison.failed


def build_report(result: EvalResult, description: str = "") -> EvalReport:
    """The report of a finished eval (no comparison yet)."""
    return EvalReport(
        suite=result.suite,
        description=description,
        eval_id=result.eval_id,
        started_at=result.started_at,
        finished_at=result.finished_at,
        concurrency=result.concurrency,
        labels=result.labels,
        summary=summarise(result.outcomes, (result.finished_at - result.started_at)),
        outcomes=result.outcomes,
    )


def summarise(outcomes: list[CaseOutcome], wall: timedelta) -> Summary:
    """Totals over outcomes; `wall` is how long the eval took."""
    seconds = wall.total_seconds()
    latencies = sorted(o.latency_seconds for o in outcomes if o.latency_seconds is not None)
    passed = sum(1 for o in outcomes if o.passed)
    return Summary(
        cases=len(outcomes),
        passed=passed,
        failed=len(outcomes) - passed,
        errors=sum(1 for o in outcomes if o.error),
        pass_rate=passed / len(outcomes) if outcomes else 0.0,
        cost_usd=sum(o.cost_usd for o in outcomes),
        unpriced_calls=sum(o.unpriced_calls for o in outcomes),
        judge_cost_usd=sum(o.judge_cost_usd for o in outcomes),
        judge_unpriced_calls=sum(o.judge_unpriced_calls for o in outcomes),
        model_calls=sum(o.model_calls for o in outcomes),
        tokens=sum(o.tokens for o in outcomes),
        latency_p50_seconds=statistics.median(latencies) if latencies else None,
        latency_p95_seconds=_percentile(latencies, 0.95),
        case_seconds_total=sum(latencies),
        wall_seconds=seconds,
    )


def compare(
    report: EvalReport,
    baseline: EvalReport,
    *,
    max_pass_rate_drop: float = 0.0,
    fail_on_case_regression: bool = True,
) -> Comparison:
    """How `report` differs from `baseline`, and whether that fails the eval."""
    before = {o.id: o for o in baseline.outcomes}
    after = {o.id: o for o in report.outcomes}
    changes: list[CaseChange] = []
    for case_id in [*after, *(i for i in before if i not in after)]:
        old, new = before.get(case_id), after.get(case_id)
        changes.append(_case_change(case_id, old, new))
    common = [i for i in after if i in before]
    rate_before = _rate([before[i] for i in common])
    rate_after = _rate([after[i] for i in common])
    reasons = []
    regressed = [c.id for c in changes if c.change == "regressed"]
    if regressed and fail_on_case_regression:
        reasons.append(f"{len(regressed)} case(s) regressed: {', '.join(regressed)}")
    drop = rate_before - rate_after
    if drop > max_pass_rate_drop + 1e-9:
        reasons.append(
            f"pass rate fell from {rate_before:.0%} to {rate_after:.0%} "
            f"(allowed drop {max_pass_rate_drop:.0%})"
        )
    return Comparison(
        baseline=f"{baseline.eval_id} ({baseline.finished_at:%Y-%m-%d %H:%M} UTC)",
        compared_cases=len(common),
        pass_rate_before=rate_before,
        pass_rate_after=rate_after,
        max_pass_rate_drop=max_pass_rate_drop,
        cost_before_usd=sum(before[i].cost_usd for i in common),
        cost_after_usd=sum(after[i].cost_usd for i in common),
        latency_p50_before=_median([before[i].latency_seconds for i in common]),
        latency_p50_after=_median([after[i].latency_seconds for i in common]),
        cases=changes,
        failed=bool(reasons),
        reasons=reasons,
    )


def load_report(path: Path) -> EvalReport:
    """A report written by `steward eval` (to compare against)."""
    try:
        return EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise RunError(f"cannot read baseline {path}: {err.strerror or err}") from None
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise RunError(f"{path} is not an eval report: {where}: {first['msg']}") from None


def write_report(report: EvalReport, path: Path) -> None:
    """Write the JSON report (stable key order, so a committed baseline diffs well)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")


def _case_change(case_id: str, old: CaseOutcome | None, new: CaseOutcome | None) -> CaseChange:
    if old is None or new is None:
        return CaseChange(
            id=case_id,
            change="new" if old is None else "removed",
            before=old.passed if old else None,
            after=new.passed if new else None,
        )
    change: Literal["regressed", "improved", "same"] = "same"
    if old.passed and not new.passed:
        change = "regressed"
    elif new.passed and not old.passed:
        change = "improved"
    old_scores = {s.name: s for s in old.scores}
    new_scores = {s.name: s for s in new.scores}
    scorers = []
    for name in [*new_scores, *(n for n in old_scores if n not in new_scores)]:
        was, now = old_scores.get(name), new_scores.get(name)
        if was is not None and now is not None and was.passed == now.passed:
            continue
        scorers.append(
            ScorerChange(
                scorer=name,
                before=was.passed if was else None,
                after=now.passed if now else None,
                before_value=was.value if was else None,
                after_value=now.value if now else None,
                detail=(now.detail if now else "") or (was.detail if was else ""),
            )
        )
    return CaseChange(
        id=case_id, change=change, before=old.passed, after=new.passed, scorers=scorers
    )


def _rate(outcomes: list[CaseOutcome]) -> float:
    return sum(1 for o in outcomes if o.passed) / len(outcomes) if outcomes else 0.0


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _percentile(ordered: list[float], share: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]
