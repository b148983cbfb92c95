"""The documentation builds offline with no warnings, and documents every public object.

One ``sphinx-build -W -n`` run (module-scoped fixture) into a temporary directory; the other
tests read what it built: the object inventory (``objects.inv``) and the HTML pages.
"""

from __future__ import annotations

import html
import importlib
import inspect
import pkgutil
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

import reformer

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the HTML docs from scratch (``-E``) with warnings as errors and nitpicky refs."""
    out = tmp_path_factory.mktemp("docs") / "html"
    doctrees = out.parent / "doctrees"
    cmd = [
        sys.executable, "-m", "sphinx", "-W", "-n", "-E", "-q",
        "-b", "html", "-d", str(doctrees), str(DOCS), str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"sphinx-build failed:\n{proc.stdout}\n{proc.stderr}"
    # -q prints only warnings; with -W any warning is an error, but say so explicitly.
    assert "WARNING" not in proc.stderr, proc.stderr
    return out


def read_inventory(path: Path) -> dict[str, set[str]]:
    """Parse a Sphinx v2 ``objects.inv``: ``{"py:class": {"reformer.x.Y", ...}, ...}``."""
    raw = path.read_bytes()
    lines = raw.split(b"\n", 4)
    assert lines[0].startswith(b"# Sphinx inventory version 2"), lines[0]
    body = zlib.decompress(lines[4]).decode()
    found: dict[str, set[str]] = {}
    pattern = re.compile(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+(\S*)\s+(.*)")
    for line in body.splitlines():
        match = pattern.fullmatch(line.rstrip())
        if match:
            found.setdefault(match.group(2), set()).add(match.group(1))
    return found


def package_modules() -> list[str]:
    names = ["reformer"]
    for info in pkgutil.walk_packages(reformer.__path__, prefix="reformer."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return names


def public_objects() -> list[tuple[str, str, object]]:
    """``(module, name, object)`` for every name in the ``__all__`` of every module."""
    found = []
    for modname in package_modules():
        module = importlib.import_module(modname)
        for name in getattr(module, "__all__", []):
            found.append((modname, name, getattr(module, name)))
    return found


def canonical_name(modname: str, name: str, obj: object) -> tuple[set[str], str]:
    """The inventory roles an object may appear under, and its fully qualified name."""
    if inspect.ismodule(obj):
        return {"py:module"}, obj.__name__
    if inspect.isclass(obj):
        roles = {"py:class", "py:exception"}
        return roles, f"{obj.__module__}.{obj.__qualname__}"
    if callable(obj) and hasattr(obj, "__qualname__"):
        return {"py:function", "py:method"}, f"{obj.__module__}.{obj.__qualname__}"
    return {"py:data", "py:attribute"}, f"{modname}.{name}"


def test_build_succeeds_without_warnings(built: Path) -> None:
    for page in ("index.html", "paper-to-code.html", "api/index.html", "genindex.html"):
        assert (built / page).is_file(), page
    for guide in (
        "quickstart", "reproducing", "distributed", "tracking",
        "report", "contributing", "adapting", "architecture",
    ):  # fmt: skip
        assert (built / "guides" / f"{guide}.html").is_file(), guide


def test_every_module_has_an_api_page(built: Path) -> None:
    inventory = read_inventory(built / "objects.inv")
    missing = [m for m in package_modules() if m not in inventory.get("py:module", set())]
    assert not missing, f"modules without an API page: {missing}"


def test_every_public_name_is_documented(built: Path) -> None:
    """Every name in ``reformer.__all__`` and in each submodule's ``__all__`` has an entry."""
    inventory = read_inventory(built / "objects.inv")
    objects = public_objects()
    assert any(mod == "reformer" for mod, _, _ in objects) or not hasattr(reformer, "__all__")
    missing = []
    for modname, name, obj in objects:
        roles, qualified = canonical_name(modname, name, obj)
        if not qualified.startswith("reformer"):
            continue  # re-exported from another project; documented there
        documented = any(qualified in inventory.get(role, set()) for role in roles)
        if not documented and roles & {"py:data", "py:attribute"}:
            # A constant re-exported by a package is documented where it is assigned.
            documented = any(
                entry.endswith("." + name) for role in roles for entry in inventory.get(role, set())
            )
        if not documented:
            missing.append(f"{modname}.{name} (expected {qualified})")
    assert not missing, "public objects missing from the API reference:\n" + "\n".join(missing)


