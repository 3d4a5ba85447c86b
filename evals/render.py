"""An eval report as Markdown (for a pull request) and as one self-contained HTML page.

Both show the same things: the summary, the comparison with the baseline (regressions
first), and each case with its status, scores, cost, latency and the command that traces
its run. Everything taken from a run (answers, details, errors) is escaped: an answer is
data, and a model's output must not be able to inject markup into the page.
"""

from __future__ import annotations

import html

from evals.models import CaseOutcome
from evals.report import Comparison, EvalReport, Summary


def trace_command(outcome: CaseOutcome) -> str:
    """The command that shows a case's run."""
    run = f" --run-id {outcome.run_id}" if outcome.run_id else ""
    return f"steward trace {outcome.workflow_id}{run}"


def headline(report: EvalReport) -> str:
    """One line: suite, passed of total, cost, and the baseline verdict."""
    s = report.summary
    line = (
        f"{report.suite}: {s.passed}/{s.cases} passed ({s.pass_rate:.0%}), "
        f"cost ${s.cost_usd:.6f}{_unpriced(s.unpriced_calls)}, "
        f"judge ${s.judge_cost_usd:.6f}{_unpriced(s.judge_unpriced_calls)}"
    )
    if report.comparison is not None:
        verdict = "FAILED" if report.comparison.failed else "ok"
        line += f"; against the baseline: {verdict}"
    return line


