"""This repository's README: its results section is what the committed metrics files say."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_committed_readme_matches_committed_metrics() -> None:
    """README.md's results are what the committed metrics files say (regenerate otherwise)."""
    script = [
        sys.executable,
        str(ROOT / "pipelines" / "results.py"),
        "--root",
        str(ROOT),
        "--check",
    ]
    done = subprocess.run(script, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
