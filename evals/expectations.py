"""What a case expects: one scorer with its settings, tagged by `kind`.

Each model here is a scorer's configuration as a suite writes it (long form; the short
forms are expanded by `evals.suite`). They travel in the EvalWorkflow's input and in the
scoring activity's, so they are strict pydantic payloads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from steward.guardrails import Check, JudgeCheck
from steward.strict import Strict, Tagged


class _Spec(Tagged):
    name: str | None = Field(default=None, description="label in reports; derived if absent")
    required: bool = Field(default=True, description="a failing optional score fails no case")


class ExactSpec(_Spec):
    """A field of the result equals a value (strings compared after stripping)."""

    kind: Literal["exact"] = "exact"
    field: str = "answer"
    value: Any
    case_sensitive: bool = True


class ContainsSpec(_Spec):
    """A field's text contains all (or any) of the values."""

    kind: Literal["contains"] = "contains"
    field: str = "answer"
    value: list[str] = Field(min_length=1)
    mode: Literal["all", "any"] = "all"
    case_sensitive: bool = False

    @field_validator("value", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class NotContainsSpec(_Spec):
    """A field's text contains none of the values."""

    kind: Literal["not_contains"] = "not_contains"
    field: str = "answer"
    value: list[str] = Field(min_length=1)
    case_sensitive: bool = False

    @field_validator("value", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class RegexSpec(_Spec):
    """A field's text matches (or, with `match: false`, does not match) a pattern."""

    kind: Literal["regex"] = "regex"
    field: str = "answer"
    pattern: str = Field(min_length=1)
    match: bool = True
    ignore_case: bool = False


class JsonSchemaSpec(_Spec):
    """A field (parsed as JSON when it is text) is valid against a JSON schema."""

    kind: Literal["json_schema"] = "json_schema"
    field: str = "answer"
    expected: dict[str, Any] = Field(description="the JSON schema; `schema:` in a suite file")

    @model_validator(mode="before")
    @classmethod
    def _schema_key(cls, data: object) -> object:
        if isinstance(data, dict) and "schema" in data and "expected" not in data:
            data = {("expected" if k == "schema" else k): v for k, v in data.items()}
        return data


class StatusSpec(_Spec):
    """The run ended with one of these statuses (`error` when the workflow itself failed)."""

    kind: Literal["status"] = "status"
    value: list[str] = Field(min_length=1)

    @field_validator("value", mode="before")
    @classmethod
    def _listed(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value


class ArgMatcher(Strict):
    """How one argument of a tool call must look. A bare value in a suite means `equals`."""

    equals: Any = None
    check_equals: bool = Field(default=False, description="set when `equals` was given")
    contains: str | None = None
    not_contains: str | None = None
    regex: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _bare_value(cls, data: object) -> object:
        keys = {"equals", "check_equals", "contains", "not_contains", "regex"}
        if not (isinstance(data, dict) and data and set(data) <= keys):
            data = {"equals": data}
        if "equals" in data and "check_equals" not in data:
            data = {**data, "check_equals": True}
        return data


class ToolCalledSpec(_Spec):
    """The run did (or did not) decide on a call of `tool`, optionally with these arguments.

    Read from history, so calls that were denied or never approved count as decided on;
    `outcome` narrows to calls that ended that way (`done` for calls that really ran).
    """

    kind: Literal["tool_called"] = "tool_called"
    tool: str = Field(min_length=1)
    called: bool = True
    args: dict[str, ArgMatcher] = Field(default_factory=dict)
    outcome: Literal["done", "rejected", "timed_out", "denied", "failed"] | None = None


class ApprovalSpec(_Spec):
    """The run did (or did not) ask a human to approve something (optionally: this tool)."""

    kind: Literal["approval_requested"] = "approval_requested"
    requested: bool = True
    tool: str | None = None
    status: Literal["approved", "rejected", "timed_out"] | None = None


class CitationSpec(_Spec):
    """The result cites sources (`result.citations`, when the build has retrieval)."""

    kind: Literal["citation"] = "citation"
    present: bool = True
    min_count: int = Field(default=1, ge=1)
    source: str | None = Field(default=None, description="a cited source must contain this")


class MaxCostSpec(_Spec):
    """The run's model spend (judge calls excluded) is at most `usd`."""

    kind: Literal["max_cost"] = "max_cost"
    usd: float = Field(ge=0)
    allow_unpriced: bool = Field(
        default=False, description="pass even when some calls have no known price"
    )


class MaxLatencySpec(_Spec):
    """The run took at most `seconds` from start to end (approval waits excluded)."""

    kind: Literal["max_latency"] = "max_latency"
    seconds: float = Field(gt=0)
    include_review: bool = False


class MaxModelCallsSpec(_Spec):
    """The run made at most `calls` model calls."""

    kind: Literal["max_model_calls"] = "max_model_calls"
    calls: int = Field(ge=0)


class GuardrailSpec(_Spec):
    """A field's text passes Steward's own guardrail checks (as `steward.yaml` writes them).

    The same checks the workers run before an action, applied to what the run produced:
    `- guardrail: [{kind: repetition}]` fails a case whose reply repeats a sentence, even
    when the run's configuration did not guard it. An `llm_judge` check belongs in an
    `llm_judge` scorer instead.
    """

    kind: Literal["guardrail"] = "guardrail"
    field: str = "answer"
    checks: list[Check] = Field(min_length=1)

    @field_validator("checks")
    @classmethod
    def _pure(cls, checks: list[Check]) -> list[Check]:
        if any(isinstance(check, JudgeCheck) for check in checks):
            raise ValueError("an llm_judge check is a model call: use the llm_judge scorer")
        return checks


class JudgeSpec(_Spec):
    """A model grades a field against a rubric, 1 to 5; passes at `min_score` or above.

    The judge is called through the model layer on `tier`; its cost is counted apart from
    the run's.
    """

    kind: Literal["llm_judge"] = "llm_judge"
    rubric: str = Field(min_length=1)
    field: str = "answer"
    tier: str | None = Field(default=None, description="resolved when the eval starts")
    deployments: int = Field(
        default=1, ge=1, description="the tier's deployments, tried in order (resolved too)"
    )
    min_score: int = Field(default=4, ge=1, le=5)


Expectation = Annotated[
    ExactSpec
    | ContainsSpec
    | NotContainsSpec
    | RegexSpec
    | JsonSchemaSpec
    | StatusSpec
    | ToolCalledSpec
    | ApprovalSpec
    | CitationSpec
    | MaxCostSpec
    | MaxLatencySpec
    | MaxModelCallsSpec
    | GuardrailSpec
    | JudgeSpec,
    Field(discriminator="kind"),
]

SCORER_KINDS = (
    "exact",
    "contains",
    "not_contains",
    "regex",
    "json_schema",
    "status",
    "tool_called",
    "approval_requested",
    "citation",
    "max_cost",
    "max_latency",
    "max_model_calls",
    "guardrail",
    "llm_judge",
)
