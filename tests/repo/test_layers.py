"""The two layers stay apart: the kit (``repro``) never imports a paper package.

A team that copies the kit for another paper deletes ``reformer/``; everything in
``repro/`` must keep importing and working. Two independent checks: a static one over the
source text (code, and the examples in docstrings, which the doctests run), and a dynamic
one that imports every kit module in a fresh interpreter and looks at ``sys.modules``.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
KIT = REPO_ROOT / "repro"
PAPER_IMPORT = re.compile(r"^\s*(?:>>>\s*|\.\.\.\s*)?(?:from|import)\s+reformer\b", re.MULTILINE)


def kit_modules() -> list[str]:
    names = []
    for path in sorted(KIT.rglob("*.py")):
        parts = path.relative_to(REPO_ROOT).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_kit_source_never_imports_the_paper():
    offenders = [
        f"{path.relative_to(REPO_ROOT)}:{text[: m.start()].count(chr(10)) + 1}"
        for path in sorted(KIT.rglob("*.py"))
        for text in [path.read_text()]
        for m in PAPER_IMPORT.finditer(text)
    ]
    assert not offenders, "the kit imports the paper at:\n" + "\n".join(offenders)


def test_the_static_check_catches_an_import(tmp_path):
    """The pattern is not vacuous: it finds plain, aliased and doctest imports."""
    text = "import reformer.models as m\n    >>> from reformer import ReformerLM\n"
    assert len(PAPER_IMPORT.findall(text)) == 2
    assert not PAPER_IMPORT.findall("import reformer_pytorch\nfrom repro import paper\n")


def test_importing_every_kit_module_loads_no_paper_package():
    modules = kit_modules()
    assert len(modules) > 20, modules  # the walk found the kit
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m == 'reformer' or m.startswith('reformer.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]", f"importing the kit loaded: {done.stdout.strip()}"


#: ``reformer`` as a word or a module prefix, any case; ``reformer_pytorch`` (a peer
#: implementation the benchmarks may name) is not the paper package
PAPER_NAME = re.compile(r"\breformer(?![-_]pytorch)", re.IGNORECASE)


def test_kit_tests_never_import_or_name_the_paper():
    """The kit's tests (tests/repro, tests/conftest.py, tests/pipeline_helpers.py) come into
    every project made from the template, where the paper package is another: they use the
    fixture paper (tests/repro/minipaper) and fixture files, never the Reformer."""
    tests = REPO_ROOT / "tests"
    files = [tests / "conftest.py", tests / "pipeline_helpers.py"]
    files += [p for p in sorted((tests / "repro").rglob("*")) if p.is_file()]
    offenders = []
    for path in files:
        if "__pycache__" in path.parts:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        offenders += [
            f"{path.relative_to(REPO_ROOT)}:{i}: {line.strip()[:100]}"
            for i, line in enumerate(text.splitlines(), 1)
            if PAPER_NAME.search(line)
        ]
    assert len(files) > 30, files  # the walk found the kit's tests
    assert not offenders, "the kit's tests name the paper:\n" + "\n".join(offenders)
    assert PAPER_NAME.search("from reformer.tasks import x") and PAPER_NAME.search("Reformer")
    assert not PAPER_NAME.search("import reformer_pytorch  # reformer-pytorch")
