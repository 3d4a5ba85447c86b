"""Suites are data: `evals/suites/*.yaml`, loaded, checked, and resolved into an EvalRequest.

A suite names the playbook or agent its cases run against, how approvals are answered by
default, and its cases: each with an id, its input (inline, from a file next to the
suite, or a whole recorded `RunRequest`), tags, how its approvals are answered, an
optional script (fixed model answers: no model is called) and its expectations.
Expectations are one-key mappings, long or short:

    - status: completed
    - contains: Dana                       # in the answer
    - contains: {field: details.category, value: shipping}
    - tool_called: {tool: send_email, args: {to: dana@example.com}}
    - tool_not_called: publish_file
    - approval_requested: send_email
    - max_model_calls: 2
    - llm_judge: "The reply is polite and promises no refund."

Resolving a suite checks each case against steward.yaml the way `steward run` does, so a
misspelt target fails before anything starts; the runs themselves get their profiles from
the eval worker's config. Overrides for a whole eval (another agent, every step on one
tier, short approval deadlines) travel in each run input as eval options, which only an
eval worker honours.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from evals.expectations import Expectation, JudgeSpec
from evals.models import CASE_ID_PATTERN, ApprovalStep, EvalCase
from evals.script import Script
from steward import tools
from steward.config import ConfigError, StewardConfig
from steward.models import AgentProfile, EvalOptions, LegacyRunRequest, RunRequest, problems
from steward.runs import RunError
from steward.targets import workflow_type

DEFAULT_PRINCIPAL = "steward-eval"
DEFAULT_APPROVAL_DEADLINE = 2.0
"""Seconds an approval waits in a case scripted to let it time out (its real deadline may
be a day; the eval shortens it in the case's profile)."""

# Short forms: the key, and which field a bare value fills.
_SHORT: dict[str, tuple[str, str, dict[str, Any]]] = {
    "exact": ("exact", "value", {}),
    "contains": ("contains", "value", {}),
    "not_contains": ("not_contains", "value", {}),
    "regex": ("regex", "pattern", {}),
    "status": ("status", "value", {}),
    "tool_called": ("tool_called", "tool", {}),
    "tool_not_called": ("tool_called", "tool", {"called": False}),
    "approval_requested": ("approval_requested", "tool", {}),
    "no_approval": ("approval_requested", "tool", {"requested": False}),
    "citation": ("citation", "present", {}),
    "max_cost": ("max_cost", "usd", {}),
    "max_latency": ("max_latency", "seconds", {}),
    "max_model_calls": ("max_model_calls", "calls", {}),
    "llm_judge": ("llm_judge", "rubric", {}),
    "json_schema": ("json_schema", "schema", {}),
    "guardrail": ("guardrail", "checks", {}),
}


class SuiteError(RunError):
    """A suite file is missing or wrong; the message names the file, the case and the field."""


class RegressionPolicy(BaseModel):
    """When a comparison with a baseline fails the eval."""

    model_config = ConfigDict(extra="forbid")

    max_pass_rate_drop: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="largest allowed fall of the pass rate (0.05: 5 points)",
    )
    fail_on_case_regression: bool = Field(
        default=True, description="a case that passed in the baseline and fails now fails"
    )


