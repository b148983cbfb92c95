"""Helpers of the tests that run the real pipeline, shared by every test folder.

- :func:`make_repo`, :func:`fresh_repo`, :func:`committed_copy`: a copy of the project in a
  new git repository (``fresh_repo``: without the run outputs the working tree may hold);
- :func:`run`, :func:`dvc`, :func:`pipeline_env`, :func:`git_env`: commands run offline;
- :func:`wandb_env`: an offline wandb process that writes only under a given folder;
- :data:`MINIPAPER`, :func:`minipaper_env`, :func:`use_minipaper`: the kit's fixture paper
  (``tests/repro/minipaper``), so that the kit's tests run the pipeline with a paper of
  their own, whatever paper the project reproduces.

These are the kit's: a project made from the template has this file too, so nothing here
may depend on the paper the project reproduces.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MINIPAPER = ROOT / "tests" / "repro" / "minipaper"
RUN_OUTPUTS = ("metrics", "models", "runs", "data", "wandb")


def pipeline_env() -> dict[str, str]:
    """This environment, offline (W&B, DVC analytics), without a run group or W&B folder."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DVC_EXP_NAME", "WANDB_RUN_GROUP", "WANDB_API_KEY", "WANDB_DIR")
    }
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", DVC_NO_ANALYTICS="1")
    return env


def git_env() -> dict[str, str]:
    """This environment without variables that would point git or DVC elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GIT_DIR", "GIT_WORK_TREE"))}
    env.pop("DVC_EXP_NAME", None)
    env.update(DVC_NO_ANALYTICS="1", WANDB_MODE="offline", PRE_COMMIT_COLOR="never")
    return env


def wandb_env(root: Path) -> dict[str, str]:
    """This environment for an offline wandb process that keeps every file under ``root``
    (runs, config, cache, data; no git metadata) and ignores the caller's ``WANDB_*``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(
        WANDB_MODE="offline",
        WANDB_SILENT="true",
        WANDB_DIR=str(root),
        WANDB_CONFIG_DIR=str(root / ".config"),
        WANDB_CACHE_DIR=str(root / ".cache"),
        WANDB_DATA_DIR=str(root / ".data"),
        WANDB_DISABLE_GIT="true",
    )
    return env


def run(cmd: list[str], cwd: Path, timeout: int = 400) -> subprocess.CompletedProcess:
    """Run ``cmd`` in :func:`pipeline_env`; fail the test with its output if it fails."""
    result = subprocess.run(
        cmd, cwd=cwd, env=pipeline_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, (
        f"{cmd} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


def dvc(*args: str, cwd: Path, timeout: int = 400) -> subprocess.CompletedProcess:
    """``dvc <args>`` of this environment, through :func:`run`."""
    return run([str(Path(sys.prefix) / "bin" / "dvc"), *args], cwd, timeout)


def listed_files() -> list[str]:
    """The project's files git tracks or would track (not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [name for name in listed.split("\0") if name]


def forget_saved_runs(root: Path) -> None:
    """Drop the team's saved runs of other profiles (``results/<profile>.dvc`` and their index
    entries) from a copy: their data is in the team's DVC remote, not in the test's, as the
    committed ``dvc.lock``'s outputs are."""
    for pointer in (root / "results").glob("*.dvc"):
        pointer.unlink()
    index = root / "results" / "index.yaml"
    if index.is_file():
        index.write_text("profiles: {}\n")


def make_repo(dest: Path, profile: str = "smoke") -> Path:
    """Copy the project's files (tracked, and untracked but not ignored) into a new git repo
    at ``dest``, on the params of ``configs/<profile>.yaml``, without the saved runs of
    other profiles (:func:`forget_saved_runs`)."""
    for name in listed_files():
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    (dest / ".venv").symlink_to(sys.prefix)  # dvc.yaml runs .venv/bin/python
    forget_saved_runs(dest)
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(git + ["add", "-A"], cwd=dest, check=True)
    subprocess.run(git + ["commit", "-qm", "copy"], cwd=dest, check=True)
    run([sys.executable, "-m", "repro.config", "use", profile], dest)
    return dest


def fresh_repo(dest: Path, profile: str = "smoke") -> Path:
    """A new git repository at ``dest`` with the project's files, ``profile`` params, no outputs."""
    root = make_repo(dest, profile)
    for name in RUN_OUTPUTS:
        shutil.rmtree(root / name, ignore_errors=True)
    (root / "dvc.lock").unlink(missing_ok=True)
    return root


def committed_copy(dest: Path) -> Path:
    """A git repository on branch main holding this working tree, everything committed.

    The files git would commit (tracked, and untracked but not ignored) are copied, symbolic
    links as links; ``.venv`` links this interpreter's environment (the pipeline and the
    hooks run ``.venv/bin/...``); git-ignored, so it stays out of every commit.
    """
    for name in listed_files():
        source, target = ROOT / name, dest / name
        if not (source.exists() or source.is_symlink()):
            continue  # deleted in the working tree, not yet in the index
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)
    (dest / ".venv").symlink_to(sys.prefix)
    for cmd in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "copy"]):
        subprocess.run(["git", *cmd], cwd=dest, check=True, env=git_env())
    return dest


def minipaper_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this environment) with ``tests/repro`` first on PYTHONPATH, so that
    the pipeline's scripts, run as subprocesses, can import the fixture paper."""
    env = dict(os.environ if env is None else env)
    path = [str(MINIPAPER.parent), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, path))
    return env


def use_minipaper(root: Path) -> Path:
    """Switch the project copy at ``root`` to the fixture paper, committed: the package at
    its root (``dvc.yaml``'s stages depend on the ``paper:`` folder), its smoke profile as
    ``params.yaml``, no run outputs."""
    shutil.copytree(MINIPAPER, root / "minipaper", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(MINIPAPER / "params.yaml", root / "params.yaml")
    for name in RUN_OUTPUTS:
        shutil.rmtree(root / name, ignore_errors=True)
    (root / "dvc.lock").unlink(missing_ok=True)
    git = ["git", "-c", "user.email=ci@example.org", "-c", "user.name=ci"]
    subprocess.run(git + ["add", "-A"], cwd=root, check=True)
    subprocess.run(git + ["commit", "-qm", "the fixture paper"], cwd=root, check=True)
    return root
