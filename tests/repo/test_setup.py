"""The set-up script, the Makefile and .ci/run behave as the README promises.

scripts/setup.sh runs for real on a copy of itself, with the system tools it would call
(dpkg-query, apt-get, apt-cache, sudo, id) replaced by small stand-ins on PATH, so that no
test installs anything: each bad machine (old Python, no apt, not root) must give a one-line
message with the command that fixes it, and a root machine must call apt-get for exactly the
missing packages. .ci/run runs with a stand-in `make`, to show that it passes on failure and
on "no test ran" a non-zero exit code.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
APT_PACKAGES = [
    "latexmk",
    "texlive-latex-base",
    "texlive-latex-recommended",
    "texlive-latex-extra",
    "texlive-pictures",
    "texlive-fonts-recommended",
    "lmodern",
    "poppler-utils",
    "libtcmalloc-minimal4",
]


def write_tool(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


@pytest.fixture
def sandbox(tmp_path: Path) -> dict:
    """A copy of scripts/setup.sh in an empty repository, and a directory for stand-in tools."""
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    tools = tmp_path / "bin"
    tools.mkdir()
    # An interpreter that passes the version checks but cannot create .venv: the script stops
    # right after the system-package step, before installing anything.
    python = write_tool(
        tools,
        "python-no-venv",
        f'if [ "$1" = -m ] && [ "$2" = venv ]; then echo "venv blocked" >&2; exit 3; fi\n'
        f'exec "{sys.executable}" "$@"',
    )
    apt_log = tmp_path / "apt-get.log"
    write_tool(tools, "apt-get", f'echo "$@" >> "{apt_log}"')
    write_tool(tools, "apt-cache", "exit 100")  # knows no package: the names stay as listed
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "SETUP_SKIP_SYSTEM"}}
    env.update(PATH=f"{tools}{os.pathsep}{os.environ['PATH']}", PYTHON=str(python))
    return {"repo": repo, "tools": tools, "env": env, "apt_log": apt_log}


def run_setup(sandbox: dict, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("bash"), str(sandbox["repo"] / "scripts" / "setup.sh")],
        env={**sandbox["env"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def missing_packages(sandbox: dict, *, root: bool, sudo: bool = False) -> None:
    """dpkg-query knows none of the packages; `id -u` and `sudo -n` answer as asked."""
    tools = sandbox["tools"]
    write_tool(tools, "dpkg-query", "exit 1")
    write_tool(tools, "id", f"echo {0 if root else 1000}")
    write_tool(tools, "sudo", '[ "$1" = -n ] && shift; exec "$@"' if sudo else "exit 1")


def test_old_python_is_refused_in_one_line(sandbox):
    old = write_tool(
        sandbox["tools"], "python3.9", 'case "$2" in *print*) echo 3.9.18; exit 0;; esac; exit 1'
    )
    message = one_line_error(run_setup(sandbox, PYTHON=str(old)))
    assert "Python >= 3.10" in message and "3.9.18" in message
    assert "apt-get install python3" in message and "brew install python" in message


def test_missing_python_is_refused_in_one_line(sandbox):
    message = one_line_error(run_setup(sandbox, PYTHON="python-that-does-not-exist"))
    assert "Python >= 3.10" in message and "not found" in message


def test_without_root_prints_the_apt_get_line(sandbox):
    missing_packages(sandbox, root=False)
    message = one_line_error(run_setup(sandbox))
    assert "sudo apt-get install -y --no-install-recommends " + " ".join(APT_PACKAGES) in message
    assert "SETUP_SKIP_SYSTEM=1" in message
    assert not sandbox["apt_log"].exists()


def test_without_apt_prints_the_brew_line(sandbox, tmp_path):
    # A PATH with only what the script needs before its system step: no apt, no dpkg, no TeX.
    bare = tmp_path / "bare"
    bare.mkdir()
    os.symlink(shutil.which("dirname"), bare / "dirname")
    message = one_line_error(run_setup(sandbox, PATH=str(bare)))
    assert "brew install --cask mactex-no-gui && brew install poppler" in message
    assert "latexmk" in message and "pdftotext" in message


@pytest.mark.parametrize("how", ["root", "sudo"])
def test_as_root_or_with_sudo_installs_exactly_the_missing_packages(sandbox, how):
    missing_packages(sandbox, root=how == "root", sudo=how == "sudo")
    result = run_setup(sandbox)
    assert result.returncode == 3 and "venv blocked" in result.stderr  # went on past apt
    calls = sandbox["apt_log"].read_text().splitlines()
    assert calls[0] == "update -q"
    assert calls[1] == "install -y -q --no-install-recommends " + " ".join(APT_PACKAGES)


def test_newer_releases_get_tcmalloc_under_its_t64_name(sandbox):
    missing_packages(sandbox, root=True)
    write_tool(
        sandbox["tools"], "apt-cache", '[ "$2" = libtcmalloc-minimal4t64 ] && exit 0; exit 100'
    )
    run_setup(sandbox)
    install = sandbox["apt_log"].read_text().splitlines()[1].split()
    assert "libtcmalloc-minimal4t64" in install and "libtcmalloc-minimal4" not in install
    assert set(install) >= set(APT_PACKAGES) - {"libtcmalloc-minimal4"}


@pytest.mark.parametrize(
    "tcmalloc", ["libtcmalloc-minimal4", "libtcmalloc-minimal4t64"], ids=["name", "t64-name"]
)
def test_installed_packages_are_not_installed_again(sandbox, tcmalloc):
    names = [p for p in APT_PACKAGES if p != "libtcmalloc-minimal4"] + [tcmalloc]
    listing = "\\n".join(f"{p} installed" for p in names)
    write_tool(sandbox["tools"], "dpkg-query", f'printf "{listing}\\n"')
    write_tool(sandbox["tools"], "id", "echo 0")
    result = run_setup(sandbox)
    assert result.returncode == 3 and "venv blocked" in result.stderr
    assert not sandbox["apt_log"].exists()


def test_skip_system_packages(sandbox):
    missing_packages(sandbox, root=False)
    result = run_setup(sandbox, SETUP_SKIP_SYSTEM="1")
    assert result.returncode == 3 and "venv blocked" in result.stderr
    assert not sandbox["apt_log"].exists()


# --- .ci/run -------------------------------------------------------------------------------

JUNIT = (
    '<testsuites><testsuite name="pytest" tests="{tests}" skipped="{skipped}" failures="0"'
    ' errors="0"/></testsuites>'
)


@pytest.fixture
def ci_sandbox(tmp_path: Path) -> dict:
    """A copy of .ci/run next to a .venv/bin/python, and a stand-in `make` on PATH."""
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    (repo / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(REPO_ROOT / ".ci" / "run", repo / ".ci" / "run")
    os.symlink(sys.executable, repo / ".venv" / "bin" / "python")
    tools = tmp_path / "bin"
    tools.mkdir()
    calls = tmp_path / "make.log"
    # The stand-in writes the junit file named by PYTEST_ARGS=--junitxml=PATH, or fails.
    write_tool(
        tools,
        "make",
        f'echo "$@" >> "{calls}"\n'
        'junit=$(echo "$2" | sed -n "s/^PYTEST_ARGS=--junitxml=//p")\n'
        'if [ "$FAKE_MAKE" = fail ]; then exit 2; fi\n'
        'printf "%s" "$FAKE_JUNIT" > "$junit"',
    )
    env = {**os.environ, "PATH": f"{tools}{os.pathsep}{os.environ['PATH']}"}
    return {"run": repo / ".ci" / "run", "env": env, "calls": calls}


def run_ci(ci_sandbox: dict, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ci_sandbox["run"])],
        env={**ci_sandbox["env"], **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_ci_run_runs_make_test_and_passes_when_tests_ran(ci_sandbox):
    result = run_ci(ci_sandbox, FAKE_JUNIT=JUNIT.format(tests=5, skipped=1))
    assert result.returncode == 0, result.stderr
    assert ci_sandbox["calls"].read_text().startswith("test PYTEST_ARGS=--junitxml=")
    assert "4 ran" in result.stdout


def test_ci_run_propagates_failure(ci_sandbox):
    assert run_ci(ci_sandbox, FAKE_MAKE="fail").returncode == 2


def test_ci_run_fails_when_no_test_ran(ci_sandbox):
    result = run_ci(ci_sandbox, FAKE_JUNIT=JUNIT.format(tests=3, skipped=3))
    assert result.returncode != 0 and "no test ran" in result.stderr


# --- Makefile -------------------------------------------------------------------------------

TARGETS = [
    "setup",
    "reproduce",
    "test",
    "test-fast",
    "lint",
    "docs",
    "report",
    "bench",
    "profile-smoke",
    "profile-default",
    "profile-paper",
    "clean",
]


def make(*args: str) -> str:
    result = subprocess.run(
        # run in the checkout, not with -C: make would print the directory, whose path may
        # hold any of the words the tests look for ("pytest-of-root", say)
        ["make", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_help_lists_every_target():
    listed = set(re.findall(r"^  ([\w-]+) ", make("help"), re.M))
    assert set(TARGETS) <= listed


def test_make_test_runs_setup_lint_docs_then_pytest():
    plan = make("-n", "test")
    steps = ["scripts/setup.sh", "pre-commit run --all-files", "sphinx-build -E -W -n", "pytest"]
    positions = [plan.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), plan


def test_make_reproduce_runs_dvc_repro_then_push():
    plan = make("-n", "reproduce")
    assert plan.index("dvc repro") < plan.index("dvc push")


def test_modules_named_by_the_makefile_exist():
    text = (REPO_ROOT / "Makefile").read_text()
    for module in set(re.findall(r"python -m ([\w.]+)", text)):
        path = REPO_ROOT / Path(*module.split("."))
        assert path.with_suffix(".py").is_file() or (path / "__init__.py").is_file(), module


def test_scripts_are_strict_bash():
    for path in (REPO_ROOT / "scripts" / "setup.sh", REPO_ROOT / ".ci" / "run"):
        text = path.read_text()
        assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
        assert os.access(path, os.X_OK), f"{path} is not executable"