class SuiteCase(BaseModel):
    """One case as a suite file writes it."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=CASE_ID_PATTERN)
    target: str | None = None
    input: str | None = None
    input_file: str | None = None
    request: RunRequest | LegacyRunRequest | None = Field(
        default=None, description="a recorded run's input"
    )
    profile: AgentProfile | None = Field(
        default=None,
        description="the profile a recorded run had; the eval worker re-runs it under it",
    )
    tags: list[str] = Field(default_factory=list)
    approvals: list[ApprovalStep] | None = None
    expect: list[Expectation] = Field(default_factory=list)
    script: Script | None = None
    timeout_seconds: float = Field(default=900.0, gt=0, le=86_400)
    approval_deadline_seconds: float = Field(default=DEFAULT_APPROVAL_DEADLINE, gt=0, le=3600)

    @field_validator("expect", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        return expand_expectations(value)


class Suite(BaseModel):
    """A suite file."""

    model_config = ConfigDict(extra="forbid")

    suite: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    description: str = ""
    target: str | None = Field(default=None, description="playbook or agent of every case")
    principal: str = Field(default=DEFAULT_PRINCIPAL, min_length=1, max_length=200)
    judge_tier: str | None = None
    concurrency: int = Field(default=4, ge=1, le=100)
    skip_tags: list[str] = Field(
        default_factory=list, description="cases with these tags run only when asked by --tag"
    )
    approvals: list[ApprovalStep] = Field(
        default_factory=lambda: [ApprovalStep(decision="approve")]
    )
    expect_all: list[Expectation] = Field(
        default_factory=list, description="expectations every case gets before its own"
    )
    regression: RegressionPolicy = Field(default_factory=RegressionPolicy)
    cases: list[SuiteCase] = Field(min_length=1)

    @field_validator("expect_all", mode="before")
    @classmethod
    def _expand(cls, value: object) -> object:
        return expand_expectations(value)

    @property
    def deterministic(self) -> bool:
        """Whether every case is scripted (no model answers any run)."""
        return all(case.script is not None for case in self.cases)


def expand_expectations(value: object) -> object:
    """Short forms (`- contains: Dana`) into the tagged form the models validate."""
    if not isinstance(value, list):
        return value
    return [_expand_one(item, index) for index, item in enumerate(value)]


def _expand_one(item: object, index: int) -> object:
    if not isinstance(item, dict) or "kind" in item:
        return item
    if len(item) != 1:
        raise ValueError(
            f"[{index}]: an expectation is one key (the scorer), got {sorted(item)}; "
            f"scorers: {', '.join(sorted(_SHORT))}"
        )
    ((key, settings),) = item.items()
    if key not in _SHORT:
        raise ValueError(f"[{index}]: unknown scorer {key!r}; scorers: {', '.join(sorted(_SHORT))}")
    kind, bare, implied = _SHORT[key]
    if isinstance(settings, dict) and not (kind == "exact" and "value" not in settings):
        return {"kind": kind, **implied, **settings}
    if kind == "approval_requested" and isinstance(settings, bool):
        return {"kind": kind, "requested": settings if key == kind else not settings}
    if kind == "citation" and isinstance(settings, int) and not isinstance(settings, bool):
        return {"kind": kind, "min_count": settings}
    return {"kind": kind, **implied, bare: settings}


def load_suite(path: str | Path) -> Suite:
    """Read and check a suite file; input files are read relative to it."""
    source = Path(path)
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except OSError as err:
        raise SuiteError(f"cannot read suite {source}: {err.strerror or err}") from None
    except yaml.YAMLError as err:
        raise SuiteError(f"{source}: not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise SuiteError(f"{source}: expected a mapping with suite: and cases:")
    for index, case in enumerate(raw.get("cases") or []):
        if isinstance(case, dict) and "input_file" in case:
            file = source.parent / str(case["input_file"])
            try:
                case["input"] = file.read_text(encoding="utf-8")
            except OSError as err:
                raise SuiteError(
                    f"{source}: cases[{index}].input_file: cannot read {case['input_file']} "
                    f"({err.strerror or err})"
                ) from None
            del case["input_file"]
    try:
        return Suite.model_validate(raw)
    except ValidationError as err:
        raise SuiteError(f"{source}: {_named(problems(err, '(top)'), raw)}") from None


def _named(message: str, raw: dict[str, Any]) -> str:
    """Problems with the case's id next to its index, so a reader finds the case."""
    cases = raw.get("cases") or []
    for index, case in enumerate(cases):
        if isinstance(case, dict) and "id" in case:
            message = message.replace(f"cases.{index}.", f"cases.{index} ({case['id']}).")
    return message


