"""A paper without benchmark workloads (an optional plug-in) gets a file that says so, and
the report's benchmark section says "not available" instead of the pipeline failing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipeline_helpers import MINIPAPER, minipaper_env

from repro.reporting.benchmark import benchmark_section

ROOT = Path(__file__).resolve().parents[3]


def test_the_stage_writes_not_available_for_a_paper_without_workloads(tmp_path):
    out = tmp_path / "benchmark.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "pipelines" / "benchmark.py"),
            "--params",
            str(MINIPAPER / "params.yaml"),
            "--out",
            str(out),
            "--plots",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=minipaper_env(),
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert data["available"] is False and "has no benchmark" in data["reason"]
    assert benchmark_section(data, tmp_path, []).startswith(r"\emph{Not available: paper")
