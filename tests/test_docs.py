"""The README and docs/ stay true to the repository: links land, shown commands exist.

README.md is the front door and docs/ the reference. What a reader follows or copies from
them breaks quietly: a heading renamed under a link, a file moved, a `steward` command or
option renamed, a `make` target dropped. Each of those fails here, naming the page and line.

Commands are resolved through click's own lookup (`get_command`, `list_commands`, each
command's `context_class`), the way the `steward` script resolves them, so the check holds
however the CLI loads its commands, and whether they are typer's click or click itself.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import typer

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^\s*```\s*([\w+-]*)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
INLINE_CODE = re.compile(r"`[^`]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
SHELL_LANGUAGES = {"", "sh", "bash", "shell", "console"}
SHELL_ENDS = {"&", "&&", "|", "||", ";", ">", ">>", "2>"}


@dataclass(frozen=True)
class Line:
    """One line of a page, or one shell command joined from `\\`-continued lines."""

    page: Path
    number: int
    text: str

    def where(self) -> str:
        """`docs/x.md:12`, for a failure message."""
        return f"{self.page.relative_to(REPO)}:{self.number}"


def prose(page: Path) -> list[Line]:
    """The page's lines outside fenced code blocks."""
    lines: list[Line] = []
    fenced = False
    for number, text in enumerate(page.read_text().splitlines(), start=1):
        if FENCE.match(text):
            fenced = not fenced
        elif not fenced:
            lines.append(Line(page, number, text))
    return lines


def shell_commands(page: Path) -> Iterator[Line]:
    """Each command in the page's shell code blocks, continuation lines joined."""
    language: str | None = None
    pending: Line | None = None
    for number, text in enumerate(page.read_text().splitlines(), start=1):
        fence = FENCE.match(text)
        if fence:
            language = fence.group(1).lower() if language is None else None
            continue
        if language not in SHELL_LANGUAGES:
            continue
        text = text.strip().removeprefix("$ ")
        if pending is not None:
            pending = Line(page, pending.number, pending.text + " " + text)
        else:
            pending = Line(page, number, text)
        if pending.text.endswith("\\"):
            pending = Line(page, pending.number, pending.text[:-1])
            continue
        yield pending
        pending = None


def words_of(command: Line) -> list[str]:
    """The command's words as the shell splits them, up to the first `&`, `|` or `;`."""
    words: list[str] = []
    for word in shlex.split(command.text, comments=True):
        if word in SHELL_ENDS:
            break
        words.append(word)
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words.pop(0)  # VAR=value before the command
    return words


def inline_code(page: Path) -> Iterator[tuple[Line, str]]:
    """Each `inline code` span in the page's prose, with the line it starts on."""
    lines = prose(page)
    text = "\n".join(line.text for line in lines)
    for span in INLINE_CODE.finditer(text):
        yield lines[text.count("\n", 0, span.start())], " ".join(span.group(0)[1:-1].split())


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation but `-` and `_` dropped,
    each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page; a repeated heading gets `-1`, `-2`, as on GitHub."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for line in prose(page):
        match = HEADING.match(line.text)
        if match is None:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(page: Path) -> Iterator[tuple[Line, str]]:
    """Each link target written in the page's prose, not in code; its text may wrap lines."""
    lines = prose(page)
    text = "\n".join(line.text for line in lines)
    # Code spans go, their line breaks stay, so offsets still count lines.
    text = INLINE_CODE.sub(lambda span: "\n" * span.group(0).count("\n"), text)
    for match in [*LINK.finditer(text), *REFERENCE_LINK.finditer(text)]:
        yield lines[text.count("\n", 0, match.start())], match.group(1)


def broken_link(page: Path, target: str) -> str | None:
    """Why a relative link from `page` does not land, or None when it does."""
    path, _, anchor = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.exists():
        return f"no file {path}"
    if REPO not in resolved.parents and resolved != REPO:
        return f"{path} is outside the repository"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no heading #{anchor} in {resolved.relative_to(REPO)}"
    return None


@runtime_checkable
class Command(Protocol):
    """What the check needs of a command, in click's terms (click's own or typer's copy)."""

    context_class: type[Any]

    def get_params(self, ctx: Any) -> list[Any]: ...


@runtime_checkable
class Group(Command, Protocol):
    """A command with subcommands, found by name the way click finds them (maybe lazily)."""

    invoke_without_command: bool

    def get_command(self, ctx: Any, cmd_name: str) -> Any: ...

    def resolve_command(self, ctx: Any, args: list[str]) -> tuple[str | None, Any, list[str]]: ...

    def list_commands(self, ctx: Any) -> list[str]: ...


def steward_command() -> Group:
    """The `steward` command group: `steward.cli.app` if it is one, else typer's build of it."""
    from steward import cli

    entry: object = cli.app
    command = entry if isinstance(entry, Group) else typer.main.get_command(cli.app)
    assert isinstance(command, Group), f"`steward` is a {type(command).__name__}, not a group"
    return command


