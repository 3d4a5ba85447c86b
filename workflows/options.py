"""Timeouts and retry policies for every activity call, named once.

Temporal owns retries: activities never retry on their own. Model calls get a few
attempts with backoff (providers rate-limit). Tools retry within a time window their spec
sets (minutes by default, hours for email): each attempt is idempotent, and an approved
side effect must not be dropped because its server was down for a while.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import ValidationError
from temporalio.common import RetryPolicy

MODEL_CALL_TIMEOUT = timedelta(minutes=3)
# The model activity heartbeats every few seconds while a call runs, so a worker that dies
# mid-call is noticed after this, not after the whole call timeout.
MODEL_CALL_HEARTBEAT = timedelta(seconds=30)
MODEL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)

TOOL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=0,
)
"""A tool call retries with backoff until its spec's retry window (`retry_seconds`, the
call's schedule-to-close timeout) closes: bounded in time, not in attempts, so an approved
email waits out a mail server's outage instead of giving up after seconds. Errors the
activity classifies as permanent (a bounced recipient) end it at once."""

LEGACY_TOOL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)
"""What runs recorded before the retry window used (kept so they replay as they ran)."""

MCP_DESCRIBE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)

NOTIFY_TIMEOUT = timedelta(seconds=30)
NOTIFY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=3,
)

MCP_DESCRIBE_TIMEOUT = timedelta(seconds=60)

# Resolving a run's profile reads the worker's config in memory: quick, or the worker died.
# A refusal (unknown target, unsigned start) is non-retryable and ends the run at once.
RESOLVE_TIMEOUT = timedelta(seconds=10)
RESOLVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=5,
)

RETRIEVE_TIMEOUT = timedelta(seconds=60)
RETRIEVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)

# A model request's messages must fit in one payload (Temporal rejects those over 2 MB).
MAX_REQUEST_BYTES = 1_800_000

# A run input of the wrong shape (from any Temporal client: the UI, a script) fails
# validation with pydantic's ValidationError (see workflows.base.require_input). Failing
# the run with that message beats retrying a workflow task that can never succeed.
BAD_INPUT: Sequence[type[BaseException]] = (ValidationError,)
