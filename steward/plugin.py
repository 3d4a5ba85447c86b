"""One Temporal plugin for every Steward client, worker and replayer.

`StewardPlugin` carries what each of them must agree on, so it is set in one place: the
data converter (pydantic payloads; the failure converter that sends refusals without a
stack trace; the payload codec that encrypts payloads, `steward.codec`) and the workflow
sandbox's settings. `connect()` puts it on every client, with the codec of the
environment's key ring, and workers built from that client inherit it; the Replayer, the
test environments and the bench take it too. Which workflows and activities a worker
serves depends on its role and is wired by `workers.build`.

With a codec, failure messages and stack traces travel encrypted as well (Temporal's
`encoded_attributes`): an error can quote what it failed on (a ticket, a tool's
arguments), and history must not hold that in plaintext. Clients with the codec (the
`steward` CLI, the Temporal UI and CLI through the codec server) read a refusal as the
same one line; a client without the codec reads "Encoded failure", as it reads every
other payload as ciphertext. Only a failure's type (`BadInput`, `DecisionRefused`...)
stays in plaintext.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import ClassVar, Final

from pydantic_core import SchemaSerializer, core_schema
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.contrib.pydantic import (
    PydanticJSONPlainPayloadConverter,
    PydanticPayloadConverter,
    pydantic_data_converter,
)
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverter,
    PayloadCodec,
    PayloadConverter,
)
from temporalio.plugin import SimplePlugin
from temporalio.worker import Interceptor as WorkerInterceptor
from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from steward.errors import Refused

# Steward's own pure modules and pydantic are safe to share with the sandbox; passing them
# through avoids re-importing them for every workflow run. litellm is never used by
# workflows, but it installs a logging filter that imports lazily: a record logged while
# a workflow task runs would otherwise make that import inside the sandbox and fail.
_SHARED = (
    "steward",
    "activities",
    "pydantic",
    "pydantic_core",
    "annotated_types",
    "opentelemetry",
    "jsonschema",
    "referencing",
    "rpds",
    "jsonschema_specifications",
    "litellm",
    # Signatures are verified in workflows (pure, deterministic), with these.
    "cryptography",
    "cffi",
    # Workflows never use the Qdrant client; retrieval imports it on first use, and were
    # that ever inside a workflow task (a test worker's), its import reads the temp dir.
    "qdrant_client",
    "portalocker",
    "numpy",
)

SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(*_SHARED)
)
"""The strict sandbox: every run imports `workflows/` afresh, so a call the sandbox forbids
(the clock, randomness, I/O) anywhere in workflow code fails the run's task. Tests use it."""

PRODUCTION_RUNNER = UnsandboxedWorkflowRunner()
"""What workers and the replayer run: workflow code outside any sandbox.

In production `workflows/` is imported once and shared by every run: re-importing it in a
sandbox cost every new run tens of milliseconds (the largest fixed cost of a short run).
Shared, it is no longer guarded by the sandbox, yet a sandbox still cost every activation
(each payload the SDK converts asks it for its serialization context: a third of replay's
time, and of a worker's workflow-task CPU). So workers and the replayer run no sandbox,
and forbidden calls (the clock, randomness, I/O) in workflow code are the strict
sandbox's job: the tests run every workflow in it, and a test shows it catches one."""


Interceptor = ClientInterceptor | WorkerInterceptor
"""A client interceptor, a worker interceptor, or both (as OpenTelemetry's is)."""


ENCODED_MESSAGE: Final = "Encoded failure"
"""What a failure's message reads in history when the real one travels encrypted."""


class StewardFailureConverter(DefaultFailureConverter):
    """The default failure converter, except that a refusal travels without a stack trace.

    A refusal (`steward.errors.Refused`) is a person's mistake answered in one sentence;
    its trace would show the worker's file paths to whoever sent the bad input.
    """

    encode_attributes: ClassVar[bool] = False
    """Whether messages and stack traces move into the payload the codec encrypts."""

    def __init__(self) -> None:
        """See class; encoding is done here, after a refusal's trace is gone."""
        super().__init__(encode_common_attributes=False)

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        """See base class; refusals lose their stack trace, then the rest may be encoded.

        Causes come through here too (the base class converts them with `to_failure`), so
        every level of a chain is treated alike.
        """
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, Refused):
            failure.stack_trace = ""
        already = failure.HasField("encoded_attributes") and failure.message == ENCODED_MESSAGE
        # A refusal names fields, ids and rules, never what a customer wrote, and must read
        # as its one line wherever it is shown (the Temporal UI's update dialog decodes no
        # failure), so it stays as it is.
        if self.encode_attributes and not already and not isinstance(exception, Refused):
            # The shape Temporal's SDKs, UI and CLI read back (DefaultFailureConverter's).
            attributes = {"message": failure.message, "stack_trace": failure.stack_trace}
            failure.encoded_attributes.CopyFrom(payload_converter.to_payloads([attributes])[0])
            failure.message = ENCODED_MESSAGE
            failure.stack_trace = ""


