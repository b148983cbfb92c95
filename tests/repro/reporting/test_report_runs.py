"""The runs the report reads: run files, params, and the metrics files that must agree.

The params name the fixture paper (``paper: minipaper``); the report stage runs as a
subprocess with ``tests/repro`` on its ``PYTHONPATH`` to import it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pipeline_helpers import minipaper_env
from reporting_runs import REPO, RUNS, params_yaml

from repro.reporting import (
    MetricsMismatchError,
    MissingRunError,
    check_metrics,
    experiments_from_params,
    load_runs,
)
from repro.tracking.reader import Run


def report_stage_error(*args: str | Path) -> tuple[int, str]:
    """Run the report stage with ``args`` (the fixture paper importable); its exit status and
    its error, which must be one line of stderr."""
    out = subprocess.run(
        [sys.executable, str(REPO / "pipelines" / "report.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        env=minipaper_env(),
    )
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return out.returncode, lines[0]


def test_missing_run_names_the_experiment(project: Path, tmp_path: Path) -> None:
    with pytest.raises(MissingRunError, match=r"experiment 'copy-r8' has no run file .*run\.json"):
        load_runs(["copy-full", "copy-r8"], root=project)
    params = tmp_path / "params.yaml"
    params.write_text(params_yaml(["copy-full", "copy-r8"]))
    returncode, line = report_stage_error(
        "--root", project, "--params", params, "--no-pdf", "--report-dir", tmp_path / "report"
    )
    assert returncode == 2
    assert "copy-r8" in line and "copy-full" not in line


def test_bad_params_are_a_one_line_error_of_the_stage(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    text = params_yaml(["copy-full"])
    assert "  steps: 20\n" in text
    params.write_text(text.replace("  steps: 20\n", "  steps: -1\n"))
    returncode, line = report_stage_error("--root", tmp_path)
    assert returncode == 2
    assert "params.yaml: train.steps = -1" in line


def test_experiments_from_params() -> None:
    assert experiments_from_params({"experiments": {"a": {}, "b": {}}}) == ["a", "b"]
    assert experiments_from_params({"experiments": ["a", {"name": "b"}]}) == ["a", "b"]
    with pytest.raises(ValueError, match="experiments=None"):
        experiments_from_params({"tasks": {}})


def test_metrics_file_must_agree_with_the_run(runs: dict[str, Run], tmp_path: Path) -> None:
    metrics = tmp_path / "copy-r4.json"
    metrics.write_text(json.dumps({"accuracy": {**RUNS["copy-r4"], "r4": 0.5}}))  # type: ignore[dict-item]
    with pytest.raises(MetricsMismatchError, match=r"'copy-r4'.*accuracy\.r4=0\.5.*0\.991"):
        check_metrics("copy-r4", runs["copy-r4"], metrics)
    metrics.write_text(json.dumps({"accuracy": {"r16": 0.9}}))
    notes = check_metrics("copy-r4", runs["copy-r4"], metrics)
    assert len(notes) == 1 and "eval/accuracy_r16" in notes[0]


def test_a_stale_run_file_stops_the_report_stage(project: Path, tmp_path: Path) -> None:
    """The stage turns a metrics file that disagrees with its run into a one-line error."""
    root = tmp_path / "p"
    (root / "metrics").mkdir(parents=True)
    for name in ("models", "wandb"):
        (root / name).symlink_to(project / name)
    (root / "params.yaml").write_text(params_yaml(["copy-r4"]))
    (root / "metrics" / "copy-r4.json").write_text(json.dumps({"accuracy": {"r4": 0.5}}))
    returncode, line = report_stage_error("--root", root, "--no-pdf")
    assert returncode == 1
    assert "run.json names another run" in line
