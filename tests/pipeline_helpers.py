"""Fresh copies of the project for tests that run the real pipeline (``dvc repro``).

:func:`fresh_repo` builds on ``make_repo`` of ``test_pipeline_e2e`` and removes every run
output the copy may have taken over from the working tree (``dvc.lock``, metrics, models,
data, W&B runs), so each copy starts from a clean state.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from test_pipeline_e2e import make_repo

RUN_OUTPUTS = ("metrics", "models", "data", "wandb")


def fresh_repo(dest: Path, profile: str = "smoke") -> Path:
    """A new git repository at ``dest`` with the project's files, ``profile`` params, no outputs."""
    root = make_repo(dest, profile)
    for name in RUN_OUTPUTS:
        shutil.rmtree(root / name, ignore_errors=True)
    (root / "dvc.lock").unlink(missing_ok=True)
    return root
