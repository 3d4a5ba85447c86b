"""`steward eval` as a user runs it: progress, reports, baseline verdicts, recorded runs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import yaml
from temporalio.testing import WorkflowEnvironment
from typer.testing import CliRunner

from evals.report import load_report, write_report
from steward.cli import app
from steward.config import StewardConfig
from tests.evals.support import BASELINES, REPO, SUITES
from tests.evals.test_reports import outcome, report


async def steward(
    env: WorkflowEnvironment, config: StewardConfig, tmp: Path, *args: str
) -> tuple[int, str, str]:
    path = tmp / "steward.yaml"
    path.write_text(yaml.safe_dump(config.model_dump(mode="json", exclude_none=True)))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "steward.cli",
        *args,
        "--config",
        str(path),
        env=os.environ | {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


def test_eval_explains_itself() -> None:
    result = CliRunner().invoke(app, ["eval", "--help"])
    assert result.exit_code == 0
    for option in ("--agent", "--tier", "--concurrency", "--baseline", "--from-history"):
        assert option in result.output


async def test_a_suite_runs_reports_and_matches_its_baseline(
    env: WorkflowEnvironment, config: StewardConfig, tmp_path: Path, task_queue: str
) -> None:
    out = tmp_path / "out"
    code, stdout, stderr = await steward(
        env,
        config,
        tmp_path,
        "eval",
        str(SUITES / "support-scripted.yaml"),
        *("--case", "shipping-approved", "--case", "helpdesk-just-answers"),
        *("--baseline", str(BASELINES / "support-scripted.json")),
        *("--out", str(out), "--queue", task_queue),
    )
    assert code == 0, stdout + stderr
    assert "support-scripted: 2/2 passed (100%)" in stdout
    assert "against the baseline: ok" in stdout
    assert "[" in stderr and "2/2 cases, 2 passing" in stderr  # the progress, case by case
    written = load_report(out / "report.json")
    assert [o.id for o in written.outcomes] == ["shipping-approved", "helpdesk-just-answers"]
    assert written.comparison is not None and not written.comparison.failed
    markdown = (out / "report.md").read_text()
    assert f"steward trace {written.outcomes[0].workflow_id}" in markdown
    assert "<html" in (out / "report.html").read_text()


async def test_a_regression_exits_non_zero(
    env: WorkflowEnvironment, config: StewardConfig, tmp_path: Path, task_queue: str
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "suite": "x",
                "target": "support-reply",
                "cases": [
                    {
                        "id": "a",
                        "input": (REPO / "examples/tickets/late-delivery.txt").read_text(),
                        "script": {
                            "model": {
                                "classify": json.dumps({"category": "other", "urgency": "low"}),
                                "draft": "Dear Dana, sorry.",
                            }
                        },
                        "expect": [{"exact": {"field": "details.category", "value": "shipping"}}],
                    }
                ],
            }
        )
    )
    baseline = tmp_path / "baseline.json"
    write_report(report(outcome("a", True)), baseline)  # it passed before

    code, stdout, stderr = await steward(
        env,
        config,
        tmp_path,
        "eval",
        str(suite),
        *("--baseline", str(baseline), "--out", str(tmp_path / "out"), "--queue", task_queue),
    )
    assert code == 1, stdout + stderr
    assert "regressed: a" in stdout
    assert "1 case(s) regressed: a" in stdout
    assert "against the baseline: FAILED" in stdout
    assert "exact:details.category" in stdout


async def test_recorded_runs_become_a_suite(
    env: WorkflowEnvironment, config: StewardConfig, tmp_path: Path, task_queue: str
) -> None:
    saved = tmp_path / "regressions.yaml"
    code, stdout, stderr = await steward(
        env,
        config,
        tmp_path,
        "eval",
        "--from-history",
        str(REPO / "tests/histories/support-approved.json"),
        str(REPO / "tests/histories/support-rejected.json"),
        *("--save", str(saved), "--out", str(tmp_path / "out"), "--queue", task_queue),
    )
    assert code == 0, stdout + stderr
    assert "from-history: 2/2 passed" in stdout
    assert "wrote 2 regression case(s)" in stderr
    cases = yaml.safe_load(saved.read_text())["cases"]
    assert [c["id"] for c in cases] == ["support-approved", "support-rejected"]
    assert cases[0]["script"]["model"][0]["step"] == "classify"