def render_markdown(report: EvalReport) -> str:
    """The report as Markdown."""
    s = report.summary
    lines = [
        f"# Eval `{report.suite}`: {s.passed}/{s.cases} passed ({s.pass_rate:.0%})",
        "",
    ]
    if report.description:
        lines += [report.description.strip(), ""]
    lines += [f"{_labels(report)}", "", *_summary_table(s), ""]
    if report.comparison is not None:
        lines += _markdown_comparison(report.comparison)
    lines += [
        "## Cases",
        "",
        "| case | tags | status | result | scores | cost | latency | trace |",
        "|---|---|---|---|---|---:|---:|---|",
    ]
    for o in report.outcomes:
        passed = sum(1 for x in o.scores if x.passed)
        lines.append(
            f"| {_cell(o.id)} | {_cell(', '.join(o.tags))} | {_cell(o.status)} | "
            f"{'pass' if o.passed else '**FAIL**'} | {passed}/{len(o.scores)} | "
            f"${o.cost_usd:.6f} | {_seconds(o.latency_seconds)} | `{trace_command(o)}` |"
        )
    failing = [o for o in report.outcomes if not o.passed or any(not x.passed for x in o.scores)]
    if failing:
        lines += ["", "## Failed scores", ""]
        for o in failing:
            lines.append(f"### {o.id}{'' if o.passed else ' (fails)'}")
            lines.append("")
            for x in o.scores:
                if not x.passed:
                    optional = " (optional)" if not x.required else ""
                    lines.append(f"- `{x.name}`{optional}: {_inline(x.detail)}")
            if o.error:
                lines.append(f"- error: {_inline(o.error)}")
            if o.diagnosis:
                lines.append(f"- diagnosis: {_inline(o.diagnosis)}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _markdown_comparison(c: Comparison) -> list[str]:
    verdict = "**FAILED**: " + "; ".join(c.reasons) if c.failed else "no regression"
    lines = [
        "## Against the baseline",
        "",
        f"Baseline `{c.baseline}`: {verdict}.",
        "",
        f"Pass rate {c.pass_rate_before:.0%} → {c.pass_rate_after:.0%} over "
        f"{c.compared_cases} cases (allowed drop {c.max_pass_rate_drop:.0%}); cost "
        f"${c.cost_before_usd:.6f} → ${c.cost_after_usd:.6f}; median latency "
        f"{_seconds(c.latency_p50_before)} → {_seconds(c.latency_p50_after)}.",
        "",
    ]
    changed = [x for x in c.cases if x.change != "same" or x.scorers]
    if not changed:
        return [*lines, "No case or scorer changed.", ""]
    order = {"regressed": 0, "removed": 1, "new": 2, "improved": 3, "same": 4}
    lines += ["| case | change | before | after | scorers that changed |", "|---|---|---|---|---|"]
    for x in sorted(changed, key=lambda x: order[x.change]):
        scorers = "; ".join(
            f"`{sc.scorer}` {_verdict(sc.before)} → {_verdict(sc.after)}" for sc in x.scorers
        )
        change = f"**{x.change}**" if x.change == "regressed" else x.change
        lines.append(
            f"| {_cell(x.id)} | {change} | {_verdict(x.before)} | {_verdict(x.after)} | "
            f"{_cell(scorers)} |"
        )
    return [*lines, ""]


def _summary_table(s: Summary) -> list[str]:
    return [
        "| cases | passed | pass rate | errors | cost | judge cost | model calls | tokens | "
        "latency p50 | p95 | case time total | wall time |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| {s.cases} | {s.passed} | {s.pass_rate:.0%} | {s.errors} | "
        f"${s.cost_usd:.6f}{_unpriced(s.unpriced_calls)} | "
        f"${s.judge_cost_usd:.6f}{_unpriced(s.judge_unpriced_calls)} | {s.model_calls} | "
        f"{s.tokens} | {_seconds(s.latency_p50_seconds)} | {_seconds(s.latency_p95_seconds)} | "
        f"{_seconds(s.case_seconds_total)} | {_seconds(s.wall_seconds)} |",
    ]


def render_html(report: EvalReport, ui_base: str | None = None) -> str:
    """The report as one HTML page with no external resources.

    `ui_base` (the Temporal UI's workflow URL prefix) adds a link to each run.
    """
    s = report.summary
    e = html.escape
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>Eval {e(report.suite)}: {s.passed}/{s.cases} passed</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Eval <code>{e(report.suite)}</code>: {s.passed}/{s.cases} passed "
        f"({s.pass_rate:.0%})</h1>",
    ]
    if report.description:
        parts.append(f"<p>{e(report.description)}</p>")
    parts.append(f"<p class=meta>{e(_labels(report))}</p>")
    parts.append(_html_summary(s))
    if report.comparison is not None:
        parts.append(_html_comparison(report.comparison))
    parts.append(
        "<h2>Cases</h2><table><tr><th>case</th><th>tags</th><th>status</th><th>result</th>"
        "<th>scores</th><th>cost</th><th>judge</th><th>latency</th><th>model calls</th></tr>"
    )
    for o in report.outcomes:
        passed = sum(1 for x in o.scores if x.passed)
        parts.append(
            f"<tr class={'pass' if o.passed else 'fail'}><td><a href='#case-{e(o.id)}'>"
            f"{e(o.id)}</a></td><td>{e(', '.join(o.tags))}</td><td>{e(o.status)}</td>"
            f"<td>{'pass' if o.passed else 'FAIL'}</td><td>{passed}/{len(o.scores)}</td>"
            f"<td>${o.cost_usd:.6f}</td><td>${o.judge_cost_usd:.6f}</td>"
            f"<td>{_seconds(o.latency_seconds)}</td><td>{o.model_calls}</td></tr>"
        )
    parts.append("</table>")
    for o in report.outcomes:
        parts.append(_html_case(o, ui_base))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _html_summary(s: Summary) -> str:
    cells = [
        ("cases", str(s.cases)),
        ("passed", str(s.passed)),
        ("pass rate", f"{s.pass_rate:.0%}"),
        ("errors", str(s.errors)),
        ("cost", f"${s.cost_usd:.6f}{_unpriced(s.unpriced_calls)}"),
        ("judge cost", f"${s.judge_cost_usd:.6f}{_unpriced(s.judge_unpriced_calls)}"),
        ("model calls", str(s.model_calls)),
        ("latency p50", _seconds(s.latency_p50_seconds)),
        ("p95", _seconds(s.latency_p95_seconds)),
        ("case time total", _seconds(s.case_seconds_total)),
        ("wall time", _seconds(s.wall_seconds)),
    ]
    head = "".join(f"<th>{html.escape(k)}</th>" for k, _ in cells)
    row = "".join(f"<td>{html.escape(v)}</td>" for _, v in cells)
    return f"<table class=summary><tr>{head}</tr><tr>{row}</tr></table>"


