"""Settings and fixtures shared by the whole test suite.

Tests never reach a server: W&B runs offline and DVC sends no analytics. Temporary git
repositories made by tests get a fixed author, so `git commit` works on a machine without a
git identity (CI).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# Tests mirror the packages (tests/repro, tests/<paper>, tests/repo) and share a few helpers
# across folders (a local HTTP server, the pipeline's environment, a fresh project copy):
# every test folder is importable by module name, whatever subset pytest collects.
for _folder in sorted({p.parent for p in Path(__file__).parent.rglob("test_*.py")}):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

os.environ["WANDB_MODE"] = "offline"
os.environ["DVC_NO_ANALYTICS"] = "1"
for _key, _value in {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}.items():
    os.environ.setdefault(_key, _value)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's root directory (where pyproject.toml is)."""
    return REPO_ROOT


@pytest.fixture(scope="session")
def venv_bin() -> Path:
    """The directory of the running interpreter's console scripts (dvc, torchrun, ...)."""
    return Path(sys.executable).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` where no CUDA device is available."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in gpu_items:
        item.add_marker(skip)
