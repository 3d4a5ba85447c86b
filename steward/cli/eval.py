"""`steward eval`: run a suite (or recorded runs) as an EvalWorkflow, report, compare.

Thin: the suite is loaded and resolved by `evals.suite`, recorded runs become cases in
`evals.recording`, the eval runs in `workflows.eval` on a worker from `evals.worker`, and
the reports come from `evals.report` and `evals.render`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evals.models import EVAL_QUEUE
from steward.cli.common import ConfigOption, run


def eval_command(
    targets: Annotated[
        list[str],
        typer.Argument(
            metavar="SUITE | WORKFLOW_ID...",
            help="a suite file; with --from-history, workflow ids or exported histories",
        ),
    ],
    agent: Annotated[
        str | None, typer.Option(help="run every case against this playbook or agent")
    ] = None,
    tier: Annotated[
        str | None, typer.Option(help="route every model call of the runs to this tier")
    ] = None,
    judge_tier: Annotated[
        str | None, typer.Option("--judge-tier", help="tier of the LLM judge")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, max=100, help="cases run at once (default: the suite's)")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="a JSON report to compare with; exit 1 on regression")
    ] = None,
    max_drop: Annotated[
        float | None,
        typer.Option(
            "--max-drop", min=0.0, max=1.0, help="allowed fall of the pass rate (default: suite)"
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="directory for report.json, .md and .html (default .steward/evals/ID)"),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option(help="only cases with this tag (repeatable)")
    ] = None,
    case: Annotated[list[str] | None, typer.Option(help="only this case (repeatable)")] = None,
    from_history: Annotated[
        bool,
        typer.Option(
            "--from-history", help="turn recorded runs into regression cases and run them"
        ),
    ] = False,
    save: Annotated[
        Path | None, typer.Option(help="with --from-history: also write the cases as a suite")
    ] = None,
    queue: Annotated[str, typer.Option(help="task queue of the eval worker")] = EVAL_QUEUE,
    worker: Annotated[
        bool,
        typer.Option(help="run an eval worker in this process (--no-worker: one runs already)"),
    ] = True,
    eval_id: Annotated[str | None, typer.Option("--id", help="workflow id of the eval")] = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="start over even if this eval is still running")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Run an eval: cases as child runs with sandboxed tools and scripted approvals, scored on
    their result and history; writes JSON, Markdown and HTML reports. Exits 1 when a case
    regressed against --baseline or the pass rate fell more than allowed.
    """
    if not from_history and len(targets) != 1:
        raise typer.BadParameter("give one suite file (or --from-history WORKFLOW_ID...)")
    if save is not None and not from_history:
        raise typer.BadParameter("--save writes recorded runs as a suite: use --from-history")
    from evals import cli as commands

    options = commands.EvalOptions(
        targets=targets,
        agent=agent,
        tier=tier,
        judge_tier=judge_tier,
        concurrency=concurrency,
        baseline=baseline,
        max_drop=max_drop,
        out=out,
        tags=tag or [],
        cases=case or [],
        from_history=from_history,
        save=save,
        queue=queue,
        worker=worker,
        eval_id=eval_id,
        fresh=fresh,
        config=config,
    )
    report = run(commands.run_eval(options))
    if report.failed:
        raise typer.Exit(1)
