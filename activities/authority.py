"""The workers' own say over what a run may do, read from their steward.yaml.

`resolve_run` is every run's first step: from the target a run input names, it resolves
the agent's profile (tools, policy, approvers, budget, tiers) from this worker's config,
checks who asked where starts must be signed, and returns the profile with the config's
digest and the public keys its approvals are verified with. History keeps the answer, so
replay needs no files, and nothing a client sends can widen it.

`guard` wraps each tool activity where the worker registers it: before the side effect,
the worker that acts checks the call again from its own config (granted, not denied,
approved by enough distinct allowed approvers, signed where required). The privileged
worker therefore never trusts the default worker's config, nor the run's account of it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from temporalio import activity

from steward import authority, errors, targets
from steward.config import ConfigError, StewardConfig
from steward.errors import Refused
from steward.models import (
    AgentProfile,
    ResolvedRun,
    ResolveRun,
    ToolInvocation,
    ToolResult,
    ToolSpec,
)

ToolActivity = Callable[[ToolInvocation], Awaitable[ToolResult]]


class Authority:
    """Resolves runs and guards tool calls by this worker's config.

    An eval worker is built with `sandbox=True`: its tools only record, so it honours a
    run's eval options and needs no signatures. No other worker honours them.
    """

    def __init__(
        self, config: StewardConfig, registry: Mapping[str, ToolSpec], *, sandbox: bool = False
    ) -> None:
        config.check_agents(registry)
        self.config = config
        self.registry = dict(registry)
        self.sandbox = sandbox
        self.digest = config.digest()
        self._profiles: dict[str, AgentProfile] = {}

    def profile(self, target: str) -> AgentProfile:
        """The agent or playbook as this worker's config resolves it (ConfigError if none)."""
        found = self._profiles.get(target)
        if found is None:
            found = self._profiles[target] = self.config.profile(target, self.registry)
        return found

    @activity.defn(name="resolve_run")
    async def resolve_run(self, request: ResolveRun) -> ResolvedRun:
        """What this run may do, by this worker's config; Refused if it may not start."""
        recorded = request.eval.profile if request.eval is not None else None
        try:
            profile = recorded if recorded and self.sandbox else self.profile(request.target)
        except ConfigError as err:
            raise Refused(str(err), errors.UNKNOWN_TARGET) from None
        expected = targets.workflow_type(profile.name) if profile.kind == "playbook" else None
        if profile.kind == "agent" and request.workflow_type != targets.AGENT_WORKFLOW:
            expected = targets.AGENT_WORKFLOW
        if expected is not None and expected != request.workflow_type:
            raise Refused(
                f"{profile.name!r} is a {profile.kind}: start it as {expected}, "
                f"not {request.workflow_type}",
                errors.UNKNOWN_TARGET,
            )
        if request.eval is not None:
            profile = self._for_eval(profile, request)
        return ResolvedRun(
            profile=profile,
            environment=self.config.environment,
            config_digest=self.digest,
            principal_verified=self._principal_verified(request),
            public_keys=self.config.public_keys_for(profile),
        )

    def _for_eval(self, profile: AgentProfile, request: ResolveRun) -> AgentProfile:
        options = request.eval
        assert options is not None
        if not self.sandbox:
            raise Refused(
                "eval options are honoured only by an eval worker, whose tools never act",
                errors.BAD_INPUT,
            )
        if options.tier is not None and options.tier not in self.config.tiers:
            raise Refused(
                f"eval tier {options.tier!r} is not a tier of the workers' config "
                f"(tiers: {', '.join(self.config.tiers)})",
                errors.BAD_INPUT,
            )
        tiers = {name: [d.model for d in ds] for name, ds in self.config.tiers.items()}
        return authority.for_eval(profile, options, tiers)

    def _principal_verified(self, request: ResolveRun) -> bool:
        """Whether the principal is proven: a valid start signature, or a verified parent.

        A signature that is present but wrong refuses the run even where signing is
        optional: it is someone claiming to be someone else.
        """
        keys = self.config.identity.public_keys
        if request.start_signature is not None:
            problem = authority.start_problem(request, keys)
            if problem is not None:
                raise Refused(problem, errors.UNSIGNED_START)
            return True
        # Only a Steward run can have started a child, and it passes on its own verdict.
        verified = request.child and request.parent_verified
        if not verified and self.config.identity.signed_start and not self.sandbox:
            raise Refused(
                f"runs here start only with a request signed by the requester, and "
                f"{request.principal!r}'s is not signed (`steward run` signs with the key "
                "`steward keys new NAME` made)",
                errors.UNSIGNED_START,
            )
        return verified

    def check(self, invocation: ToolInvocation) -> None:
        """Refused unless this worker's config lets this call happen now."""
        try:
            profile = self.profile(invocation.agent)
        except ConfigError as err:
            unknown = f"refused by this worker's config: {err}"
            raise Refused(unknown, errors.NOT_AUTHORIZED) from None
        if self.sandbox:
            return
        problem = authority.action_problem(
            profile,
            invocation,
            workflow_id=activity.info().workflow_id or "",
            public_keys=self.config.identity.public_keys,
            signed_start=self.config.identity.signed_start,
        )
        if problem is not None:
            activity.logger.warning("tool call refused: %s", problem)
            raise Refused(problem, errors.NOT_AUTHORIZED)

    def guard(self, tool: ToolActivity) -> ToolActivity:
        """The same tool activity (same name), run only once `check` lets the call through."""
        definition = activity._Definition.must_from_callable(tool)
        if definition.name is None:
            raise TypeError(f"{tool!r} is a dynamic activity: there is no name to keep")

        async def guarded(invocation: ToolInvocation) -> ToolResult:
            self.check(invocation)
            return await tool(invocation)

        # Not functools.wraps: it would copy the wrapped function's activity definition.
        guarded.__name__ = guarded.__qualname__ = definition.name
        guarded.__doc__ = tool.__doc__
        return activity.defn(name=definition.name)(guarded)
