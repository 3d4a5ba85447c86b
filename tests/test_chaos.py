"""`make chaos`, small enough for every test run: a dozen runs, a worker killed three times
with SIGKILL, the dev server killed once, and the same checks as the full target.

The chaos starts its own persisted dev server and worker processes (bench/chaos.py).
"""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from pathlib import Path

import pytest

from activities.tools.email import message_id_for
from bench.chaos import (
    ChaosOptions,
    RunPlan,
    Server,
    chaos_config,
    check_outbox,
    render,
    run_chaos,
)
from steward import devserver
from steward.models import idempotency_key
from tests.support.smtp_server import Received

SMALL = ChaosOptions(
    runs=12,
    seed=9,
    kills=3,
    alive=(1.5, 3.0),
    window=8.0,
    server_restarts=1,
    smtp_outage=5.0,
    fat_signals=2,
    timeout=120,
)


@pytest.mark.timeout(200)
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
    assert report.emails_expected == report.smtp_message_ids == approved, table
    assert report.emails_written == report.idempotency_records == approved, table
    assert report.smtp_outage_seconds == 5.0 and report.fat_signals_sent >= 1, table
    assert report.notices_written == report.notices_expected == 6, table
    assert report.duplicates_sent >= 2 and report.duplicates_refused == report.duplicates_sent
    assert report.model_calls_made >= report.model_calls_needed == 18, table


def _received(message_id: str) -> Received:
    message = EmailMessage()
    message["Message-ID"] = message_id
    message.set_content("hello")
    return Received("support@steward.local", ["a@example.com"], message)


def test_the_check_names_a_lost_a_stray_and_a_rejected_send(tmp_path: Path) -> None:
    config, _ = chaos_config(tmp_path, smtp_port=2525)
    sent = RunPlan("chaos-000-reply", True, run_id="r0")
    unsent = RunPlan("chaos-001-reply", True, run_id="r1")
    rejected = RunPlan("chaos-002-reply", True, approve=False, run_id="r2")
    records = Path(config.outbox) / "sent"
    records.mkdir(parents=True)

    def key(plan: RunPlan, call_id: str = "send-reply") -> str:
        return idempotency_key(plan.workflow_id, call_id, plan.run_id)

    # the approved reply (its record, and twice at the server: a resend after a kill), a
    # copy under another key (an attempt-scoped key would do that) and the rejected run's
    # reply; nothing for the other approved run
    received = [
        _received(message_id_for(key(sent), config.sender)),
        _received(message_id_for(key(sent), config.sender)),
        _received(message_id_for(key(sent, "send-reply-attempt-2"), config.sender)),
        _received(message_id_for(key(rejected), config.sender)),
    ]
    (records / f"{key(sent)}.eml").write_text("To: a@example.com\nSubject: Re: x\n\nhello\n")

    check = check_outbox(config, [sent, unsent, rejected], received)

    assert check.emails_expected == 2
    assert check.message_ids == 3 and check.idempotency_records == 1
    text = "\n".join(check.violations)
    assert "chaos-001-reply: approved, but the SMTP server got nothing" in text
    assert text.count("which no approved call owns") == 2
    assert "1 send records for 2 approved replies" in text
    assert "approval notices: 3 missing" in text


def test_a_restart_that_comes_after_the_harness_stopped_starts_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The harness stops its server when it fails; a restart still on its way (a thread)
    must not leave a server running after it.
    """
    started: list[Path] = []
    monkeypatch.setattr(devserver, "start", lambda state, **_: started.append(state))
    monkeypatch.setattr(devserver, "stop", lambda state: None)
    server = Server(tmp_path)
    server.stop()
    server.start()
    assert started == []