class EncodedFailureConverter(StewardFailureConverter):
    """StewardFailureConverter with messages and stack traces encoded by the codec."""

    encode_attributes = True


class CompactJSONPayloadConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic's JSON payloads, written without the fields left at their defaults.

    A model call's request, a tool's result, a run's profile are mostly defaults (no blob,
    no approval, no retries); written out they were a seventh of a short run's history,
    which bounds how long a run goes before it must continue as new. Reading is
    pydantic's, so a missing field is its default, and payloads written whole (every
    history recorded before) read as they did. Two rules follow for every payload model:
    a default never changes meaning (add a field instead), and a literal tag is always
    written (`steward.strict.Tagged` keeps it), since a tagged union is read by its tag.
    """

    _serializer = SchemaSerializer(core_schema.any_schema())

    def to_payload(self, value: object) -> Payload | None:
        """See base class."""
        return Payload(
            metadata={"encoding": self.encoding.encode()},
            data=self._serializer.to_json(value, exclude_defaults=True),
        )


_PYDANTIC_CONVERTERS = tuple(
    CompactJSONPayloadConverter()
    if isinstance(converter, PydanticJSONPlainPayloadConverter)
    else converter
    for converter in PydanticPayloadConverter().converters.values()
)


class SharedPayloadConverter(CompositePayloadConverter):
    """Pydantic's payload converter, with its encoding converters built once and shared.

    The SDK builds a payload converter for every serialization context, several in each
    workflow activation. `PydanticPayloadConverter` builds its converters anew each time,
    and with them an empty cache of pydantic TypeAdapters, so every activation built the
    adapters of the types it decoded again. These converters hold no state of a run (the
    cache is thread-safe), so one set serves the process.
    """

    def __init__(self) -> None:
        """See class."""
        super().__init__(*_PYDANTIC_CONVERTERS)


def data_converter(codec: PayloadCodec | None) -> DataConverter:
    """Steward's data converter: pydantic payloads, one-line refusals, and `codec`.

    With a codec, failure messages are encoded with the payloads (see the module doc).
    """
    return dataclasses.replace(
        pydantic_data_converter,
        payload_converter_class=SharedPayloadConverter,
        failure_converter_class=(
            EncodedFailureConverter if codec is not None else StewardFailureConverter
        ),
        payload_codec=codec,
    )


class StewardPlugin(SimplePlugin):
    """Steward's converter, codec, workflow runner and interceptors, for clients, workers
    and replayers alike; and, for a replayer, the workflows it replays.

    On a client (`steward.client.connect`), every worker built from that client inherits
    the runner and the worker side of the interceptors (tracing: `workers.telemetry`).
    Which workflows and activities a worker serves depends on its role and is wired by
    `workers.build.build_workers`, the one place that builds Steward's workers.
    """

    def __init__(
        self,
        codec: PayloadCodec | None,
        *,
        strict_sandbox: bool = False,
        interceptors: Sequence[Interceptor] = (),
        workflows: Sequence[type] = (),
    ) -> None:
        """A plugin whose payloads go through `codec`.

        Required, so no client or worker is built without deciding: `connect()` passes
        `codec_from_environment()`; None means payloads as they are (`STEWARD_CODEC=off`).
        Workers and replayers run workflow code unsandboxed (PRODUCTION_RUNNER), or in the
        strict sandbox (tests). `interceptors` may be client or worker interceptors or both
        (each side takes its own); `workflows` are what a Replayer replays.
        """
        runner: WorkflowRunner = SANDBOX if strict_sandbox else PRODUCTION_RUNNER
        super().__init__(
            "steward",
            data_converter=data_converter(codec),
            workflow_runner=runner,
            interceptors=list(interceptors) or None,
            workflows=list(workflows) or None,
        )
        self.codec = codec
        self.runner = runner
