"""connect(): the one way the CLI, workers, evals and tests reach Temporal.

Connection settings come from Temporal's own environment configuration (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS settings and profiles in temporal.toml). With no
address configured, it talks to the embedded dev server that `steward dev up` started.
Every client carries the pydantic data converter so Steward's payloads round-trip typed.
"""

from __future__ import annotations

from typing import Any

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.envconfig import ClientConfig

from steward import devserver


def connect_options() -> dict[str, Any]:
    """Client.connect keyword arguments from the environment, defaulting to the dev server."""
    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options.setdefault("target_host", devserver.default_address())
    options.setdefault("namespace", "default")
    return options


async def connect(**overrides: Any) -> Client:
    """Connect with environment settings (overridable) and the pydantic converter."""
    options = connect_options()
    options.update(overrides)
    target = options.pop("target_host")
    return await Client.connect(target, data_converter=pydantic_data_converter, **options)
