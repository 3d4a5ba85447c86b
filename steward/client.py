"""connect(): the one way the CLI, workers, evals and tests reach Temporal.

Connection settings come from Temporal's own environment configuration (TEMPORAL_ADDRESS,
TEMPORAL_NAMESPACE, TEMPORAL_API_KEY, TLS settings and profiles in temporal.toml). With no
address configured, it talks to the embedded dev server that `steward dev up` started.
Every client carries the StewardPlugin: the pydantic data converter, so Steward's payloads
round-trip typed, and the payload codec of the environment's key ring (`steward.codec`), so
they reach the server encrypted.

The environment (dev, staging, prod) is chosen here too, once for every command and worker:
`STEWARD_ENV` names one declared in steward.yaml, `load_settings` merges its overrides, and
`connect` talks to its namespace, which wins over TEMPORAL_NAMESPACE.

A server that does not answer is a `steward.errors.TemporalUnreachable` naming the address
it dialled, so the CLI and the workers can say so in one line instead of the SDK's
RuntimeError.

Every `steward` command imports this module, `steward --help` included, so the Temporal
SDK and the config's models are imported by the functions that use them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from temporalio.client import Client

    from steward.config import StewardConfig
    from steward.plugin import Interceptor

ENVIRONMENT_VARIABLE: Final = "STEWARD_ENV"


def selected_environment() -> str | None:
    """The environment $STEWARD_ENV selects, or None for steward.yaml as written."""
    return os.environ.get(ENVIRONMENT_VARIABLE) or None


def load_settings(path: str | Path | None = None) -> StewardConfig:
    """steward.yaml (the one given, else the default) with the selected environment merged."""
    from steward.config import load_config

    return load_config(path, environment=selected_environment())


def connect_options(settings: StewardConfig | None = None) -> dict[str, Any]:
    """Client.connect keyword arguments from the environment, defaulting to the dev server.

    The namespace is that of `settings`' environment; with no settings, that of the
    environment $STEWARD_ENV selects (steward.yaml is read only then); with neither,
    TEMPORAL_NAMESPACE, else "default".
    """
    from temporalio.envconfig import ClientConfig

    from steward import devserver

    options: dict[str, Any] = dict(ClientConfig.load_client_connect_config())
    options.setdefault("target_host", devserver.default_address())
    options.setdefault("namespace", "default")
    if settings is None and selected_environment() is not None:
        settings = load_settings()
    if settings is not None and settings.environment is not None:
        options["namespace"] = settings.namespace
    return options


async def connect(
    settings: StewardConfig | None = None,
    *,
    interceptors: Sequence[Interceptor] = (),
    **overrides: Any,
) -> Client:
    """Connect in the environment's namespace (see connect_options) with Steward's plugin,
    carrying `interceptors` (tracing) to the client and every worker built from it.

    The codec comes from the environment's key ring; `steward.codec.KeyRingError` when
    none is configured (and encryption is not turned off). TemporalUnreachable when no
    server answers.
    """
    from temporalio.client import Client

    from steward.codec import codec_from_environment
    from steward.errors import TemporalUnreachable
    from steward.plugin import StewardPlugin

    options = connect_options(settings)
    options.update(overrides)
    target = options.pop("target_host")
    plugin = StewardPlugin(codec_from_environment(), interceptors=interceptors)
    try:
        return await Client.connect(target, plugins=[plugin], **options)
    except RuntimeError as err:
        raise TemporalUnreachable(target, str(err)) from err


async def require_namespace(client: Client) -> None:
    """RPCError (NOT_FOUND, with a NamespaceNotFoundFailure) unless the client's namespace
    exists. A worker calls this before it starts: the SDK's own check fails later, inside
    the worker, as an untyped RuntimeError.
    """
    from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

    await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
