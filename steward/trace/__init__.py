"""History as a readable trace: what `steward trace` shows and a person debugs with.

Temporal's event history is Steward's trace record. `build_trace` turns one run's history
into a typed `Trace`: the run, each model call (tier, rule, model, tokens, cost, latency,
failed attempts and fallbacks), each tool call (arguments, the policy's decision and
reason, result or error), each approval (who decided, how long it waited, what was
refused), signals, updates, timers, child workflows and failures; and, when the run did
not succeed, a one-line diagnosis naming the layer and the event that shows it. It is
pure: it decodes payloads with the pydantic data converter and fetches nothing (a history
encrypted by the codec is decrypted first, by `steward.decoding.decode_history`). Three
renderers present it: a terminal tree, JSON, and one self-contained HTML page.

The work is split by concern: `model` (the types), `events` (decoding),
`calls` and `approvals` (joining events up), `build` (the pass over
history), `diagnose`, `render` and `html`.
"""

from __future__ import annotations

from steward.trace.build import build_trace
from steward.trace.html import render_html
from steward.trace.model import (
    ActivityRun,
    ApprovalTrace,
    Diagnosis,
    ErrorInfo,
    FailureTrace,
    MessageTrace,
    ModelCall,
    RunInfo,
    ToolCallTrace,
    Trace,
)
from steward.trace.render import render_json, render_text

__all__ = [
    "ActivityRun",
    "ApprovalTrace",
    "Diagnosis",
    "ErrorInfo",
    "FailureTrace",
    "MessageTrace",
    "ModelCall",
    "RunInfo",
    "ToolCallTrace",
    "Trace",
    "build_trace",
    "render_html",
    "render_json",
    "render_text",
]
