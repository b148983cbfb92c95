"""DVC works out of the box: the committed config, and a push/pull round trip of stage outputs.

The round trip runs the real `dvc` command line in a temporary git repository that uses the
repository's committed `.dvc/config`, so it also proves that the default remote (a local
directory) works on a fresh machine without any set-up.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DVC = [sys.executable, "-m", "dvc"]


def committed_config() -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read_string((REPO_ROOT / ".dvc" / "config").read_text())
    return config


def run(cmd: list[str], cwd: Path) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def test_committed_config_has_analytics_off_and_a_local_default_remote():
    config = committed_config()
    assert config.get("core", "analytics").lower() == "false"
    remote = config.get("core", "remote")
    url = config.get(f"'remote \"{remote}\"'", "url")
    assert "://" not in url, f"the default remote {url} is not a local directory"
    storage = (REPO_ROOT / ".dvc" / url).resolve()
    # Inside the repository and git-ignored: a fresh clone can push to it at once.
    assert storage.parent == REPO_ROOT
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(storage / "files")], cwd=REPO_ROOT, check=False
    )
    assert ignored.returncode == 0, f"{storage.name} is not git-ignored"


@pytest.fixture
def dvc_repo(tmp_path: Path) -> Path:
    """A fresh git + DVC repository with the project's committed .dvc/config."""
    repo = tmp_path / "repo"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    run([*DVC, "init", "-q"], repo)
    shutil.copy(REPO_ROOT / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copy(REPO_ROOT / ".gitignore", repo / ".gitignore")
    return repo


def test_push_pull_round_trip_of_stage_outputs(dvc_repo: Path):
    repo = dvc_repo
    script = (
        "import pathlib; out = pathlib.Path('out'); out.mkdir(exist_ok=True); "
        "(out / 'a.txt').write_text('alpha\\n'); (out / 'b.bin').write_bytes(bytes(range(256)))"
    )
    (repo / "make_out.py").write_text(script + "\n")
    run(
        [*DVC, "stage", "add", "-q", "-n", "make", "-d", "make_out.py", "-o", "out"]
        + [f"{sys.executable} make_out.py"],
        repo,
    )
    (repo / "notes.txt").write_text("tracked with dvc add\n")
    run([*DVC, "add", "-q", "notes.txt"], repo)
    run([*DVC, "repro", "-q"], repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-q", "-m", "pipeline"], repo)
    expected = {p: p.read_bytes() for p in [repo / "out/a.txt", repo / "out/b.bin"]}
    expected[repo / "notes.txt"] = (repo / "notes.txt").read_bytes()

    run([*DVC, "push", "-q"], repo)
    assert any((repo / ".dvc-storage").rglob("*")), "dvc push wrote nothing to the remote"

    # Lose the workspace copies and the cache: only the remote still has the data.
    shutil.rmtree(repo / "out")
    (repo / "notes.txt").unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    run([*DVC, "pull", "-q"], repo)

    assert {p: p.read_bytes() for p in expected} == expected
    assert "in sync" in run([*DVC, "status", "--cloud"], repo)
    assert "up to date" in run([*DVC, "status"], repo).lower()


def _reformer_imports(path: Path) -> set[str]:
    """Dotted names of the ``reformer.*`` submodules that ``path`` imports."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("reformer."):
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("reformer.")}
    return found


def _module_file(name: str) -> Path:
    """``reformer.a.b`` -> reformer/a/b.py or reformer/a/b/__init__.py."""
    base = REPO_ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


def test_stage_deps_cover_every_reformer_module_they_import():
    """A stage that depends on a ``reformer`` module depends on what that module imports, so
    a change to a helper (say the reversible layers' random-state module) reruns the stage.
    (``from reformer import x`` is not followed: it names the package, not a module.)"""
    import yaml

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    problems = []
    for name, stage in stages.items():
        spec = stage.get("do", stage)
        deps = [str(d).split("#")[0].strip() for d in spec.get("deps", [])]
        covered = [REPO_ROOT / d for d in deps if d.startswith(("reformer", "pipelines", "bench"))]

        todo = [p for c in covered for p in ([c] if c.is_file() else sorted(c.rglob("*.py")))]
        seen: set[Path] = set()
        while todo:
            path = todo.pop()
            if path in seen or path.suffix != ".py":
                continue
            seen.add(path)
            for module in _reformer_imports(path):
                target = _module_file(module)
                if not any(target == c or c in target.parents for c in covered):
                    problems.append(f"{name}: {path.relative_to(REPO_ROOT)} imports {module}")
                todo.append(target)
    assert not problems, "stage deps miss imported modules:\n" + "\n".join(sorted(set(problems)))
