"""Payloads from outside a run: workflow inputs and the arguments of signals and updates.

Any Temporal client can send any JSON as a run's input or a `decide` decision, so the
models that receive them must accept it or refuse it with a ValidationError that the
project's formatter (`problems`) turns into `field: what was expected`, naming the field
that was wrong. A valid payload must also arrive unchanged after the data converter's
round trip, or the worker refuses what the client sent.
"""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.common import RawValue
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.workflow import _Definition

from steward.conversation import AgentRun
from steward.models import ApprovalDecision, ApprovalRequest, RunRequest, problems
from steward.questions import Reply
from steward.retrieval import IngestState
from tests.fuzz import examples
from tests.fuzz.strategies import (
    DECISION,
    Location,
    as_json_text,
    deep_nesting,
    example_requests,
    json_values,
    mutated,
    related,
    run_requests,
)
from workers.build import WORKFLOWS

SELF_VALIDATING: dict[str, type[BaseModel]] = {
    "decide": ApprovalDecision,
    "approval_pending": ApprovalRequest,  # EvalWorkflow's notices from its children
    "reply": Reply,
    # Run inputs: decoded as plain JSON, validated in `run` (see workflows.base.RunInput).
    "AgentWorkflow.run": AgentRun,
    "SupportReplyWorkflow.run": RunRequest,
    "IngestWorkflow.run": IngestState,
}
"""Handlers that take their arguments raw and validate them as this model themselves."""

CONVERTER = pydantic_data_converter.payload_converter


def _handler_arguments() -> list[tuple[str, list[Any] | None]]:
    found: list[tuple[str, list[Any] | None]] = []
    for workflow in WORKFLOWS:
        definition = _Definition.must_from_class(workflow)
        found.append((f"{definition.name}.run", definition.arg_types))
        found.extend((f"signal {name}", s.arg_types) for name, s in definition.signals.items())
        found.extend((f"update {name}", u.arg_types) for name, u in definition.updates.items())
    return found


def client_models() -> list[type[BaseModel]]:
    """Every model a Temporal client can send a run: inputs, signal and update arguments."""
    found: set[type[BaseModel]] = set(SELF_VALIDATING.values())
    for _, arg_types in _handler_arguments():
        found.update(t for t in arg_types or [] if isinstance(t, type) and issubclass(t, BaseModel))
    return sorted(found, key=lambda model: model.__name__)


def whole(model: type[BaseModel]) -> str:
    """What `problems` calls the payload itself, e.g. `decision` for an ApprovalDecision."""
    return {RunRequest: "request", ApprovalDecision: "decision", Reply: "reply"}.get(
        model, model.__name__
    )


def test_every_argument_a_client_can_send_is_a_model() -> None:
    # Handlers taking raw values must say which model they validate them as.
    models = client_models()
    assert {RunRequest, AgentRun, ApprovalDecision, Reply} <= set(models)
    for handler, arg_types in _handler_arguments():
        if arg_types is None or any(t is RawValue or t is Any for t in arg_types):
            assert handler.split()[-1] in SELF_VALIDATING, f"{handler} validates where?"
            continue
        for arg_type in arg_types:
            assert isinstance(arg_type, type) and issubclass(arg_type, BaseModel), handler


def refusal(model: type[BaseModel], value: Any, changes: list[Location] | None) -> str | None:
    """Validate `value` as Python data and as the JSON a client sends: None if accepted,
    else the formatted refusal, checked to name each wrong field (and only changed ones).
    """
    try:
        model.model_validate_json(as_json_text(value))
    except ValidationError as err:
        assert_names_fields(err, whole(model))
    try:
        model.model_validate(value)
    except ValidationError as err:
        message = assert_names_fields(err, whole(model))
        if changes is not None:
            for error in err.errors():
                assert related(tuple(error["loc"]), changes), (error["loc"], changes, message)
        return message
    return None


def assert_names_fields(err: ValidationError, root: str) -> str:
    """The formatted message of `err`, after checking it says where and what, briefly."""
    message = problems(err, root)
    assert message.strip()
    for error in err.errors():
        where = ".".join(str(part) for part in error["loc"]) or root
        assert f"{where}: " in message
        assert error["msg"].strip()
        assert len(error["msg"]) < 400, error["msg"]  # says what was wrong, not the input
    assert "Traceback" not in message
    return message


@examples(250)
@given(model=st.sampled_from(client_models()), value=json_values)
@example(model=RunRequest, value=None)
@example(model=RunRequest, value=deep_nesting(300))
@example(model=ApprovalDecision, value={"approve": float("nan")})
@example(model=ApprovalDecision, value=[DECISION])
def test_arbitrary_json_is_accepted_or_refused_by_field(model: type[BaseModel], value: Any) -> None:
    message = refusal(model, value, changes=None)
    if message is None:  # accepted: then it also looks like a payload of this model
        assert isinstance(value, dict)


def _bases(model: type[BaseModel]) -> st.SearchStrategy[dict[str, Any]]:
    if model is RunRequest:
        return st.one_of(st.sampled_from(example_requests()), run_requests(bounded=True))
    return st.just(DECISION)


MUTATED: list[type[BaseModel]] = [ApprovalDecision, RunRequest]


@examples(150)
@given(data=st.data(), model=st.sampled_from(MUTATED))
def test_changed_payloads_are_refused_where_they_were_changed(
    data: st.DataObject, model: type[BaseModel]
) -> None:
    document, changes = data.draw(mutated(_bases(model)))
    refusal(model, document, changes)


@examples(50)
@given(request=run_requests(bounded=True))
def test_generated_requests_are_valid(request: dict[str, Any]) -> None:
    # The strategies the other fuzz tests build on make what they claim to make.
    assert refusal(RunRequest, request, changes=None) is None


@examples(60)
@given(request=run_requests(bounded=False))
@example(
    request={
        "target": "helpdesk",
        "input": "hello",
        "principal": "dana",
        "budget_cap": {"max_cost_usd": float("inf")},
    }
)
def test_valid_requests_survive_the_data_converter(request: dict[str, Any]) -> None:
    try:
        sent = RunRequest.model_validate(request)
    except ValidationError:
        return  # refusing such a value is a fix too
    payload = CONVERTER.to_payload(sent)
    assert payload is not None
    assert CONVERTER.from_payload(payload, RunRequest) == sent


@examples(100)
@given(decision=st.one_of(json_values, mutated(st.just(DECISION)).map(lambda m: m[0])))
def test_valid_decisions_survive_the_data_converter(decision: Any) -> None:
    try:
        sent = ApprovalDecision.model_validate(decision)
    except ValidationError:
        return
    payload = CONVERTER.to_payload(sent)
    assert payload is not None
    assert CONVERTER.from_payload(payload, ApprovalDecision) == sent
