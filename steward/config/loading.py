"""Reading steward.yaml: finding the file, merging an environment in, and wording every
problem as `FILE: field: what was expected`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from steward.config.environments import merge
from steward.config.errors import ConfigError
from steward.config.file import StewardConfig

DEFAULT_CONFIG_PATHS = (Path("steward.yaml"), Path("examples/steward.yaml"))


def find_config(explicit: str | Path | None = None) -> Path:
    """The config file to use: the one given, else ./steward.yaml, else the example."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    raise ConfigError("no steward.yaml here (nor examples/steward.yaml); pass --config FILE")


def load_config(path: str | Path | None = None, environment: str | None = None) -> StewardConfig:
    """Read and validate steward.yaml; errors name the file and the offending field.

    With `environment`, that environment's overrides are merged in and the result runs in
    its namespace. Every declared environment is checked either way, so a change that
    breaks prod's overrides fails in dev too.
    """
    source = find_config(path)
    raw = _read(source)
    base = _validate(source, raw)
    selected = None
    for name, declared in base.environments.items():
        merged = _validate(source, merge(raw, declared.overrides), environment=name)
        if name == environment:
            selected = merged
    if environment is None:
        return base
    if selected is None:
        known = ", ".join(sorted(base.environments)) or "none"
        raise ConfigError(
            f"{source}: unknown environment {environment!r} (declared under environments: {known})"
        )
    selected._environment = environment
    return selected


def _read(source: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{source}: not valid YAML: {_yaml_problem(err)}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{source}: not UTF-8 text (byte {err.start})") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return raw


def _yaml_problem(err: yaml.YAMLError) -> str:
    """The parser's complaint on one line, with where it is (its own text spans lines)."""
    if isinstance(err, yaml.MarkedYAMLError) and err.problem_mark is not None:
        mark = err.problem_mark
        return f"line {mark.line + 1}, column {mark.column + 1}: {err.problem or err.context}"
    return " ".join(str(err).split())


def _validate(source: Path, raw: dict[str, Any], environment: str | None = None) -> StewardConfig:
    try:
        return StewardConfig.model_validate(raw)
    except ValidationError as err:
        if environment is None:
            located = (": ".join(_located(problem)) for problem in err.errors())
            raise ConfigError(f"{source}: {'; '.join(located)}") from None
        raise ConfigError(f"{source}: {_override_problems(err, raw, environment)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to read") from None


def _override_problems(err: ValidationError, raw: dict[str, Any], environment: str) -> str:
    """Problems of a merged config, named under the environment's overrides when they are.

    A problem in a field the overrides set is `environments.NAME.overrides.FIELD`; one the
    merge caused elsewhere (a cross-reference, a field the overrides left alone) says it
    arose with that environment's overrides.
    """
    overrides = raw["environments"][environment].get("overrides") or {}
    prefix = f"environments.{environment}.overrides"
    named = []
    for problem in err.errors():
        where, message = _located(problem)
        if where.split(".")[0] in overrides:
            named.append(f"{prefix}.{where}: {message}")
        else:
            named.append(f"{prefix} (merged): {where}: {message}")
    return "; ".join(named)


def _located(problem: ErrorDetails) -> tuple[str, str]:
    """Where a problem is (dotted) and what it is.

    The checks across sections fail at the top of the file and name their field at the
    start of the message (`agents.x.collections: unknown collection ...`): that is where.
    """
    where, message = ".".join(str(part) for part in problem["loc"]), problem["msg"]
    if not where:
        message = message.removeprefix("Value error, ")
        field, _, rest = message.partition(": ")
        if rest and " " not in field:
            where, message = field, rest
    return where or "(top)", message
