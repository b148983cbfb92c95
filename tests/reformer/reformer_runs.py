"""The Reformer's runs for its report tests: real offline W&B runs of duplication models.

Written by the kit's fixture writer (``tests/repro/reporting/reporting_runs.py``) with the
Reformer's experiment names and evaluation modes; the expected verdicts and cells in the
tests are worked out by hand from the numbers in :data:`RUNS` and the thresholds in this
repository's ``report/claims.yaml`` (:data:`CLAIMS`).
"""

from __future__ import annotations

from pathlib import Path

import reporting_runs
from reporting_runs import REPO

__all__ = ["CLAIMS", "REPO", "RUNS", "write_project"]

CLAIMS = REPO / "report" / "claims.yaml"

# experiment -> accuracy by evaluation mode (None: the run crashed before evaluation)
RUNS: dict[str, dict[str, float] | None] = {
    "dup-full": {"full": 1.0, "lsh8": 0.62, "lsh4": 0.55, "lsh2": 0.41, "lsh1": 0.3},
    "dup-lsh4": {"full": 0.12, "lsh8": 0.995, "lsh4": 0.991, "lsh2": 0.93, "lsh1": 0.81},
    "dup-lsh1": {"full": 0.3, "lsh8": 0.93, "lsh4": 0.92, "lsh2": 0.88, "lsh1": 0.7},
    "dup-lsh2": None,
}


def write_project(root: Path) -> Path:
    """:data:`RUNS` as offline runs under ``root``, with their run.json and metrics files."""
    return reporting_runs.write_project(root, RUNS, task="duplication")
