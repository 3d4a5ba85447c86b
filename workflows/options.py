"""Timeouts and retry policies for every activity call, named once.

Temporal owns retries: activities never retry on their own. Model calls get a few
attempts with backoff (providers rate-limit); tools get fewer, since each attempt may
touch the outside world (they are idempotent, but there is no point hammering).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

MODEL_CALL_TIMEOUT = timedelta(minutes=3)
MODEL_CALL_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=5,
)

TOOL_CALL_RETRY = RetryPolicy(
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
VERIFY_TIMEOUT = timedelta(seconds=10)

RETRIEVE_TIMEOUT = timedelta(seconds=60)
RETRIEVE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=3,
)
