"""One Temporal plugin for every Steward client, worker and replayer.

`StewardPlugin` carries what each of them must agree on, so it is set in one place: the
data converter (pydantic payloads; the failure converter that sends refusals without a
stack trace; the payload codec, when one is given) and the workflow sandbox's settings.
`connect()` puts it on every client, and workers built from that client inherit it; the
Replayer, the test environments and the bench take it too. Which workflows and activities
a worker serves depends on its role and is wired by `workers.build`.
"""

from __future__ import annotations

import dataclasses

from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverter,
    PayloadCodec,
    PayloadConverter,
)
from temporalio.plugin import SimplePlugin
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from steward.errors import Refused

# Steward's own pure modules and pydantic are safe to share with the sandbox; passing them
# through avoids re-importing them for every workflow run. litellm is never used by
# workflows, but it installs a logging filter that imports lazily: a record logged while
# a workflow task runs would otherwise make that import inside the sandbox and fail.
SANDBOX = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
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
        # Retrieval's activity module imports the Qdrant client, which reads the temp dir
        # at import; workflows only reference its activity methods.
        "qdrant_client",
        "portalocker",
        "numpy",
    )
)


class StewardFailureConverter(DefaultFailureConverter):
    """The default failure converter, except that a refusal travels without a stack trace.

    A refusal (`steward.errors.Refused`) is a person's mistake answered in one sentence;
    its trace would show the worker's file paths to whoever sent the bad input.
    """

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        """See base class; refusals lose their stack trace."""
        super().to_failure(exception, payload_converter, failure)
        if isinstance(exception, Refused):
            failure.stack_trace = ""


def data_converter(codec: PayloadCodec | None = None) -> DataConverter:
    """Steward's data converter: pydantic payloads, one-line refusals, and `codec`."""
    return dataclasses.replace(
        pydantic_data_converter,
        failure_converter_class=StewardFailureConverter,
        payload_codec=codec,
    )


class StewardPlugin(SimplePlugin):
    """Steward's converter and sandbox, for clients, workers and replayers alike."""

    def __init__(self, codec: PayloadCodec | None = None) -> None:
        """A plugin whose payloads go through `codec` (None: payloads as they are)."""
        super().__init__("steward", data_converter=data_converter(codec), workflow_runner=SANDBOX)
        self.codec = codec
