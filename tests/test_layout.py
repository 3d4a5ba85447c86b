"""The import rules of DESIGN.md, enforced: workflows and the pure core stay deterministic."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PURE_CORE = [
    "models.py",
    "payloads/*.py",
    "policy.py",
    "routing.py",
    "tickets.py",
    "queues.py",
    "search_attributes.py",
    "questions.py",
    "blobs.py",
    "conversation.py",
    "handoffs.py",
    "config/*.py",
    "bounds.py",
    "strict.py",
    "errors.py",
]
FORBIDDEN = {
    "litellm",
    "qdrant_client",
    "llama_cpp",
    "httpx",
    "requests",
    "socket",
    "subprocess",
    "boto3",
    "botocore",
}


def imports(path: Path) -> list[tuple[str, bool]]:
    """(module, imported inside imports_passed_through) for each import in a file."""
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, passed: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = passed or (
                isinstance(child, ast.With)
                and any(
                    "imports_passed_through" in ast.unparse(i.context_expr) for i in child.items
                )
            )
            if isinstance(child, ast.Import):
                found.extend((alias.name, inside) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module:
                found.append((child.module, inside))
            visit(child, inside)

    visit(ast.parse(path.read_text()), False)
    return found


def test_workflows_import_activities_only_passed_through() -> None:
    for path in (REPO / "workflows").glob("*.py"):
        for module, passed in imports(path):
            top = module.split(".")[0]
            assert top not in FORBIDDEN, f"{path.name} imports {module}"
            if top in ("activities", "workers"):
                assert top == "activities" and passed, f"{path.name} imports {module} directly"


def test_workflows_and_pure_core_touch_no_environment() -> None:
    files = list((REPO / "workflows").glob("*.py"))
    for pattern in PURE_CORE:
        found = sorted((REPO / "steward").glob(pattern))
        assert found, f"steward/{pattern} matches no file"
        files += found
    for path in files:
        text = path.read_text()
        assert "os.environ" not in text and "import os" not in text, path.name
        for module, _ in imports(path):
            assert module.split(".")[0] not in FORBIDDEN, f"{path.name} imports {module}"


def test_activities_never_import_workers() -> None:
    for path in (REPO / "activities").rglob("*.py"):
        assert all(m.split(".")[0] != "workers" for m, _ in imports(path)), path


def test_the_benchmark_peer_is_never_a_runtime_dependency() -> None:
    # pydantic-ai is installed only for `make bench` (its own lock), never by make install.
    for package in ("steward", "workflows", "activities", "workers", "evals"):
        for path in (REPO / package).rglob("*.py"):
            assert all(m.split(".")[0] != "pydantic_ai" for m, _ in imports(path)), path


def test_every_payload_is_exported_by_the_package_and_the_old_path() -> None:
    # A payload added to a domain module and not to the package's __all__ would be missing
    # from steward.models, the path most code imports from.
    import steward.models
    import steward.payloads

    defined: set[str] = set()
    for path in (REPO / "steward" / "payloads").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef):
                defined.add(node.name)
            elif isinstance(node, ast.Assign):
                defined.update(t.id for t in node.targets if isinstance(t, ast.Name))
    public = {name for name in defined if not name.startswith("_") and name != "__all__"}
    assert public == set(steward.payloads.__all__)
    for name in steward.payloads.__all__:
        assert name in steward.models.__all__, name
        assert getattr(steward.models, name) is getattr(steward.payloads, name), name
