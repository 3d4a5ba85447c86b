"""`make chaos`, small enough for every test run: a dozen runs, a worker killed three times
with SIGKILL, the dev server killed once, and the same checks as the full target.

The chaos starts its own persisted dev server and worker processes (bench/chaos.py).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bench.chaos import ChaosOptions, RunPlan, chaos_config, check_outbox, render, run_chaos
from steward.models import idempotency_key

SMALL = ChaosOptions(
    runs=12, seed=9, kills=3, alive=(1.5, 3.0), window=8.0, server_restarts=1, timeout=100
)


@pytest.mark.timeout(180)
async def test_small_chaos_keeps_every_effect_exactly_once(tmp_path: Path) -> None:
    options = replace(SMALL, work_dir=tmp_path)
    report = await run_chaos(options)
    table = render(report, options)

    assert report.violations == [], table
    assert report.worker_kills == 3 and report.server_restarts == 1, table
    assert report.completed == 12 and not report.not_completed, table
    assert report.honoured == report.needing_approval == 6, table
    approved = report.approvals_sent
    assert approved >= 1 and report.rejections_sent >= 1, table
    assert report.emails_expected == report.emails_written == approved, table
    assert report.idempotency_records == approved, table
    assert report.notices_written == report.notices_expected == 6, table
    assert report.duplicates_sent >= 2 and report.duplicates_refused == report.duplicates_sent
    assert report.model_calls_made >= report.model_calls_needed == 18, table


def test_outbox_check_names_a_second_delivery_and_a_rejected_send(tmp_path: Path) -> None:
    config, _ = chaos_config(tmp_path)
    sent = RunPlan("chaos-000-reply", needs_approval=True, approve=True)
    unsent = RunPlan("chaos-001-reply", needs_approval=True, approve=True)
    rejected = RunPlan("chaos-002-reply", needs_approval=True, approve=False)
    outbox = Path(config.outbox)
    outbox.mkdir()
    # the approved reply, then a second copy under another key (an attempt-scoped key would
    # do that), and a reply for the rejected run; nothing for the other approved run
    for workflow_id, call_id in [
        (sent.workflow_id, "send-reply"),
        (sent.workflow_id, "send-reply-attempt-2"),
        (rejected.workflow_id, "send-reply"),
    ]:
        key = idempotency_key(workflow_id, call_id)
        (outbox / f"{key}.eml").write_text("To: a@example.com\nSubject: Re: x\n\nhello\n")

    check = check_outbox(config, [sent, unsent, rejected])

    assert check.emails_expected == 2
    assert check.emails_written == 3
    assert check.idempotency_records == 1
    text = "\n".join(check.violations)
    assert "chaos-001-reply: approved, but no message was delivered" in text
    assert text.count("which was rejected or sent twice") == 2
    assert "approval notices: 3 missing" in text
