"""The README's results section is generated from metrics files, and staleness is caught."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repro.reporting.readme import END, START, render_results, update_readme

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "report").mkdir()
    shutil.copy(ROOT / "report" / "claims.yaml", tmp_path / "report" / "claims.yaml")
    (tmp_path / "metrics").mkdir()
    (tmp_path / "README.md").write_text(f"# x\n\n{START}\nold\n{END}\n\ntail\n")
    return tmp_path


def _write_metrics(root: Path, exp: str, **acc: float) -> None:
    (root / "metrics" / f"{exp}.json").write_text(json.dumps({"accuracy": acc}))


def test_grid_shows_our_numbers_next_to_the_papers(project: Path) -> None:
    _write_metrics(project, "dup-lsh4", full=0.0123, lsh8=0.99951, lsh4=1.0, lsh2=0.9, lsh1=0.5)
    text = render_results(project)
    rows = [line for line in text.splitlines() if line.startswith("|")]
    # the LSH-4 block is the second training row: paper, fast.ai, ours
    lsh4 = rows[2 + 3 : 2 + 6]
    assert lsh4[0].startswith("| LSH-4 | paper | 0.8 | 100 | 99.9 | 99.4 | 91.9")
    assert "46.54" in lsh4[1]
    assert lsh4[2] == "|  | **ours** | **1.2** | **100.0** | **100.0** | **90.0** | **50.0** |"
    # rows with no metrics file are shown as not run, never as a number
    full_ours = rows[2 + 2]
    assert full_ours.count("—") == 5
    assert "1 of 4 rows run" in text


def test_benchmark_headline_rows_come_from_the_targets(project: Path) -> None:
    targets = {
        "peers": {
            "description": "faster than peers",
            "threshold": 1.5,
            "worst_speedup": 1.234,
            "passed": False,
        },
        "longest": {
            "description": "long step",
            "threshold": 1000000,
            "longest": 1048576,
            "passed": True,
        },
        "unknown": {"description": "not measured", "threshold": 2.0, "passed": None},
        "bounded": {
            "description": "every cell",
            "threshold": 1.5,
            "worst_speedup": 1.6,
            "entries": [{"speedup": 1.6, "passed": True}, {"speedup_lower_bound": 1.2}],
            "passed": False,
        },
    }
    (project / "metrics" / "benchmark.json").write_text(json.dumps({"targets": targets}))
    rows = [r for r in render_results(project).splitlines() if r.startswith("| ")]
    assert "| faster than peers | 1.23 | 1.50 | no |" in rows
    assert "| long step | 1,048,576 | 1,000,000 | yes |" in rows
    assert "| not measured | — | 2.00 | — |" in rows
    # a cell whose baseline was over the time cap explains an unmet target above threshold
    assert (
        "| every cell | 1.60 (1 cell(s) unmeasured: baseline over the time cap) | 1.50 | no |"
        in rows
    )


def test_update_readme_replaces_only_the_section(project: Path) -> None:
    readme = project / "README.md"
    assert update_readme(readme, "NEW") is True
    assert readme.read_text() == f"# x\n\n{START}\nNEW\n{END}\n\ntail\n"
    assert update_readme(readme, "NEW") is False


def test_missing_markers_is_a_one_line_error(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("no markers here\n")
    with pytest.raises(ValueError, match=r"README\.md: needs the markers") as err:
        update_readme(readme, "x")
    assert "\n" not in str(err.value)


def test_check_mode_detects_a_stale_readme(project: Path) -> None:
    script = [sys.executable, str(ROOT / "pipelines" / "results.py"), "--root", str(project)]
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 1
    assert subprocess.run(script, capture_output=True).returncode == 0
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 0
    _write_metrics(project, "dup-full", full=1.0)  # new results make the README stale again
    assert subprocess.run([*script, "--check"], capture_output=True).returncode == 1


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