def test_public_api_page_lists_the_package_exports(built: Path) -> None:
    html = (built / "api" / "generated" / "public.html").read_text()
    for name in getattr(reformer, "__all__", []):
        assert f">{name}<" in html, f"{name} missing from the public API page"


def test_shapes_from_docstrings_are_rendered(built: Path) -> None:
    """The API pages carry the tensor shapes that the docstrings give."""
    page = built / "api" / "generated" / "reformer.attention.lsh.LSHSelfAttention.html"
    text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
    text = re.sub(r"\s+", " ", text)
    assert "(b, l, d_model)" in text or "(batch, length, d_model)" in text


PAPER_TO_CODE_TEST = re.compile(r"(tests/(?:\w+/)*test_\w+\.py)::(test_\w+)")


def test_paper_to_code_names_tests_that_exist() -> None:
    """Every ``tests/<file>.py::<test>`` the paper-to-code page cites is a real test."""
    text = (DOCS / "paper-to-code.md").read_text()
    cited = PAPER_TO_CODE_TEST.findall(text)
    assert cited, "the paper-to-code page cites no tests"
    missing = []
    for file, test in cited:
        path = ROOT / file
        source = path.read_text() if path.is_file() else ""
        if not re.search(rf"^\s*(async\s+)?def {test}\(", source, flags=re.MULTILINE):
            missing.append(f"{file}::{test}")
    assert not missing, f"tests cited on the paper-to-code page do not exist: {missing}"


def test_guides_name_only_existing_make_targets() -> None:
    """Every ``make <target>`` in the guides is a target of the Makefile."""
    makefile = ROOT / "Makefile"
    if not makefile.is_file():
        pytest.skip("no Makefile in this checkout")
    targets = set(re.findall(r"^([A-Za-z0-9_.%-]+)\s*:", makefile.read_text(), re.MULTILINE))
    used = set()
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        text = page.read_text()
        # Only commands count: fenced code blocks and inline code, not prose ("make sure").
        code = re.findall(r"```[^\n]*\n(.*?)```", text, flags=re.DOTALL)
        code += re.findall(r"`([^`\n]+)`", text)
        for snippet in code:
            used |= set(re.findall(r"(?:^|[\s;&|(])make ([a-z][\w-]*)", snippet, re.MULTILINE))
    patterns = [re.compile(t.replace("%", ".+") + "$") for t in targets if "%" in t]
    unknown = sorted(t for t in used if t not in targets and not any(p.match(t) for p in patterns))
    assert not unknown, f"guides use make targets that the Makefile lacks: {unknown}"


def test_guides_name_only_existing_files() -> None:
    """Every script or config path that a guide's code names (``pipelines/train.py``) exists."""
    # Only paths from the repository root: not ``reformer/test_models.py`` inside
    # ``tests/reformer/test_models.py``.
    pattern = re.compile(
        r"(?<![\w./-])((?:pipelines|scripts|configs|report|reformer|repro)/[\w./-]+"
        r"\.(?:py|sh|sbatch|yaml|tex|bib))\b"
    )
    missing = set()
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts or "generated" in page.parts:
            continue
        for path in pattern.findall(page.read_text()):
            if not (ROOT / path).is_file():
                missing.add(f"{page.relative_to(ROOT)}: {path}")
    assert not missing, "guides name files that do not exist:\n" + "\n".join(sorted(missing))
