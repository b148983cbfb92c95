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

REPO_ROOT = Path(__file__).resolve().parents[2]
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


PACKAGES = ("repro", "reformer")  # the kit and the paper that params.yaml's `paper:` names


def _package_imports(path: Path) -> set[str]:
    """Dotted names of the kit's and the paper's modules that ``path`` imports; a call of
    ``load_paper`` counts as importing ``<paper>.paper`` (the plug-in it loads)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in PACKAGES:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] in PACKAGES}
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "load_paper":
            found.add(f"{_paper_name()}.paper")
    return found


def _paper_name() -> str:
    import yaml

    return yaml.safe_load((REPO_ROOT / "params.yaml").read_text())["paper"]


def _module_file(name: str) -> Path:
    """``pkg.a.b`` -> pkg/a/b.py or pkg/a/b/__init__.py."""
    base = REPO_ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").exists() else base / "__init__.py"


def test_stage_deps_cover_every_module_they_import():
    """A stage depends on every kit or paper module its script imports, directly or through
    other modules or the paper's plug-in, so a change to any of them reruns the stage."""
    import yaml

    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    paper = _paper_name()
    problems = []
    for name, stage in stages.items():
        spec = stage.get("do", stage)
        deps = [str(d).split("#")[0].strip().replace("${paper}", paper) for d in spec["deps"]]
        covered = [REPO_ROOT / d for d in deps if d.startswith(("pipelines", *PACKAGES))]
        assert any(d.startswith("pipelines/") for d in deps), f"{name}: no stage script in deps"

        todo = [p for c in covered for p in ([c] if c.is_file() else sorted(c.rglob("*.py")))]
        seen: set[Path] = set()
        while todo:
            path = todo.pop()
            if path in seen or path.suffix != ".py":
                continue
            seen.add(path)
            for module in _package_imports(path):
                target = _module_file(module)
                if not any(target == c or c in target.parents for c in covered):
                    problems.append(f"{name}: {path.relative_to(REPO_ROOT)} imports {module}")
                todo.append(target)
    assert not problems, "stage deps miss imported modules:\n" + "\n".join(sorted(set(problems)))


def test_the_import_walk_sees_a_missing_dependency(tmp_path):
    """The walk above is not vacuous: a script importing the paper's plug-in pulls in the
    paper package, which a stage listing only the kit would miss."""
    script = tmp_path / "stage.py"
    script.write_text("from repro.paper import load_paper\npaper = load_paper('x')\n")
    imported = _package_imports(script)
    assert f"{_paper_name()}.paper" in imported and "repro.paper" in imported
