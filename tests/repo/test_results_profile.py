"""The README shows only the committed profile's numbers: the ``results`` stage run under
another profile (smoke, a paper-scale run) leaves README.md alone and writes aside."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
README = "# Project\n\n<!-- results:start -->\nold section\n<!-- results:end -->\n"


def _project(tmp_path: Path, profile: str) -> Path:
    root = tmp_path / "project"
    (root / "report").mkdir(parents=True)
    (root / "metrics").mkdir()
    shutil.copy(REPO_ROOT / "configs" / f"{profile}.yaml", root / "params.yaml")
    shutil.copy(REPO_ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copy(REPO_ROOT / "report" / "claims.yaml", root / "report" / "claims.yaml")
    (root / "README.md").write_text(README)
    return root


def _results(root: Path, *args: str) -> subprocess.CompletedProcess:
    script = REPO_ROOT / "pipelines" / "results.py"
    return subprocess.run(
        [sys.executable, str(script), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_smoke_run_leaves_the_readme_alone_and_writes_aside(tmp_path):
    root = _project(tmp_path, "smoke")
    done = _results(root)
    assert done.returncode == 0, done.stderr
    assert (root / "README.md").read_text() == README
    aside = root / "report" / "build" / "results-smoke.md"
    assert "README.md left as it is" in done.stdout and str(aside) in done.stdout
    assert "Table 2" in aside.read_text()


def test_the_default_profile_writes_the_readme(tmp_path):
    root = _project(tmp_path, "default")
    done = _results(root)
    assert done.returncode == 0, done.stderr
    text = (root / "README.md").read_text()
    assert "old section" not in text and "Table 2" in text
    assert not (root / "report" / "build").exists()
