"""The worker image holds every package its entry points import.

No Docker engine runs here, so the test builds what the image would hold: it reads the
Dockerfile's COPY lines, lays out exactly those files (less what .dockerignore leaves out)
in a scratch directory, and imports the entry points and every module of the copied
packages from there, in a Python that sees only that directory and the installed
dependencies. A package the Dockerfile forgets to copy fails the import, as it would in
the image.
"""

from __future__ import annotations

import fnmatch
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
ENTRY_POINTS = ("steward.cli", "workers.run", "evals.worker")
"""The `steward` script (the image's ENTRYPOINT), `python -m workers`, the eval worker."""

# Imports each module named, then every module of the packages laid out here (the CLI
# imports some lazily, inside a command); `__main__` modules run when imported, so they
# are only found. Prints `module: error` for each failure.
IMPORT_ALL = """
import importlib, importlib.util, pkgutil, sys
from pathlib import Path
failed = []
def load(name):
    try:
        importlib.import_module(name)
    except Exception as err:
        failed.append(f"{name}: {type(err).__name__}: {err}")
for name in sys.argv[1:]:
    load(name)
for init in sorted(Path.cwd().glob("*/__init__.py")):
    package = init.parent.name
    load(package)
    for module in pkgutil.walk_packages([str(init.parent)], prefix=package + "."):
        if module.name.rsplit(".", 1)[-1] == "__main__":
            if importlib.util.find_spec(module.name) is None:
                failed.append(f"{module.name}: not found")
        else:
            load(module.name)
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def copies(dockerfile: str) -> list[tuple[list[str], str]]:
    """(sources, destination relative to the image's WORKDIR) of each COPY, in order."""
    found, workdir = [], "/"
    for line in _instructions(dockerfile):
        words = shlex.split(line)
        if words[0].upper() == "WORKDIR":
            workdir = os.path.join(workdir, words[1])
        if words[0].upper() != "COPY":
            continue
        assert not line.rstrip().endswith("]"), f"the JSON form is not read here: {line}"
        assert not any(word.startswith("--from") for word in words), f"multi-stage: {line}"
        arguments = [word for word in words[1:] if not word.startswith("--")]
        assert len(arguments) >= 2, line
        assert not any(c in word for word in arguments for c in "*?["), f"a glob: {line}"
        destination = os.path.relpath(os.path.join(workdir, arguments[-1]), workdir)
        assert not destination.startswith(".."), f"copies outside WORKDIR: {line}"
        found.append((arguments[:-1], destination + ("/" if arguments[-1].endswith("/") else "")))
    return found


def _instructions(dockerfile: str) -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined, current = [], ""
    for raw in dockerfile.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return joined


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore leaves `path` (relative to the context) out: the subset of its
    syntax this repository uses (`name/`, `**/name/`).
    """
    for pattern in patterns:
        bare = pattern.rstrip("/")
        if bare.startswith("**/"):
            if any(fnmatch.fnmatch(part, bare[3:]) for part in Path(path).parts):
                return True
        elif fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
            return True
    return False


def lay_out(context: Path, dockerfile: str, into: Path) -> None:
    """Copy what the COPY lines copy into `into`, standing for the image's WORKDIR. As
    Docker does: a directory's contents go into the destination; a file goes into it when
    it names a directory (ends in /, or several sources), else becomes it.
    """
    patterns = [
        line.strip()
        for line in (context / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]

    def skip(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if ignored(os.path.relpath(Path(folder) / n, context), patterns)]

    for sources, destination in copies(dockerfile):
        target = into / destination
        for source in sources:
            origin = context / source
            assert origin.exists(), f"COPY {source}: not in the build context"
            if ignored(source, patterns):
                continue
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=skip, dirs_exist_ok=True)
            elif destination.endswith("/") or len(sources) > 1 or target.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)


def isolated_python(app: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """`python ARGV` in `app` with only `app` and the installed dependencies importable:
    -S skips site, so the development checkout's editable install (a .pth file) cannot
    supply a package the image would lack.
    """
    paths = dict.fromkeys(
        [str(app), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    )
    return subprocess.run(
        [sys.executable, "-S", *argv],
        capture_output=True,
        text=True,
        cwd=app,
        env={
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(app),
            "PYTHONPATH": os.pathsep.join(paths),
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        },
        timeout=240,
        check=False,
    )


def test_the_image_holds_every_package_its_entry_points_import(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    lay_out(REPO, DOCKERFILE.read_text(encoding="utf-8"), app)
    assert (app / "examples" / "steward.yaml").is_file()  # the config a bare worker reads
    assert not (app / "tests").exists() and not (app / "secrets").exists()
    result = isolated_python(app, "-c", IMPORT_ALL, *ENTRY_POINTS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_forgotten_package_fails_the_check(tmp_path: Path) -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "COPY evals ./evals\n" in dockerfile, "the Dockerfile changed; update this test"
    app = tmp_path / "app"
    app.mkdir()
    lay_out(REPO, dockerfile.replace("COPY evals ./evals\n", ""), app)
    # The whole check, as above: `import steward.cli` imports a command only when it runs.
    result = isolated_python(app, "-c", IMPORT_ALL, *ENTRY_POINTS)
    assert result.returncode != 0
    assert "No module named 'evals'" in result.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("WORKDIR /app\nCOPY a b ./\n", [(["a", "b"], "./")]),
        ("WORKDIR /app\nCOPY --chown=1:1 steward ./steward\n", [(["steward"], "steward")]),
        ("WORKDIR /app\nCOPY x /app/lib/\n", [(["x"], "lib/")]),
        ("# COPY x y\nRUN a \\\n  && b\nCOPY c \\\n  d\n", [(["c"], "d")]),
    ],
)
def test_copy_lines_are_read_as_docker_reads_them(
    text: str, expected: list[tuple[list[str], str]]
) -> None:
    assert copies(text) == expected


def test_the_entrypoint_is_the_steward_script() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    scripts = project["project"]["scripts"]
    entrypoint = next(
        line
        for line in _instructions(DOCKERFILE.read_text(encoding="utf-8"))
        if line.startswith("ENTRYPOINT")
    )
    assert entrypoint == 'ENTRYPOINT ["steward"]'
    assert scripts["steward"] == "steward.cli:main"
