"""Names of scorers in reports: stable across runs, so a baseline can be compared by name.

A scorer is named by its `name:` in the suite, else by its kind and what it looks at
(`contains:answer`, `tool_called:send_email`); a name used twice in a case gets `#2`.
"""

from __future__ import annotations

from collections.abc import Iterable

from evals.expectations import (
    ApprovalSpec,
    ContainsSpec,
    ExactSpec,
    Expectation,
    JsonSchemaSpec,
    NotContainsSpec,
    RegexSpec,
    ToolCalledSpec,
)


def label(spec: Expectation) -> str:
    """A stable name for a scorer in reports: its kind and what it looks at."""
    if spec.name:
        return spec.name
    match spec:
        case ExactSpec() | ContainsSpec() | NotContainsSpec() | RegexSpec() | JsonSchemaSpec():
            return f"{spec.kind}:{spec.field}"
        case ToolCalledSpec():
            return f"{'tool_called' if spec.called else 'tool_not_called'}:{spec.tool}"
        case ApprovalSpec():
            what = "approval_requested" if spec.requested else "no_approval"
            return f"{what}:{spec.tool}" if spec.tool else what
        case _:
            return spec.kind


def label_all(specs: Iterable[Expectation]) -> list[str]:
    """Names for a case's scorers, made unique (a repeated name gets `#2`, `#3`)."""
    names: list[str] = []
    for spec in specs:
        name, count = label(spec), 1
        while name in names:
            count += 1
            name = f"{label(spec)}#{count}"
        names.append(name)
    return names
