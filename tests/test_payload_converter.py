"""Payloads travel without the fields left at their defaults, and read back the same.

Steward's converter (`steward.plugin.CompactJSONPayloadConverter`) omits a field whose
value is its default; pydantic fills it in again on reading. What must hold: a payload
reads back equal, a tagged union's tag is always written (it is read by its tag), and a
payload written whole, as every history before the change holds it, still reads.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from typing import Any

from pydantic import BaseModel

from steward.config import load_config
from steward.guardrails import Guardrail, LengthCheck, PiiCheck
from steward.models import (
    AgentProfile,
    LLMRequest,
    Message,
    ModelTool,
    RunResult,
    ToolSpec,
)
from steward.plugin import data_converter
from steward.strict import Tagged, is_tag

CONVERTER = data_converter(None).payload_converter


def written(value: object) -> dict[str, Any]:
    """The JSON a payload carries for `value`."""
    payload = CONVERTER.to_payloads([value])[0]
    data: dict[str, Any] = json.loads(payload.data)
    return data


def read(value: object, as_type: type[Any]) -> Any:
    return CONVERTER.from_payloads(CONVERTER.to_payloads([value]), [as_type])[0]


def test_defaults_are_not_written_and_read_back() -> None:
    request = LLMRequest(
        step="turn-1",
        tier="fast",
        messages=[Message(role="system", content="Be brief."), Message(role="user", content="hi")],
        tools=[ModelTool(name="http_get", parameters={"type": "object"})],
    )
    assert written(request) == {
        "step": "turn-1",
        "tier": "fast",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "tools": [{"name": "http_get", "parameters": {"type": "object"}}],
    }
    assert read(request, LLMRequest) == request


def test_a_value_other_than_its_default_is_written() -> None:
    spec = ToolSpec(name="send_email", description="mail", risk="write", timeout_seconds=5.0)
    data = written(spec)
    assert data["timeout_seconds"] == 5.0
    assert "retry_seconds" not in data
    assert read(spec, ToolSpec) == spec


def test_a_tag_at_its_default_is_written_so_the_union_reads_back() -> None:
    profile = AgentProfile(
        name="helpdesk",
        kind="agent",
        guardrails={
            "answer": Guardrail(checks=[PiiCheck(), LengthCheck(max_chars=400)]),
        },
    )
    checks = written(profile)["guardrails"]["answer"]["checks"]
    assert [check["kind"] for check in checks] == ["pii", "length"]
    assert read(profile, AgentProfile) == profile


def test_a_payload_written_whole_still_reads() -> None:
    """Every history recorded before the converter changed holds payloads written whole."""
    config = load_config("examples/steward.yaml")
    whole = RunResult(status="completed", answer="ok", config_digest=config.digest())
    payload = CONVERTER.to_payloads([whole])[0]
    payload.data = whole.model_dump_json().encode()
    assert len(payload.data) > len(CONVERTER.to_payloads([whole])[0].data)
    assert CONVERTER.from_payloads([payload], [RunResult])[0] == whole


def _models() -> list[type[BaseModel]]:
    """Every pydantic model the project's packages define."""
    for package in ("steward", "activities", "workflows", "workers", "evals"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)
    seen: list[type[BaseModel]] = []
    stack: list[type[BaseModel]] = [BaseModel]
    while stack:
        for sub in stack.pop().__subclasses__():
            stack.append(sub)
            if sub.__module__.split(".")[0] in {"steward", "activities", "workflows", "evals"}:
                seen.append(sub)
    return seen


def test_every_model_with_a_tag_keeps_it() -> None:
    """A tag left out would break the tagged union it belongs to; `Tagged` writes it
    always, another model would not.
    """
    models = _models()
    assert len(models) > 100
    untagged = [
        f"{model.__module__}.{model.__qualname__}.{name}"
        for model in models
        if not issubclass(model, Tagged)
        for name, field in model.model_fields.items()
        if is_tag(field)
    ]
    assert untagged == []