def option(command: Command, ctx: Any, name: str) -> Any | None:
    """The option of `command` spelled `name` (`--as`, `--no-worker`, `-o`), if any."""
    for param in command.get_params(ctx):
        if param.param_type_name == "option" and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def unknown_parts(root: Group, words: list[str], whole: bool = True) -> list[str]:
    """What a `steward ...` command line names that the CLI does not have.

    A `whole` line must name a command, not stop at a group; prose may name a group
    (`steward schedule`) or leave words out (`steward approve ... --key`).
    """
    problems: list[str] = []
    command: Command = root
    ctx = root.context_class(root, info_name="steward")
    path = ["steward"]
    rest = iter(words[1:])
    for word in rest:
        if word == "...":
            continue
        if word.startswith("-") and word != "-":
            name = word.split("=", 1)[0]
            found = option(command, ctx, name)
            if found is None:
                problems.append(f"`{' '.join(path)}` has no option {name}")
            elif "=" not in word and not found.is_flag and not found.count:
                next(rest, None)  # its value
            continue
        if not isinstance(command, Group):
            continue  # an argument
        known = command.list_commands(ctx)
        if word not in known:
            listed = ", ".join(known)
            problems.append(f"`{' '.join(path)}` has no command {word!r} (it has: {listed})")
            return problems
        # resolve_command, not get_command: the top-level group lists its commands without
        # importing them, and loads one only when it is resolved to run.
        _, sub, _ = command.resolve_command(ctx, [word])
        assert isinstance(sub, Command), f"`{' '.join(path)} {word}` is a {type(sub).__name__}"
        command, path = sub, [*path, word]
        ctx = sub.context_class(sub, parent=ctx, info_name=word)
    if whole and isinstance(command, Group) and not command.invoke_without_command:
        problems.append(f"`{' '.join(path)}` is a group: name one of its commands")
    return problems


def make_targets() -> set[str]:
    """The targets the Makefile defines by name (not `$(VAR):` file targets)."""
    targets: set[str] = set()
    for line in (REPO / "Makefile").read_text().splitlines():
        match = re.match(r"^([A-Za-z][\w.\- ]*?)\s*:(?![:=])", line)
        if match:
            targets.update(match.group(1).split())
    return targets - {".PHONY"}


def make_invocations(page: Path) -> Iterator[tuple[Line, str]]:
    """Each `make TARGET` shown in the page, in a shell block or inline code."""
    for command in shell_commands(page):
        words = words_of(command)
        if len(words) > 1 and words[0] == "make":
            yield command, words[1]
    for line, code in inline_code(page):
        match = re.match(r"make ([\w.-]+)", code)
        if match:
            yield line, match.group(1)


def test_every_relative_link_lands_on_a_file_and_heading() -> None:
    checked = 0
    problems: list[str] = []
    for page in PAGES:
        for line, target in links(page):
            if EXTERNAL.match(target):
                continue
            checked += 1
            why = broken_link(page, target)
            if why is not None:
                problems.append(f"{line.where()}: [{target}]: {why}")
    assert not problems, "\n".join(problems)
    assert checked > 30, f"only {checked} relative links found: is the parser reading them?"


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for _, target in links(README)
        if not EXTERNAL.match(target)
    }
    assert [page.name for page in PAGES[1:] if page not in linked] == []
    assert len(PAGES) > 10


def steward_lines(page: Path) -> Iterator[tuple[Line, list[str], bool]]:
    """Each `steward ...` command the page shows: in a shell block (a whole command line),
    or in inline code (perhaps part of one)."""
    for command in shell_commands(page):
        words = words_of(command)
        if words[:1] == ["steward"]:
            yield command, words, True
    for line, code in inline_code(page):
        if code.startswith("steward "):
            yield line, words_of(Line(line.page, line.number, code)), False


def test_every_steward_command_shown_exists_with_its_options() -> None:
    root = steward_command()
    shown = [found for page in PAGES for found in steward_lines(page)]
    problems = [
        f"{line.where()}: {problem}"
        for line, words, whole in shown
        for problem in unknown_parts(root, words, whole)
    ]
    assert not problems, "\n".join(problems)
    lines = sum(whole for _, _, whole in shown)
    assert lines > 30, f"only {lines} `steward` lines found: is the parser reading them?"


def test_every_make_target_shown_is_in_the_makefile() -> None:
    targets = make_targets()
    assert {"demo", "test", "bench", "chaos", "lock"} <= targets
    shown = [(line, target) for page in PAGES for line, target in make_invocations(page)]
    problems = [f"{line.where()}: make {target}" for line, target in shown if target not in targets]
    assert not problems, "\n".join(problems)
    assert {target for _, target in shown} >= {"demo", "test"}


def test_the_checks_catch_what_they_exist_to_catch() -> None:
    root = steward_command()
    assert unknown_parts(root, ["steward", "approve", "ID", "--as", "alice"]) == []
    assert unknown_parts(root, ["steward", "--env", "prod", "schedule", "list"]) == []
    assert unknown_parts(root, ["steward", "aprove", "ID"])[0].startswith(
        "`steward` has no command 'aprove'"
    )
    assert unknown_parts(root, ["steward", "approve", "ID", "--ass", "alice"]) == [
        "`steward approve` has no option --ass"
    ]
    assert unknown_parts(root, ["steward", "schedule"]) == [
        "`steward schedule` is a group: name one of its commands"
    ]
    assert unknown_parts(root, ["steward", "schedule"], whole=False) == []
    assert unknown_parts(root, ["steward", "approve", "...", "--key"], whole=False) == []
    # A flag takes no value: the word after it is still checked.
    assert unknown_parts(root, ["steward", "run", "--wait", "--bogus"]) == [
        "`steward run` has no option --bogus"
    ]
    assert slug("Speed and faults: `make bench`, `make chaos`") == (
        "speed-and-faults-make-bench-make-chaos"
    )
    assert slug("What a run accepts, and what it survives") == (
        "what-a-run-accepts-and-what-it-survives"
    )
    assert broken_link(README, "docs/approvals.md#signed-decisions") is None
    assert broken_link(README, "docs/approvals.md#unsigned") is not None
    assert broken_link(README, "docs/nowhere.md") is not None