def _html_comparison(c: Comparison) -> str:
    e = html.escape
    verdict = f"FAILED: {'; '.join(c.reasons)}" if c.failed else "no regression"
    parts = [
        "<h2>Against the baseline</h2>",
        f"<p class={'fail' if c.failed else 'pass'}>Baseline <code>{e(c.baseline)}</code>: "
        f"{e(verdict)}</p>",
        f"<p>Pass rate {c.pass_rate_before:.0%} → {c.pass_rate_after:.0%} over "
        f"{c.compared_cases} cases (allowed drop {c.max_pass_rate_drop:.0%}); cost "
        f"${c.cost_before_usd:.6f} → ${c.cost_after_usd:.6f}; median latency "
        f"{_seconds(c.latency_p50_before)} → {_seconds(c.latency_p50_after)}.</p>",
    ]
    changed = [x for x in c.cases if x.change != "same" or x.scorers]
    if changed:
        parts.append(
            "<table><tr><th>case</th><th>change</th><th>before</th><th>after</th>"
            "<th>scorers that changed</th></tr>"
        )
        for x in changed:
            scorers = "<br>".join(
                f"<code>{e(sc.scorer)}</code> {_verdict(sc.before)} → {_verdict(sc.after)}"
                + (f" <span class=detail>{e(sc.detail)}</span>" if sc.detail else "")
                for sc in x.scorers
            )
            parts.append(
                f"<tr class={'fail' if x.change == 'regressed' else ''}><td>{e(x.id)}</td>"
                f"<td>{e(x.change)}</td><td>{_verdict(x.before)}</td>"
                f"<td>{_verdict(x.after)}</td><td>{scorers}</td></tr>"
            )
        parts.append("</table>")
    return "\n".join(parts)


def _html_case(o: CaseOutcome, ui_base: str | None) -> str:
    e = html.escape
    rows = "".join(
        f"<tr class={'pass' if x.passed else 'fail' if x.required else 'warn'}>"
        f"<td><code>{e(x.name)}</code>{'' if x.required else ' (optional)'}</td>"
        f"<td>{'pass' if x.passed else 'fail'}</td>"
        f"<td>{'' if x.value is None else f'{x.value:g}'}</td><td>{e(x.detail)}</td></tr>"
        for x in o.scores
    )
    link = (
        f" · <a href='{e(ui_base.rstrip('/'))}/{e(o.workflow_id)}'>Temporal UI</a>"
        if ui_base
        else ""
    )
    extra = ""
    if o.error:
        extra += f"<p class=fail>error: {e(o.error)}</p>"
    if o.diagnosis:
        extra += f"<p>diagnosis: {e(o.diagnosis)}</p>"
    return (
        f"<details id='case-{e(o.id)}' {'' if o.passed else 'open'}>"
        f"<summary class={'pass' if o.passed else 'fail'}>{e(o.id)}: "
        f"{'pass' if o.passed else 'FAIL'} ({e(o.status)})</summary>"
        f"<p><code>{e(trace_command(o))}</code>{link}</p>"
        f"<p>cost ${o.cost_usd:.6f}{_unpriced(o.unpriced_calls)}, judge "
        f"${o.judge_cost_usd:.6f}, latency {_seconds(o.latency_seconds)}, "
        f"approval wait {o.review_seconds:.1f}s, {o.model_calls} model calls, "
        f"{o.tokens} tokens{', scripted' if o.scripted else ''}</p>"
        f"<table><tr><th>scorer</th><th>verdict</th><th>value</th><th>detail</th></tr>"
        f"{rows}</table>{extra}"
        f"<pre>{e(o.answer_preview)}</pre></details>"
    )


def _labels(report: EvalReport) -> str:
    bits = [f"{k}: {v}" for k, v in report.labels.items()]
    bits += [
        f"concurrency {report.concurrency}",
        f"eval {report.eval_id}",
        f"finished {report.finished_at:%Y-%m-%d %H:%M} UTC",
    ]
    return " · ".join(bits)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"


def _unpriced(count: int) -> str:
    return f" (+{count} unpriced)" if count else ""


def _verdict(value: bool | None) -> str:
    return "-" if value is None else "pass" if value else "fail"


def _cell(text: str) -> str:
    return _inline(text).replace("|", "\\|")


def _inline(text: str) -> str:
    return " ".join(text.split())


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}.pass{color:#17622a}
.fail{color:#a11}.warn{color:#8a5a00}tr.fail td{background:#fff3f3}.meta{color:#666}
details{margin:.5em 0;border:1px solid #eee;padding:.3em .6em}summary{cursor:pointer;
font-weight:600}pre{white-space:pre-wrap;background:#fafafa;padding:.5em}
.detail{color:#666}code{font-size:12px}
"""
