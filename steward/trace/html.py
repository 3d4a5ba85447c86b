"""Render a trace as one self-contained HTML page, to open, keep or attach to a ticket.

Everything is inline (styles, no scripts, no fonts or images from elsewhere), so the file
works offline and shows the same thing years later. Sections fold with `<details>`;
failed steps open by default. Every value from history is escaped: prompts and tool
output are untrusted text and may contain markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from steward.trace.model import LAYER_NAMES, Trace
from steward.trace.render import describe, failed, footer, header, render_json, timeline

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;
max-width:70rem;padding:0 1rem;color:#1d2330;background:#fafbfc}
h1{font-size:1.3rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:1.6rem 0 .5rem}
.meta{color:#5a6475;white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12.5px}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:.7rem;font-size:12px;
font-weight:600;background:#dde6f3;color:#1d3a66;margin-left:.4rem}
.bad{background:#fbe0e0;color:#8a1616}.good{background:#dcf2e1;color:#155724}
.diagnosis{border-left:4px solid #c0392b;background:#fff3f2;padding:.6rem .9rem;margin:1rem 0}
details{background:#fff;border:1px solid #e1e5eb;border-radius:6px;margin:.35rem 0}
details.failed{border-color:#e6a4a4}summary{cursor:pointer;padding:.45rem .7rem;
font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12.5px}
details.failed>summary{color:#8a1616}.ev{color:#8a94a6;margin-right:.4rem}
ul{margin:0;padding:.2rem .8rem .6rem 2rem}li{font-family:ui-monospace,Menlo,Consolas,monospace;
font-size:12.5px;white-space:pre-wrap;word-break:break-word}
pre{white-space:pre-wrap;word-break:break-word;font-size:12px;padding:.6rem .8rem;margin:0}
"""


def render_html(trace: Trace) -> str:
    """The trace as one HTML document with inline CSS and no external references."""
    run = trace.run
    ok = trace.diagnosis is None and run.status in ("completed", "running")
    meta = "\n".join(line.strip() for line in header(trace)[1:])
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(f'trace {run.workflow_id}')}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(run.workflow_type)} {escape(run.workflow_id)}"
        f'<span class="badge {"good" if ok else "bad"}">{escape(run.outcome or run.status)}</span>'
        "</h1>",
        f'<div class="meta">{escape(meta)}</div>',
    ]
    if trace.diagnosis is not None:
        layer = LAYER_NAMES[trace.diagnosis.layer]
        parts.append(
            f'<div class="diagnosis"><strong>Diagnosis ({escape(layer)})</strong>: '
            f'{escape(trace.diagnosis.summary)} <span class="ev">event '
            f"{trace.diagnosis.event_id}</span></div>"
        )
    parts.append("<h2>Timeline</h2>")
    for event_id, item in timeline(trace):
        head, details = describe(item)
        bad = failed(item)
        parts.append(
            f'<details{" open" if bad else ""} class="{"failed" if bad else "step"}">'
            f'<summary><span class="ev">[{event_id}]</span>{escape(head)}</summary>'
            + _list(details)
            + "</details>"
        )
    parts.append("<h2>Totals</h2>")
    parts.append(_list(footer(trace)))
    if trace.messages:
        parts.append("<details><summary>Signals and updates received</summary>")
        parts.append(
            _list(
                f"[{m.event_id}] {m.kind} {m.name} from {m.sender or '?'}: {m.outcome}"
                f" — {m.summary}"
                for m in trace.messages
            )
        )
        parts.append("</details>")
    if trace.timers:
        parts.append("<details><summary>Timers</summary>")
        parts.append(
            _list(
                f"[{t.event_id}] timer {t.timer_id}: {t.seconds:g} s, {t.state}"
                + (f" — {t.purpose}" if t.purpose else "")
                for t in trace.timers
            )
        )
        parts.append("</details>")
    parts.append("<details><summary>Trace as JSON</summary>")
    parts.append(f"<pre>{escape(render_json(trace))}</pre></details>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _list(lines: Iterable[str]) -> str:
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<ul>{items}</ul>" if items else ""
