"""Fixtures of the reporting tests: one project of real offline W&B runs per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from reporting_runs import RUNS, write_project

from repro.reporting import load_runs
from repro.tracking.reader import Run


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with the runs of :data:`reporting_runs.RUNS` (models/, metrics/)."""
    return write_project(tmp_path_factory.mktemp("project"))


@pytest.fixture(scope="session")
def runs(project: Path) -> dict[str, Run]:
    """Those runs, read back through their run.json."""
    return load_runs(list(RUNS), root=project)
