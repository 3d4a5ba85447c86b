"""The benchmark's floor: the same small agent task as a minimal hand-written Temporal workflow.

`make bench` puts Steward's agent run next to this one to show what Steward costs on top
of Temporal itself. It is what one writes with the SDK alone: a workflow that calls a
model activity, runs the tool the model asks for, and calls the model again with the
result. No policy, no profile, no ledger, no routing, no event stream, no search
attributes. The work inside the activities is kept the same as Steward's, so what differs
is the orchestration:

- the model activity calls litellm as Steward's `complete` does at its simplest (one
  deployment, streamed with usage and rebuilt from the chunks, litellm's own retries off),
  reaching the fake model the bench installs in the worker process, with its latency;
- the tool is Steward's own `http_get` activity, with the bench's allow list;
- payloads go through Steward's data converter and payload codec (`steward.plugin`).

The worker runs workflow code with the runner Steward's production workers use (no
sandbox: `steward.plugin.PRODUCTION_RUNNER`), so only the orchestration differs.
`bench/overhead.py` runs the worker in its own process.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Final, Literal

from pydantic import BaseModel, Field
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    import litellm
    from litellm.types.utils import Choices, ModelResponse

    from activities.tools.http_get import HttpActivities
    from steward.codec import codec_from_environment
    from steward.models import ToolCall, ToolInvocation, ToolResult
    from steward.plugin import PRODUCTION_RUNNER, data_converter

WORKFLOW: Final = "RawAgentWorkflow"
INSTRUCTIONS: Final = "You are a helpful helpdesk agent. Be brief."
MAX_TURNS: Final = 4
MODEL_TIMEOUT: Final = timedelta(minutes=3)
TOOL_TIMEOUT: Final = timedelta(seconds=30)
RETRIES: Final = RetryPolicy(maximum_attempts=3)


class ChatMessage(BaseModel):
    """One message of the conversation, as litellm takes it."""

    role: Literal["system", "user", "assistant"]
    content: str


class ModelCall(BaseModel):
    """The model activity's input: the conversation so far."""

    messages: list[ChatMessage]


class ModelAnswer(BaseModel):
    """The model activity's output: the answer's text and its token counts."""

    text: str
    input_tokens: int
    output_tokens: int


class Decision(BaseModel):
    """A turn as the bench's fake model writes it: a call of `http_get`, or the answer."""

    action: Literal["http_get", "answer"]
    arguments: dict[str, str] = Field(default_factory=dict)
    answer: str = ""


class RawTask(BaseModel):
    """The workflow's input: the task, with the URL the model should fetch in it."""

    task: str


class RawAnswer(BaseModel):
    """The workflow's output: the answer, and what each tool call returned."""

    answer: str
    tool_outputs: list[str]


class ModelActivities:
    """The model call, on the model the worker names."""

    def __init__(self, model: str, *, timeout_seconds: float = 120.0) -> None:
        self.model = model
        self.timeout_seconds = timeout_seconds
        # As Steward's model activity does: litellm prints a "Provider List" banner to
        # stdout for each answer built from a stream of a provider it does not know.
        litellm.suppress_debug_info = True

    @activity.defn(name="raw_complete")
    async def complete(self, call: ModelCall) -> ModelAnswer:
        """Call the model once, streamed; Temporal owns the retries."""
        messages = [message.model_dump() for message in call.messages]
        stream = await litellm.acompletion(
            model=self.model,
            messages=messages,
            num_retries=0,
            timeout=self.timeout_seconds,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        response = litellm.stream_chunk_builder(chunks, messages=messages)
        if not isinstance(response, ModelResponse) or not response.choices:
            raise ApplicationError(f"{self.model}: the stream ended without an answer")
        choice = response.choices[0]
        assert isinstance(choice, Choices)
        usage = getattr(response, "usage", None)
        return ModelAnswer(
            text=choice.message.content or "",
            input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
            output_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        )


@workflow.defn(name=WORKFLOW)
class RawAgentWorkflow:
    """Model, the tool it asks for, model again, until it answers."""

    @workflow.run
    async def run(self, task: RawTask) -> RawAnswer:
        messages = [
            ChatMessage(role="system", content=INSTRUCTIONS),
            ChatMessage(role="user", content=task.task),
        ]
        outputs: list[str] = []
        for turn in range(1, MAX_TURNS + 1):
            reply = await workflow.execute_activity_method(
                ModelActivities.complete,
                ModelCall(messages=messages),
                start_to_close_timeout=MODEL_TIMEOUT,
                retry_policy=RETRIES,
            )
            decision = Decision.model_validate_json(reply.text)
            if decision.action == "answer":
                return RawAnswer(answer=decision.answer, tool_outputs=outputs)
            info = workflow.info()
            call = ToolCall(id=f"call-{turn}", tool="http_get", arguments=decision.arguments)
            result: ToolResult = await workflow.execute_activity_method(
                HttpActivities.http_get,
                ToolInvocation(
                    call=call,
                    idempotency_key=f"{info.workflow_id}.{call.id}",
                    agent="raw",
                    principal="bench",
                    run_id=info.run_id,
                ),
                start_to_close_timeout=TOOL_TIMEOUT,
                retry_policy=RETRIES,
            )
            outputs.append(result.output)
            messages += [
                ChatMessage(role="assistant", content=reply.text),
                ChatMessage(role="user", content=f"Result of http_get:\n{result.output}"),
            ]
        raise ApplicationError(f"no answer after {MAX_TURNS} turns", non_retryable=True)


async def run_worker(
    address: str, queue: str, model: ModelActivities, http: HttpActivities
) -> None:
    """Serve the workflow and both activities on `queue` until the process ends."""
    client = await Client.connect(address, data_converter=data_converter(codec_from_environment()))
    # The workflow runner Steward's production workers use, so only orchestration differs.
    async with Worker(
        client,
        task_queue=queue,
        workflows=[RawAgentWorkflow],
        activities=[model.complete, http.http_get],
        workflow_runner=PRODUCTION_RUNNER,
    ):
        print("ready", flush=True)  # the bench waits for this line
        await asyncio.Event().wait()
