"""Addressing a run's result by dotted paths: `answer`, `details.category`, `actions.*.tool`.

Shared by the scorers and the judge (which the workflow imports, so this stays pure).
"""

from __future__ import annotations

import json
from typing import Any

MISSING: Any = object()
"""What `resolve` returns for a path the result does not have."""


def resolve(data: Any, path: str) -> Any:
    """The value at a dotted path (`*` maps over a list), or MISSING."""
    current: Any = data
    parts = path.split(".") if path else []
    for index, part in enumerate(parts):
        if part == "*":
            if not isinstance(current, list):
                return MISSING
            rest = ".".join(parts[index + 1 :])
            return [resolve(item, rest) for item in current]
        if isinstance(current, dict):
            current = current.get(part, MISSING)
        elif isinstance(current, list) and part.isdigit() and int(part) < len(current):
            current = current[int(part)]
        else:
            return MISSING
        if current is MISSING:
            return MISSING
    return current


def as_text(value: Any) -> str:
    """A field as text: strings as they are, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
