"""What `steward eval` does, step by step: build the eval, run it, report, compare.

Kept here, next to the rest of `evals`, so the command module in `steward/cli/` only
parses options. Progress and notes go to standard error; the summary and the report
paths to standard output.
"""

from __future__ import annotations

import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import typer

from evals.models import EVAL_QUEUE, EvalRequest, scripted_queue
from evals.recording import save_suite, suite_from_histories
from evals.render import headline, render_html, render_markdown
from evals.report import EvalReport, build_report, compare, load_report, write_report
from evals.runner import ProgressBar, follow, start_eval
from evals.suite import Suite, SuiteError, load_suite, resolve_cases, selected
from steward import devserver
from steward.cli.common import ui_link
from steward.client import connect, load_settings
from steward.config import StewardConfig, find_config

MAX_REQUEST_BYTES = 1_500_000
"""Largest EvalWorkflow input accepted; Temporal refuses payloads over 2 MB."""


@dataclass
class EvalOptions:
    """The command's options, as parsed."""

    targets: list[str]
    agent: str | None = None
    tier: str | None = None
    judge_tier: str | None = None
    concurrency: int | None = None
    baseline: Path | None = None
    max_drop: float | None = None
    out: Path | None = None
    tags: list[str] = field(default_factory=list)
    cases: list[str] = field(default_factory=list)
    from_history: bool = False
    save: Path | None = None
    queue: str = EVAL_QUEUE
    worker: bool = True
    eval_id: str | None = None
    fresh: bool = False
    config: str | None = None


async def run_eval(options: EvalOptions) -> EvalReport:
    """Run the eval the options describe; write and print its reports; return the report."""
    settings = load_settings(options.config)
    baseline = load_report(options.baseline) if options.baseline is not None else None
    suite = await _suite(options)
    if options.save is not None:
        save_suite(suite, options.save)
        typer.echo(f"wrote {len(suite.cases)} regression case(s) to {options.save}", err=True)
    request = eval_request(suite, settings, options)
    if options.worker and not os.environ.get("TEMPORAL_ADDRESS"):
        server = devserver.start(namespaces=settings.namespaces)
        typer.echo(f"Temporal dev server: {server.address} (UI {server.ui_url})", err=True)
    client = await connect(settings)
    async with AsyncExitStack() as stack:
        if options.worker:
            from evals.worker import eval_workers

            log = _log_to_file(devserver.state_dir() / "eval-worker.log")
            typer.echo(f"eval worker in this process (log {log})", err=True)
            await stack.enter_async_context(
                eval_workers(client, settings, task_queue=options.queue)
            )
        handle, resumed = await start_eval(
            client,
            request,
            task_queue=options.queue,
            workflow_id=options.eval_id,
            fresh=options.fresh,
        )
        verb = "resuming" if resumed else "started"
        typer.echo(
            f"{verb} eval {handle.id}: {len(request.cases)} case(s) of {suite.suite}, "
            f"{request.concurrency} at a time",
            err=True,
        )
        bar = ProgressBar()
        try:
            result = await follow(handle, bar)
        finally:
            bar.close()
    report = build_report(result, suite.description)
    if baseline is not None:
        policy = suite.regression
        report.comparison = compare(
            report,
            baseline,
            max_pass_rate_drop=(
                options.max_drop if options.max_drop is not None else policy.max_pass_rate_drop
            ),
            fail_on_case_regression=policy.fail_on_case_regression,
        )
    out = options.out or devserver.state_dir() / "evals" / report.eval_id
    _write_and_print(report, out, settings.namespace)
    return report


async def _suite(options: EvalOptions) -> Suite:
    if not options.from_history:
        return load_suite(options.targets[0])
    from steward.replay import histories_for

    histories = []
    for target in options.targets:
        histories += await histories_for(target, decode=True)
    return suite_from_histories(histories)


def eval_request(suite: Suite, settings: StewardConfig, options: EvalOptions) -> EvalRequest:
    """The EvalWorkflow's input: the chosen cases, resolved, with the eval's labels."""
    cases = resolve_cases(
        suite,
        settings,
        selected(suite, tags=options.tags, case_ids=options.cases),
        agent=options.agent,
        tier=options.tier,
        judge_tier=options.judge_tier,
    )
    tiers = [options.tier] if options.tier else list(settings.tiers)
    models = ", ".join(
        f"{name}={'/'.join(d.model for d in settings.tiers[name])}" for name in tiers
    )
    labels = {
        "target": options.agent or ", ".join(sorted({c.target for c in cases})),
        "tier": options.tier or "as routed",
        "models": models,
        "config": find_config(options.config).name,
    }
    judges = sorted({s.tier for c in cases for s in c.expect if s.kind == "llm_judge" and s.tier})
    if judges:
        labels["judge tier"] = ", ".join(judges)
    request = EvalRequest(
        suite=suite.suite,
        cases=cases,
        concurrency=options.concurrency or suite.concurrency,
        scripted_queue=scripted_queue(options.queue),
        labels=labels,
    )
    size = len(request.model_dump_json())
    if size > MAX_REQUEST_BYTES:
        raise SuiteError(
            f"the eval's input is {size:,} bytes (cases, profiles, scripts); Temporal takes "
            f"at most 2 MB: run part of the suite (--tag, --case) or split it"
        )
    return request


def _log_to_file(path: Path) -> Path:
    """Send this process's logs (the in-process worker's) to a file, not over the progress."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
        root.setLevel(logging.WARNING)
    return path


def _write_and_print(report: EvalReport, out: Path, namespace: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_report(report, out / "report.json")
    (out / "report.md").write_text(render_markdown(report), encoding="utf-8")
    link = ui_link(report.eval_id, namespace)
    ui_base = link.rsplit("/", 1)[0] if link else None
    (out / "report.html").write_text(render_html(report, ui_base), encoding="utf-8")
    for outcome in report.outcomes:
        mark = "pass" if outcome.passed else "FAIL"
        failed = [s.name for s in outcome.scores if not s.passed and s.required]
        why = f"  ({', '.join(failed)})" if failed else ""
        if outcome.error and not outcome.passed and not failed:
            why = f"  ({outcome.error[:120]})"
        typer.echo(f"  {mark:<4}  {outcome.id}{why}")
    comparison = report.comparison
    if comparison is not None:
        for change in comparison.cases:
            if change.change in ("regressed", "improved"):
                typer.echo(f"  {change.change}: {change.id}")
        for reason in comparison.reasons:
            typer.secho(f"  regression: {reason}", fg="red")
    typer.echo(headline(report))
    typer.echo(f"reports: {out / 'report.json'}, report.md, report.html")
