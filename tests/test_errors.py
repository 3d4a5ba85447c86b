"""The error catalogue is the one place an error type exists: every type Steward raises is
declared in `steward.errors`, raised through it, and retried as it says.

The source is read, not run: a raise that a test never reaches still has to name a
declared type, and a type's name written out anywhere but the catalogue is a second
place it lives.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.common import RetryPolicy

from steward import errors
from steward.errors import CATALOGUE, Refused, application_error

REPO = Path(__file__).resolve().parent.parent
SCANNED = ["steward", "activities", "workflows", "workers", "evals"]
RAISERS = {"ApplicationError", "Refused", "application_error"}

# Raises whose type is not a constant, each for a reason that keeps it in the catalogue.
PASSED_ON = {
    # an ErrorType parameter: mypy lets only the catalogue's constants in
    ("activities/llm.py", "error_type"),
    ("activities/tools/files.py", "kind"),
    # a refusal of the resolve activity, raised again by the workflow with its own type
    ("workflows/base.py", "cause.type or errors.BAD_INPUT"),
    # a scripted eval case fails as the recorded run failed, with the type it recorded
    ("activities/evals.py", "error.type"),
}


@dataclass(frozen=True)
class Raise:
    """One call that builds an error with a type, as written in the source."""

    where: str
    raiser: str
    types: frozenset[str] | None
    """The type names it can raise, or None when the source does not say (PASSED_ON)."""
    expression: str
    permanent: bool


def _type_argument(call: ast.Call, raiser: str) -> ast.expr | None:
    for keyword in call.keywords:
        if keyword.arg == "type":
            return keyword.value
    position = {"Refused": 1, "application_error": 0}.get(raiser)
    if position is not None and len(call.args) > position:
        return call.args[position]
    return None


def raises_in(source: str, where: str) -> list[Raise]:
    """Every ApplicationError, Refused and application_error call in `source`."""
    tree = ast.parse(source)
    constants: set[str] = set()  # names imported from steward.errors
    modules: set[str] = set()  # what steward.errors is called here
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "steward.errors":
            constants.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "steward":
            modules.update(
                alias.asname or alias.name for alias in node.names if alias.name == "errors"
            )

    def names(expr: ast.expr) -> frozenset[str] | None:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return frozenset({expr.value})
        if isinstance(expr, ast.Name) and expr.id in constants:
            return frozenset({getattr(errors, expr.id)})
        if (
            isinstance(expr, ast.Attribute)
            and isinstance(expr.value, ast.Name)
            and expr.value.id in modules
        ):
            return frozenset({getattr(errors, expr.attr)})
        if isinstance(expr, ast.IfExp):
            body, orelse = names(expr.body), names(expr.orelse)
            return body | orelse if body is not None and orelse is not None else None
        return None

    found: list[Raise] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        raiser = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        if raiser not in RAISERS:
            continue
        argument = _type_argument(node, raiser)
        if argument is None:
            continue
        found.append(
            Raise(
                where=f"{where}:{node.lineno}",
                raiser=raiser,
                types=names(argument),
                expression=ast.unparse(argument),
                permanent=any(k.arg == "permanent" for k in node.keywords),
            )
        )
    return found


def sources() -> list[tuple[str, str]]:
    """(path from the repository, text) of every Python file that can raise, but the
    catalogue itself."""
    found = []
    for package in SCANNED:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = path.relative_to(REPO).as_posix()
            if relative != "steward/errors.py":
                found.append((relative, path.read_text(encoding="utf-8")))
    return found


def all_raises() -> list[Raise]:
    return [r for path, text in sources() for r in raises_in(text, path)]


def test_every_raised_type_is_in_the_catalogue() -> None:
    found = all_raises()
    assert len(found) > 50, "the scan finds Steward's raises"
    unknown = [
        f"{r.where}: {sorted(r.types)}" for r in found if r.types and r.types - CATALOGUE.keys()
    ]
    assert unknown == [], "raised but not declared in steward/errors.py"
    unexplained = {
        (r.where.split(":")[0], r.expression) for r in found if r.types is None
    } - PASSED_ON
    assert unexplained == set(), "a type the source does not name: use a steward.errors constant"


def test_the_scan_catches_an_undeclared_type() -> None:
    source = (
        "from temporalio.exceptions import ApplicationError\n"
        "from steward import errors\n"
        "from steward.errors import BAD_INPUT, Refused\n"
        "raise ApplicationError('x', type='NotDeclaredAnywhere')\n"
        "raise Refused('x', BAD_INPUT)\n"
        "raise errors.application_error(errors.NO_COLLECTION if a else errors.BAD_DOCUMENT, 'x')\n"
        "raise ApplicationError('x', type=somewhere.type)\n"
    )
    declared, refused, either, unknown = raises_in(source, "x.py")
    assert declared.types == frozenset({"NotDeclaredAnywhere"})
    assert refused.types == frozenset({"BadInput"}) and refused.raiser == "Refused"
    assert either.types == frozenset({"NoCollection", "BadDocument"})
    assert unknown.types is None and unknown.expression == "somewhere.type"


def test_errors_are_raised_through_the_catalogue() -> None:
    """A typed ApplicationError built by hand decides its own retrying; only a recorded
    failure replayed as it was may."""
    direct = [
        r.where for r in all_raises() if r.raiser == "ApplicationError" and r.types is not None
    ]
    assert direct == [], "raise with steward.errors.application_error"


def test_refusals_are_of_types_never_retried() -> None:
    retried = [
        f"{r.where}: {t}"
        for r in all_raises()
        if r.raiser == "Refused" and r.types
        for t in r.types
        if CATALOGUE[t].retried
    ]
    assert retried == []


def test_only_types_that_say_when_mark_one_failure_permanent() -> None:
    marked = [r for r in all_raises() if r.permanent]
    assert marked, "some raises mark a failure permanent"
    for r in marked:
        assert r.types is not None
        for name in r.types:
            kind = CATALOGUE[name]
            assert kind.retried and kind.permanent_when, f"{r.where}: {name}"


def test_no_type_name_is_written_out_beside_the_catalogue() -> None:
    """Matching on `"BadDocument"` instead of errors.BAD_DOCUMENT is how a rename or a
    typo goes unnoticed."""
    written = [
        f"{path}:{node.lineno}: {node.value!r}"
        for path, text in sources()
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if node.value in CATALOGUE
    ]
    assert written == []


def test_each_type_is_declared_once_with_a_layer_and_a_meaning() -> None:
    constants = {
        name: value
        for name, value in vars(errors).items()
        if name.isupper() and isinstance(value, str)
    }
    assert set(constants.values()) == set(CATALOGUE), "every constant is declared, and only they"
    assert len(constants) == len(CATALOGUE)
    for name, kind in CATALOGUE.items():
        assert kind.type == name
        assert kind.layer in errors.LAYERS
        assert kind.meaning.endswith(".") and "\n" not in kind.meaning
        assert not kind.permanent_when or kind.retried, name
    with pytest.raises(ValueError, match="declared twice"):
        errors._kind("BadInput", "input", retried=False, meaning="again.")


def test_the_catalogue_decides_whether_an_error_is_retried() -> None:
    delay = timedelta(seconds=7)
    for name, kind in CATALOGUE.items():
        error = application_error(errors.ErrorType(name), "m", next_retry_delay=delay)
        assert (error.type, error.message) == (name, "m")
        assert error.non_retryable is not kind.retried, name
        assert error.next_retry_delay == (delay if kind.retried else None), name
    mail_down = application_error(errors.WEBHOOK_ERROR, "HTTP 404", permanent=True)
    assert mail_down.non_retryable
    refused = Refused("no", errors.UNKNOWN_TARGET)
    assert refused.non_retryable and refused.type == "UnknownTarget"


def test_kind_is_none_for_types_steward_does_not_raise() -> None:
    assert errors.kind("BadDocument") == CATALOGUE["BadDocument"]
    assert errors.kind("RecipientRejected") is None
    assert errors.kind(None) is None and errors.kind("") is None


def _retry_policies() -> dict[str, RetryPolicy]:
    import workflows

    found: dict[str, RetryPolicy] = {}
    for info in pkgutil.iter_modules(workflows.__path__, "workflows."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if isinstance(value, RetryPolicy):
                found[f"{info.name}.{name}"] = value
    return found


def test_retry_policies_list_only_declared_types_never_retried() -> None:
    policies = _retry_policies()
    assert "workflows.options.MODEL_CALL_RETRY" in policies
    for where, policy in policies.items():
        for name in policy.non_retryable_error_types or []:
            assert name in CATALOGUE and not CATALOGUE[name].retried, f"{where}: {name}"


def test_ingest_gives_up_at_once_on_input_and_documents_it_cannot_use() -> None:
    from workflows.ingest import INGEST_RETRY

    assert set(INGEST_RETRY.non_retryable_error_types or []) == {
        "BadInput",
        "BadDocument",
        "EmbedderMismatch",
        "NoCollection",
    }


def doc_row(kind: errors.ErrorKind) -> str:
    """A type's row in docs/errors.md."""
    retried = "yes" if kind.retried else "no"
    extra = f" Not retried when {kind.permanent_when}." if kind.permanent_when else ""
    return f"| `{kind.type}` | {kind.layer} | {retried} | {kind.meaning}{extra} |"


def test_the_errors_page_lists_the_catalogue_as_it_is() -> None:
    lines = (REPO / "docs" / "errors.md").read_text(encoding="utf-8").splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    assert rows == [doc_row(kind) for kind in CATALOGUE.values()], "update docs/errors.md"
    for layer, what in errors.LAYERS.items():
        assert f"| {layer} | {what} |" in lines
