"""Guardrails: checks of what a model wrote (or a run was asked) before it becomes an action.

Declared in steward.yaml per tool argument (`tools.send_email.guardrails.body`), per
playbook step (`agents.support-reply.guardrails.draft`) and on a run's input
(`agents.NAME.input_guardrails`). Each guardrail is a list of checks and what happens when
one fails: `retry` the step with the failure as feedback (a bounded number of times),
`flag` it to the approver (shown on the approval, in `steward pending`, the UI and the
notice), or `block` the action. The verdicts are kept with the action and the approval, so
they are in history and in `steward trace`.

The checks here are pure and deterministic (workflows run them): repetition and
degenerate text, length bounds, required and forbidden patterns, personal data the
recipient should not get, the language, grounding in the cited passages, and injection
markers. An LLM judge (`llm_judge`) is the one check that needs a model: the workflow
asks it through its `complete` activity.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Annotated, Literal

from pydantic import Field, field_validator

from steward.strict import Strict, Tagged

MAX_PATTERN_CHARS = 500


class RepetitionCheck(Tagged):
    """Degenerate text: a sentence repeated, or one word making up much of the text."""

    kind: Literal["repetition"] = "repetition"
    max_repeats: int = Field(default=1, ge=1, le=20, description="times a sentence may appear")
    min_sentence_chars: int = Field(default=12, ge=1, le=1000)
    max_word_share: float = Field(
        default=0.25, gt=0, le=1, description="most a single long word may be of all words"
    )


class LengthCheck(Tagged):
    """Length bounds, in characters."""

    kind: Literal["length"] = "length"
    min_chars: int | None = Field(default=None, ge=0, le=10_000_000)
    max_chars: int | None = Field(default=None, ge=1, le=10_000_000)


class PatternCheck(Strict):
    """Content that must (`required`) or must not (`forbidden`) appear: regular expressions,
    case-insensitive, e.g. a refund promise, a competitor's name, a greeting.
    """

    kind: Literal["required", "forbidden"]
    patterns: list[str] = Field(min_length=1)
    label: str = Field(default="", max_length=200, description="what the patterns stand for")

    @field_validator("patterns")
    @classmethod
    def _compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            if len(pattern) > MAX_PATTERN_CHARS:
                raise ValueError(f"a pattern is {len(pattern)} characters; at most 500")
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"{pattern!r} is not a regular expression: {err}") from None
        return patterns


class PiiCheck(Tagged):
    """Personal data the recipient should not get: email addresses, phone numbers and card
    numbers, other than the values of the arguments named in `allow` (e.g. `to`).
    """

    kind: Literal["pii"] = "pii"
    allow: list[str] = Field(default_factory=list, description="arguments whose values may appear")


class LanguageCheck(Tagged):
    """The text is in the expected language (judged by common words; en, es, fr, de)."""

    kind: Literal["language"] = "language"
    expected: Literal["en", "es", "fr", "de"] = "en"


class GroundingCheck(Tagged):
    """Every substantial sentence shares enough content words with a cited passage."""

    kind: Literal["grounding"] = "grounding"
    min_overlap: float = Field(default=0.35, gt=0, le=1)
    min_words: int = Field(default=6, ge=1, le=100, description="shorter sentences pass")


class InjectionCheck(Tagged):
    """Markers of a prompt injection (instructions aimed at the model, role tokens)."""

    kind: Literal["injection"] = "injection"


class JudgeCheck(Tagged):
    """An LLM judge on a chosen tier: passes when the model answers that the rubric holds."""

    kind: Literal["llm_judge"] = "llm_judge"
    tier: str = Field(min_length=1)
    rubric: str = Field(min_length=1, max_length=2000)


Check = Annotated[
    RepetitionCheck
    | LengthCheck
    | PatternCheck
    | PiiCheck
    | LanguageCheck
    | GroundingCheck
    | InjectionCheck
    | JudgeCheck,
    Field(discriminator="kind"),
]


class Guardrail(Strict):
    """Checks on one text, and what a failure does."""

    checks: list[Check] = Field(min_length=1)
    on_fail: Literal["retry", "flag", "block"] = "flag"
    max_retries: int = Field(default=2, ge=0, le=10, description="for retry: then it blocks")


class Verdict(Strict):
    """One check of one text: whether it passed, and why not."""

    target: str = Field(description="what was checked, e.g. send_email.body or step draft")
    check: str
    passed: bool
    detail: str = ""

    def line(self) -> str:
        """The verdict as one line, as the approver and the trace show it."""
        return f"{self.target}: {self.check} {'ok' if self.passed else 'FAILED: ' + self.detail}"


def failures(verdicts: Sequence[Verdict]) -> list[Verdict]:
    """The verdicts that failed."""
    return [verdict for verdict in verdicts if not verdict.passed]


def run_checks(
    guardrail: Guardrail,
    text: str,
    *,
    target: str,
    arguments: dict[str, object] | None = None,
    passages: Sequence[str] = (),
) -> list[Verdict]:
    """Every pure check of `guardrail` on `text` (an `llm_judge` is the workflow's to run)."""
    verdicts = []
    for check in guardrail.checks:
        if isinstance(check, JudgeCheck):
            continue
        problem = _problem(check, text, arguments or {}, passages)
        name = check.kind if not isinstance(check, PatternCheck) else _pattern_name(check)
        verdicts.append(
            Verdict(target=target, check=name, passed=problem is None, detail=problem or "")
        )
    return verdicts


def _pattern_name(check: PatternCheck) -> str:
    return f"{check.kind} {check.label}".strip() if check.label else check.kind


def _problem(
    check: Check, text: str, arguments: dict[str, object], passages: Sequence[str]
) -> str | None:
    if isinstance(check, RepetitionCheck):
        return _repetition(check, text)
    if isinstance(check, LengthCheck):
        if check.min_chars is not None and len(text) < check.min_chars:
            return f"{len(text)} characters; at least {check.min_chars}"
        if check.max_chars is not None and len(text) > check.max_chars:
            return f"{len(text):,} characters; at most {check.max_chars:,}"
        return None
    if isinstance(check, PatternCheck):
        found = [p for p in check.patterns if re.search(p, text, re.IGNORECASE | re.MULTILINE)]
        if check.kind == "forbidden" and found:
            return f"contains what it must not ({check.label or found[0]})"
        if check.kind == "required" and len(found) < len(check.patterns):
            missing = [p for p in check.patterns if p not in found]
            return f"lacks what it must have ({check.label or missing[0]})"
        return None
    if isinstance(check, PiiCheck):
        return _pii(check, text, arguments)
    if isinstance(check, LanguageCheck):
        guessed = language_of(text)
        if guessed is not None and guessed != check.expected:
            return f"reads as {guessed}, expected {check.expected}"
        return None
    if isinstance(check, GroundingCheck):
        return _grounding(check, text, passages)
    if isinstance(check, InjectionCheck):
        found = [label for label, marker in _INJECTION if marker.search(text)]
        return f"injection markers: {', '.join(found)}" if found else None
    return None


_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def sentences(text: str) -> list[str]:
    """The text's sentences, whitespace-normalised (split at . ! ? and line breaks)."""
    return [" ".join(part.split()) for part in _SENTENCE.split(text) if part.strip()]


def _repetition(check: RepetitionCheck, text: str) -> str | None:
    counted = Counter(s.lower() for s in sentences(text) if len(s) >= check.min_sentence_chars)
    repeated = [(s, n) for s, n in counted.items() if n > check.max_repeats]
    if repeated:
        sentence, times = max(repeated, key=lambda item: item[1])
        return f"a sentence appears {times} times ({sentence[:60]!r})"
    words = [w.lower() for w in _WORD.findall(text) if len(w) > 3]
    if len(words) >= 20:
        word, times = Counter(words).most_common(1)[0]
        if times / len(words) > check.max_word_share:
            return f"{word!r} is {times} of {len(words)} words"
    return None


_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
_PHONE = re.compile(r"(?<!\w)\+?\d[\d ().-]{7,}\d(?!\w)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")


def _pii(check: PiiCheck, text: str, arguments: dict[str, object]) -> str | None:
    allowed = {str(arguments.get(name, "")).lower() for name in check.allow}
    found = []
    emails = [e for e in _EMAIL.findall(text) if e.lower() not in allowed]
    if emails:
        found.append(f"{len(emails)} email address(es)")
    cards = [c for c in _CARD.findall(text) if _luhn(re.sub(r"\D", "", c))]
    if cards:
        found.append(f"{len(cards)} card number(s)")
    # A phone number has 7 to 15 digits (E.164); longer runs are order or card numbers.
    phones = [
        p
        for p in _PHONE.findall(text)
        if 7 <= len(re.sub(r"\D", "", p)) <= 15 and p not in "".join(cards)
    ]
    if phones:
        found.append(f"{len(phones)} phone number(s)")
    return f"personal data: {', '.join(found)}" if found else None


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return len(digits) >= 13 and total % 10 == 0


_COMMON = {
    "en": {"the", "and", "you", "your", "is", "are", "to", "of", "we", "for", "with", "this"},
    "es": {"el", "la", "los", "las", "y", "que", "de", "en", "por", "para", "con", "su"},
    "fr": {"le", "la", "les", "et", "que", "de", "des", "en", "pour", "avec", "vous", "votre"},
    "de": {"der", "die", "das", "und", "ist", "nicht", "mit", "für", "sie", "ihr", "wir", "zu"},
}


def language_of(text: str) -> str | None:
    """The language whose common words the text uses most (None if too short to tell)."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < 8:
        return None
    scores = {lang: sum(w in common for w in words) for lang, common in _COMMON.items()}
    best = max(scores, key=lambda lang: scores[lang])
    return best if scores[best] >= 2 else None


_STOP = set().union(*_COMMON.values()) | {"a", "an", "it", "in", "on", "be", "as", "or", "if"}


def _content(sentence: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(sentence) if len(w) > 2} - _STOP


def _grounding(check: GroundingCheck, text: str, passages: Sequence[str]) -> str | None:
    if not passages:
        return "no passages to ground it in"
    sources = [_content(passage) for passage in passages]
    ungrounded = []
    for sentence in sentences(text):
        words = _content(sentence)
        if len(words) < check.min_words:
            continue
        best = max(len(words & source) / len(words) for source in sources)
        if best < check.min_overlap:
            ungrounded.append(sentence)
    if ungrounded:
        return f"{len(ungrounded)} sentence(s) not found in the passages ({ungrounded[0][:60]!r})"
    return None


_INJECTION = [
    (
        "ignore instructions",
        re.compile(
            r"\b(ignore|disregard|forget)\b.{0,40}\b(instructions|prompt|rules)\b", re.I | re.S
        ),
    ),
    ("a new role", re.compile(r"\byou are now\b|\bact as\b|\bnew instructions\b", re.I)),
    ("system prompt", re.compile(r"\bsystem prompt\b|\bdeveloper mode\b", re.I)),
    ("role tokens", re.compile(r"<\|?(im_start|im_end|system|assistant)\|?>|\[/?INST\]", re.I)),
]
