"""Every shell command shown in README.md and CONTRIBUTING.md names something that exists.

The commands of the fenced ``bash``/``sh``/``shell``/``console`` blocks are checked:
``make X`` needs a target X in the Makefile; ``bash path``, ``./path`` and ``python path``
need the file; ``python -m module`` needs the module; the other programs must be one of the
project's tools (dvc, git, pip, pre-commit, pytest, wandb, ...). The README's Quick start shows
exactly two commands, and its generated results section has its markers.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = ("README.md", "CONTRIBUTING.md")
SHELL_LANGUAGES = {"bash", "sh", "shell", "console", "zsh"}
# Programs that come from the environment (installed by `make setup`) rather than the repo.
TOOLS = {"cd", "copier", "dvc", "export", "git", "pip", "pre-commit", "pytest", "torchrun", "wandb"}
OPERATORS = {"&&", "||", ";", "|", "&"}
FENCE = re.compile(
    r"^(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.M | re.S,
)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def shell_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, body) of each fenced block in a shell language."""
    return [
        (m["lang"], m["body"]) for m in FENCE.finditer(markdown) if m["lang"] in SHELL_LANGUAGES
    ]


def commands(language: str, body: str) -> list[list[str]]:
    """The simple commands of a block, each as its list of words (operators split them)."""
    if language == "console":
        kept, continued = [], False
        for line in body.splitlines():
            if line.startswith("$ ") or continued:
                kept.append(line[2:] if line.startswith("$ ") else line)
                continued = line.rstrip().endswith("\\")
        body = "\n".join(kept)
    result = []
    for line in body.replace("\\\n", " ").splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in lexer:
            if token in OPERATORS:
                result.append(current)
                current = []
            else:
                current.append(token)
        result.append(current)
    return [c for c in result if c]


def makefile_targets() -> set[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z0-9][\w.-]*)\s*:(?!=)", text, re.M))


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def command_problem(words: list[str]) -> str | None:
    """Why a command names something that does not exist, or None when it is fine."""
    words = list(words)
    while words and ASSIGNMENT.match(words[0]):  # VAR=value prefixes
        words.pop(0)
    if words[:1] == ["sudo"]:
        words.pop(0)
    if not words:
        return None
    program, args = words[0], words[1:]
    if program.startswith(".venv/bin/"):
        program = program.removeprefix(".venv/bin/")
    positional = [a for a in args if not a.startswith("-") and not ASSIGNMENT.match(a)]

    if program == "make":
        missing = [t for t in positional if t not in makefile_targets()]
        return f"no Makefile target {missing}" if missing else None
    if program in {"bash", "sh", "source", "."}:
        if not positional:
            return "no script given"
        return None if (REPO_ROOT / positional[0]).is_file() else f"no file {positional[0]}"
    if program in {"python", "python3"}:
        if "-m" in args:
            module = args[args.index("-m") + 1]
            return None if module_exists(module) else f"no module {module}"
        if not positional:
            return None
        return None if (REPO_ROOT / positional[0]).is_file() else f"no file {positional[0]}"
    if "/" in program:
        return None if (REPO_ROOT / program).is_file() else f"no file {program}"
    if program == "pytest":
        paths = [a.split("::")[0] for a in positional if "/" in a or a.endswith(".py")]
        missing = [p for p in paths if not (REPO_ROOT / p).exists()]
        return f"no test path {missing}" if missing else None
    if program in TOOLS:
        return None
    return f"unknown program {program!r} (not a Makefile target, script or project tool)"


def documented_commands() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        path = REPO_ROOT / document
        if not path.is_file():
            continue
        for language, body in shell_blocks(path.read_text()):
            found += [(document, shlex.join(words)) for words in commands(language, body)]
    return found


DOCUMENTED = documented_commands()


def test_documents_exist_and_show_commands():
    for document in DOCUMENTS:
        assert (REPO_ROOT / document).is_file(), document
    assert {doc for doc, _ in DOCUMENTED} == set(DOCUMENTS)


@pytest.mark.parametrize(("document", "command"), DOCUMENTED, ids=lambda x: x)
def test_documented_command_names_what_exists(document, command):
    assert command_problem(shlex.split(command)) is None, f"{document}: {command}"


def test_quick_start_is_exactly_two_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.M | re.S)
    assert section, "README.md has no '## Quick start' section"
    shown = [shlex.join(c) for lang, body in shell_blocks(section[1]) for c in commands(lang, body)]
    assert shown == ["make reproduce", "make test"]


def test_readme_has_generated_results_markers_and_layout():
    readme = (REPO_ROOT / "README.md").read_text()
    assert readme.count("<!-- results:start -->") == 1
    assert readme.count("<!-- results:end -->") == 1
    assert readme.index("<!-- results:start -->") < readme.index("<!-- results:end -->")
    for folder in ("reformer/", "pipelines/", "report/", "docs/", "tests/", ".github/"):
        assert f"`{folder}`" in readme, folder


# --- the checker itself ---------------------------------------------------------------


def test_commands_parser_splits_prompts_continuations_and_operators():
    console = "$ make setup && \\\n  make test\nsome output\n$ FOO=1 dvc repro  # why\n"
    assert commands("console", console) == [
        ["make", "setup"],
        ["make", "test"],
        ["FOO=1", "dvc", "repro"],
    ]
    assert commands("bash", "git switch -c exp/x; pytest -m 'not slow'\n") == [
        ["git", "switch", "-c", "exp/x"],
        ["pytest", "-m", "not slow"],
    ]


@pytest.mark.parametrize(
    "command",
    [
        "make no-such-target",
        "bash scripts/no-such-script.sh",
        "./no/such/file",
        "python -m reformer_no_such_module",
        "python no_such_script.py",
        "pytest tests/test_no_such_file.py",
        "frobnicate --all",
    ],
)
def test_checker_rejects_what_does_not_exist(command):
    assert command_problem(shlex.split(command)) is not None


@pytest.mark.parametrize(
    "command",
    [
        "make test",
        "BENCH=1 make setup",
        "bash scripts/setup.sh",
        ".venv/bin/dvc repro",
        "python -m pytest -q",
        "sudo git status",
    ],
)
def test_checker_accepts_what_exists(command):
    assert command_problem(shlex.split(command)) is None