def selected(
    suite: Suite, *, tags: Sequence[str] = (), case_ids: Sequence[str] = ()
) -> list[SuiteCase]:
    """The cases to run: by id or tag when asked, and never a skipped tag unless asked."""
    unknown = sorted(set(case_ids) - {case.id for case in suite.cases})
    if unknown:
        raise SuiteError(f"suite {suite.suite} has no case {', '.join(unknown)}")
    chosen = []
    for case in suite.cases:
        if case_ids and case.id not in case_ids:
            continue
        if tags and not set(tags) & set(case.tags):
            continue
        skipped = set(suite.skip_tags) & set(case.tags) - set(tags)
        if skipped and case.id not in case_ids:
            continue
        chosen.append(case)
    if not chosen:
        raise SuiteError(f"no case of suite {suite.suite} is selected")
    return chosen


def resolve_cases(
    suite: Suite,
    config: StewardConfig,
    cases: Iterable[SuiteCase],
    *,
    agent: str | None = None,
    tier: str | None = None,
    judge_tier: str | None = None,
) -> list[EvalCase]:
    """Each case as a run input, checked against steward.yaml, with the eval's options."""
    for name, value in (("--tier", tier), ("--judge-tier", judge_tier)):
        if value is not None and value not in config.tiers:
            raise SuiteError(f"{name}: unknown tier {value!r} (tiers: {', '.join(config.tiers)})")
    judge = judge_tier or suite.judge_tier
    if judge is not None and judge not in config.tiers:
        raise SuiteError(f"judge_tier: unknown tier {judge!r} (tiers: {', '.join(config.tiers)})")
    specs = tools.default_specs()
    resolved = []
    for case in cases:
        where = f"case {case.id}"
        recorded = _recorded_profile(case) if agent is None else None
        try:
            request = _request(suite, case, agent)
            if recorded is None:
                config.profile(request.target, specs)  # an unknown target fails here
        except (ConfigError, RunError) as err:
            raise SuiteError(f"{where}: {err}") from None
        except ValidationError as err:
            raise SuiteError(f"{where}: {problems(err, 'input')}") from None
        approvals = case.approvals if case.approvals is not None else suite.approvals
        times_out = any(step.decision == "timeout" for step in approvals)
        options = EvalOptions(
            tier=tier,
            approval_deadline_seconds=case.approval_deadline_seconds if times_out else None,
            profile=recorded,
        )
        expect = [*suite.expect_all, *case.expect]
        expect = [_judged_on(spec, judge, config, where) for spec in expect]
        resolved.append(
            EvalCase(
                id=case.id,
                target=request.target,
                workflow_type=workflow_type(request.target),
                request=request.model_copy(update={"eval": options}),
                tags=case.tags,
                approvals=approvals,
                expect=expect,
                script=case.script,
                timeout_seconds=case.timeout_seconds,
            )
        )
    return resolved


def _recorded_profile(case: SuiteCase) -> AgentProfile | None:
    """The profile a recorded run ran under, if the case is one."""
    if isinstance(case.request, LegacyRunRequest):
        return case.request.profile
    return case.profile


def _request(suite: Suite, case: SuiteCase, agent: str | None) -> RunRequest:
    """The case's run input: its recorded one (re-targeted to `agent`), or target + input."""
    if case.request is not None:
        recorded = case.request
        if isinstance(recorded, LegacyRunRequest):
            # Recorded before the workers resolved profiles: only the name still counts.
            recorded = RunRequest(
                target=recorded.profile.name, input=recorded.input, principal=recorded.principal
            )
        # A recorded signature or parent's word vouches for nothing in an eval.
        return RunRequest(
            target=agent or recorded.target,
            input=recorded.input,
            principal=recorded.principal,
            budget_cap=recorded.budget_cap,
        )
    target = agent or case.target or suite.target
    if target is None:
        raise SuiteError(f"case {case.id}: no target (set target: in the suite or the case)")
    if case.input is None:
        raise SuiteError(f"case {case.id}: give input:, input_file: or request:")
    return RunRequest(target=target, input=case.input, principal=suite.principal)


def _judged_on(
    spec: Expectation, judge: str | None, config: StewardConfig, where: str
) -> Expectation:
    if not isinstance(spec, JudgeSpec):
        return spec
    tier = judge or spec.tier or list(config.tiers)[-1]
    if tier not in config.tiers:
        raise SuiteError(f"{where}: llm_judge tier {tier!r} is not in steward.yaml")
    return spec.model_copy(update={"tier": tier, "deployments": len(config.tiers[tier])})
