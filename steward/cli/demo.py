"""`steward demo`: the main job end to end on embedded defaults.

Starts (or reuses) the embedded Temporal server, starts a worker process, runs the support
playbook on a shipped ticket with the real local model, stops at the approval and shows
how to approve it, then approves (asking first in a terminal), and prints what happened.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from steward.cli.common import read_file, run, ui_link
from steward.client import connect, load_settings

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from steward.config import StewardConfig
    from steward.models import ApprovalRequest, RunResult

DEMO_TICKET = Path("examples/tickets/late-delivery.txt")
DEMO_REQUESTER = "demo-user"
DEMO_APPROVER = "demo-approver"
APPROVAL_WAIT_SECONDS = 900.0  # the local model on two cores takes seconds, not minutes


def demo_command(
    ticket: Annotated[Path, typer.Option(help="ticket file to answer")] = DEMO_TICKET,
    config: Annotated[str | None, typer.Option(help="steward.yaml to use")] = None,
) -> None:
    """Run the support playbook end to end: classify, draft, approve, send."""
    from steward import devserver
    from steward.cli.dev import start_stack

    text = read_file(ticket)
    settings = load_settings(config)
    if not os.environ.get("TEMPORAL_ADDRESS"):
        # As `steward dev up`: the dev key file the first time, the codec server, the server.
        stack = start_stack(namespaces=settings.namespaces)
        server = stack.server
        typer.echo(f"Temporal dev server: {server.address}  (UI {server.ui_url})")
        if stack.codec_server is not None:
            typer.echo(f"codec server: {stack.codec_server.url}  (the UI decrypts payloads)")
    log = devserver.state_dir() / "worker.log"
    worker = _start_worker(log, config)
    typer.echo(f"worker started (pid {worker.pid}, log {log})")
    try:
        run(_demo(text, settings))
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()


async def _demo(ticket: str, settings: StewardConfig) -> None:
    from steward.approval_view import visible
    from steward.runs import decide_by_signal, start_run

    client = await connect(settings)
    await _ingest_grounding(client, settings)
    handle = await start_run(client, settings, "support-reply", ticket, DEMO_REQUESTER)
    typer.echo(f"\nstarted {handle.id}: classifying and drafting with the model...")
    request = await _wait_for_approval(handle)
    if request is None:
        _print_result(handle.id, await handle.result(), settings)
        return
    ui = ui_link(handle.id, settings.namespace)
    typer.echo("\nThe reply is drafted and waits for a human approval:")
    typer.echo(f"  to:      {request.arguments.get('to')}")
    typer.echo(f"  subject: {request.arguments.get('subject')}")
    typer.echo("  body:")
    for line in str(request.arguments.get("body", "")).splitlines():
        typer.echo(f"    | {visible(line)}")
    if request.flags:
        typer.echo("  guardrails FLAGGED it:")
        for flag in request.flags:
            typer.echo(f"    ! {visible(flag)}")
    else:
        typer.echo("  guardrails: every check passed")
    if ui:
        typer.echo(f"\n  Temporal UI: {ui}")
    typer.echo(f"  approve:     steward approve {request.id} --as {DEMO_APPROVER}")
    typer.echo(f"  reject:      steward reject {request.id} --as {DEMO_APPROVER} --reason TEXT")
    reason = "approved in the demo"
    if sys.stdin.isatty():
        approve = typer.confirm("\nApprove sending?", default=False)
        reason = reason if approve else "rejected in the demo"
    elif request.flags:
        typer.echo(
            f"\nstdin is not a terminal, and the guardrails flagged this draft: rejecting it "
            f"as {DEMO_APPROVER} with the `decide` signal, as a careful script would."
        )
        approve, reason = False, "flagged by the guardrails: " + "; ".join(request.flags)
    else:
        typer.echo(
            f"\nstdin is not a terminal: approving as {DEMO_APPROVER} with the `decide` "
            "signal, as a script would."
        )
        approve = True
    await decide_by_signal(client, request.id, DEMO_APPROVER, approve=approve, reason=reason[:2000])
    _print_result(handle.id, await handle.result(), settings)


async def _wait_for_approval(handle: WorkflowHandle[object, RunResult]) -> ApprovalRequest | None:
    """Poll progress until an approval is pending (or the run ends); print each step."""
    import asyncio

    from steward.models import RunProgress

    deadline = time.monotonic() + APPROVAL_WAIT_SECONDS
    seen = ""
    while time.monotonic() < deadline:
        described = await handle.describe()
        if described.status is not None and described.status.name != "RUNNING":
            return None
        progress: RunProgress = await handle.query("progress", result_type=RunProgress)
        if progress.step != seen:
            seen = progress.step
            typer.echo(f"  step: {seen}")
        if progress.pending:
            return progress.pending[0]
        await asyncio.sleep(0.25)
    raise TimeoutError(
        f"{handle.id} did not reach its approval within {APPROVAL_WAIT_SECONDS:.0f}s"
    )


async def _ingest_grounding(client: Client, settings: StewardConfig) -> None:
    """Bring the playbook's collections up to date (quick when nothing changed)."""
    from steward.ingest import ingest_request, start_ingest

    playbook = settings.agents.get("support-reply")
    for collection in playbook.collections if playbook else []:
        if settings.retrieval.collections[collection].path is None:
            continue
        request = ingest_request(settings, collection, None)
        done = await (await start_ingest(client, request)).result()
        typer.echo(
            f"collection {collection}: {done.files_ingested} files ingested "
            f"({done.chunks} chunks), {done.files_unchanged} unchanged"
        )
        for problem in done.problems:
            typer.echo(f"  not ingested: {problem.source}: {problem.reason}")


def _print_result(workflow_id: str, result: RunResult, settings: StewardConfig) -> None:
    typer.echo(f"\nrun {workflow_id}: {result.status}")
    for key, value in result.details.items():
        typer.echo(f"  {key}: {value}")
    for action in result.actions:
        typer.echo(f"  action: {action.tool} -> {action.outcome}: {action.output or action.reason}")
    for citation in result.citations:
        where = f"{citation.source} > {citation.heading}" if citation.heading else citation.source
        typer.echo(f"  cites:  {citation.collection}/{where}")
    typer.echo("  model calls:")
    for call in result.model_calls:
        cost = "unknown" if call.cost_usd is None else f"${call.cost_usd:.6f}"
        typer.echo(
            f"    {call.step:<9} {call.model:<24} tier {call.tier:<7} "
            f"{call.input_tokens:>5} in {call.output_tokens:>4} out "
            f"{call.latency_ms:>7.0f} ms  {cost}"
        )
    ledger = result.ledger
    typer.echo(
        f"  ledger: {ledger.model_calls} calls, {ledger.tokens} tokens, ${ledger.cost_usd:.6f}"
        f"{f' (+{ledger.unpriced_calls} unpriced)' if ledger.unpriced_calls else ''}, "
        f"tools {ledger.tool_seconds:.2f}s, waiting for approval {ledger.review_seconds:.1f}s"
    )
    typer.echo("\nWhere to look next:")
    typer.echo(f"  steward status {workflow_id}")
    ui = ui_link(workflow_id, settings.namespace)
    if ui:
        typer.echo(f"  {ui}")
    typer.echo(f"  outbox: {settings.outbox}/")
    typer.echo("  steward dev down   # stop the embedded server when done")


def _start_worker(log: Path, config: str | None) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "workers", "--role", "all"]
    if config:
        args += ["--config", config]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
